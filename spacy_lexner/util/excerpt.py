"""Short quotes of input data for error and warning messages.

A message that quotes a whole bad line, tag or word grows with the input: a
1 MB line in a corpus gave a 1 MB error, which floods the terminal and logs
and hides the part that says what is wrong. Every message that quotes input
goes through `excerpt` (quoted, repr-like) or `shorten` (plain text).

This module imports nothing from spacy_lexner, so every layer (lexicon at the
bottom, convert, the CLI) can use it.
"""

import reprlib
from typing import Union

# About one terminal line of quoted input is enough to recognise it.
EXCERPT_LIMIT = 80
ELLIPSIS = "…"


def excerpt(value: object, limit: int = EXCERPT_LIMIT) -> str:
    """repr(value), cut to about `limit` characters.

    A cut str or bytes keeps its start and ends in "…" inside the quotes,
    followed by its full length, e.g. `'高高高…' (1,000,000 chars)`. Other
    values (lists, tuples, dicts) are abbreviated with reprlib, then cut.

    value (object): The input to quote.
    limit (int): The most characters of the repr to show (at least 8).
    RETURNS (str): The quote; at most `limit` plus about 20 characters.
    """
    limit = max(limit, 8)
    if isinstance(value, (str, bytes)):
        return _excerpt_text(value, limit)
    try:
        shown = _abbreviating_repr(limit).repr(value)
    except Exception:  # a broken __repr__, or an int past sys.get_int_max_str_digits()
        return f"<{type(value).__name__}>"
    return shown if len(shown) <= limit else shown[: limit - 1] + ELLIPSIS


def shorten(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """`text` itself (not quoted) if it has at most `limit` characters, else
    its start, "…" and its full length. For input shown without quotes, such
    as a label inside a sentence.

    text (str): The text to show.
    limit (int): The most characters to keep.
    RETURNS (str): The text, or its cut start with the length.
    """
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}{ELLIPSIS} ({len(text):,} chars)"


def _excerpt_text(value: Union[str, bytes], limit: int) -> str:
    if len(value) <= limit:
        shown = repr(value)
        if len(shown) <= limit + 2:  # +2: the quotes
            return shown
    head = value[:limit]
    shown = repr(head)
    # Escapes (\x00, \U0001f600) make the repr up to 10x longer than the
    # text: keep the share of the text that should fit, and repeat in case
    # the escapes are not spread evenly.
    while len(shown) > limit + 2 and len(head) > 1:
        keep = len(head) * (limit + 2) // len(shown)
        head = head[: max(1, min(keep, len(head) - 1))]
        shown = repr(head)
    unit = "chars" if isinstance(value, str) else "bytes"
    return f"{shown[:-1]}{ELLIPSIS}{shown[-1]} ({len(value):,} {unit})"


def _abbreviating_repr(limit: int) -> reprlib.Repr:
    # A new instance per call: a shared one would need a lock, and this
    # only runs when a message is built.
    abbreviate = reprlib.Repr()
    abbreviate.maxlevel = 3
    # Half the limit per string or number, so a tuple such as a lexicon
    # entry still shows its other members.
    abbreviate.maxstring = limit // 2
    abbreviate.maxother = limit // 2
    abbreviate.maxlong = limit // 2
    for attr in ("maxtuple", "maxlist", "maxarray", "maxdict", "maxset", "maxfrozenset", "maxdeque"):
        setattr(abbreviate, attr, 6)
    return abbreviate
