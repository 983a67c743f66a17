"""TENER encoder (Yan et al., 2019): a Transformer adapted to NER.

Attention uses relative sinusoidal positions, which keep the direction
(sin is odd), and is not scaled by 1/sqrt(d), which the paper finds gives
sharper attention for NER. Keys are not projected, as in the paper:

    A[t, j] = Q_t·K_j + Q_t·R_{t-j} + u·K_j + v·R_{t-j}
"""

from functools import partial

from spacy.util import registry
from thinc.api import Model

from ...util.torch_utils import with_input_width
from ..pytorch.tener import TENER
from .common import padded_encoder


@registry.architectures("spacy-lexner.TENEREncoder.v1")
def build_tener_encoder(
    width: int = 128,
    depth: int = 2,
    n_heads: int = 4,
    ff_width: int = 256,
    dropout: float = 0.15,
    attention_dropout: float = 0.0,
    scaled: bool = False,
) -> Model:
    """width (int): model width (and output width); divisible by n_heads.
    depth (int): number of Transformer layers.
    ff_width (int): inner width of the feed-forward blocks.
    scaled (bool): divide attention scores by sqrt(head width) (TENER: false).
    """
    if width % n_heads or (width // n_heads) % 2:
        raise ValueError(f"TENER width ({width}) / n_heads ({n_heads}) must be an even integer.")

    build = partial(
        with_input_width,
        TENER,
        width=width,
        depth=depth,
        n_heads=n_heads,
        ff_width=ff_width,
        dropout=dropout,
        attention_dropout=attention_dropout,
        scaled=scaled,
    )
    return padded_encoder("tener_encoder", build, width)
