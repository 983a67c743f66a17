"""spacy-lexner merge-ensemble: separately trained taggers become one
ensemble pipeline."""

import numpy
import pytest
import spacy
import torch
from thinc.api import fix_random_seed
from typer.testing import CliRunner

from spacy_lexner.cli.app import app
from spacy_lexner.lexicon import Lattice
from spacy_lexner.pipeline.merge import merge_taggers

from .util import TRAIN_DATA, blank_with_tagger, ents_of, make_examples, reloaded, train_nlp

TEXTS = [t for t, _ in TRAIN_DATA] + ["张三在上海。", "", "iPhone12在Apple Store卖3999元😀"]


def trained(seed: int, data=TRAIN_DATA, **kwargs):
    fix_random_seed(seed)
    nlp = blank_with_tagger(**kwargs)
    return train_nlp(nlp, make_examples(nlp, data), n_iter=30)


@pytest.fixture(scope="module")
def saved_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    paths = []
    for seed in (0, 1):
        trained(seed).to_disk(root / f"seed{seed}")
        paths.append(root / f"seed{seed}")
    return paths


def crf_module(nlp):
    return nlp.get_pipe("lexner_tagger").model.get_ref("crf").shims[0]._model


def test_merged_tagger_averages_the_sources(saved_pair, tmp_path):
    sources = [spacy.load(p) for p in saved_pair]
    docs = Lattice.build(TEXTS[:4], sources[0].get_pipe("lexner_tagger").lexicon)
    emissions = [nlp.get_pipe("lexner_tagger").model.predict(docs).emissions for nlp in sources]
    transitions = [crf_module(nlp).transitions.detach() for nlp in sources]
    merged = merge_taggers([spacy.load(p) for p in saved_pair])
    assert (
        merged.config["components"]["lexner_tagger"]["model"]["@architectures"]
        == "spacy-lexner.LexiconTaggerEnsemble.v1"
    )
    scores = merged.get_pipe("lexner_tagger").model.predict(docs).emissions
    numpy.testing.assert_allclose(scores, (emissions[0] + emissions[1]) / 2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(crf_module(merged).transitions.detach(), (transitions[0] + transitions[1]) / 2)
    for text, ents in TRAIN_DATA:
        assert ents_of(merged(text)) == ents
    expected = [ents_of(merged(t)) for t in TEXTS]
    from_disk, from_bytes = reloaded(merged, tmp_path / "merged")
    assert [ents_of(d) for d in from_disk.pipe(TEXTS, batch_size=2)] == expected
    assert [ents_of(from_bytes(t)) for t in TEXTS] == expected


def test_cli_writes_a_loadable_pipeline(saved_pair, tmp_path):
    result = CliRunner().invoke(app, ["merge-ensemble", str(tmp_path / "new" / "out"), *map(str, saved_pair)])
    assert result.exit_code == 0, result.output
    nlp = spacy.load(tmp_path / "new" / "out")
    assert len(nlp.get_pipe("lexner_tagger").model.layers) == 3  # two members and the CRF
    assert ents_of(nlp(TRAIN_DATA[0][0])) == TRAIN_DATA[0][1]


def test_different_labels_are_an_error(saved_pair):
    other = trained(2, data=[(TRAIN_DATA[1][0], [(0, 2, "PER")])])
    with pytest.raises(ValueError, match="has labels"):
        merge_taggers([spacy.load(saved_pair[0]), other])


def test_different_lexicons_are_an_error(saved_pair):
    other = spacy.load(saved_pair[1])
    other.get_pipe("lexner_tagger").lexicon.add("魑魅魍魉集团", 100)
    with pytest.raises(ValueError, match="lexicon differs"):
        merge_taggers([spacy.load(saved_pair[0]), other])


def test_different_sizes_are_an_error(saved_pair):
    other = trained(3, encoder={"@architectures": "spacy-lexner.BiLSTMEncoder.v1", "hidden_width": 16})
    with pytest.raises(ValueError, match="other layer sizes"):
        merge_taggers([spacy.load(saved_pair[0]), other])


def test_one_pipeline_or_an_untrained_one_is_an_error(saved_pair):
    with pytest.raises(ValueError, match="at least two"):
        merge_taggers([spacy.load(saved_pair[0])])
    with pytest.raises(ValueError, match="not trained"):
        merge_taggers([spacy.load(saved_pair[0]), blank_with_tagger()])
    result = CliRunner().invoke(app, ["merge-ensemble", "/tmp/unused_out", str(saved_pair[0])])
    assert result.exit_code == 1 and "at least two" in result.output
