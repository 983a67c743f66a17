"""Entity coverage ratio (ECR) and expected ECR (EECR), after Fu et al.,
"Rethinking Generalization of Neural Models: A Named Entity Recognition Case
Study" (AAAI 2020).

For a test entity string e with test mentions of labels k:

    rho(e) = sum_k (#tr(e,k) / C_tr(e)) * #te(e,k) / C_te(e),  rho(e) = 0 if C_tr(e) = 0

where #tr(e,k) / #te(e,k) count the mentions of e labelled k in train / test
and C_tr(e) / C_te(e) all mentions of e. rho(e) is 1 when e always has one
label in both sets, and falls as the train and test label distributions of e
disagree. The paper splits test entities into five groups (the buckets
below). EECR aggregates rho over the test set weighted by test mentions:

    EECR = sum_e C_te(e) * rho(e) / sum_e C_te(e)

i.e. the mean rho over test *mentions* (an entity seen 5 times in test
weighs 5 times as much). The per-string (unweighted) mean is reported too,
as ``eecr_unweighted``.
"""

from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Optional, Tuple

from .attributes import TrainStats

ECR_BUCKETS: List[str] = [
    "rho=1",
    "0.5<rho<1",
    "0<rho<=0.5",
    "rho=0, seen (other label)",
    "unseen",
]


def count_test_labels(mentions: Iterable[Tuple[str, str]]) -> Dict[str, Counter]:
    """entity string -> label -> number of gold test mentions."""
    counts: Dict[str, Counter] = defaultdict(Counter)
    for text, label in mentions:
        counts[text][label] += 1
    return counts


def ecr(text: str, test_counts: Counter, stats: TrainStats) -> float:
    """rho(e) for the string ``text`` whose test mentions per label are ``test_counts``."""
    c_tr = stats.count(text)
    c_te = sum(test_counts.values())
    if c_tr == 0 or c_te == 0:
        return 0.0
    return sum(stats.count_with_label(text, label) / c_tr * n_te for label, n_te in test_counts.items()) / c_te


def ecr_bucket(rho: float, seen: bool) -> str:
    """One of ECR_BUCKETS. ``seen``: the string is an entity in train (C_tr > 0)."""
    if not seen:
        return ECR_BUCKETS[4]
    # rho is a sum of float ratios: compare to 1 with a tolerance so that
    # e.g. 1/3 + 1/3 + 1/3 lands in "rho=1".
    if rho >= 1 - 1e-9:
        return ECR_BUCKETS[0]
    if rho > 0.5:
        return ECR_BUCKETS[1]
    if rho > 0:
        return ECR_BUCKETS[2]
    return ECR_BUCKETS[3]


def ecr_table(mentions: Iterable[Tuple[str, str]], stats: TrainStats) -> Dict[str, Dict]:
    """For each distinct gold test string: rho, C_te, C_tr and its bucket."""
    table = {}
    for text, counts in count_test_labels(mentions).items():
        rho = ecr(text, counts, stats)
        c_tr = stats.count(text)
        table[text] = {
            "rho": rho,
            "c_test": sum(counts.values()),
            "c_train": c_tr,
            "test_labels": dict(counts),
            "train_labels": dict(stats.label_counts.get(text, {})),
            "bucket": ecr_bucket(rho, c_tr > 0),
        }
    return table


def eecr(table: Dict[str, Dict]) -> Dict[str, Optional[float]]:
    """EECR (weighted by test mentions) and its unweighted per-string mean."""
    n_mentions = sum(row["c_test"] for row in table.values())
    if not table:
        return {"eecr": None, "eecr_unweighted": None}
    return {
        "eecr": sum(row["rho"] * row["c_test"] for row in table.values()) / n_mentions,
        "eecr_unweighted": sum(row["rho"] for row in table.values()) / len(table),
    }


def predicted_span_ecr(text: str, label: str, table: Dict[str, Dict], stats: TrainStats) -> Tuple[float, str]:
    """rho and bucket for a predicted span, for bucketed precision.

    If the string is a gold test entity, the span takes that string's rho (the
    paper's rho is a property of the string), so a correct prediction and its
    gold span share a bucket. Otherwise (a spurious string) it is treated as a
    single test mention with the predicted label: rho = #tr(e,k) / C_tr(e).
    """
    if text in table:
        row = table[text]
        return row["rho"], row["bucket"]
    rho = ecr(text, Counter({label: 1}), stats)
    return rho, ecr_bucket(rho, stats.count(text) > 0)
