"""Context encoders for ``lexner_tagger``. Each is a registered architecture
mapping padded character vectors ``(X[batch, time, nI], lengths)`` to
``Y[batch, time, nO]``."""

from .bilstm import build_bilstm_encoder
from .flat import build_flat_encoder
from .idcnn import build_idcnn_encoder
from .lattice_lstm import build_lattice_lstm_encoder
from .lrcnn import build_lrcnn_encoder
from .tener import build_tener_encoder

__all__ = [
    "build_bilstm_encoder",
    "build_flat_encoder",
    "build_idcnn_encoder",
    "build_lattice_lstm_encoder",
    "build_lrcnn_encoder",
    "build_tener_encoder",
]
