"""A pipeline saved by version 0.1.0 with one tiny component per
architecture (FLAT, IDCNN with the softmax decoder, a TENER ensemble, BIO
SoftLexicon v1 with BiLSTM, crf_ner on a shared tok2vec) still loads and
predicts exactly the entities it predicted when saved
(tests/fixtures/v0_1_0_architectures, made by
tests/fixtures/make_architectures_fixture.py)."""

from pathlib import Path

import pytest
import spacy
import srsly

from .tiny_pipelines import check_doc

FIXTURES = Path(__file__).parent / "fixtures"
SAVED = FIXTURES / "v0_1_0_architectures"
EXPECTED = srsly.read_json(FIXTURES / "v0_1_0_architectures_expected.json")
ARCHITECTURES = {
    "lexner_flat": "spacy-lexner.FLATEncoder.v1",
    "lexner_idcnn_softmax": "spacy-lexner.IDCNNEncoder.v1",
    "lexner_tener_ensemble": "spacy-lexner.LexiconTaggerEnsemble.v1",
    "lexner_bilstm_bio": "spacy-lexner.SoftLexiconEmbed.v1",
    "crf_ner": "spacy.Tok2VecListener.v1",
}


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(SAVED)


def architectures_in(config):
    if not isinstance(config, dict):
        return set()
    found = {config["@architectures"]} if "@architectures" in config else set()
    return found.union(*(architectures_in(value) for value in config.values()))


def ents(doc):
    return [[e.start_char, e.end_char, e.label_, e.text] for e in doc.ents]


def ents_with(nlp, text, enable):
    with nlp.select_pipes(enable=enable):
        doc = nlp(text)
    check_doc(doc, text)
    return ents(doc)


def test_architectures_fixture_is_small():
    size = sum(p.stat().st_size for p in SAVED.rglob("*") if p.is_file())
    assert size < 1_500_000, f"the fixture pipeline is {size} bytes; keep it under 1.5 MB"


def test_architectures_fixture_has_its_components(nlp):
    assert nlp.pipe_names == EXPECTED["pipe_names"]
    for name, architecture in ARCHITECTURES.items():
        assert architecture in architectures_in(nlp.config["components"][name]), name
    # The fixture is only a check if every component predicts something.
    for name in EXPECTED["by_component_enable"]:
        assert any(record["by_component"][name] for record in EXPECTED["docs"]), name


@pytest.mark.parametrize("name", list(EXPECTED["by_component_enable"]))
def test_each_component_alone(nlp, name):
    enable = EXPECTED["by_component_enable"][name]
    for record in EXPECTED["docs"]:
        assert ents_with(nlp, record["text"], enable) == record["by_component"][name], record["text"][:40]


@pytest.mark.parametrize("name", list(EXPECTED["after_component_enable"]))
def test_components_up_to(nlp, name):
    """The ents after each prefix of the entity components: each
    lexner_tagger's overwrite_ents setting decides what the next keeps."""
    enable = EXPECTED["after_component_enable"][name]
    for record in EXPECTED["docs"]:
        assert ents_with(nlp, record["text"], enable) == record["after_component"][name], record["text"][:40]


def test_full_pipeline(nlp):
    for record in EXPECTED["docs"]:
        doc = nlp(record["text"])
        check_doc(doc, record["text"])
        assert ents(doc) == record["ents"], record["text"][:40]
