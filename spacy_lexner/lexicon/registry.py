"""Registered lexicon loaders, referenced from configs as `@lexicons = "..."`.

A loader resolves to a zero-argument callable: the word lists are read only
when it is called (at `initialize`), not every time a config is resolved.
"""

from typing import Callable, List, Optional

import catalogue
from spacy.util import registry

from .lexicon import DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH, Lexicon, _check_length_limits

LexiconLoader = Callable[[], Lexicon]

# Created with catalogue directly rather than `registry.create("lexicons")`:
# that would read entry points from the group `thinc_lexicons`, while
# setup.cfg (like spaCy's own registries) uses `spacy_lexicons`.
if "lexicons" not in registry.get_registry_names():
    registry.lexicons = catalogue.create("spacy", "lexicons", entry_points=True)


# The list defaults below are never mutated (they are copied), so sharing
# one default object between calls is safe; configs need a literal default.
@registry.lexicons("spacy-lexner.jieba_lexicon.v1")
def create_jieba_lexicon(
    extra_paths: List[str] = [],
    min_length: int = DEFAULT_MIN_LENGTH,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> LexiconLoader:
    """Loader for jieba's bundled word list, plus optional extra word lists.

    Extra words without a frequency get the jieba median frequency.

    extra_paths (List[str]): UTF-8 word lists to add.
    min_length (int): Shortest word to keep.
    max_length (int): Longest word to keep.
    RETURNS (Callable[[], Lexicon]): Loads the lexicon when called.
    """
    return create_combined_lexicon(use_jieba=True, paths=extra_paths, min_length=min_length, max_length=max_length)


@registry.lexicons("spacy-lexner.file_lexicon.v1")
def create_file_lexicon(
    paths: List[str],
    default_freq: Optional[float] = None,
    min_length: int = DEFAULT_MIN_LENGTH,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> LexiconLoader:
    """Loader for one or more word lists (see `read_lexicon_file` for formats).

    paths (List[str]): UTF-8 word lists.
    default_freq (Optional[float]): Frequency for words without one. None:
        the median of the files' frequencies, or 1.0.
    min_length (int): Shortest word to keep.
    max_length (int): Longest word to keep.
    RETURNS (Callable[[], Lexicon]): Loads the lexicon when called.
    """
    if not paths:
        raise ValueError(
            "spacy-lexner.file_lexicon.v1 needs at least one path in `paths`; "
            "to use only jieba's words, use spacy-lexner.jieba_lexicon.v1."
        )
    return create_combined_lexicon(
        use_jieba=False,
        paths=paths,
        default_freq=default_freq,
        min_length=min_length,
        max_length=max_length,
    )


@registry.lexicons("spacy-lexner.combined_lexicon.v1")
def create_combined_lexicon(
    use_jieba: bool = True,
    paths: List[str] = [],
    default_freq: Optional[float] = None,
    min_length: int = DEFAULT_MIN_LENGTH,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> LexiconLoader:
    """Loader for jieba's word list (optional) merged with word lists.

    With jieba, words without a frequency get the jieba median (or
    `default_freq`); without it, the median of the files' frequencies.

    use_jieba (bool): Start from jieba's bundled word list.
    paths (List[str]): UTF-8 word lists to add.
    default_freq (Optional[float]): Frequency for words without one.
    min_length (int): Shortest word to keep.
    max_length (int): Longest word to keep.
    RETURNS (Callable[[], Lexicon]): Loads the lexicon when called.
    """
    # Check the settings now, so a bad config fails when it is resolved
    # rather than at initialize.
    _check_length_limits(min_length, max_length)
    if not use_jieba and not paths:
        raise ValueError(
            "The combined lexicon is empty: set use_jieba = true or give at least one word list in `paths`."
        )
    paths = list(paths)
    limits = {"min_length": min_length, "max_length": max_length}

    def load_lexicon() -> Lexicon:
        if not use_jieba:
            return Lexicon.from_files(paths, default_freq=default_freq, **limits)
        lexicon = Lexicon.from_jieba(default_freq=default_freq, **limits)
        for path in paths:
            lexicon.add_file(path)
        return lexicon

    return load_lexicon
