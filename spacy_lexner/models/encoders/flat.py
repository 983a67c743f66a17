"""FLAT encoder (Li et al., ACL 2020): a Transformer over the flat lattice.

The characters and every matched lexicon word (length >= 2) form one
sequence. Each element has a head and a tail position (a char: i, i; a word:
its first and last char). Attention uses the four relative distances
hh, ht, th, tt, each embedded with sinusoids and fused by a ReLU layer:

    R_ij = ReLU(W_r [p(hh_ij); p(ht_ij); p(th_ij); p(tt_ij)])
    A_ij = (Q_i + u)·K_j + (Q_i + v)·(R_ij W_R)

Only the character positions are returned, so the CRF reads characters.
Since W_r is linear before the ReLU, W_r [p1; p2; p3; p4] is the sum of four
per-distance tables, computed once per batch for every distance; only their
sum is per pair. Memory still grows with (chars + words)^2: the words per
text are capped (max_words) and long docs are tagged in windows.

The words are the lattice's, the same matches the SoftLexicon layer reads.
"""

from functools import partial
from typing import List, Tuple

import numpy
import torch
from spacy.util import registry
from thinc.api import ArgsKwargs, Model
from thinc.types import Floats3d

from ...lexicon.hashing import hash_rows
from ...lexicon.lattice import Lattice
from ...util.torch_utils import LazyTorchWrapper, first_input_gradient, to_torch, with_input_width
from ..pytorch.flat import FLAT
from ..types import Embedded
from .common import convert_padded_outputs, lengths_array, padded_width

WORD_SEEDS = (11, 12)


@registry.architectures("spacy-lexner.FLATEncoder.v1")
def build_flat_encoder(
    width: int = 160,
    depth: int = 1,
    n_heads: int = 8,
    ff_width: int = 480,
    dropout: float = 0.15,
    word_rows: int = 65536,
    max_words: int = 128,
    scaled: bool = False,
) -> Model[Embedded, Floats3d]:
    """width (int): model width (= output width); width / n_heads must be even.
    word_rows (int): hashed word-embedding rows (memory stays bounded).
    max_words (int): at most this many lexicon words per text (the longest
        words are kept first); bounds the (chars + words)^2 attention.
    scaled (bool): divide attention by sqrt(head width) (FLAT: false).

    The words are those of the lattice the embed layer passes on.
    """
    if width % n_heads or (width // n_heads) % 2:
        raise ValueError(f"FLAT width ({width}) / n_heads ({n_heads}) must be an even integer.")
    settings = dict(
        width=width,
        depth=depth,
        n_heads=n_heads,
        ff_width=ff_width,
        dropout=dropout,
        word_rows=word_rows,
        scaled=scaled,
    )
    return LazyTorchWrapper(
        "flat_encoder",
        partial(with_input_width, FLAT, **settings),
        convert_inputs=_convert_inputs,
        convert_outputs=convert_padded_outputs,
        dims={"nI": None, "nO": width},
        attrs={"max_words": max_words, "word_rows": word_rows},
        infer_nI=padded_width,
    )


def lattice_words(lattice: Lattice, max_words: int) -> List[numpy.ndarray]:
    """Per text, the indices (into the lattice's word arrays) of its matched
    words of length >= 2: the longest max_words (ties: the earlier), in
    (start, end) order."""
    lengths = lattice.word_end - lattice.word_start
    result = []
    for i in range(len(lattice)):
        mine = numpy.flatnonzero((lattice.word_text == i) & (lengths >= 2))
        # lexsort's last key is the primary one: longest first, then by start.
        kept = mine[numpy.lexsort((lattice.word_start[mine], -lengths[mine]))][:max_words]
        result.append(kept[numpy.lexsort((lattice.word_end[kept], lattice.word_start[kept]))])
    return result


def _convert_inputs(model: Model, X: Embedded, is_train: bool) -> Tuple[ArgsKwargs, object]:
    vectors, lengths, lattice = X
    words = lattice_words(lattice, model.attrs["max_words"])
    n_texts = len(words)
    n_words = numpy.array([len(w) for w in words], dtype="int64")
    max_words = int(n_words.max()) if len(n_words) else 0
    word_rows = numpy.zeros((n_texts, max_words, len(WORD_SEEDS)), dtype="int64")
    heads = numpy.zeros((n_texts, max_words), dtype="int64")
    tails = numpy.zeros((n_texts, max_words), dtype="int64")
    for i, index in enumerate(words):
        if not len(index):
            continue
        word_rows[i, : len(index)] = hash_rows(lattice.word_keys[index], WORD_SEEDS, model.attrs["word_rows"])
        heads[i, : len(index)] = lattice.word_start[index]
        tails[i, : len(index)] = lattice.word_end[index] - 1
    lengths_np = lengths_array(lengths)
    Xt = to_torch(model, vectors, requires_grad=is_train)
    args = (Xt, *(torch.from_numpy(a).to(Xt.device) for a in (lengths_np, word_rows, heads, tails, n_words)))
    return ArgsKwargs(args=args, kwargs={}), first_input_gradient
