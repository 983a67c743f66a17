"""Splitting long texts into windows the tagger handles well.

A text of at most ``size`` characters is tagged whole. A longer text is tagged
sentence by sentence (a sentence ends after 。！？!?；; or a newline), so each
window sees exactly the context it would see if the user had split the text
into sentences first. A sentence longer than ``size`` is cut into windows of
``size`` characters that overlap by ``overlap``; inside an overlap the left
window owns the first half and the right window the second half.
"""

import re
from typing import List, NamedTuple, Sequence, Tuple

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")


class Window(NamedTuple):
    start: int  # the window's text is text[start:end]
    end: int
    own_start: int  # its predictions are used for text[own_start:own_end]
    own_end: int


def clip_spans(spans: Sequence[Tuple[int, int, str]], start: int, end: int) -> List[Tuple[int, int, str]]:
    """The parts of (start, end, label) spans inside text[start:end], with
    offsets relative to start."""
    return [(max(s, start) - start, min(e, end) - start, label) for s, e, label in spans if s < end and e > start]


def split_windows(text: str, size: int, overlap: int = 0) -> List[Window]:
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"Need window size >= 1 and 0 <= overlap < size, got {size}, {overlap}.")
    if not text:
        return []
    if len(text) <= size:
        return [Window(0, len(text), 0, len(text))]
    windows: List[Window] = []
    offset = 0
    for sentence in _SENTENCE_END.split(text):
        if sentence:
            windows.extend(_hard_windows(offset, offset + len(sentence), size, overlap))
        offset += len(sentence)
    return windows


def _hard_windows(start: int, end: int, size: int, overlap: int) -> List[Window]:
    if end - start <= size:
        return [Window(start, end, start, end)]
    step = size - overlap
    bounds = []
    s = start
    while True:
        e = min(s + size, end)
        bounds.append((s, e))
        if e == end:
            break
        s += step
    windows = []
    for i, (s, e) in enumerate(bounds):
        own_start = start if i == 0 else (s + bounds[i - 1][1]) // 2
        own_end = end if i == len(bounds) - 1 else (bounds[i + 1][0] + e) // 2
        windows.append(Window(s, e, own_start, own_end))
    return windows
