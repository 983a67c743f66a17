"""spacy-lexner: lexicon-enhanced Chinese NER components for spaCy.

Importing the package registers its factories, architectures and lexicon
loaders; installed, it also registers them through entry points, so
``spacy.blank("zh").add_pipe("lexner_tagger")`` works without this import.
"""
from .lexicon import Lexicon
from .lexicon import registry as _lexicon_registry  # noqa: F401
from .encoders import build_bilstm_encoder  # noqa: F401
from .tagger.model import build_lexicon_tagger, build_soft_lexicon_embed, build_soft_lexicon_embed_v1  # noqa: F401
from .tagger.ensemble import build_lexicon_tagger_ensemble  # noqa: F401
from .tagger.tagger import LexiconTagger, make_lexner_tagger  # noqa: F401

__version__ = "0.1.0"
__all__ = ["Lexicon", "LexiconTagger"]
