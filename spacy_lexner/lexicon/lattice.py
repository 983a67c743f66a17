"""The lattice: a batch of texts matched once against the lexicon.

Every layer that reads lexicon words (SoftLexicon, FLAT, and whatever comes
next) reads them from this one object, built by the pipe for each batch, so
a text is matched once however many layers use its words.

    texts:   "南京市长江大桥", ...
    words:   (text 0, 0, 2, 南京), (text 0, 0, 3, 南京市), (text 0, 3, 7, 长江大桥), ...

Words are flat arrays over the whole batch, in text order and, within a
text, sorted by (start, end). Each text also records where it came from:
the index of its Doc in the batch the pipe was given and the offset of the
text (a window) in that Doc's text, so a document-level layer can put
windows of one Doc back together.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

import numpy

from .lexicon import BatchMatches, WordTable

if TYPE_CHECKING:
    from .lexicon import Lexicon


@dataclass(frozen=True)
class Lattice:
    """Characters and matched lexicon words of a batch of texts.

    texts: the texts (a Doc's text or a window of it).
    lengths: [n_texts] int64, the character length of each text.
    doc_index: [n_texts] int64, which Doc of the pipe's batch a text is from.
    window_start: [n_texts] int64, the text's offset in that Doc's text.
    word_text: [n_words] int64, the text each matched word is in.
    word_start, word_end: [n_words] int64, char offsets in that text (end exclusive).
    word_ids: [n_words] int64, the word's id in word_table (the lexicon's
        words when it was matched); `words` gives the strings.
    word_keys: [n_words] uint64, hash_string(word): the word's key, stable
        across lexicon versions and processes (what hashed tables use).
    word_freqs: [n_words] float64, the word's lexicon frequency.
    word_type_keys: [n_words] uint64, the key of the word's (type, length)
        (see hashing.type_key).
    docs: the pipeline's Docs, for layers that read a Doc (a listener, an
        image context), when each text is a whole Doc; else None.
    """

    texts: Sequence[str]
    lengths: numpy.ndarray
    doc_index: numpy.ndarray
    window_start: numpy.ndarray
    word_text: numpy.ndarray
    word_start: numpy.ndarray
    word_end: numpy.ndarray
    word_ids: numpy.ndarray
    word_keys: numpy.ndarray
    word_freqs: numpy.ndarray
    word_type_keys: numpy.ndarray
    word_table: Optional[WordTable] = None
    docs: Optional[Sequence[Any]] = None

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        lexicon: Optional["Lexicon"],
        *,
        doc_index: Optional[Sequence[int]] = None,
        window_start: Optional[Sequence[int]] = None,
        docs: Optional[Sequence[Any]] = None,
    ) -> "Lattice":
        """Match texts against lexicon (None: a lattice of characters only).

        doc_index / window_start default to one Doc per text, starting at 0.
        """
        texts = list(texts)
        n_texts = len(texts)
        matches = lexicon.match_batch(texts) if lexicon is not None else BatchMatches.empty(n_texts)
        table, ids = matches.table, matches.word_ids
        return cls(
            texts=texts,
            lengths=numpy.array([len(t) for t in texts], dtype="int64"),
            doc_index=_column(doc_index, numpy.arange(n_texts), n_texts, "doc_index"),
            window_start=_column(window_start, numpy.zeros((n_texts,)), n_texts, "window_start"),
            word_text=numpy.repeat(numpy.arange(n_texts, dtype="int64"), matches.counts),
            word_start=matches.starts,
            word_end=matches.ends,
            word_ids=ids,
            word_keys=table.keys[ids] if table is not None else numpy.zeros((0,), dtype="uint64"),
            word_freqs=table.freqs[ids] if table is not None else numpy.zeros((0,), dtype="float64"),
            word_type_keys=table.type_keys[ids] if table is not None else numpy.zeros((0,), dtype="uint64"),
            word_table=table,
            docs=list(docs) if docs is not None else None,
        )

    @property
    def words(self) -> List[str]:
        """The matched words (strings), in the order of the word arrays."""
        if self.word_table is None:
            return []
        words = self.word_table.words
        return [words[i] for i in self.word_ids.tolist()]

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_words(self) -> numpy.ndarray:
        """[n_texts] int64: how many words each text has."""
        return numpy.bincount(self.word_text, minlength=len(self.texts)).astype("int64")

    @property
    def text_offsets(self) -> numpy.ndarray:
        """[n_texts] int64: where each text starts in the batch's characters."""
        return numpy.cumsum(self.lengths) - self.lengths


def _column(values: Optional[Sequence[int]], default: numpy.ndarray, n: int, name: str) -> numpy.ndarray:
    column = numpy.asarray(default if values is None else values, dtype="int64")
    if column.shape != (n,):
        raise ValueError(f"Lattice.build: {name} must have one value per text ({n}), got shape {column.shape}.")
    return column
