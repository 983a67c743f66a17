"""spacy-lexner: lexicon-enhanced Chinese NER components for spaCy.

Installed, the package registers its factories, architectures and lexicon
loaders through entry points, so ``spacy.blank("zh").add_pipe("lexner_tagger")``
works without importing it. Importing it is cheap: the names below are
loaded on first use (so ``spacy-lexner --help`` does not load torch), and
``spacy_lexner.register()`` imports every registering module for code run
from a source tree that is not installed.

Layers, from the bottom up (a module imports only from its own layer or
those below; tests/test_layers.py checks it): ``util`` → ``lexicon`` →
``models`` (``models/pytorch`` below the rest) → ``pipeline`` →
``corpora`` / ``evaluation`` → ``cli``.
"""

from importlib import import_module
from typing import Any

from .about import __version__

# Public name -> the module that defines it.
_EXPORTS = {
    "Lattice": "spacy_lexner.lexicon.lattice",
    "Lexicon": "spacy_lexner.lexicon.lexicon",
    "LexiconTagger": "spacy_lexner.pipeline.lexner_tagger",
    "ImageContext": "spacy_lexner.util.image_context",
    "set_image_context": "spacy_lexner.util.image_context",
}
# Every module with a registry decorator (factories, architectures, misc,
# scorers, lexicons): what the entry points in setup.cfg point at.
_REGISTERING = (
    "spacy_lexner.lexicon.registry",
    "spacy_lexner.models.decoders",
    "spacy_lexner.models.embed",
    "spacy_lexner.models.ensemble",
    "spacy_lexner.models.tagger",
    "spacy_lexner.models.crf_tagger",
    "spacy_lexner.models.fusion",
    "spacy_lexner.models.visual",
    "spacy_lexner.models.encoders",
    "spacy_lexner.pipeline.lexner_tagger",
    "spacy_lexner.pipeline.crf_ner",
    "spacy_lexner.pipeline.entity_ruler",
    "spacy_lexner.pipeline.image_context",
)


def register() -> None:
    """Import every module that registers something with spaCy."""
    for name in _REGISTERING:
        import_module(name)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spacy_lexner' has no attribute {name!r}")


__all__ = ["ImageContext", "Lattice", "Lexicon", "LexiconTagger", "__version__", "register", "set_image_context"]
