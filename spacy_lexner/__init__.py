"""spacy-lexner: lexicon-enhanced Chinese NER components for spaCy.

Importing the package registers its factories, architectures and lexicon
loaders; installed, it also registers them through entry points, so
``spacy.blank("zh").add_pipe("lexner_tagger")`` works without this import.

Layers, from the bottom up (a module imports only from its own layer or
those below; tests/test_layers.py checks it): ``util`` → ``lexicon`` →
``models`` (``models/pytorch`` below the rest) → ``pipeline`` →
``corpora`` / ``evaluation`` → ``cli``.
"""

from .about import __version__
from .lexicon import Lattice, Lexicon
from .lexicon import registry as _lexicon_registry  # noqa: F401
from .models import decoders as _decoders  # noqa: F401
from .models import embed as _embed  # noqa: F401
from .models import ensemble as _ensemble  # noqa: F401
from .models import tagger as _tagger  # noqa: F401
from .models.encoders import build_bilstm_encoder  # noqa: F401
from .pipeline import crf_ner as _crf_ner  # noqa: F401
from .pipeline import entity_ruler as _entity_ruler  # noqa: F401
from .pipeline.lexner_tagger import LexiconTagger, make_lexner_tagger  # noqa: F401
from .util.image_context import ImageContext, set_image_context

__all__ = ["ImageContext", "Lattice", "Lexicon", "LexiconTagger", "__version__", "set_image_context"]
