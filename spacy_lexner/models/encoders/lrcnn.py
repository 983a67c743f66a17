"""LR-CNN encoder (Gui et al., IJCAI 2019): a CNN over n-grams with lexicon
words fused in by gates, and a rethinking pass.

Layer 0 is the projected characters. Layer m (1..depth) stands for the
(m+1)-gram at each position: kernel-2 convolutions over layer m-1, read
forward (the n-gram starting at t) and backward (the n-gram ending at t),
plus, from layer 2 on, kernel-(m+1) convolutions straight over the
characters in both directions. Each of these four streams is fused with the
lexicon word of length m+1 starting (forward) or ending (backward) at t, and
with a self-attention context of the sentence, by a gate; a position with no
such word gets a zero word vector. Rethinking: the stack runs `rethink`
times, and from the second pass on every gate also reads the top layer's
feature of the previous pass (high-level features settle conflicts between
overlapping words). The output per character is an attention over the
layers 0..depth of the last pass (the multi-scale attention). Equations are
in models/pytorch/lrcnn.py.

This follows the authors' code (github.com/guitaowufeng/LR-CNN), whose
`num_layer = 4` counts layer 0: it is `depth = 3` here. The words are the
lattice's, the same matches the SoftLexicon layer reads. Words of one char,
and words longer than depth + 1 chars, are not used. There is at most one
word per (start, length), so the word input is a [texts, chars, depth]
table: memory grows linearly with the text and needs no cap.
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
from ..pytorch.lrcnn import LRCNN
from ..types import Embedded
from .common import convert_padded_outputs, lengths_array, padded_width

WORD_SEEDS = (13, 14)


@registry.architectures("spacy-lexner.LRCNNEncoder.v1")
def build_lrcnn_encoder(
    hidden_width: int = 128,
    depth: int = 3,
    rethink: int = 2,
    dropout: float = 0.5,
    word_rows: int = 65536,
    word_width: int = 50,
    use_lattice: bool = True,
) -> Model[Embedded, Floats3d]:
    """hidden_width (int): width of every layer, also the output width.
    depth (int): n-gram layers over the characters; layer m reads the
        lexicon words of m + 1 chars, so words longer than depth + 1 chars
        are ignored (the reference's num_layer = depth + 1).
    rethink (int): passes through the stack in all; from the second on the
        gates read the top layer of the previous pass (1: no rethinking).
    dropout (float): on the char features, the word vectors, between layers
        and in the multi-scale attention (the reference's 0.5).
    word_rows (int): hashed word-embedding rows (memory stays bounded).
    word_width (int): width of the word vectors (the reference's 50).
    use_lattice (bool): false ignores the words: the same layers and gates
        without word input (the ablation "lattice off", SoftLexicon input kept).
    """
    if depth < 1 or rethink < 1:
        raise ValueError(f"LR-CNN needs depth >= 1 and rethink >= 1, got depth={depth}, rethink={rethink}.")
    settings = dict(
        hidden_width=hidden_width,
        depth=depth,
        rethink=rethink,
        dropout=dropout,
        word_rows=word_rows,
        word_width=word_width,
        use_lattice=use_lattice,
    )
    return LazyTorchWrapper(
        "lrcnn_encoder",
        partial(with_input_width, LRCNN, **settings),
        convert_inputs=_convert_inputs,
        convert_outputs=convert_padded_outputs,
        dims={"nI": None, "nO": hidden_width},
        attrs={"depth": depth, "word_rows": word_rows, "use_lattice": use_lattice},
        infer_nI=padded_width,
    )


def layer_words(lattice: Lattice, n_chars: int, depth: int, word_rows: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The word input of each layer: rows [texts, n_chars, depth, seeds]
    (int64), the hashed rows of the word of length m + 1 starting at char t
    in layer m's slot m - 1, and has_word [texts, n_chars, depth] (bool).
    Words of 1 char or longer than depth + 1 chars are left out."""
    n_texts = len(lattice)
    rows = numpy.zeros((n_texts, n_chars, depth, len(WORD_SEEDS)), dtype="int64")
    has_word = numpy.zeros((n_texts, n_chars, depth), dtype=bool)
    lengths = lattice.word_end - lattice.word_start
    keep = numpy.flatnonzero((lengths >= 2) & (lengths <= depth + 1))
    if len(keep):
        text, start, slot = lattice.word_text[keep], lattice.word_start[keep], lengths[keep] - 2
        rows[text, start, slot] = hash_rows(lattice.word_keys[keep], WORD_SEEDS, word_rows)
        has_word[text, start, slot] = True
    return rows, has_word


def _convert_inputs(model: Model, X: Embedded, is_train: bool) -> Tuple[ArgsKwargs, object]:
    vectors, lengths = X[0], X[1]
    lengths_np = lengths_array(lengths)
    Xt = to_torch(model, vectors, requires_grad=is_train)
    args = [Xt, torch.from_numpy(lengths_np).to(Xt.device)]
    if model.attrs["use_lattice"]:
        rows, has_word = layer_words(X[2], vectors.shape[1], model.attrs["depth"], model.attrs["word_rows"])
        args += [torch.from_numpy(a).to(Xt.device) for a in (rows, has_word)]
    return ArgsKwargs(args=tuple(args), kwargs={}), first_input_gradient
