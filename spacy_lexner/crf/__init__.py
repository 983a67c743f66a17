"""The linear-chain CRF head shared by ``lexner_tagger`` and ``crf_ner``."""
from .tag_scheme import TagScheme
from .layer import build_crf_layer, crf_decode, crf_loss

__all__ = ["TagScheme", "build_crf_layer", "crf_decode", "crf_loss"]
