"""Lattice LSTM encoder (Zhang & Yang, ACL 2018): a character LSTM whose
cells also take in the lexicon words that end at each character.

Each matched word w(b, e) of two or more characters gets a word cell,
computed from the character state at its first character b; at its last
character e, the character cell is a normalised, gated mix of its own
candidate and the cells of all words ending there. Equations are in
models/pytorch/lattice_lstm.py. Bidirectional: the backward LSTM reads each
text reversed, where a word's last character comes first.

The original code tagged one sentence per batch. Here every step runs over
the whole batch: the cells of the words ending at a step are gathered into
[texts, words, hidden], zero-padded, with a mask, so any batch size works
and a text's output does not depend on the others in its batch.

The words are the lattice's, the same matches the SoftLexicon layer reads.
Memory: a word cell is kept for each word from its first to its last
character, so at most max_words_per_char words end (and start) at any
character; the longest are kept, and state grows linearly with the text.
"""

from functools import partial
from typing import Tuple

import numpy
import torch
from spacy.util import registry
from thinc.api import ArgsKwargs, Model
from thinc.types import Floats3d

from ...lexicon.hashing import hash_rows
from ...lexicon.lattice import Lattice
from ...util.torch_utils import LazyTorchWrapper, first_input_gradient, to_torch, with_input_width
from ..pytorch.lattice_lstm import LatticeLSTM
from ..types import Embedded
from .common import convert_padded_outputs, lengths_array, padded_width

WORD_SEEDS = (15, 16)


@registry.architectures("spacy-lexner.LatticeLSTMEncoder.v1")
def build_lattice_lstm_encoder(
    hidden_width: int = 200,
    dropout: float = 0.5,
    word_width: int = 50,
    word_rows: int = 65536,
    max_words_per_char: int = 8,
    use_lattice: bool = True,
) -> Model[Embedded, Floats3d]:
    """hidden_width (int): output width, split between the two directions
        (the paper's 200).
    dropout (float): on the word vectors and the encoder output (the paper's 0.5).
    word_width (int): width of the hashed lexicon-word vectors (the paper's 50).
    word_rows (int): hashed word-embedding rows (memory stays bounded).
    max_words_per_char (int): at most this many words end, and start, at
        any character; the longest are kept.
    use_lattice (bool): false ignores the words: a plain BiLSTM with the same
        cells (the ablation "lattice off", SoftLexicon input kept).
    """
    if hidden_width % 2:
        raise ValueError(f"Lattice LSTM hidden_width must be even, got {hidden_width}.")
    if max_words_per_char < 1:
        raise ValueError(f"Lattice LSTM max_words_per_char must be at least 1, got {max_words_per_char}.")
    settings = dict(
        hidden_width=hidden_width,
        word_width=word_width,
        word_rows=word_rows,
        dropout=dropout,
        use_lattice=use_lattice,
    )
    return LazyTorchWrapper(
        "lattice_lstm_encoder",
        partial(with_input_width, LatticeLSTM, **settings),
        convert_inputs=_convert_inputs,
        convert_outputs=convert_padded_outputs,
        dims={"nI": None, "nO": hidden_width},
        attrs={"max_words_per_char": max_words_per_char, "word_rows": word_rows, "use_lattice": use_lattice},
        infer_nI=padded_width,
    )


def lattice_lstm_words(lattice: Lattice, max_words_per_char: int) -> numpy.ndarray:
    """Indices (into the lattice's word arrays) of the words the encoder
    reads: two or more chars long, at most max_words_per_char ending and at
    most max_words_per_char starting at each char of a text (longest first,
    then the earlier), in (text, start, end) order."""
    lengths = lattice.word_end - lattice.word_start
    candidates = numpy.flatnonzero(lengths >= 2)
    for position in (lattice.word_end, lattice.word_start):
        if not len(candidates):
            break
        # Group by (text, position), longest first; keep each group's first.
        order = numpy.lexsort(
            (lattice.word_start[candidates], -lengths[candidates], position[candidates], lattice.word_text[candidates])
        )
        ordered = candidates[order]
        group = numpy.stack([lattice.word_text[ordered], position[ordered]], axis=1)
        new_group = numpy.r_[True, (group[1:] != group[:-1]).any(axis=1)]
        group_start = numpy.maximum.accumulate(numpy.where(new_group, numpy.arange(len(ordered)), 0))
        candidates = numpy.sort(ordered[numpy.arange(len(ordered)) - group_start < max_words_per_char])
    return candidates


def _convert_inputs(model: Model, X: Embedded, is_train: bool) -> Tuple[ArgsKwargs, object]:
    vectors, lengths, lattice = X
    if model.attrs["use_lattice"]:
        words = lattice_lstm_words(lattice, model.attrs["max_words_per_char"])
    else:
        words = numpy.zeros((0,), dtype="int64")
    word_rows = hash_rows(lattice.word_keys[words], WORD_SEEDS, model.attrs["word_rows"]).astype("int64")
    lengths_np = lengths_array(lengths)
    Xt = to_torch(model, vectors, requires_grad=is_train)
    columns = (
        word_rows.reshape(len(words), len(WORD_SEEDS)),
        *(a[words] for a in (lattice.word_text, lattice.word_start, lattice.word_end)),
    )
    # Lengths and word positions stay on the CPU: the module plans its steps from them.
    args = (Xt, torch.from_numpy(lengths_np), *(torch.from_numpy(numpy.ascontiguousarray(a)) for a in columns))
    return ArgsKwargs(args=args, kwargs={}), first_input_gradient
