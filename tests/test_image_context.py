"""Image context on the Doc: accepted shapes, conversion, and errors that say
what shape is expected, however the value gets onto the doc."""

import pickle
import threading
import time

import numpy
import pytest
import spacy
from spacy.tokens import DocBin

from spacy_lexner.pipeline.image_context import make_clip_getter
from spacy_lexner.pipeline.patterns import visual_condition_holds
from spacy_lexner.util.image_context import ImageContext, set_image_context

TAGS_SHAPE = "must be a list of tags"
EMBEDDING_SHAPE = "must be a non-empty 1d vector of finite numbers"
NAN = float("nan")
DOG_RULE = {"label": "ANIMAL", "pattern": "旺财", "visual": {"tags_any": ["狗"], "min_score": 0.5}}
SIM_RULE = {"label": "ANIMAL", "pattern": "旺财", "visual": {"embedding_sim": {"prototype": "dog", "min": -1.0}}}


def dog_nlp(patterns=(DOG_RULE,)):
    nlp = spacy.blank("zh")
    ruler = nlp.add_pipe("multimodal_entity_ruler")
    ruler.add_prototype("dog", [1.0, 0.0, 0.0])
    ruler.add_patterns(list(patterns))
    return nlp


def labels(doc):
    return [e.label_ for e in doc.ents]


@pytest.mark.parametrize("score,fires", [(0.1, False), (0.9, True)])
def test_dict_tags_keep_their_scores(score, fires):
    nlp = dog_nlp()
    doc = set_image_context(nlp.make_doc("旺财很可爱"), tags={"狗": score})
    assert doc._.image_tags == [("狗", score)]
    assert labels(nlp(doc)) == (["ANIMAL"] if fires else [])
    # The same dict given through the nlp.pipe context or doc.user_data.
    piped = [d for d, _ in nlp.pipe([("旺财很可爱", {"image_tags": {"狗": score}})], as_tuples=True)]
    assert labels(piped[0]) == (["ANIMAL"] if fires else [])
    raw = nlp.make_doc("旺财很可爱")
    raw.user_data["image_tags"] = {"狗": score}
    assert labels(nlp(raw)) == (["ANIMAL"] if fires else [])


def test_bare_string_tags_are_rejected():
    doc = spacy.blank("zh").make_doc("旺财")
    with pytest.raises(ValueError, match=r"(?i)wrap a single tag in a list: \['dog'\]"):
        set_image_context(doc, tags="dog")
    with pytest.raises(ValueError, match=TAGS_SHAPE):
        doc._.image_tags = "dog"
    assert doc._.image_tags is None


@pytest.mark.parametrize(
    "tags",
    [
        "dog",
        b"dog",
        3,
        0.5,
        [None],
        ["dog", None],
        [b"dog"],
        [("dog", NAN)],
        [("dog", float("inf"))],
        [("dog", 1.5)],
        [("dog", -0.1)],
        [("dog", True)],
        [(1, 0.5)],
        [("dog",)],
        [("dog", 0.5, 1)],
        [("dog", "0.9")],
        [{"dog": 0.9}],
        ("dog", 0.9),
        {"dog": 2.0},
        {1: 0.5},
    ],
)
def test_direct_tag_assignment_is_checked(tags):
    doc = spacy.blank("zh").make_doc("旺财")
    with pytest.raises(ValueError, match=TAGS_SHAPE):
        doc._.image_tags = tags
    with pytest.raises(ValueError, match=TAGS_SHAPE):
        set_image_context(doc, tags=tags)
    assert doc._.image_tags is None


@pytest.mark.parametrize(
    "tags,expected",
    [
        ({"dog": 0.9, "cat": 0}, [("dog", 0.9), ("cat", 0.0)]),
        (["dog"], [("dog", 1.0)]),
        ((("dog", 0.5), ["cat", 1]), [("dog", 0.5), ("cat", 1.0)]),
        ([("dog", numpy.float32(0.25))], [("dog", 0.25)]),
        ([], []),
    ],
)
def test_direct_tag_assignment_converts(tags, expected):
    doc = spacy.blank("zh").make_doc("旺财")
    doc._.image_tags = tags
    assert doc._.image_tags == expected
    assert all(type(score) is float for _, score in doc._.image_tags)


def test_score_above_one_is_rejected():
    doc = spacy.blank("zh").make_doc("旺财")
    with pytest.raises(ValueError, match=r"score that is not a number in \[0, 1\]"):
        doc._.image_tags = [("狗", 1.01)]
    with pytest.raises(ValueError, match=r"score that is not a number in \[0, 1\]"):
        set_image_context(doc, tags=[("狗", 1.01)])


@pytest.mark.parametrize(
    "embedding",
    [
        [NAN, 1.0, 0.0],
        [float("inf"), 0.0],
        numpy.array([1.0, NAN]),
        [1e300],
        [[1.0, 0.0]],
        numpy.zeros((2, 2)),
        3.0,
        numpy.float32(1.0),
        "abc",
        b"ab",
        [],
        ["a", "b"],
        [1, None],
        [[1], [1, 2]],
        {"a": 1.0},
        [True, False],
    ],
)
def test_direct_embedding_assignment_is_checked(embedding):
    doc = spacy.blank("zh").make_doc("旺财")
    with pytest.raises(ValueError, match=EMBEDDING_SHAPE):
        doc._.image_embedding = embedding
    with pytest.raises(ValueError, match=EMBEDDING_SHAPE):
        set_image_context(doc, embedding=embedding)
    assert doc._.image_embedding is None


def test_direct_embedding_assignment_converts():
    doc = spacy.blank("zh").make_doc("旺财")
    source = numpy.array([1, 2, 3], dtype="int64")
    doc._.image_embedding = source
    source[0] = 99  # the doc keeps the checked copy
    assert doc._.image_embedding.dtype == numpy.float32
    assert doc._.image_embedding.tolist() == [1.0, 2.0, 3.0]
    doc._.image_embedding = (0.5, 0.5)
    assert doc._.image_embedding.tolist() == [0.5, 0.5]
    doc._.image_embedding = None
    assert doc._.image_embedding is None


def test_nan_embedding_never_passes_embedding_sim():
    nlp = dog_nlp([SIM_RULE])
    doc = nlp.make_doc("旺财很可爱")
    with pytest.raises(ValueError, match=EMBEDDING_SHAPE):
        doc._.image_embedding = [NAN, 0.0, 0.0]
    assert labels(nlp(doc)) == []  # no image context: no visual rule fires
    prototypes = {"dog": numpy.array([1.0, 0.0, 0.0], dtype="float32")}
    nan_context = ImageContext([], numpy.array([NAN, 0.0, 0.0], dtype="float32"))
    assert not visual_condition_holds(SIM_RULE["visual"], nan_context, prototypes)
    assert visual_condition_holds(SIM_RULE["visual"], ImageContext([], prototypes["dog"]), prototypes)


def test_invalid_user_data_gives_a_clear_error_in_the_ruler():
    nlp = dog_nlp([DOG_RULE, SIM_RULE])
    doc = nlp.make_doc("旺财很可爱")
    doc.user_data[("._.", "image_embedding", None, None)] = numpy.array([NAN, 0.0, 0.0], dtype="float32")
    with pytest.raises(ValueError, match=rf"multimodal_entity_ruler.*Doc\._\.image_embedding {EMBEDDING_SHAPE}.*nan"):
        nlp(doc)
    doc = nlp.make_doc("旺财很可爱")
    doc.user_data[("._.", "image_tags", None, None)] = "狗"
    with pytest.raises(ValueError, match=rf"Doc\._\.image_tags {TAGS_SHAPE}"):
        nlp(doc)
    piped = nlp.pipe([("旺财很可爱", {"image_embedding": [NAN, 0.0, 0.0]})], as_tuples=True)
    with pytest.raises(ValueError, match=rf'"image_embedding" value .*{EMBEDDING_SHAPE}'):
        list(piped)


@pytest.mark.parametrize("tags", ["狗" * 10_000, [("狗" * 10_000, 2.0)], [("狗", 0.5)] * 10_000 + [None]])
def test_long_bad_value_gives_a_short_message(tags):
    doc = spacy.blank("zh").make_doc("旺财")
    with pytest.raises(ValueError, match=TAGS_SHAPE) as err:
        set_image_context(doc, tags=tags)
    assert len(str(err.value)) < 300


def test_long_bad_embedding_gives_a_short_message():
    doc = spacy.blank("zh").make_doc("旺财")
    with pytest.raises(ValueError, match=EMBEDDING_SHAPE) as err:
        doc._.image_embedding = ["x"] * 10_000
    assert len(str(err.value)) < 300


def test_docbin_round_trip_keeps_image_context():
    near = {"label": "NEAR", "pattern": "可爱", "visual": {"embedding_sim": {"prototype": "dog", "min": 0.9}}}
    nlp = dog_nlp([DOG_RULE, near])
    doc = set_image_context(nlp.make_doc("旺财很可爱"), tags={"狗": 0.8, "草": 0.3}, embedding=[1.0, 0.1, 0.0])
    # A DocBin written before the extensions had a setter stored the same key.
    old = nlp.make_doc("旺财很可爱")
    old.user_data[("._.", "image_tags", None, None)] = [("狗", 0.8)]
    old.user_data[("._.", "image_embedding", None, None)] = numpy.array([1.0, 0.1, 0.0], dtype="float32")
    data = DocBin(docs=[doc, old], store_user_data=True).to_bytes()
    loaded, loaded_old = DocBin().from_bytes(data).get_docs(nlp.vocab)
    for other in (loaded, loaded_old):
        assert [tuple(t) for t in other._.image_tags][:1] == [("狗", 0.8)]
        numpy.testing.assert_allclose(other._.image_embedding, [1.0, 0.1, 0.0])
        assert labels(nlp(other)) == ["ANIMAL", "NEAR"]
    assert [tuple(t) for t in loaded._.image_tags] == [("狗", 0.8), ("草", 0.3)]


def test_clip_getter_pickles_without_a_model():
    getter = make_clip_getter("/no/such/model", ["狗", "人"], prompt_template="一张{}的照片", image_key="photo")
    restored = pickle.loads(pickle.dumps(getter))
    assert restored.image_key == "photo"
    assert restored.scorer.tags == ["狗", "人"] and restored.scorer.prompts == ["一张狗的照片", "一张人的照片"]
    assert pickle.loads(pickle.dumps(restored.scorer)).model_path == "/no/such/model"


def test_clip_model_loads_once_across_threads_and_is_not_pickled():
    scorer = make_clip_getter("/no/such/model", ["狗"]).scorer
    calls = []

    def slow_load():
        calls.append(1)
        time.sleep(0.05)  # long enough for every thread to arrive before it ends
        return (lambda: None, "processor", "features")  # a lambda: pickling it would fail

    scorer._load = slow_load
    results = []
    threads = [threading.Thread(target=lambda: results.append(scorer._get_loaded())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1 and len(results) == 8
    del scorer._load  # the instance attribute would be pickled too
    restored = pickle.loads(pickle.dumps(scorer))
    assert restored._loaded is None and restored.tags == ["狗"]
