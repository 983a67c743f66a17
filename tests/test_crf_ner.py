"""crf_ner: the CRF head over a tok2vec or a shared tok2vec listener."""

import subprocess
import sys

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_lexner.pipeline.crf_ner import CRFEntityRecognizer
from spacy_lexner.util.tags import TagScheme

from .util import TRAIN_DATA, ents_of, make_examples, train_nlp

LISTENER = {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"}
ENGLISH_DATA = [
    ("Alice lives in New York City .", [(0, 5, "PER"), (15, 28, "LOC")]),
    ("Bob works at Acme Corp today", [(0, 3, "PER"), (13, 22, "ORG")]),
    ("Carol met Bob in Paris", [(0, 5, "PER"), (10, 13, "PER"), (17, 22, "LOC")]),
]


def crf_ner_pipeline(lang: str = "zh", shared: bool = False, **cfg) -> spacy.Language:
    nlp = spacy.blank(lang)
    if shared:
        nlp.add_pipe("tok2vec")
        cfg = {"model": {"tok2vec": LISTENER}, **cfg}
    nlp.add_pipe("crf_ner", config=cfg)
    return nlp


@pytest.fixture(scope="module", params=["embedded", "listener"])
def trained(request):
    nlp = crf_ner_pipeline(shared=request.param == "listener")
    return train_nlp(nlp, make_examples(nlp), n_iter=40, learn_rate=0.01)


def test_add_pipe_zero_config():
    nlp = spacy.blank("zh")
    assert isinstance(nlp.add_pipe("crf_ner"), CRFEntityRecognizer)
    assert nlp.get_pipe_meta("crf_ner").assigns[0] == "doc.ents"


def test_entry_point_in_fresh_interpreter():
    code = "import spacy\nnlp = spacy.blank('en')\nnlp.add_pipe('crf_ner')\nprint(nlp.pipe_names)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "crf_ner" in result.stdout


def test_not_initialized_error():
    with pytest.raises(ValueError, match="E109"):
        crf_ner_pipeline()("张三")


def test_no_labels_error():
    nlp = crf_ner_pipeline()
    with pytest.raises(ValueError, match="no entity labels"):
        nlp.initialize(lambda: make_examples(nlp, [("没有实体。", [])]))


def test_overfitting_io(trained, tmp_path):
    nlp = trained
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    texts = [t for t, _ in TRAIN_DATA] + ["张三在上海。", "", "  "]
    expected = [ents_of(nlp(t)) for t in texts]
    nlp.to_disk(tmp_path / "nlp")
    from_disk = spacy.load(tmp_path / "nlp")
    from_bytes = spacy.util.load_model_from_config(nlp.config, auto_fill=False)
    from_bytes.from_bytes(nlp.to_bytes())
    for other in (from_disk, from_bytes):
        assert [ents_of(other(t)) for t in texts] == expected
        for batch_size in (1, 3, 1000):
            assert [ents_of(d) for d in other.pipe(texts, batch_size=batch_size)] == expected


@pytest.mark.parametrize("text", ["", " ", "\n\t ", "😀😀张三😀", "iPhone12在Apple Store卖3999元", "张三" * 50000])
def test_edge_cases(trained, text):
    doc = trained(text)
    assert doc.text == text
    for ent in doc.ents:
        assert 0 <= ent.start_char < ent.end_char <= len(text)


def test_update_with_empty_docs_in_batch(trained):
    examples = make_examples(trained, TRAIN_DATA[:1] + [("", [])])
    losses = trained.update(examples)
    assert losses["crf_ner"] >= 0


def test_entities_are_valid_spans(trained):
    doc = trained("张三在北京大学工作，李四去了上海，王五是腾讯公司的工程师。" * 3)
    spans = [(e.start, e.end) for e in doc.ents]
    assert all(s < e for s, e in spans) and spans == sorted(spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


def test_two_listeners_share_one_tok2vec():
    nlp = spacy.blank("zh")
    nlp.add_pipe("tok2vec")
    nlp.add_pipe("crf_ner", name="ents_head", config={"model": {"tok2vec": LISTENER}})
    nlp.add_pipe("crf_ner", name="spans_head", config={"model": {"tok2vec": LISTENER}, "spans_key": "crf"})
    examples = make_examples(nlp)
    for eg in examples:
        eg.reference.spans["crf"] = list(eg.reference.ents)
    train_nlp(nlp, examples, n_iter=40, learn_rate=0.01)
    assert len(nlp.get_pipe("tok2vec").listeners) == 2
    for text, ents in TRAIN_DATA:
        doc = nlp(text)
        assert ents_of(doc) == ents
        assert [(s.start_char, s.end_char, s.label_) for s in doc.spans["crf"]] == ents
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0 and scores["spans_crf_f"] == 1.0


def test_english_word_tokens():
    nlp = crf_ner_pipeline("en", shared=True)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in ENGLISH_DATA]
    train_nlp(nlp, examples, n_iter=40, learn_rate=0.01)
    for text, ents in ENGLISH_DATA:
        assert ents_of(nlp(text)) == ents


def test_bio_scheme():
    nlp = crf_ner_pipeline(model={"scheme": "BIO"})
    train_nlp(nlp, make_examples(nlp), n_iter=40, learn_rate=0.01)
    assert nlp.get_pipe("crf_ner").tag_scheme.scheme == "BIO"
    assert ents_of(nlp(TRAIN_DATA[0][0])) == TRAIN_DATA[0][1]


def test_unaligned_gold_is_counted_and_warned():
    nlp = crf_ner_pipeline("en")
    vocab = nlp.vocab
    predicted = Doc(vocab, words=["Acme", "Corp-based", "firm"], spaces=[True, True, False])
    reference = Doc(
        vocab,
        words=["Acme", "Corp", "-based", "firm"],
        spaces=[True, False, True, False],
        ents=["B-ORG", "I-ORG", "O", "O"],
    )
    examples = [Example(predicted, reference)]
    nlp.initialize(lambda: examples)
    with pytest.warns(UserWarning, match="do not line up"):
        nlp.update(examples)
    assert nlp.get_pipe("crf_ner").alignment_stats["unaligned_gold"] == 1


def test_tag_scheme_matches_crf_labels(trained):
    pipe = trained.get_pipe("crf_ner")
    assert isinstance(pipe.tag_scheme, TagScheme)
    assert pipe.tag_scheme.labels == sorted(pipe.labels) == ["LOC", "ORG", "PER"]


def test_add_label_after_training_is_an_error(trained):
    with pytest.raises(ValueError, match="Retrain"):
        trained.get_pipe("crf_ner").add_label("NEW")


def test_missing_model_file_named(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    (tmp_path / "nlp" / "crf_ner" / "model").unlink()
    with pytest.raises(ValueError, match="missing file"):
        spacy.load(tmp_path / "nlp")
