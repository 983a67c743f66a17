"""Readers for plain-text word lists (jieba's dict.txt and user lexicons).

Accepted line formats, one word per line:

    word
    word freq
    word freq type        (jieba: `word freq pos`)
    word type             (second column is not a number -> it is the type)

If a line contains a TAB, its columns are split on tabs only (each column is
stripped), so words may contain spaces ("New York\tLOC"). Otherwise columns
are split on runs of whitespace. Files must be UTF-8; a BOM at the start is
dropped, CRLF line ends are accepted, blank lines and lines starting with `#`
are skipped.
"""

import math
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from ..util.excerpt import excerpt
from ..util.text import read_utf8

# (word, freq, type); freq and type are None when the line has no such column
# and no default was given.
LexiconEntry = Tuple[str, Optional[float], Optional[str]]


class LexiconFormatError(ValueError):
    """A lexicon file cannot be read. The message names `path:line`."""


def read_lexicon_file(
    path: Union[str, Path],
    *,
    default_freq: Optional[float] = None,
    default_type: Optional[str] = None,
) -> Iterator[LexiconEntry]:
    """Read a word list, one `(word, freq, type)` entry per non-comment line.

    path (Union[str, Path]): The UTF-8 text file to read.
    default_freq (Optional[float]): Frequency for lines without one. None
        leaves it None, so the Lexicon can apply its own default.
    default_type (Optional[str]): Type for lines without one.
    YIELDS (Tuple[str, Optional[float], Optional[str]]): The entries, in file order.
    RAISES LexiconFormatError: The file is not UTF-8, has a malformed line or
        contains no words.
    """
    path = Path(path)
    if default_freq is not None and not 0.0 < default_freq < math.inf:
        raise ValueError(f"default_freq must be a finite number > 0, got {excerpt(default_freq)}.")
    text = read_utf8(path, LexiconFormatError)
    n_words = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word, freq, type_ = _parse_line(line.rstrip("\r"), path, lineno)
        n_words += 1
        yield (
            word,
            default_freq if freq is None else freq,
            default_type if type_ is None else type_,
        )
    if n_words == 0:
        raise LexiconFormatError(
            f"{path} contains no words (it is empty or has only blank and "
            f"'#' comment lines). Add one word per line, optionally followed "
            f"by a frequency and/or a type, or remove the file from the config."
        )


def _parse_line(line: str, path: Path, lineno: int) -> LexiconEntry:
    cols = _split_columns(line)
    if "" in cols:
        raise _line_error(
            path,
            lineno,
            line,
            f"empty tab-separated column in {excerpt(cols)}. Remove the extra tab",
        )
    if len(cols) > 3:
        raise _line_error(
            path,
            lineno,
            line,
            f"expected 'word', 'word freq', 'word type' or 'word freq type', "
            f"found {len(cols)} columns {excerpt(cols)}. If words contain spaces, "
            f"separate the columns with tabs",
        )
    if len(cols) == 1:
        return cols[0], None, None
    freq = _parse_freq(cols[1], line, path, lineno)
    if len(cols) == 2:
        return (cols[0], freq, None) if freq is not None else (cols[0], None, cols[1])
    if freq is None:
        raise _line_error(
            path,
            lineno,
            line,
            f"with three columns the second must be a frequency, got {excerpt(cols[1])}. Use 'word freq type'",
        )
    return cols[0], freq, cols[2]


def _split_columns(line: str) -> List[str]:
    if "\t" not in line:
        return line.split()
    cols = [col.strip() for col in line.split("\t")]
    # Trailing tabs are common in spreadsheet exports; drop the empty tails.
    while cols and not cols[-1]:
        cols.pop()
    return cols


def _parse_freq(column: str, line: str, path: Path, lineno: int) -> Optional[float]:
    """Return the column as a frequency, or None if it is not a number."""
    try:
        freq = float(column)
    except ValueError:
        return None
    if not 0.0 < freq < math.inf:
        raise _line_error(
            path,
            lineno,
            line,
            f"the frequency must be a finite number > 0, got {excerpt(column)}. "
            f"Fix or remove the frequency (the lexicon's default is then used)",
        )
    return freq


def _line_error(path: Path, lineno: int, line: str, problem: str) -> LexiconFormatError:
    return LexiconFormatError(f"{path}:{lineno}: {problem}. Line: {excerpt(line)}")
