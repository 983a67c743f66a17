"""Lexicons (word lists with frequencies and types) for lexicon-enhanced NER."""
from .lexicon import Lexicon
from .readers import LexiconFormatError, read_lexicon_file

# Imported for its side effect: registers the loaders in registry.lexicons.
from . import registry  # noqa: E402,F401  isort:skip

__all__ = ["Lexicon", "LexiconFormatError", "read_lexicon_file"]
