"""Iterated dilated CNN encoder (Strubell et al., EMNLP 2017): a block of
dilated convolutions applied several times with shared weights. Every layer
runs over the whole batch at once, so it is the fast encoder."""

from functools import partial
from typing import List

from spacy.util import registry
from thinc.api import Model

from ...util.torch_utils import with_input_width
from ..pytorch.idcnn import IDCNN
from .common import padded_encoder


@registry.architectures("spacy-lexner.IDCNNEncoder.v1")
def build_idcnn_encoder(
    width: int = 256,
    dilations: List[int] = [1, 1, 2],
    n_blocks: int = 4,
    kernel_size: int = 3,
    dropout: float = 0.2,
) -> Model:
    """width (int): number of filters, also the output width.
    dilations (List[int]): dilation of each convolution in the block.
    n_blocks (int): how often the block (one set of weights) is applied.
    kernel_size (int): odd convolution width.
    dropout (float): dropout after each block.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"IDCNN kernel_size must be odd, got {kernel_size}.")

    build = partial(
        with_input_width,
        IDCNN,
        width=width,
        dilations=list(dilations),
        n_blocks=n_blocks,
        kernel_size=kernel_size,
        dropout=dropout,
    )
    return padded_encoder("idcnn_encoder", build, width)
