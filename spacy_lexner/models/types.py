"""The contract between the pipes and the models, as named types.

    Lattice ──embed──▶ Embedded ──encoder──▶ states ──decoder──▶ TagScores

- The pipe builds one ``Lattice`` per batch (spacy_lexner.lexicon) and calls
  ``model.predict(lattice)`` or ``model.begin_update(lattice)``.
- An embed layer is a ``Model[Lattice, Embedded]``: padded character vectors,
  with the lattice passed along so an encoder that reads words (FLAT) uses
  the same matches.
- An encoder is a ``Model[Embedded, Floats3d]``: padded states of the same
  length as the characters.
- A decoder is a ``Model[States, TagScores]``: it owns the emission scorer,
  its parameters, the loss and the decode. The label refiner of a later
  issue reads ``States.H``; a document-level decoder groups windows by
  ``States.lattice.doc_index``; the dynamic-skip LSTM takes
  ``TagScores.log_likelihood`` as its reward.
- The pipe only ever uses ``TagScores``: ``loss(gold)`` gives the loss and
  the gradient it passes to the model's backprop, ``decode(fixed)`` the best
  tags that keep fixed (preset) spans. An ensemble returns TagScores too, so
  the pipe does not know how many members there are or how they decode.
"""

from abc import ABC, abstractmethod
from typing import Any, NamedTuple, Optional, Sequence, Tuple

import numpy
from thinc.types import Floats3d, Ints1d

from ..lexicon.lattice import Lattice

# Padded sequences: data [batch, time, width] and the length of each row.
Padded = Tuple[Floats3d, Ints1d]
# A (start, end, label) span, character or token offsets.
Span = Tuple[int, int, str]
# Per sequence, the spans a decoded path must keep (preset entities).
FixedSpans = Optional[Sequence[Sequence[Span]]]
# Per sequence, gold tag ids (its own length).
GoldTags = Sequence[numpy.ndarray]


class Embedded(NamedTuple):
    """An embed layer's output: padded char vectors, and the lattice."""

    X: Floats3d  # [batch, chars, width]
    lengths: Ints1d
    lattice: Lattice


class States(NamedTuple):
    """An encoder's output as a decoder reads it."""

    H: Floats3d  # [batch, chars, width]
    lengths: Ints1d
    lattice: Optional[Lattice]  # None when the input is Docs (crf_ner)


class TagScores(ABC):
    """A decoder's scores for a batch, and what can be done with them.

    emissions: [batch, time, n_tags] per-position tag scores (for an
        ensemble in prediction, the members' average).
    lengths: [batch] the length of each sequence.
    """

    emissions: Floats3d
    lengths: Ints1d

    @abstractmethod
    def loss(self, gold: GoldTags) -> Tuple[float, Any]:
        """The mean loss per sequence of the gold tags, and the gradient to
        pass to the backprop callback of the model that made these scores."""

    @abstractmethod
    def decode(self, fixed: FixedSpans = None) -> numpy.ndarray:
        """Best valid tag ids [batch, time] (0 past each length), keeping the
        fixed spans of each sequence."""

    @abstractmethod
    def log_likelihood(self, tags: GoldTags) -> numpy.ndarray:
        """[batch] log p(tags | input) of each sequence (no gradient)."""

    def is_finite(self) -> bool:
        """Whether every emission score is finite (corrupt weights are not)."""
        return bool(numpy.isfinite(numpy.asarray(_to_numpy(self.emissions))).all())


def _to_numpy(array: Any) -> numpy.ndarray:
    return array.get() if hasattr(array, "get") else numpy.asarray(array)


__all__ = ["Embedded", "FixedSpans", "GoldTags", "Padded", "Span", "States", "TagScores"]
