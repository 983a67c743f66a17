"""A saved pipeline holds no training text, and serving does not grow the
vocab beyond the characters it sees.

The tagger used to build its windows as one-token Docs, which interned every
window text (every train and dev sentence) in the shared StringStore: the
saved vocab/strings.json carried the training data, and a server's memory
grew with each distinct text.
"""

import random
from pathlib import Path
from typing import List

import spacy
import srsly
from spacy.cli.train import train
from spacy.tokens import DocBin

from .tiny_pipelines import lexner_pipeline, write_lexicon
from .util import REPO_ROOT, TRAIN_DATA, make_examples

DEV_DATA = [
    ("赵六在清华大学读书。", [(0, 2, "PER"), (3, 7, "ORG")]),
    ("孙七去了广州。", [(0, 2, "PER"), (4, 6, "LOC")]),
]


def _leaked(strings: List[str], sentences: List[str]) -> List[str]:
    """Strings of two or more characters taken from the sentences: whole
    sentences, windows, and the affixes spaCy derives from a lexeme."""
    return [s for s in strings if len(s) > 1 and any(s in sentence for sentence in sentences)]


def test_spacy_train_saves_no_training_text(tmp_path: Path) -> None:
    nlp = spacy.blank("zh")
    DocBin(docs=[eg.reference for eg in make_examples(nlp, TRAIN_DATA)]).to_disk(tmp_path / "train.spacy")
    DocBin(docs=[eg.reference for eg in make_examples(nlp, DEV_DATA)]).to_disk(tmp_path / "dev.spacy")
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "dev.spacy"),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "initialize.components.lexner_tagger.lexicon": {
            "@lexicons": "spacy-lexner.file_lexicon.v1",
            "paths": [str(write_lexicon(tmp_path / "lex.txt"))],
        },
    }
    train(REPO_ROOT / "configs" / "resume.cfg", tmp_path / "out", overrides=overrides)
    sentences = [text for text, _ in TRAIN_DATA + DEV_DATA]
    for saved in ("model-best", "model-last"):
        strings = srsly.read_json(tmp_path / "out" / saved / "vocab" / "strings.json")
        assert _leaked(strings, sentences) == [], saved


def test_serving_grows_the_vocab_by_characters_only(tmp_path: Path) -> None:
    lexicon = write_lexicon(tmp_path / "lex.txt")
    lexner_pipeline(lexicon, n_iter=2).to_disk(tmp_path / "nlp")
    nlp = spacy.load(tmp_path / "nlp")
    rnd = random.Random(0)
    alphabet = "张三李四王五在北京大学工作去了上海南京市长江大桥很长腾讯公司的工程师。"
    texts = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(5, 60))) + str(i) for i in range(2000)]
    n_lexemes, n_strings = len(nlp.vocab), len(nlp.vocab.strings)
    for doc in nlp.pipe(texts, batch_size=64):
        assert doc.text
    distinct = set("".join(texts))
    assert len(nlp.vocab) - n_lexemes <= len(distinct)
    # Each new character brings itself; its norm, prefix, suffix and shape
    # are itself or one of spaCy's shape strings ("d", "dd", ...).
    assert len(nlp.vocab.strings) - n_strings <= len(distinct) + 10
    assert _leaked(list(nlp.vocab.strings), texts) == []
