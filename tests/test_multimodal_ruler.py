"""multimodal_entity_ruler: entity_ruler equivalence, visual conditions,
relabelling, conflict policies, serialization, errors, and image getters."""

import numpy
import pytest
import spacy

from spacy_lexner.pipeline.patterns import PatternError
from spacy_lexner.util.image_context import set_image_context

SHARED_PATTERNS = [
    {"label": "GPE", "pattern": "南京市"},
    {"label": "LOC", "pattern": "长江大桥", "id": "bridge"},
    {"label": "LOC", "pattern": "长江"},
    {"label": "ORG", "pattern": [{"ORTH": "腾"}, {"ORTH": "讯"}]},
    {"label": "NUM", "pattern": [{"IS_DIGIT": True, "OP": "+"}]},
    {"label": "PRODUCT", "pattern": "Apple Store"},
]
TEXTS = ["南京市长江大桥很长。", "王五是腾讯公司的工程师，工号123。", "iPhone在Apple Store卖3999元😀", "", "长江"]
ROCKY = [
    {"label": "PERSON", "pattern": "Rocky"},
    {
        "label": "ANIMAL",
        "pattern": "Rocky",
        "visual": {"tags_any": ["dog"], "min_score": 0.5},
        "relabel": True,
        "relabel_from": ["PERSON"],
    },
]


def ents(doc):
    return [(e.start_char, e.end_char, e.label_, e.id_) for e in doc.ents]


def two_rulers(lang: str, patterns, preset=None, **cfg):
    nlps = []
    for factory in ("entity_ruler", "multimodal_entity_ruler"):
        nlp = spacy.blank(lang)
        if preset:
            nlp.add_pipe("entity_ruler", name="preset").add_patterns(preset)
        nlp.add_pipe(factory, config=cfg).add_patterns(patterns)
        nlps.append(nlp)
    return nlps


@pytest.mark.parametrize("overwrite", [False, True])
def test_equals_entity_ruler_on_chinese_chars(overwrite):
    preset = [{"label": "ORG", "pattern": "腾讯公司"}, {"label": "X", "pattern": "京市长"}]
    reference, ours = two_rulers("zh", SHARED_PATTERNS, preset=preset, overwrite_ents=overwrite)
    for text in TEXTS:
        assert ents(ours(text)) == ents(reference(text))
    assert ents(ours("南京市长江大桥"))  # phrase patterns match character tokens


def test_equals_entity_ruler_on_english():
    patterns = [
        {"label": "ORG", "pattern": "Apple"},
        {"label": "GPE", "pattern": [{"LOWER": "san"}, {"LOWER": "francisco"}]},
    ]
    reference, ours = two_rulers("en", patterns)
    for text in ["Apple is looking at buying a San Francisco startup", "apple san francisco", ""]:
        assert ents(ours(text)) == ents(reference(text))


def rocky_nlp(**cfg):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("multimodal_entity_ruler", config=cfg)
    ruler.add_patterns(ROCKY)
    return nlp


def test_relabel_with_image_tags():
    nlp = rocky_nlp()
    dog = nlp.make_doc("Rocky is so cute")
    set_image_context(dog, tags=[("dog", 0.9), ("grass", 0.6)])
    assert ents(nlp(dog)) == [(0, 5, "ANIMAL", "")]
    person = nlp.make_doc("Rocky is so cute")
    set_image_context(person, tags=[("dog", 0.2), ("person", 0.9)])
    assert ents(nlp(person)) == [(0, 5, "PERSON", "")]
    assert ents(nlp("Rocky is so cute")) == [(0, 5, "PERSON", "")]  # no image: the visual rule cannot fire


def test_context_from_nlp_pipe_as_tuples():
    nlp = rocky_nlp()
    data = [("Rocky is so cute", {"image_tags": [["dog", 0.95]]}), ("Rocky is so cute", {"image_tags": ["person"]})]
    labels = [doc.ents[0].label_ for doc, _ in nlp.pipe(data, as_tuples=True)]
    assert labels == ["ANIMAL", "PERSON"]


def test_chinese_rocky_relabels_tagger_entity():
    nlp = spacy.blank("zh")
    nlp.add_pipe("entity_ruler", name="stand_in_for_tagger").add_patterns([{"label": "PER", "pattern": "旺财"}])
    nlp.add_pipe("multimodal_entity_ruler").add_patterns(
        [{"label": "ANIMAL", "pattern": "旺财", "visual": {"tags_any": ["狗"]}, "relabel": True}]
    )
    doc = nlp.make_doc("旺财今天真可爱")
    doc.user_data["image_tags"] = [("狗", 0.8)]
    assert ents(nlp(doc)) == [(0, 2, "ANIMAL", "")]


def test_tags_none_and_embedding_similarity():
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("multimodal_entity_ruler")
    ruler.add_prototype("dog_photo", [1.0, 0.0, 0.0])
    ruler.add_patterns(
        [
            {
                "label": "ANIMAL",
                "pattern": "Rocky",
                "visual": {"embedding_sim": {"prototype": "dog_photo", "min": 0.8}},
            },
            {"label": "PERSON", "pattern": "Max", "visual": {"tags_none": ["dog", "cat"], "min_score": 0.5}},
        ]
    )
    near = set_image_context(nlp.make_doc("Rocky and Max"), tags=[("dog", 0.3)], embedding=[0.9, 0.1, 0.0])
    far = set_image_context(nlp.make_doc("Rocky and Max"), tags=[("cat", 0.7)], embedding=[0.0, 1.0, 0.0])
    assert [e.label_ for e in nlp(near).ents] == ["ANIMAL", "PERSON"]
    assert [e.label_ for e in nlp(far).ents] == []


@pytest.mark.parametrize(
    "policy,expected",
    [
        ("keep_existing", [(0, 2, "X")]),
        ("overwrite", [(0, 3, "GPE")]),
        ("prefer_longer", [(0, 3, "GPE")]),
    ],
)
def test_conflict_policies(policy, expected):
    nlp = spacy.blank("zh")
    nlp.add_pipe("entity_ruler", name="earlier").add_patterns([{"label": "X", "pattern": "南京"}])
    ruler = nlp.add_pipe("multimodal_entity_ruler", config={"conflict_policy": policy, "debug": True})
    ruler.add_patterns([{"label": "GPE", "pattern": "南京市"}])
    doc = nlp("南京市")
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == expected
    decisions = {s.label_ for s in doc.spans["ruler_decisions"]}
    assert ("kept_existing_entity:GPE" in decisions) == (policy == "keep_existing")
    assert ("removed_existing_X" in decisions) == (policy != "keep_existing")


def test_prefer_longer_keeps_longer_existing():
    nlp = spacy.blank("zh")
    nlp.add_pipe("entity_ruler", name="earlier").add_patterns([{"label": "LOC", "pattern": "长江大桥"}])
    nlp.add_pipe("multimodal_entity_ruler", config={"conflict_policy": "prefer_longer"}).add_patterns(
        [{"label": "X", "pattern": "长江"}]
    )
    assert [e.label_ for e in nlp("长江大桥").ents] == ["LOC"]


def test_debug_traces_every_decision():
    nlp = rocky_nlp(debug=True)
    doc = nlp("Rocky is so cute")  # no image
    decisions = sorted(s.label_ for s in doc.spans["ruler_decisions"])
    assert decisions == ["added:PERSON", "visual_condition_failed:ANIMAL"]


def test_serialization_round_trip(tmp_path):
    nlp = spacy.blank("zh")
    ruler = nlp.add_pipe("multimodal_entity_ruler", config={"conflict_policy": "prefer_longer"})
    ruler.add_prototype("dog", [0.5, 0.5])
    ruler.add_patterns(
        SHARED_PATTERNS
        + [{"label": "ANIMAL", "pattern": "旺财", "visual": {"embedding_sim": {"prototype": "dog", "min": 0.9}}}]
    )
    doc_text = "旺财在南京市长江大桥"
    make = lambda n: set_image_context(n.make_doc(doc_text), embedding=[1.0, 1.0])  # noqa: E731
    expected = ents(nlp(make(nlp)))
    assert "ANIMAL" in [e[2] for e in expected]
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    from_bytes = spacy.blank("zh")
    from_bytes.add_pipe("multimodal_entity_ruler")
    from_bytes.from_bytes(nlp.to_bytes())
    for other in (loaded, from_bytes):
        assert ents(other(make(other))) == expected
        assert other.get_pipe("multimodal_entity_ruler").conflict_policy == "prefer_longer"
        assert other.get_pipe("multimodal_entity_ruler").patterns == ruler.patterns


def test_initialize_from_config_with_lexicon_file(tmp_path):
    words = tmp_path / "animals.txt"
    words.write_text("旺财\n小白 10\n", encoding="utf8")
    nlp = spacy.blank("zh")
    nlp.add_pipe("multimodal_entity_ruler")
    nlp.config["initialize"]["components"]["multimodal_entity_ruler"] = {
        "patterns": [{"label": "GPE", "pattern": "南京"}],
        "lexicons": {"ANIMAL": str(words)},
    }
    nlp.initialize()
    assert [(e.text, e.label_) for e in nlp("小白和旺财在南京").ents] == [
        ("小白", "ANIMAL"),
        ("旺财", "ANIMAL"),
        ("南京", "GPE"),
    ]


def test_bad_lexicon_file_names_line(tmp_path):
    words = tmp_path / "bad.txt"
    words.write_text("旺财\n小白 notanumber x y\n", encoding="utf8")
    ruler = spacy.blank("zh").add_pipe("multimodal_entity_ruler")
    with pytest.raises(ValueError, match="bad.txt:2"):
        ruler.add_lexicon(words, "ANIMAL")


@pytest.mark.parametrize(
    "pattern,field",
    [
        ({"label": "X"}, "pattern"),
        ({"label": "", "pattern": "a"}, "label"),
        ({"label": "X", "pattern": "a", "visual": {"tags_any": "dog"}}, "visual.tags_any"),
        ({"label": "X", "pattern": "a", "visual": {"min_score": 2}}, "visual.min_score"),
        (
            {"label": "X", "pattern": "a", "visual": {"embedding_sim": {"prototype": "nope", "min": 0.5}}},
            "visual.embedding_sim.prototype",
        ),
        ({"label": "X", "pattern": "a", "visual": {"colour": "red"}}, "visual.colour"),
        ({"label": "X", "pattern": "a", "relabel": "yes"}, "relabel"),
        ({"label": "X", "pattern": "a", "labels": ["Y"]}, "labels"),
    ],
)
def test_bad_pattern_names_index_and_field(pattern, field):
    ruler = spacy.blank("zh").add_pipe("multimodal_entity_ruler")
    with pytest.raises(PatternError) as err:
        ruler.add_patterns([{"label": "OK", "pattern": "好"}, pattern])
    assert err.value.index == 1 and err.value.field == field
    assert f"Pattern 1: field '{field}'" in str(err.value)
    assert len(ruler) == 0  # nothing half-added


def test_missing_image_warns_and_continues(tmp_path):
    pytest.importorskip("transformers")
    from .tiny_clip import make_tiny_chinese_clip

    model_dir = make_tiny_chinese_clip(tmp_path / "clip")
    nlp = spacy.blank("zh")
    ruler = nlp.add_pipe(
        "multimodal_entity_ruler",
        config={
            "image_context": {
                "@misc": "spacy-lexner.clip_image_context.v1",
                "model_path": str(model_dir),
                "tags": ["狗", "人"],
            }
        },
    )
    ruler.add_patterns(
        [
            {"label": "PER", "pattern": "旺财"},
            {"label": "ANIMAL", "pattern": "旺财", "visual": {"tags_any": ["狗"]}, "relabel": True},
        ]
    )
    bad_file = tmp_path / "not_an_image.jpg"
    bad_file.write_text("no pixels here")
    data = [("旺财很可爱", {"image": str(tmp_path / "missing.jpg")}), ("旺财很可爱", {"image": str(bad_file)})]
    with pytest.warns(UserWarning, match="Cannot read image") as record:
        docs = [doc for doc, _ in nlp.pipe(data, as_tuples=True)]
    assert len([w for w in record if "Cannot read image" in str(w.message)]) == 2
    assert [d.ents[0].label_ for d in docs] == ["PER", "PER"]
    assert all(d._.image_tags is None for d in docs)


def test_tiny_clip_getter_end_to_end(tmp_path):
    pytest.importorskip("transformers")
    from PIL import Image

    from .tiny_clip import make_tiny_chinese_clip

    model_dir = make_tiny_chinese_clip(tmp_path / "clip")
    image_path = tmp_path / "dog.png"
    Image.fromarray((numpy.random.default_rng(0).random((40, 48, 3)) * 255).astype("uint8")).save(image_path)
    nlp = spacy.blank("zh")
    ruler = nlp.add_pipe(
        "multimodal_entity_ruler",
        config={
            "image_context": {
                "@misc": "spacy-lexner.clip_image_context.v1",
                "model_path": str(model_dir),
                "tags": ["狗", "人", "猫"],
                "prompt_template": "一张{}的照片",
            }
        },
    )
    ruler.add_patterns([{"label": "PER", "pattern": "旺财"}])
    doc = nlp.make_doc("旺财很可爱")
    doc.user_data["image"] = str(image_path)
    doc = nlp(doc)
    tags = doc._.image_tags
    assert sorted(t for t, _ in tags) == ["人", "狗", "猫"]
    assert abs(sum(s for _, s in tags) - 1.0) < 1e-4 and tags == sorted(tags, key=lambda t: -t[1])
    assert doc._.image_embedding.shape == (16,)
    pil_doc = nlp.make_doc("旺财很可爱")
    pil_doc.user_data["image"] = Image.open(image_path)
    numpy.testing.assert_allclose(nlp(pil_doc)._.image_embedding, doc._.image_embedding, rtol=1e-4, atol=1e-5)


def test_no_patterns_warns():
    nlp = spacy.blank("zh")
    nlp.add_pipe("multimodal_entity_ruler")
    with pytest.warns(UserWarning, match="no patterns"):
        nlp("南京")
