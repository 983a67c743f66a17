"""An optional learned visual gate for ``lexner_tagger``: character vectors
are fused with ``Doc._.image_embedding`` (see spacy_lexner.util.image_context).

    lattice ──embed──▶ X[batch, chars, D] ─┐
    Doc._.image_embedding ────────────────┴─ VisualGate ──▶ [batch, chars, D + width]

The image embeddings are read from the lattice's Docs (the tagger gives this
layer whole Docs, see needs_pipeline_docs).
"""

from functools import partial
from typing import Any, Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model

from ..lexicon.lattice import Lattice
from ..util.image_context import read_image_context
from ..util.torch_utils import LazyTorchWrapper, first_input_gradient, to_torch, with_input_width
from .encoders.common import convert_padded_outputs
from .pytorch.visual_gate import VisualGate
from .types import Embedded


@registry.architectures("spacy-lexner.VisualGateEmbed.v1")
def build_visual_gate_embed(
    embed: Model[Lattice, Embedded], image_width: int = 512, width: int = 64
) -> Model[Lattice, Embedded]:
    """embed: the character layer (e.g. spacy-lexner.SoftLexiconEmbed.v2).
    image_width: width of Doc._.image_embedding (512 for CLIP ViT-B/32).
    width: width of the gated visual vector appended to each character.

    Docs without an image embedding get no visual signal. The tagger feeds
    this layer whole docs, since windows would lose the Doc extensions.
    """
    char_width = embed.get_dim("nO") if embed.has_dim("nO") else None
    out_width = char_width + width if char_width is not None else None
    gate = LazyTorchWrapper(
        "visual_gate_torch",
        partial(with_input_width, VisualGate, image_width=image_width, width=width),
        convert_inputs=_convert_inputs,
        convert_outputs=convert_padded_outputs,
        dims={"nI": char_width, "nO": out_width},
    )
    return Model(
        "visual_gate_embed",
        _forward,
        init=_init,
        layers=[embed, gate],
        refs={"embed": embed, "gate": gate},
        dims={"nO": out_width},
        attrs={"needs_pipeline_docs": True, "image_width": image_width, "width": width},
    )


def _init(model: Model, X: Optional[Lattice] = None, Y: Any = None) -> None:
    embed, gate = model.layers
    embed.initialize(X=X)
    gate.set_dim("nI", embed.get_dim("nO"), force=True)
    gate.set_dim("nO", embed.get_dim("nO") + model.attrs["width"], force=True)
    model.set_dim("nO", gate.get_dim("nO"), force=True)
    gate.initialize()


def image_matrix(docs: List[Doc], image_width: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """[n_docs, image_width] image vectors (zeros where missing) and a 0/1 flag."""
    images = numpy.zeros((len(docs), image_width), dtype="float32")
    has_image = numpy.zeros((len(docs),), dtype="float32")
    for i, doc in enumerate(docs):
        context = read_image_context(doc)  # checks values that bypassed the setter
        if context is None or context.embedding is None:
            continue
        vector = context.embedding
        if vector.shape != (image_width,):
            raise ValueError(
                f"Doc._.image_embedding has shape {vector.shape}, but the visual gate expects "
                f"({image_width},). Set image_width in spacy-lexner.VisualGateEmbed.v1 to the "
                "width of your image encoder."
            )
        images[i], has_image[i] = vector, 1.0
    return images, has_image


def _forward(model: Model, lattice: Lattice, is_train: bool) -> Tuple[Embedded, Callable]:
    embed, gate = model.layers
    (X, lengths, _), bp_embed = embed(lattice, is_train)
    if lattice.docs is None:
        raise ValueError("spacy-lexner.VisualGateEmbed.v1 reads Docs: build the lattice with docs=.")
    images, has_image = image_matrix(list(lattice.docs), model.attrs["image_width"])
    Y, bp_gate = gate((X, images, has_image), is_train)

    def backprop(dY: Tuple) -> Lattice:
        return bp_embed((bp_gate(dY[0]), lengths))

    return Embedded(Y, lengths, lattice), backprop


def _convert_inputs(model: Model, inputs: Tuple, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    X, images, has_image = inputs
    args = (to_torch(model, X, requires_grad=is_train), to_torch(model, images), to_torch(model, has_image))
    return ArgsKwargs(args=args, kwargs={}), first_input_gradient
