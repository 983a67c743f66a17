"""Lexicons (word lists with frequencies and types), their matching, and the
lattice every model layer reads."""

from .lattice import Lattice
from .lexicon import Lexicon
from .readers import LexiconFormatError, read_lexicon_file

# Imported for its side effect: registers the loaders in registry.lexicons.
from . import registry  # noqa: E402,F401  isort:skip

__all__ = ["Lattice", "Lexicon", "LexiconFormatError", "read_lexicon_file"]
