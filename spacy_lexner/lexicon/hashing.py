"""The hashing every layer shares: string keys and their rows in hashed tables.

Characters, bigrams and lexicon words all land on rows of fixed-size tables,
so memory is bounded whatever the lexicon size, and a word added to the
lexicon after training still lands on trained rows.
"""

from typing import Iterable, Optional, Sequence

import numpy
from spacy.strings import hash_string
from thinc.api import NumpyOps

_ops = NumpyOps()


def string_keys(strings: Iterable[str]) -> numpy.ndarray:
    """The 64-bit key of each string (spaCy's hash_string): [n] uint64."""
    return numpy.array([hash_string(s) for s in strings], dtype="uint64")


def type_key(word_type: Optional[str], length: int) -> int:
    """The key of a word's (type, length): "a 4-char place name" is one key,
    so what is learned for it generalises to words never seen in training."""
    return hash_string(f"{word_type or ''}|{length}")


def hash_rows(keys: numpy.ndarray, seeds: Sequence[int], n_rows: int) -> numpy.ndarray:
    """Hash uint64 keys into n_rows buckets with several seeds: [len(keys), len(seeds)]."""
    if len(keys) == 0:
        return numpy.zeros((0, len(seeds)), dtype="int64")
    keys = numpy.ascontiguousarray(keys, dtype="uint64")
    cols = [_ops.hash(keys, seed)[:, 0].astype("int64") % n_rows for seed in seeds]
    return numpy.stack(cols, axis=1)
