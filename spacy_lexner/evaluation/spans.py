"""Character-offset entity spans, the unit every part of the report works on.

Spans are kept as character offsets into ``doc.text`` rather than token
indices, so that gold docs (one token per character) and predictions from a
pipeline with a different tokenizer (e.g. jieba words) can be compared
directly, and so that every attribute is defined at character level.
"""

from dataclasses import dataclass
from typing import Iterable, List, Optional

from spacy.tokens import Doc


@dataclass(frozen=True, order=True)
class EntSpan:
    """One entity mention: ``doc_index`` into the test set, character offsets
    ``[start, end)`` into the doc's text, its label and its text."""

    doc_index: int
    start: int
    end: int
    label: str
    text: str

    @property
    def key(self) -> tuple:
        return (self.doc_index, self.start, self.end, self.label)

    def overlaps(self, other: "EntSpan") -> bool:
        return self.doc_index == other.doc_index and self.start < other.end and other.start < self.end

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "label": self.label, "text": self.text}


def doc_spans(doc: Doc, doc_index: int, ents: Optional[Iterable] = None) -> List[EntSpan]:
    """The entities of ``doc`` (or the given spans) as EntSpans, in text order."""
    ents = doc.ents if ents is None else ents
    return sorted(EntSpan(doc_index, e.start_char, e.end_char, e.label_, e.text) for e in ents)


def has_missing_annotation(doc: Doc, start: int, end: int) -> bool:
    """True if a gold token under chars ``[start, end)`` has no NER annotation
    (``ent_iob == 0``). spaCy's NER scorer ignores predictions over such
    tokens, neither right nor wrong; the report does the same so that its
    numbers match ``spacy evaluate``."""
    span = doc.char_span(start, end, alignment_mode="expand")
    if span is None:
        return False
    return any(token.ent_iob == 0 for token in span)
