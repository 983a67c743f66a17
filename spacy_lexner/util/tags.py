"""The one tag codec: spans <-> BIOES / BMES / BIO tags, for the decoders
(tag ids, TagScheme) and the corpus converters (tag strings) alike, with one
repair rule for ill-formed tag sequences (decode_parts)."""

import re
from functools import lru_cache
from typing import Iterable, List, Sequence, Tuple

import numpy

from .excerpt import excerpt

Span = Tuple[int, int, str]
SCHEMES = ("BIOES", "BIO")
# What tag strings may use; BMES is BIOES with M for I.
STRING_SCHEMES = ("BIOES", "BMES", "BIO")
_TAG = re.compile(r"([BIMES])-(\S+)\Z")


@lru_cache(maxsize=4096)  # a corpus has few distinct tags and millions of lines
def parse_tag(tag: str) -> Tuple[str, str]:
    """Split a tag into (prefix, label); prefix is one of B I E S O, with M
    read as I.

    tag (str): e.g. "B-PER", "M-ORG", "O".
    RETURNS (Tuple[str, str]): ("O", "") for "O".
    """
    if tag == "O":
        return "O", ""
    match = _TAG.match(tag)
    if match is None:
        raise ValueError(
            f"unknown tag {excerpt(tag)}: expected 'O' or B-, I-, M-, E-, S- followed by a label (BIO, BIOES or BMES)"
        )
    prefix, label = match.groups()
    return ("I" if prefix == "M" else prefix), label


def span_tags(n: int, spans: Iterable[Span], scheme: str = "BIOES") -> List[str]:
    """Tag strings for a sequence of length n with (start, end, label) spans
    (not checked: later spans overwrite earlier ones where they overlap).

    scheme: "BIOES", "BMES" (M instead of I) or "BIO".
    """
    if scheme not in STRING_SCHEMES:
        raise ValueError(f"unknown tag scheme {excerpt(scheme)}: use one of {STRING_SCHEMES}")
    inside = "M" if scheme == "BMES" else "I"
    tags = ["O"] * n
    for start, end, label in spans:
        if scheme != "BIO" and end - start == 1:
            tags[start] = f"S-{label}"
            continue
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"{inside}-{label}"
        if scheme != "BIO":
            tags[end - 1] = f"E-{label}"
    return tags


def tags_to_spans(tags: Sequence[str]) -> Tuple[List[Span], List[int]]:
    """Spans of BIO / BIOES / BMES tag strings, and the positions of the
    tags that had to be repaired (see decode_parts)."""
    return decode_parts(parse_tag(tag) for tag in tags)


class TagScheme:
    """The tag inventory for a label set, e.g. O, B-PER, I-PER, E-PER, S-PER.

    Tag 0 is always "O". The order is deterministic (labels sorted), so the
    tag ids of a saved model are reproducible from its labels.
    """

    def __init__(self, labels: Iterable[str], scheme: str = "BIOES") -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"Unknown tag scheme '{scheme}'. Use one of {SCHEMES}.")
        self.scheme = scheme
        self.labels = sorted(set(labels))
        prefixes = "BIES" if scheme == "BIOES" else "BI"
        self.tags = ["O"] + [f"{p}-{label}" for label in self.labels for p in prefixes]
        self.tag_to_id = {tag: i for i, tag in enumerate(self.tags)}

    def __len__(self) -> int:
        return len(self.tags)

    def _parts(self, tag: str) -> Tuple[str, str]:
        return ("O", "") if tag == "O" else (tag[0], tag[2:])

    def allowed_transitions(self) -> numpy.ndarray:
        """Boolean matrix [from, to]: which tag may follow which."""
        n = len(self.tags)
        allowed = numpy.zeros((n, n), dtype=bool)
        for i, prev in enumerate(self.tags):
            p_prefix, p_label = self._parts(prev)
            for j, tag in enumerate(self.tags):
                prefix, label = self._parts(tag)
                if p_prefix in ("B", "I") and self.scheme == "BIOES":
                    allowed[i, j] = prefix in ("I", "E") and label == p_label
                elif prefix in ("I", "E") and self.scheme == "BIOES":
                    allowed[i, j] = False
                elif prefix == "I":  # BIO: I continues an open entity of its type
                    allowed[i, j] = p_prefix in ("B", "I") and label == p_label
                else:
                    allowed[i, j] = True
        return allowed

    def allowed_starts(self) -> numpy.ndarray:
        return numpy.array([self._parts(t)[0] in ("O", "B", "S") for t in self.tags])

    def allowed_ends(self) -> numpy.ndarray:
        if self.scheme == "BIO":
            return numpy.ones(len(self.tags), dtype=bool)
        return numpy.array([self._parts(t)[0] in ("O", "E", "S") for t in self.tags])

    def encode(self, n: int, spans: Iterable[Span]) -> numpy.ndarray:
        """Tag ids for a sequence of length n with the given (start, end, label) spans."""
        tag_to_id = self.tag_to_id
        return numpy.array([tag_to_id[tag] for tag in span_tags(n, spans, self.scheme)], dtype="int64")

    def decode(self, ids: Sequence[int]) -> List[Span]:
        """Spans from tag ids. Ill-formed runs (possible only when sequences are
        stitched from windows) are repaired as in `decode_parts`."""
        spans, _ = decode_parts(self._parts(self.tags[int(tag_id)]) for tag_id in ids)
        return spans


def spans_outside(spans: List[Span], fixed: Sequence[Span]) -> List[Span]:
    """The spans that overlap none of the fixed (preset) spans. A decoder
    constrained to keep fixed spans returns them among its spans; the pipes
    keep the presets themselves and add only these."""
    if not fixed:
        return spans
    return [s for s in spans if not any(s[0] < f[1] and f[0] < s[1] for f in fixed)]


def decode_parts(parts: Iterable[Tuple[str, str]]) -> Tuple[List[Span], List[int]]:
    """Spans from (prefix, label) pairs, prefixes B/I/E/S/O (M read as I
    beforehand), and the positions of the tags that had to be repaired.

    The one repair rule, shared by the converters and the decoders: an I/E
    that does not continue an open entity of its type opens a new one, and an
    entity left open at the end is closed there.
    """
    spans: List[Span] = []
    repairs: List[int] = []
    start, label, n = -1, "", 0
    for i, (prefix, tag_label) in enumerate(parts):
        n = i + 1
        continues = start >= 0 and prefix in ("I", "E") and tag_label == label
        if start >= 0 and not continues:
            spans.append((start, i, label))
            start = -1
        if prefix == "O":
            continue
        if not continues:
            if prefix in ("I", "E"):
                repairs.append(i)
            start, label = i, tag_label
        if prefix in ("E", "S"):
            spans.append((start, i + 1, label))
            start = -1
    if start >= 0:
        spans.append((start, n, label))
    return spans, repairs
