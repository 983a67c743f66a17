"""The shipped configs resolve, and `spacy train` runs them end to end (tiny data, a few steps)."""

from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train
from spacy.tokens import DocBin
from spacy.util import load_config, load_model_from_config

from .util import REPO_ROOT, TRAIN_DATA, make_examples

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.cfg"))


def test_all_configs_are_there():
    assert {p.stem for p in CONFIGS} >= {"resume", "weibo", "msra", "cluener"}


PIPELINES = {
    "crf_ner": ["tok2vec", "crf_ner"],
    "crf_trf": ["transformer", "crf_ner"],
    "lexner_trf": ["transformer", "lexner_tagger"],
}


@pytest.mark.parametrize("config_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds_pipeline(config_path):
    config = load_config(config_path)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == PIPELINES.get(config_path.stem, ["lexner_tagger"])
    if "lexner_tagger" in nlp.pipe_names:
        assert nlp.get_pipe("lexner_tagger").model.name == "lexner_tagger_model"


def write_docbin(path: Path) -> Path:
    nlp = spacy.blank("zh")
    DocBin(docs=[eg.reference for eg in make_examples(nlp, TRAIN_DATA)]).to_disk(path)
    return path


def test_spacy_train_with_resume_config(tmp_path):
    data = write_docbin(tmp_path / "train.spacy")
    words = tmp_path / "words.txt"
    words.write_text("北京大学\t100\tnt\n上海\t100\tns\n", encoding="utf8")
    overrides = {
        "paths.train": str(data),
        "paths.dev": str(data),
        "training.max_steps": 6,
        "training.eval_frequency": 3,
        "initialize.components.lexner_tagger.lexicon": {
            "@lexicons": "spacy-lexner.file_lexicon.v1",
            "paths": [str(words)],
        },
    }
    train(REPO_ROOT / "configs" / "resume.cfg", tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-last")
    tagger = nlp.get_pipe("lexner_tagger")
    assert set(tagger.labels) == {"PER", "ORG", "LOC"}
    assert "北京大学" in tagger.lexicon and len(tagger.lexicon) == 2
    nlp("张三在北京大学工作。")
