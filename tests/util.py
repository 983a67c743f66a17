"""Shared helpers for the tests: tiny training data and a small, fast model."""

import multiprocessing
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAIN_DATA: List[Tuple[str, List[Tuple[int, int, str]]]] = [
    ("张三在北京大学工作。", [(0, 2, "PER"), (3, 7, "ORG")]),
    ("李四去了上海。", [(0, 2, "PER"), (4, 6, "LOC")]),
    ("南京市长江大桥很长。", [(0, 3, "LOC"), (3, 7, "LOC")]),
    ("王五是腾讯公司的工程师", [(0, 2, "PER"), (3, 7, "ORG")]),
]


def small_model(encoder: Dict = None, decoder: str = "crf", use_lexicon: bool = True) -> Dict:
    """A small model config so that overfitting takes seconds."""
    return {
        "@architectures": "spacy-lexner.LexiconTagger.v1",
        "decoder": decoder,
        "embed": {
            "@architectures": "spacy-lexner.SoftLexiconEmbed.v2",
            "char_width": 16,
            "bigram_width": 16,
            "word_width": 16,
            "type_width": 8,
            "char_rows": 1024,
            "bigram_rows": 2048,
            "word_rows": 2048,
            "type_rows": 64,
            "dropout": 0.1,
            "use_lexicon": use_lexicon,
        },
        "encoder": encoder
        or {
            "@architectures": "spacy-lexner.BiLSTMEncoder.v1",
            "hidden_width": 32,
            "dropout": 0.1,
        },
    }


def make_examples(nlp: Language, data=TRAIN_DATA) -> List[Example]:
    examples = []
    for text, ents in data:
        doc = nlp.make_doc(text)
        examples.append(Example.from_dict(doc, {"entities": [list(e) for e in ents]}))
    return examples


def train_nlp(nlp: Language, examples: List[Example], n_iter: int = 50, learn_rate: float = 0.02) -> Language:
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = learn_rate
    for _ in range(n_iter):
        nlp.update(examples, sgd=optimizer)
    return nlp


def ents_of(doc) -> List[Tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def blank_with_tagger(**model_kwargs) -> Language:
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": small_model(**model_kwargs)})
    return nlp


def reloaded(nlp: Language, path: Path) -> List[Language]:
    """nlp saved and loaded back: from disk (at path) and from bytes."""
    nlp.to_disk(path)
    from_bytes = spacy.util.load_model_from_config(nlp.config, auto_fill=False)
    return [spacy.load(path), from_bytes.from_bytes(nlp.to_bytes())]


def pipe_with_spawn(nlp: Language, texts: Sequence[str], batch_size: int = 2) -> List[Doc]:
    """nlp.pipe in two processes started with spawn (the default on macOS
    and Windows), where each child unpickles the pipeline."""
    old = multiprocessing.get_start_method()
    multiprocessing.set_start_method("spawn", force=True)
    try:
        return list(nlp.pipe(texts, n_process=2, batch_size=batch_size))
    finally:
        multiprocessing.set_start_method(old, force=True)
