"""Interpretable evaluation for NER pipelines (``spacy-lexner report``).

- ``attributes``: character-level span attributes (entity/sentence length,
  entity and OOV density, train frequency, label consistency, lexicon);
- ``buckets``: documented bucket edges and bucketed P/R/F1;
- ``ecr``: entity coverage ratio and EECR (Fu et al., AAAI 2020);
- ``errors``: boundary / type / missed / spurious error groups;
- ``core``: runs the models and assembles the report dict;
- ``plots`` / ``render``: PNG charts and ``index.html``.
"""

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import srsly

from .buckets import DEFAULT_BUCKETS, Bucket, buckets_from_edges
from .core import ReportError, build_report, load_model, read_docs

__all__ = ["build_report", "write_report", "run_report", "load_buckets", "ReportError", "DEFAULT_BUCKETS"]


def write_report(report: Dict, out_dir: Union[str, Path], errors_per_kind: int = 10) -> Dict[str, Path]:
    """Write report.json, the chart PNGs and index.html into ``out_dir``."""
    from .plots import write_plots
    from .render import render_html

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    srsly.write_json(json_path, report)
    plots = write_plots(report, out_dir)
    html_path = out_dir / "index.html"
    html_path.write_text(render_html(report, plots, errors_per_kind), encoding="utf8")
    return {"json": json_path, "html": html_path, **{k: out_dir / v for k, v in plots.items()}}


def load_buckets(path: Union[str, Path]) -> Dict[str, List[Bucket]]:
    """Bucket overrides from a JSON file: {attribute: [e0, e1, ..., en]}, edges
    as in ``buckets_from_edges`` (null for infinity)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf8"))
    except (OSError, ValueError) as err:
        raise ReportError(
            f'Could not read bucket file {path}: {err}. Expected JSON like {{"entity_length": [0, 2, 3, 5, null]}}.'
        ) from err
    if not isinstance(data, dict):
        raise ReportError(f"Bucket file {path} must hold a JSON object mapping attributes to edge lists.")
    try:
        return {attr: buckets_from_edges(edges) for attr, edges in data.items()}
    except (TypeError, ValueError) as err:
        raise ReportError(f"Bad edges in bucket file {path}: {err}") from err


def run_report(
    model: Union[str, Path],
    test: Union[str, Path],
    train: Union[str, Path],
    output: Union[str, Path],
    *,
    compare: Optional[Union[str, Path]] = None,
    buckets: Optional[Dict[str, List[Bucket]]] = None,
    lexicon_fallback: str = "jieba",
    allow_label_mismatch: bool = False,
    errors_per_kind: int = 10,
    progress: bool = True,
) -> Dict:
    """Load the pipeline(s) and data, build the report and write it to ``output``."""
    paths: Sequence = [model] + ([compare] if compare is not None else [])
    nlps = [load_model(p) for p in paths]
    names = [Path(str(p)).name or str(p) for p in paths]
    if len(names) == 2 and names[0] == names[1]:
        names = [str(p) for p in paths]
        if names[0] == names[1]:  # the same pipeline twice: names must differ in the report
            names[1] += " (compare)"
    test_docs = read_docs(test, nlps[0], "test")
    train_docs = read_docs(train, nlps[0], "train")
    report = build_report(
        list(zip(names, nlps)),
        test_docs,
        train_docs,
        buckets=buckets,
        lexicon_fallback=lexicon_fallback,
        allow_label_mismatch=allow_label_mismatch,
        progress=progress,
    )
    report["data"]["test_path"] = str(test)
    report["data"]["train_path"] = str(train)
    for m, path in zip(report["models"], paths):
        m["path"] = str(path)
    report["files"] = {k: str(v) for k, v in write_report(report, output, errors_per_kind).items()}
    return report
