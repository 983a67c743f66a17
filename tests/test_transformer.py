"""The spacy-transformers path, for real, with a tiny random BERT built in a
temp dir: crf_ner and lexner_tagger over a TransformerListener, trained with
`spacy train` from the shipped configs and in-process, then round-tripped."""

from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train
from spacy.tokens import DocBin
from spacy.util import load_config, load_model_from_config

from .tiny_bert import make_tiny_bert
from .util import REPO_ROOT, TRAIN_DATA, ents_of, make_examples

pytest.importorskip("spacy_transformers")
TEXTS = [t for t, _ in TRAIN_DATA] + ["张三在上海。", "", "  ", "iPhone12在Apple Store卖3999元😀"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


def assert_round_trip(nlp, tmp_path: Path) -> None:
    expected = [ents_of(nlp(t)) for t in TEXTS]
    nlp.to_disk(tmp_path / "saved")
    from_disk = spacy.load(tmp_path / "saved")
    from_bytes = load_model_from_config(nlp.config, auto_fill=False)
    from_bytes.from_bytes(nlp.to_bytes())
    for other in (from_disk, from_bytes):
        assert [ents_of(other(t)) for t in TEXTS] == expected
        assert [ents_of(d) for d in other.pipe(TEXTS, batch_size=2)] == expected


@pytest.mark.parametrize("name", ["crf_ner", "crf_trf", "lexner_trf"])
def test_spacy_train_config(name, tiny_bert, tmp_path):
    data = tmp_path / "train.spacy"
    DocBin(docs=[eg.reference for eg in make_examples(spacy.blank("zh"))]).to_disk(data)
    overrides = {
        "paths.train": str(data),
        "paths.dev": str(data),
        "training.max_steps": 6,
        "training.eval_frequency": 3,
    }
    if name != "crf_ner":
        overrides["paths.transformer"] = str(tiny_bert)
    train(REPO_ROOT / "configs" / f"{name}.cfg", tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert_round_trip(nlp, tmp_path)


@pytest.mark.parametrize("name", ["crf_trf", "lexner_trf"])
def test_overfit_with_tiny_bert(name, tiny_bert, tmp_path):
    config = load_config(
        REPO_ROOT / "configs" / f"{name}.cfg", overrides={"paths.transformer": str(tiny_bert)}, interpolate=True
    )
    nlp = load_model_from_config(config, auto_fill=True)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.001
    for _ in range(30):
        nlp.update(examples, sgd=optimizer)
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    assert_round_trip(nlp, tmp_path)


def test_lexicon_fusion_sees_transformer_gradients(tiny_bert):
    """The transformer is updated through the lexner_tagger's listener."""
    config = load_config(
        REPO_ROOT / "configs" / "lexner_trf.cfg", overrides={"paths.transformer": str(tiny_bert)}, interpolate=True
    )
    nlp = load_model_from_config(config, auto_fill=True)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.001  # the config's warm-up starts at 0
    modules = [shim._model for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims]
    assert modules
    before = [p.detach().clone() for m in modules for p in m.parameters()]
    # spaCy applies an upstream component's gradients at its next
    # finish_update, i.e. during the following update.
    losses = nlp.update(examples, sgd=optimizer)
    nlp.update(examples, sgd=optimizer)
    after = [p for m in modules for p in m.parameters()]
    assert losses["lexner_tagger"] > 0
    assert any(not (a == b).all() for a, b in zip(after, before))
