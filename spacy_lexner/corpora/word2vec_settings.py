"""The settings of ``spacy-lexner pretrain-vectors`` (see word2vec.py), in a
module light enough for the CLI to read its defaults without loading spaCy."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Word2VecSettings:
    """Widths must match the config's ``char_width``, ``bigram_width`` and
    ``word_width``. The key limits stay near half of ``resume.cfg``'s table
    rows (16k chars, 64k bigrams, 64k words; each key uses 2 rows): beyond
    that, most extra keys would only collide with more frequent ones."""

    char_width: int = 50
    bigram_width: int = 50
    word_width: int = 50
    window: int = 5
    epochs: int = 5
    min_count: int = 2
    max_chars: int = 8000
    max_bigrams: int = 32000
    max_words: int = 32000
    workers: int = 1
    seed: int = 0
