"""Registered lexicon loaders, referenced from configs as `@lexicons = "..."`.

A loader resolves to a zero-argument callable: the word lists are read only
when it is called (at `initialize`), not every time a config is resolved.
"""

from typing import Callable, List, Optional

import catalogue
from spacy.util import logger, registry

from ..util.excerpt import excerpt
from .embedding_files import read_embedding_vocabulary
from .lexicon import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_MIN_LENGTH,
    Lexicon,
    _check_length_limits,
    _read_checked,
    jieba_dict_path,
)
from .readers import LexiconEntry, read_lexicon_file

LexiconLoader = Callable[[], Lexicon]
EMBEDDING_FREQUENCIES = ("uniform", "rank")

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


@registry.lexicons("spacy-lexner.embedding_lexicon.v1")
def create_embedding_lexicon(
    path: str,
    use_jieba: bool = False,
    extra_paths: List[str] = [],
    min_length: int = DEFAULT_MIN_LENGTH,
    max_length: int = DEFAULT_MAX_LENGTH,
    frequency: str = "uniform",
    limit: Optional[int] = None,
) -> LexiconLoader:
    """Loader for the vocabulary of a word2vec embedding file as the lexicon,
    as Lattice LSTM and SoftLexicon build theirs from `ctb.50d.vec`.

    Only the keys are read (text or binary, maybe gzipped; see
    `embedding_files`). Keys outside [min_length, max_length] are dropped.
    Words that jieba's list or `extra_paths` also give keep their frequency
    from there.

    path (str): The word2vec file (e.g. ctb.50d.vec, sgns.merge.word).
    use_jieba (bool): Add jieba's bundled word list as well.
    extra_paths (List[str]): UTF-8 word lists to add.
    min_length (int): Shortest word to keep.
    max_length (int): Longest word to keep.
    frequency (str): "uniform": every embedding word gets the lexicon's
        default frequency (the median of the frequencies jieba or
        extra_paths give, else 1.0). "rank": the files list words by
        descending count, so the word on entry r (1-based, duplicates
        dropped) of n gets n / r (Zipf's law: frequency proportional to 1/r;
        the last word gets 1.0).
    limit (Optional[int]): Read only the first `limit` entries.
    RETURNS (Callable[[], Lexicon]): Loads the lexicon when called.
    """
    _check_length_limits(min_length, max_length)
    if frequency not in EMBEDDING_FREQUENCIES:
        raise ValueError(
            f"spacy-lexner.embedding_lexicon.v1: frequency must be one of {EMBEDDING_FREQUENCIES}, "
            f"got {excerpt(frequency)}."
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(
            f"spacy-lexner.embedding_lexicon.v1: limit must be a positive integer or null, got {excerpt(limit)}."
        )
    paths = list(extra_paths)

    def load_lexicon() -> Lexicon:
        entries: List[LexiconEntry] = []
        if use_jieba:
            entries.extend(read_lexicon_file(jieba_dict_path()))
        for extra in paths:
            entries.extend(_read_checked(extra, None, max_length))
        listed = {word for word, _, _ in entries}
        words = read_embedding_vocabulary(path, limit=limit)
        n_words = len(words)
        if frequency == "rank":
            new = [(word, n_words / rank, None) for rank, word in enumerate(words, 1) if word not in listed]
        else:
            new = [(word, None, None) for word in words if word not in listed]
        # One construction for all words: Lexicon.add per word would
        # invalidate the matcher and re-check the settings each time.
        lexicon = Lexicon(entries + new, min_length=min_length, max_length=max_length)
        logger.info(
            "Lexicon from %s: %d of its %d keys within %d-%d chars, %d words in all",
            path,
            sum(min_length <= len(w) <= max_length for w, _, _ in new),
            n_words,
            min_length,
            max_length,
            len(lexicon),
        )
        return lexicon

    return load_lexicon
