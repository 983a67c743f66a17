"""Turn a lattice into the integer and weight arrays the SoftLexicon
embedding reads.

Everything here is numpy and runs before torch sees the batch. Characters,
bigrams, lexicon words and word types are all hashed into fixed-size tables
(see spacy_lexner.lexicon.hashing), so memory is bounded whatever the lexicon
size, and a word added to the lexicon after training still lands on
trained rows.
"""

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy

from ..lexicon.hashing import hash_rows, string_keys
from ..lexicon.lattice import Lattice
from .pytorch.soft_lexicon import N_SETS

SET_B, SET_M, SET_E, SET_S = range(N_SETS)
WEIGHTINGS = ("frequency", "log", "uniform")
_BIGRAM_END = 0x110000  # one past the largest code point: "end of text"


@dataclass
class LexFeatures:
    """Features of a batch of texts, flattened over all their characters.

    lengths[i] is the char length of text i; rows of char_rows etc. follow the
    texts in order. lex_index addresses the (char, set) cell a matched word
    contributes to: char * 4 + set.
    """

    lengths: numpy.ndarray  # [n_texts]
    char_rows: numpy.ndarray  # [n_chars, 2]
    bigram_rows: numpy.ndarray  # [n_chars, 2]
    lex_index: numpy.ndarray  # [n_entries]
    lex_word_rows: numpy.ndarray  # [n_entries, 2]
    lex_type_rows: numpy.ndarray  # [n_entries]
    lex_weights: numpy.ndarray  # [n_entries], float32
    empty_sets: numpy.ndarray  # [n_chars, 4], float32: 1 where the set is empty


class Featurizer:
    """Computes LexFeatures for a lattice, given table sizes.

    It keeps no state besides its settings: the lattice carries each word's
    key, frequency and type key, so there is no per-lexicon cache to go stale
    and nothing to lock when threads share the featurizer.
    """

    def __init__(
        self,
        *,
        n_char_rows: int,
        n_bigram_rows: int,
        n_word_rows: int,
        n_type_rows: int,
        weighting: str = "frequency",
        seed: int = 0,
    ) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"Unknown lexicon weighting '{weighting}'. Use one of {WEIGHTINGS}.")
        self.n_char_rows = n_char_rows
        self.n_bigram_rows = n_bigram_rows
        self.n_word_rows = n_word_rows
        self.n_type_rows = n_type_rows
        self.weighting = weighting
        self.seeds = (seed * 8 + 1, seed * 8 + 2)

    @property
    def settings(self) -> Tuple:
        """Everything that decides the features of a lattice."""
        return (self.n_char_rows, self.n_bigram_rows, self.n_word_rows, self.n_type_rows, self.weighting, self.seeds)

    def __call__(self, lattice: Lattice, use_lexicon: bool = True) -> LexFeatures:
        lengths = lattice.lengths
        joined = "".join(lattice.texts)
        codes = numpy.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="uint32").astype("uint64")
        char_rows = hash_rows(codes, self.seeds, self.n_char_rows)
        bigram_rows = hash_rows(self._bigram_keys(codes, lengths), self.seeds, self.n_bigram_rows)
        lex = self._lexicon_entries(lattice, use_lexicon)
        return LexFeatures(lengths, char_rows, bigram_rows, *lex)

    def word_rows(self, words: Sequence[str]) -> numpy.ndarray:
        """Word-table rows of each word, one column per seed: [len(words), 2]."""
        return hash_rows(string_keys(words), self.seeds, self.n_word_rows)

    def _bigram_keys(self, codes: numpy.ndarray, lengths: numpy.ndarray) -> numpy.ndarray:
        nxt = numpy.empty_like(codes)
        if len(codes):
            nxt[:-1] = codes[1:]
            ends = numpy.cumsum(lengths)[lengths > 0] - 1
            nxt[ends] = _BIGRAM_END
        return codes * numpy.uint64(_BIGRAM_END + 1) + nxt

    def _weight(self, freqs: numpy.ndarray) -> numpy.ndarray:
        if self.weighting == "frequency":
            return freqs
        if self.weighting == "log":
            return numpy.log1p(freqs)
        return numpy.ones_like(freqs)

    def _lexicon_entries(self, lattice: Lattice, use_lexicon: bool) -> Tuple[numpy.ndarray, ...]:
        n_chars = int(lattice.lengths.sum())
        if use_lexicon:
            offsets = lattice.text_offsets[lattice.word_text]
            starts, ends = lattice.word_start + offsets, lattice.word_end + offsets
            keys, freqs, type_keys = lattice.word_keys, lattice.word_freqs, lattice.word_type_keys
        else:
            starts = ends = numpy.zeros((0,), dtype="int64")
            keys = type_keys = numpy.zeros((0,), dtype="uint64")
            freqs = numpy.zeros((0,), dtype="float64")
        index, entry = _soft_lexicon_cells(starts, ends)
        z = self._weight(freqs)[entry]
        pos = index // N_SETS
        totals = numpy.bincount(pos, weights=z, minlength=n_chars) if n_chars else numpy.zeros(0)
        weights = (N_SETS * z / numpy.maximum(totals[pos], 1e-12)).astype("float32")
        counts = numpy.bincount(index, minlength=n_chars * N_SETS).reshape((n_chars, N_SETS))
        return (
            index,
            hash_rows(keys, self.seeds, self.n_word_rows)[entry],
            hash_rows(type_keys, self.seeds[:1], self.n_type_rows)[entry, 0],
            weights,
            (counts == 0).astype("float32"),
        )


def _soft_lexicon_cells(starts: numpy.ndarray, ends: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """For each match, the (char * 4 + set) cells it fills, and which match
    each cell came from. A word of length 1 fills S; longer words fill B at
    their first char, E at their last, and M at every char in between."""
    lengths = ends - starts
    single = numpy.flatnonzero(lengths == 1)
    multi = numpy.flatnonzero(lengths > 1)
    inner = numpy.flatnonzero(lengths > 2)
    n_inner = lengths[inner] - 2
    inner_entry = numpy.repeat(inner, n_inner)
    run_starts = numpy.cumsum(n_inner) - n_inner
    inner_pos = starts[inner_entry] + 1 + (numpy.arange(len(inner_entry)) - numpy.repeat(run_starts, n_inner))
    index = numpy.concatenate(
        [
            starts[single] * N_SETS + SET_S,
            starts[multi] * N_SETS + SET_B,
            (ends[multi] - 1) * N_SETS + SET_E,
            inner_pos * N_SETS + SET_M,
        ]
    ).astype("int64")
    entry = numpy.concatenate([single, multi, multi, inner_entry]).astype("int64")
    return index, entry
