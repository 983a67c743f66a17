"""spacy-lexner command line: ``spacy-lexner --help``."""

from .app import app

__all__ = ["app"]
