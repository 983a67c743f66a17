"""Bucket definitions and bucketed span-level precision, recall and F1.

A bucket is an interval of attribute values. Defaults are fixed, documented
edges (4 buckets per attribute; 2 for the yes/no lexicon attribute) rather
than quantiles, so that reports of different models, or of the same model on
dev and test, are bucketed identically and can be compared bar by bar.

Bucketed scores: a predicted span counts towards the precision of the bucket
of *its own* attribute value, a gold span towards the recall of its bucket.
A true positive is a predicted span equal to a gold span (same characters and
label); both then have the same attribute values, so the pair falls in one
bucket.
"""

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set

INF = math.inf


@dataclass(frozen=True)
class Bucket:
    """The values v with low < v < high, where ``low_closed`` / ``high_closed``
    turn the strict bounds into <=."""

    name: str
    low: float
    high: float
    low_closed: bool = True
    high_closed: bool = True

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def to_dict(self) -> dict:
        # JSON has no infinity: write it as null.
        return {
            "name": self.name,
            "low": None if math.isinf(self.low) else self.low,
            "high": None if math.isinf(self.high) else self.high,
            "low_closed": self.low_closed,
            "high_closed": self.high_closed,
        }


def buckets_from_edges(edges: Sequence[float]) -> List[Bucket]:
    """Buckets [e0, e1], (e1, e2], ..., (e_{n-1}, e_n] from n+1 increasing
    edges (pass ``float("inf")`` or None as the last edge for an open end).
    This is the convention of ``--buckets`` files."""
    values = [INF if e is None else float(e) for e in edges]
    if len(values) < 2 or any(b < a for a, b in zip(values, values[1:])):
        raise ValueError(
            f"Bucket edges must be at least 2 non-decreasing numbers, got {list(edges)}. "
            "Example: [0, 2, 3, 5, null] gives [0,2], (2,3], (3,5], (5,inf)."
        )
    buckets = []
    for i, (low, high) in enumerate(zip(values, values[1:])):
        buckets.append(Bucket(_interval_name(low, high, i == 0), low, high, low_closed=i == 0))
    return buckets


def _interval_name(low: float, high: float, low_closed: bool) -> str:
    def fmt(x: float) -> str:
        return "inf" if math.isinf(x) else f"{x:g}"

    if low == high:
        return f"={fmt(low)}"
    return f"{'[' if low_closed else '('}{fmt(low)},{fmt(high)}{')' if math.isinf(high) else ']'}"


# Default buckets. Entity length: 2 and 3 chars are typical Chinese person
# names, 4-5 most organisation and place names. Sentence length: Weibo
# messages average ~55 chars, Resume sentences ~32. Densities are per char.
DEFAULT_BUCKETS: Dict[str, List[Bucket]] = {
    "entity_length": [
        Bucket("1-2", 1, 2),
        Bucket("3", 3, 3),
        Bucket("4-5", 4, 5),
        Bucket(">=6", 6, INF),
    ],
    "sentence_length": [
        Bucket("<=20", 0, 20),
        Bucket("21-40", 21, 40),
        Bucket("41-80", 41, 80),
        Bucket(">80", 81, INF),
    ],
    "entity_density": [
        Bucket("<=0.02", 0, 0.02),
        Bucket("(0.02,0.05]", 0.02, 0.05, low_closed=False),
        Bucket("(0.05,0.1]", 0.05, 0.1, low_closed=False),
        Bucket(">0.1", 0.1, INF, low_closed=False),
    ],
    "oov_density": [
        Bucket("0", 0, 0),
        Bucket("(0,0.05]", 0, 0.05, low_closed=False),
        Bucket("(0.05,0.15]", 0.05, 0.15, low_closed=False),
        Bucket(">0.15", 0.15, INF, low_closed=False),
    ],
    "train_frequency": [
        Bucket("0", 0, 0),
        Bucket("1-2", 1, 2),
        Bucket("3-9", 3, 9),
        Bucket(">=10", 10, INF),
    ],
    "label_consistency": [
        Bucket("0", 0, 0),  # includes strings unseen in train (see the ECR buckets)
        Bucket("(0,0.5]", 0, 0.5, low_closed=False),
        Bucket("(0.5,1)", 0.5, 1, low_closed=False, high_closed=False),
        Bucket("1", 1, 1),
    ],
    "lexicon_coverage": [Bucket("no", 0, 0), Bucket("yes", 1, 1)],
}


def assign_bucket(value: Optional[float], buckets: Sequence[Bucket]) -> Optional[str]:
    """The name of the first bucket holding ``value``; None for n/a values or
    values outside every bucket (e.g. below the first edge)."""
    if value is None:
        return None
    for bucket in buckets:
        if value in bucket:
            return bucket.name
    return None


@dataclass
class PRF:
    """Counts and scores in spaCy's PRFScore convention (the 1e-100 guards make
    empty cells score 0 rather than raise), so values match ``spacy evaluate``."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp + 1e-100)

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn + 1e-100)

    @property
    def fscore(self) -> float:
        p, r = self.precision, self.recall
        return 2 * (p * r) / (p + r + 1e-100)

    def to_dict(self) -> dict:
        return {
            "p": self.precision,
            "r": self.recall,
            "f": self.fscore,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "n_pred": self.tp + self.fp,
            "n_gold": self.tp + self.fn,
        }


def bucket_scores(
    gold_buckets: Iterable[Optional[str]],
    gold_hit: Iterable[bool],
    pred_buckets: Iterable[Optional[str]],
    pred_hit: Iterable[bool],
    names: Sequence[str],
) -> Dict[str, PRF]:
    """Per bucket counts. ``gold_hit[i]``: gold span i was predicted exactly;
    ``pred_hit[j]``: predicted span j equals a gold span. Spans with bucket
    None (n/a) are left out."""
    scores = {name: PRF() for name in names}
    for bucket, hit in zip(gold_buckets, gold_hit):
        if bucket is not None and not hit:
            scores[bucket].fn += 1
    for bucket, hit in zip(pred_buckets, pred_hit):
        if bucket is None:
            continue
        if hit:
            scores[bucket].tp += 1
        else:
            scores[bucket].fp += 1
    return scores


def check_bucket_names(buckets: Dict[str, Sequence[Bucket]]) -> None:
    for attr, specs in buckets.items():
        seen: Set[str] = set()
        for bucket in specs:
            if bucket.name in seen:
                raise ValueError(f"Duplicate bucket name '{bucket.name}' for attribute '{attr}'.")
            seen.add(bucket.name)
