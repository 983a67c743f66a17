"""BiLSTM encoder (the default), as in the SoftLexicon paper."""

from functools import partial

from spacy.util import registry
from thinc.api import Model

from ...util.torch_utils import with_input_width
from ..pytorch.bilstm import BiLSTM
from .common import padded_encoder


@registry.architectures("spacy-lexner.BiLSTMEncoder.v1")
def build_bilstm_encoder(hidden_width: int = 200, depth: int = 1, dropout: float = 0.2) -> Model:
    """hidden_width (int): output width, split between the two directions.
    depth (int): number of stacked BiLSTM layers.
    dropout (float): dropout on the encoder output (and between layers).
    """
    if hidden_width % 2:
        raise ValueError(f"BiLSTM hidden_width must be even, got {hidden_width}.")

    build = partial(with_input_width, BiLSTM, nO=hidden_width, depth=depth, dropout=dropout)
    return padded_encoder("bilstm_encoder", build, hidden_width)
