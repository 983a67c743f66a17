"""Group false positives and false negatives into interpretable errors.

Within one sentence, the gold and predicted spans that are not exact matches
are joined into groups of spans that overlap (transitively). Each group is
one error:

- ``type``: one predicted and one gold span with the same boundaries and
  different labels;
- ``boundary``: predicted and gold spans overlap but boundaries differ (the
  labels may agree or not; ``same_label`` says which);
- ``missed``: a gold span that no prediction touches (a pure false negative);
- ``spurious``: a predicted span that touches no gold span (a pure false
  positive).

Every false positive and false negative is in exactly one group, so the
group sizes add up to the FP and FN counts of the scorer.
"""

from typing import Dict, List, Sequence

from .spans import EntSpan

ERROR_KINDS = ("boundary", "type", "missed", "spurious")


def _group(golds: Sequence[EntSpan], preds: Sequence[EntSpan]) -> List[tuple]:
    """Connected components of the overlap graph, as (golds, preds) pairs."""
    spans = [("g", s) for s in golds] + [("p", s) for s in preds]
    spans.sort(key=lambda x: (x[1].start, x[1].end))
    groups: List[tuple] = []
    current_end = -1
    for side, span in spans:
        # Sorted by start: a span joins the current group iff it starts before
        # the group's rightmost end (gold spans never overlap each other, nor
        # predicted ones, so chains alternate gold/pred).
        if groups and span.start < current_end:
            groups[-1][0 if side == "g" else 1].append(span)
            current_end = max(current_end, span.end)
        else:
            groups.append(([span], []) if side == "g" else ([], [span]))
            current_end = span.end
    return groups


def classify(golds: List[EntSpan], preds: List[EntSpan]) -> str:
    if not preds:
        return "missed"
    if not golds:
        return "spurious"
    if len(golds) == 1 and len(preds) == 1 and (golds[0].start, golds[0].end) == (preds[0].start, preds[0].end):
        return "type"
    return "boundary"


def context(text: str, start: int, end: int, window: int = 20) -> Dict[str, str]:
    """The group's text with ``window`` chars either side."""
    return {
        "left": text[max(0, start - window) : start],
        "span": text[start:end],
        "right": text[end : end + window],
    }


def find_errors(
    doc_index: int, text: str, golds: Sequence[EntSpan], preds: Sequence[EntSpan], window: int = 20
) -> List[Dict]:
    """The errors of one sentence. ``golds``/``preds``: all its spans; exact
    matches (same offsets and label) are not errors and are removed here."""
    gold_keys = {s.key for s in golds}
    pred_keys = {s.key for s in preds}
    wrong_golds = [s for s in golds if s.key not in pred_keys]
    wrong_preds = [s for s in preds if s.key not in gold_keys]
    errors = []
    for g, p in _group(wrong_golds, wrong_preds):
        kind = classify(g, p)
        start = min(s.start for s in g + p)
        end = max(s.end for s in g + p)
        error = {
            "kind": kind,
            "doc_index": doc_index,
            "start": start,
            "end": end,
            "gold": [s.to_dict() for s in g],
            "pred": [s.to_dict() for s in p],
            "context": context(text, start, end, window),
        }
        if kind == "boundary":
            error["same_label"] = {s.label for s in g} == {s.label for s in p}
        errors.append(error)
    return errors


def count_errors(errors: Sequence[Dict]) -> Dict[str, int]:
    counts = {kind: 0 for kind in ERROR_KINDS}
    for error in errors:
        counts[error["kind"]] += 1
    return counts
