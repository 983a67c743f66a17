"""Build the evaluation report: run the model(s), score, bucket, group errors.

The result is a plain dict (written as ``report.json``); plots and the HTML
page are rendered from that dict alone, so they can be regenerated without
re-running the models.
"""

import random
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from wasabi import msg

from .attributes import ATTRIBUTES, SentenceInfo, TrainStats, span_attributes
from .buckets import DEFAULT_BUCKETS, PRF, Bucket, assign_bucket, bucket_scores, check_bucket_names
from .ecr import ECR_BUCKETS, ecr_table, eecr, predicted_span_ecr
from .errors import ERROR_KINDS, count_errors, find_errors
from .spans import EntSpan, doc_spans, has_missing_annotation

PathLike = Union[str, Path]


class ReportError(ValueError):
    """The inputs cannot be evaluated together (the message says why and how to fix it)."""


def read_docs(path: PathLike, nlp: Language, what: str) -> List[Doc]:
    path = Path(path)
    if not path.exists():
        raise ReportError(
            f"{what} file not found: {path}. Convert a corpus first, e.g. `spacy-lexner convert IN OUT --format weibo`."
        )
    try:
        return list(DocBin().from_disk(path).get_docs(nlp.vocab))
    except Exception as err:  # DocBin raises several types for a non-DocBin file
        raise ReportError(
            f"Could not read {what} file {path} as a .spacy DocBin ({err}). "
            "Pass a file written by `spacy-lexner convert` or `spacy convert`."
        ) from err


def model_labels(nlp: Language) -> Set[str]:
    """Entity labels of the pipes that write ``doc.ents``."""
    labels: Set[str] = set()
    found = False
    for name, pipe in nlp.pipeline:
        if "doc.ents" in nlp.get_pipe_meta(name).assigns and hasattr(pipe, "labels"):
            found = True
            labels.update(pipe.labels)
    if not found:
        raise ReportError(
            f"The pipeline {nlp.meta.get('name', '')!r} has no component that writes doc.ents "
            f"(components: {nlp.pipe_names}). Pass a trained NER pipeline, e.g. one with "
            "lexner_tagger, crf_ner or ner."
        )
    return labels


def check_labels(model: Set[str], data: Set[str], model_name: str, allow_mismatch: bool) -> List[str]:
    """Raise if the data has labels the model cannot predict; return the model
    labels absent from the data (not an error: a small test set may lack a rare type)."""
    unknown = sorted(data - model)
    if unknown:
        text = (
            f"The labels of model {model_name} and of the test data differ: the data has "
            f"{unknown}, which the model cannot predict.\n"
            f"  model labels: {sorted(model)}\n  data labels:  {sorted(data)}\n"
            "Evaluate on data converted with the same tag scheme as the training data "
            "(e.g. Weibo's PER.NAM, not PER), or pass --allow-label-mismatch to score anyway."
        )
        if not allow_mismatch:
            raise ReportError(text)
        msg.warn(text)
    return sorted(model - data)


def predict(nlp: Language, gold_docs: Sequence[Doc], name: str, progress: bool = True) -> List[Doc]:
    """Run the pipeline on the gold texts, as ``spacy evaluate`` does
    (``nlp.make_doc(text)``, then every pipe, batch size ``nlp.batch_size``)."""
    from tqdm import tqdm

    docs = (nlp.make_doc(doc.text) for doc in gold_docs)
    out = []
    with tqdm(
        total=len(gold_docs), desc=f"Predicting with {name}", unit="doc", disable=not progress, file=sys.stderr
    ) as bar:
        for doc in nlp.pipe(docs, batch_size=nlp.batch_size):
            out.append(doc)
            bar.update(1)
    return out


def find_lexicon(nlp: Language, fallback: str) -> Tuple[Optional[object], str]:
    """The lexicon of the pipeline's first component with a ``.lexicon``
    (lexner_tagger), else jieba's (``fallback="jieba"``) or none (``"none"``)."""
    for name, pipe in nlp.pipeline:
        lexicon = getattr(pipe, "lexicon", None)
        if lexicon is not None and hasattr(lexicon, "__contains__"):
            return lexicon, f"pipeline component '{name}' ({len(lexicon)} words)"
    if fallback == "jieba":
        from ..lexicon import Lexicon

        lexicon = Lexicon.from_jieba()
        return lexicon, f"jieba dictionary (fallback: no pipe has a lexicon; {len(lexicon)} words)"
    if fallback == "none":
        return None, "none (n/a: no pipe has a lexicon and the fallback is off)"
    raise ReportError(f"lexicon fallback must be 'jieba' or 'none', got {fallback!r}.")


def score_model(
    name: str,
    gold_docs: Sequence[Doc],
    pred_docs: Sequence[Doc],
    gold_spans: Sequence[List[EntSpan]],
    gold_info: Sequence[Dict],
    sentences: Sequence[SentenceInfo],
    stats: TrainStats,
    lexicon: Optional[Any],
    ecr_rows: Dict[str, Dict],
    buckets: Dict[str, List[Bucket]],
) -> Dict:
    """Everything model-specific: per-type scores, bucketed scores, errors."""
    per_type: Dict[str, PRF] = {}
    gold_hit: List[bool] = []
    pred_records: List[Tuple[EntSpan, bool]] = []
    errors: List[Dict] = []
    for i, (gold, pred) in enumerate(zip(gold_docs, pred_docs)):
        if pred.text != gold.text:
            raise ReportError(
                f"Doc {i}: the pipeline changed the text ({gold.text[:30]!r} -> "
                f"{pred.text[:30]!r}); the report needs text-preserving pipelines."
            )
        if not gold.has_annotation("ENT_IOB"):
            # spaCy's NER scorer skips such docs entirely; so do we.
            continue
        golds = gold_spans[i]
        gold_keys = {s.key for s in golds}
        # spaCy's scorer counts each predicted label even if all its spans are ignored.
        preds = []
        for span in doc_spans(pred, i):
            per_type.setdefault(span.label, PRF())
            if not has_missing_annotation(gold, span.start, span.end):
                preds.append(span)
        pred_keys = {s.key for s in preds}
        for span in preds:
            hit = span.key in gold_keys
            if hit:
                per_type[span.label].tp += 1
            else:
                per_type[span.label].fp += 1
            pred_records.append((span, hit))
        for span in golds:
            hit = span.key in pred_keys
            if not hit:
                per_type.setdefault(span.label, PRF()).fn += 1
            gold_hit.append(hit)
        errors.extend(find_errors(i, gold.text, golds, preds))
    # gold_info is in the same order as the gold spans of annotated docs.
    annotated = [g for g in gold_info if g["annotated"]]
    total = PRF()
    for prf in per_type.values():
        total.tp += prf.tp
        total.fp += prf.fp
        total.fn += prf.fn

    pred_attrs = []
    for span, hit in pred_records:
        values = span_attributes(span, sentences[span.doc_index], stats, lexicon)
        _, values["ecr_bucket"] = predicted_span_ecr(span.text, span.label, ecr_rows, stats)
        pred_attrs.append(values)
    pred_hits = [hit for _, hit in pred_records]

    bucketed = {}
    for attr, specs in buckets.items():
        names = [b.name for b in specs]
        scores = bucket_scores(
            [assign_bucket(g["attributes"][attr], specs) for g in annotated],
            gold_hit,
            [assign_bucket(v[attr], specs) for v in pred_attrs],
            pred_hits,
            names,
        )
        bucketed[attr] = [{"bucket": n, **scores[n].to_dict()} for n in names]
    ecr_scores = bucket_scores(
        [g["ecr_bucket"] for g in annotated],
        gold_hit,
        [v["ecr_bucket"] for v in pred_attrs],
        pred_hits,
        ECR_BUCKETS,
    )
    return {
        "name": name,
        "overall": total.to_dict(),
        "per_type": {label: per_type[label].to_dict() for label in sorted(per_type)},
        "buckets": bucketed,
        "ecr_buckets": [{"bucket": n, **ecr_scores[n].to_dict()} for n in ECR_BUCKETS],
        "error_counts": count_errors(errors),
        "errors": errors,
        "gold_hit": gold_hit,
    }


def build_report(
    models: Sequence[Tuple[str, Language]],
    test_docs: Sequence[Doc],
    train_docs: Iterable[Doc],
    *,
    buckets: Optional[Dict[str, List[Bucket]]] = None,
    lexicon_fallback: str = "jieba",
    allow_label_mismatch: bool = False,
    progress: bool = True,
    pred_docs: Optional[Sequence[Sequence[Doc]]] = None,
) -> Dict:
    """The report as a JSON-serialisable dict.

    models: (display name, pipeline) pairs; the first one's lexicon is used for
        the lexicon-coverage attribute of every model, so that all models are
        bucketed identically.
    test_docs / train_docs: gold docs (train is only read for statistics).
    buckets: attribute -> buckets, overriding DEFAULT_BUCKETS per attribute.
    pred_docs: predictions per model, to skip running the pipelines (tests).
    """
    specs = dict(DEFAULT_BUCKETS)
    specs.update(buckets or {})
    unknown = sorted(set(specs) - set(ATTRIBUTES))
    if unknown:
        raise ReportError(f"Unknown bucket attribute(s) {unknown}; use {sorted(ATTRIBUTES)}.")
    check_bucket_names(specs)
    if not models:
        raise ReportError("No model to evaluate.")
    data_labels = {ent.label_ for doc in test_docs for ent in doc.ents}
    label_info = {"data": sorted(data_labels), "models": {}}
    for name, nlp in models:
        labels = model_labels(nlp)
        missing = check_labels(labels, data_labels, name, allow_label_mismatch)
        label_info["models"][name] = {"labels": sorted(labels), "absent_from_data": missing}
        if missing:
            msg.warn(f"Model {name} has labels absent from the test data: {missing}")

    stats = TrainStats.from_docs(train_docs)
    lexicon, lexicon_source = find_lexicon(models[0][1], lexicon_fallback)
    sentences = [SentenceInfo.from_doc(doc, stats) for doc in test_docs]
    gold_spans = [doc_spans(doc, i) for i, doc in enumerate(test_docs)]
    annotated = [doc.has_annotation("ENT_IOB") for doc in test_docs]
    ecr_rows = ecr_table(
        ((s.text, s.label) for i, spans in enumerate(gold_spans) if annotated[i] for s in spans), stats
    )
    gold_info = []
    for i, spans in enumerate(gold_spans):
        for span in spans:
            values = span_attributes(span, sentences[i], stats, lexicon)
            row = ecr_rows.get(span.text)
            gold_info.append(
                {
                    "doc_index": i,
                    **span.to_dict(),
                    "annotated": annotated[i],
                    "attributes": values,
                    "buckets": {a: assign_bucket(values[a], specs[a]) for a in specs},
                    "ecr": row["rho"] if row else None,
                    "ecr_bucket": row["bucket"] if row else None,
                }
            )

    results = []
    for m, (name, nlp) in enumerate(models):
        preds = list(pred_docs[m]) if pred_docs is not None else predict(nlp, test_docs, name, progress)
        results.append(
            score_model(name, test_docs, preds, gold_spans, gold_info, sentences, stats, lexicon, ecr_rows, specs)
        )
    for result in results:
        hits = iter(result.pop("gold_hit"))
        for g in gold_info:
            if g["annotated"]:
                g.setdefault("found_by", {})[result["name"]] = next(hits)

    ecr_counts = {b: 0 for b in ECR_BUCKETS}
    for g in gold_info:
        if g["ecr_bucket"] is not None:
            ecr_counts[g["ecr_bucket"]] += 1
    return {
        "data": {
            "n_docs": len(test_docs),
            "n_docs_annotated": sum(annotated),
            "n_gold": sum(len(s) for s in gold_spans),
            "n_train_entity_strings": len(stats.label_counts),
            "labels": label_info,
            "lexicon": lexicon_source,
            "eecr": eecr(ecr_rows),
            "ecr_bucket_mentions": ecr_counts,
        },
        "attributes": {a: ATTRIBUTES[a][0] for a in specs},
        "bucket_specs": {a: [b.to_dict() for b in specs[a]] for a in specs},
        "ecr_buckets": list(ECR_BUCKETS),
        "error_kinds": list(ERROR_KINDS),
        "models": results,
        "entities": gold_info,
        "ecr_table": ecr_rows,
        "texts": [doc.text for doc in test_docs],
    }


def sample_errors(errors: Sequence[Dict], per_kind: int, seed: int = 0) -> Dict[str, List[Dict]]:
    """Up to ``per_kind`` errors of each kind, sampled reproducibly, in text order."""
    rng = random.Random(seed)
    out = {}
    for kind in ERROR_KINDS:
        items = [e for e in errors if e["kind"] == kind]
        chosen = rng.sample(items, per_kind) if len(items) > per_kind else items
        out[kind] = sorted(chosen, key=lambda e: (e["doc_index"], e["start"]))
    return out


def load_model(path: PathLike) -> Language:
    try:
        return spacy.load(path)
    except OSError as err:
        raise ReportError(
            f"Could not load the pipeline {path}: {err}. Pass a directory written "
            "by `spacy train` (e.g. training/model-best) or an installed package name."
        ) from err
