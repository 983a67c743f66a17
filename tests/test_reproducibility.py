"""Two CPU training runs of configs/resume.cfg with the same seed give
identical scores and identical predictions."""

import spacy
import srsly
from spacy.cli.train import train

from .test_configs import write_docbin
from .tiny_pipelines import ents_of
from .util import REPO_ROOT, TRAIN_DATA

OVERRIDES = {
    "training.max_steps": 12,
    "training.eval_frequency": 6,
    "training.optimizer.learn_rate.warmup_steps": 2,
    "training.batcher.size": 50,
    "components.lexner_tagger.model.embed.char_rows": 512,
    "components.lexner_tagger.model.embed.bigram_rows": 512,
    "components.lexner_tagger.model.embed.word_rows": 512,
    "components.lexner_tagger.model.embed.type_rows": 32,
    "components.lexner_tagger.model.embed.char_width": 16,
    "components.lexner_tagger.model.embed.bigram_width": 16,
    "components.lexner_tagger.model.embed.word_width": 16,
    "components.lexner_tagger.model.encoder.hidden_width": 32,
}


def test_same_seed_same_scores(tmp_path):
    data = str(write_docbin(tmp_path / "train.spacy"))
    overrides = {**OVERRIDES, "paths.train": data, "paths.dev": data, "system.seed": 7}
    results = []
    for run in ("a", "b"):
        out = tmp_path / run
        train(REPO_ROOT / "configs" / "resume.cfg", out, overrides=overrides)
        meta = srsly.read_json(out / "model-last" / "meta.json")
        nlp = spacy.load(out / "model-last")
        results.append((meta["performance"], [ents_of(nlp(text)) for text, _ in TRAIN_DATA]))
    assert results[0] == results[1]
