"""Span attributes for bucketed evaluation, all at character level.

Each attribute maps one entity span (gold or predicted) in its test sentence
to a number. Sentence-level attributes (sentence length, entity density, OOV
density) are computed on the *gold* doc for gold and predicted spans alike:
they describe the sentence, and a prediction must land in the same bucket as
the gold span it matches, or bucketed precision and recall would not be
comparable. Label-dependent attributes (label consistency) use the span's own
label, so a predicted span is bucketed by the label the model gave it.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Optional, Set

from spacy.tokens import Doc

from .spans import EntSpan


@dataclass
class TrainStats:
    """What the report needs to know about the training set.

    chars: every character of every training text.
    label_counts: entity string -> label -> number of gold mentions in train.
    """

    chars: Set[str] = field(default_factory=set)
    label_counts: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    @classmethod
    def from_docs(cls, docs: Iterable[Doc]) -> "TrainStats":
        stats = cls()
        for doc in docs:
            stats.chars.update(doc.text)
            for ent in doc.ents:
                stats.label_counts[ent.text][ent.label_] += 1
        return stats

    def count(self, text: str) -> int:
        """C_tr(e): mentions of the string ``text`` in train, any label."""
        counts = self.label_counts.get(text)
        return sum(counts.values()) if counts else 0

    def count_with_label(self, text: str, label: str) -> int:
        """#tr(e, k): mentions of ``text`` labelled ``label`` in train."""
        counts = self.label_counts.get(text)
        return counts[label] if counts else 0


@dataclass
class SentenceInfo:
    """Per test doc values shared by all its spans (computed once)."""

    length: int
    n_gold_ents: int
    n_oov_chars: int

    @classmethod
    def from_doc(cls, doc: Doc, stats: TrainStats) -> "SentenceInfo":
        text = doc.text
        # Whitespace is never "unseen": it carries no lexical information, and
        # converted Chinese corpora have none inside sentences anyway.
        n_oov = sum(1 for c in text if not c.isspace() and c not in stats.chars)
        return cls(length=len(text), n_gold_ents=len(doc.ents), n_oov_chars=n_oov)


def entity_length(span: EntSpan, sent: SentenceInfo, stats: TrainStats, lexicon: Optional[Any]) -> float:
    """Entity length in characters."""
    return float(span.end - span.start)


def sentence_length(span: EntSpan, sent: SentenceInfo, stats: TrainStats, lexicon: Optional[Any]) -> float:
    """Length of the span's sentence (the test Doc) in characters."""
    return float(sent.length)


def entity_density(span: EntSpan, sent: SentenceInfo, stats: TrainStats, lexicon: Optional[Any]) -> float:
    """Gold entities in the sentence per character of the sentence."""
    return sent.n_gold_ents / sent.length if sent.length else 0.0


def oov_density(span: EntSpan, sent: SentenceInfo, stats: TrainStats, lexicon: Optional[Any]) -> float:
    """Share of the sentence's characters never seen in any training text."""
    return sent.n_oov_chars / sent.length if sent.length else 0.0


def train_frequency(span: EntSpan, sent: SentenceInfo, stats: TrainStats, lexicon: Optional[Any]) -> float:
    """How often the entity string is a gold entity in train, any label."""
    return float(stats.count(span.text))


def label_consistency(span: EntSpan, sent: SentenceInfo, stats: TrainStats, lexicon: Optional[Any]) -> float:
    """eCon: of the train mentions of the string, the share with this span's
    label; 0 for strings never seen as an entity in train."""
    total = stats.count(span.text)
    return stats.count_with_label(span.text, span.label) / total if total else 0.0


def lexicon_coverage(span: EntSpan, sent: SentenceInfo, stats: TrainStats, lexicon: Optional[Any]) -> Optional[float]:
    """1 if the entity string is a word of the lexicon, 0 if not, None (n/a)
    when there is no lexicon."""
    if lexicon is None:
        return None
    return 1.0 if span.text in lexicon else 0.0


AttributeFn = Callable[[EntSpan, SentenceInfo, TrainStats, object], Optional[float]]

# name -> (title for tables and charts, function). The order is the report's order.
ATTRIBUTES: Dict[str, tuple] = {
    "entity_length": ("Entity length (chars)", entity_length),
    "sentence_length": ("Sentence length (chars)", sentence_length),
    "entity_density": ("Entity density (gold entities per char)", entity_density),
    "oov_density": ("OOV density (share of chars unseen in train)", oov_density),
    "train_frequency": ("Entity frequency in train", train_frequency),
    "label_consistency": ("Label consistency in train (eCon)", label_consistency),
    "lexicon_coverage": ("Entity string in lexicon", lexicon_coverage),
}


def span_attributes(
    span: EntSpan, sent: SentenceInfo, stats: TrainStats, lexicon: Optional[Any] = None
) -> Dict[str, Optional[float]]:
    """All attribute values of one span. ``lexicon`` is anything that supports
    ``word in lexicon`` (a ``spacy_lexner.Lexicon``, a set), or None."""
    return {name: fn(span, sent, stats, lexicon) for name, (_, fn) in ATTRIBUTES.items()}
