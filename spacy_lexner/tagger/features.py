"""Turn texts into the integer and weight arrays that the embedding layer reads.

Everything here is numpy and runs before torch sees the batch. Characters,
bigrams, lexicon words and word types are all hashed into fixed-size tables,
so memory is bounded whatever the lexicon size, and a word added to the
lexicon after training still lands on trained rows (see README, "Lexicon").
"""
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.strings import hash_string
from thinc.api import NumpyOps

if TYPE_CHECKING:
    from ..lexicon import Lexicon

N_SETS = 4  # SoftLexicon's B, M, E, S
SET_B, SET_M, SET_E, SET_S = range(N_SETS)
WEIGHTINGS = ("frequency", "log", "uniform")
_ops = NumpyOps()
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


def hash_rows(keys: numpy.ndarray, seeds: Sequence[int], n_rows: int) -> numpy.ndarray:
    """Hash uint64 keys into n_rows buckets with several seeds: [len(keys), len(seeds)]."""
    if len(keys) == 0:
        return numpy.zeros((0, len(seeds)), dtype="int64")
    keys = numpy.ascontiguousarray(keys, dtype="uint64")
    cols = [_ops.hash(keys, seed)[:, 0].astype("int64") % n_rows for seed in seeds]
    return numpy.stack(cols, axis=1)


class _WordTable:
    """The featurizer's cache for one lexicon version: word -> id -> row."""

    def __init__(self, key: Optional[Tuple[int, int]]) -> None:
        self.key = key
        self.ids: Dict[str, int] = {}
        self.rows = numpy.zeros((0, 4), dtype="float64")


class Featurizer:
    """Computes LexFeatures for texts, given a lexicon and table sizes."""

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
        self._word_cache = _WordTable(None)
        self._growth_lock = threading.Lock()

    def __getstate__(self) -> Dict:
        # Pickled for nlp.pipe(n_process=...) with spawn: a lock cannot be,
        # and the cache is rebuilt on first use.
        state = dict(self.__dict__)
        del state["_growth_lock"], state["_word_cache"]
        return state

    def __setstate__(self, state: Dict) -> None:
        self.__dict__.update(state)
        self._word_cache = _WordTable(None)
        self._growth_lock = threading.Lock()

    @property
    def settings(self) -> Tuple:
        """Everything besides the lexicon that decides the features."""
        return (self.n_char_rows, self.n_bigram_rows, self.n_word_rows, self.n_type_rows, self.weighting, self.seeds)

    def __call__(self, texts: List[str], lexicon: Optional["Lexicon"]) -> LexFeatures:
        lengths = numpy.array([len(t) for t in texts], dtype="int64")
        joined = "".join(texts)
        codes = numpy.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="uint32").astype("uint64")
        char_rows = hash_rows(codes, self.seeds, self.n_char_rows)
        bigram_rows = hash_rows(self._bigram_keys(codes, lengths), self.seeds, self.n_bigram_rows)
        lex = self._lexicon_entries(texts, lengths, lexicon)
        return LexFeatures(lengths, char_rows, bigram_rows, *lex)

    def word_rows(self, words: Sequence[str]) -> numpy.ndarray:
        """Word-table rows of each word, one column per seed: [len(words), 2]."""
        keys = numpy.array([hash_string(w) for w in words], dtype="uint64")
        return hash_rows(keys, self.seeds, self.n_word_rows)

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

    def _word_table(self, lexicon: "Lexicon", words: List[str]) -> numpy.ndarray:
        """Rows (z, word rows, type row) of words, from a per-lexicon table.

        Rows are computed once per word and lexicon version, so the per-match
        Python work is a single dict lookup. Threads share the table: only
        its growth takes the lock, and a growing thread publishes the new
        rows before their ids, so an id a reader finds always has its row.
        """
        table = self._word_cache
        if table.key != lexicon.cache_key:
            with self._growth_lock:
                if self._word_cache.key != lexicon.cache_key:
                    self._word_cache = _WordTable(lexicon.cache_key)
                table = self._word_cache
        word_ids = table.ids
        if any(w not in word_ids for w in words):
            with self._growth_lock:
                new = [w for w in dict.fromkeys(words) if w not in word_ids]
                if new:
                    table.rows = numpy.concatenate([table.rows, self._new_rows(lexicon, new)])
                    first = len(word_ids)
                    for offset, w in enumerate(new):
                        word_ids[w] = first + offset
        ids = numpy.array([word_ids[w] for w in words], dtype="int64")
        return table.rows[ids]

    def _new_rows(self, lexicon: "Lexicon", words: List[str]) -> numpy.ndarray:
        freqs = numpy.array([lexicon.freq(w) for w in words], dtype="float64")
        # The type vector is keyed by (type, length): "a 4-char place name
        # starts here" generalises to words never seen in training.
        type_keys = numpy.array(
            [hash_string(f"{lexicon.type_of(w) or ''}|{len(w)}") for w in words], dtype="uint64"
        )
        rows = numpy.zeros((len(words), 4), dtype="float64")
        rows[:, 0] = self._weight(freqs)
        rows[:, 1:3] = self.word_rows(words)
        rows[:, 3] = hash_rows(type_keys, self.seeds[:1], self.n_type_rows)[:, 0]
        return rows

    def _lexicon_entries(self, texts, lengths, lexicon) -> Tuple[numpy.ndarray, ...]:
        n_chars = int(lengths.sum())
        starts: List[int] = []
        ends: List[int] = []
        words: List[str] = []
        if lexicon is not None:
            offset = 0
            for text in texts:
                for start, end, word in lexicon.match(text):
                    starts.append(start + offset)
                    ends.append(end + offset)
                    words.append(word)
                offset += len(text)
        table = self._word_table(lexicon, words) if words else numpy.zeros((0, 4))
        index, entry = _soft_lexicon_cells(numpy.array(starts, dtype="int64"), numpy.array(ends, dtype="int64"))
        z = table[entry, 0]
        pos = index // N_SETS
        totals = numpy.bincount(pos, weights=z, minlength=n_chars) if n_chars else numpy.zeros(0)
        weights = (N_SETS * z / numpy.maximum(totals[pos], 1e-12)).astype("float32")
        counts = numpy.bincount(index, minlength=n_chars * N_SETS).reshape((n_chars, N_SETS))
        return (
            index,
            table[entry, 1:3].astype("int64"),
            table[entry, 3].astype("int64"),
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
    index = numpy.concatenate([
        starts[single] * N_SETS + SET_S,
        starts[multi] * N_SETS + SET_B,
        (ends[multi] - 1) * N_SETS + SET_E,
        inner_pos * N_SETS + SET_M,
    ]).astype("int64")
    entry = numpy.concatenate([single, multi, multi, inner_entry]).astype("int64")
    return index, entry
