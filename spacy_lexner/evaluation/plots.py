"""Bar charts of bucketed F1 (one PNG per attribute), models side by side.

Figures are drawn with matplotlib's object API on an Agg canvas, never
through pyplot, so the report neither needs a display nor changes the
process-wide matplotlib backend of a program that imports it.
"""

from pathlib import Path
from typing import Dict, List

MISSING_MATPLOTLIB = (
    "The report's charts need matplotlib, which is not installed. "
    "Install it with: pip install 'spacy-lexner[report]'  (or: pip install matplotlib)"
)


def _require_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(MISSING_MATPLOTLIB) from err
    return Figure, FigureCanvasAgg


def bar_chart(path: Path, title: str, buckets: List[str], series: Dict[str, List[Dict]]) -> None:
    """One group of bars per bucket, one bar per model (F1 in %). ``series``:
    model name -> rows with "f", "n_gold", "n_pred"; the tick labels show the
    number of gold spans, so empty buckets are visibly empty rather than 0 F1."""
    Figure, FigureCanvasAgg = _require_matplotlib()
    fig = Figure(figsize=(max(5.0, 1.4 * len(buckets) + 2), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    n = max(1, len(series))
    width = 0.8 / n
    first = next(iter(series.values()))
    for k, (name, rows) in enumerate(series.items()):
        xs = [i - 0.4 + width * (k + 0.5) for i in range(len(buckets))]
        values = [100 * r["f"] for r in rows]
        bars = ax.bar(xs, values, width=width, label=name)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(range(len(buckets)))
    ax.set_xticklabels([f"{b}\n(n={r['n_gold']})" for b, r in zip(buckets, first)], fontsize=8)
    ax.set_ylabel("F1 (%)")
    ax.set_ylim(0, 110)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, format="png")


def write_plots(report: Dict, out_dir: Path) -> Dict[str, str]:
    """All charts of the report; returns attribute -> file name (relative to out_dir)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    charts = [
        (attr, title, [b["name"] for b in report["bucket_specs"][attr]]) for attr, title in report["attributes"].items()
    ]
    charts.append(("ecr", "Entity coverage ratio (ECR) bucket", report["ecr_buckets"]))
    for attr, title, names in charts:
        series = {m["name"]: (m["ecr_buckets"] if attr == "ecr" else m["buckets"][attr]) for m in report["models"]}
        name = f"bucket_{attr}.png"
        bar_chart(out_dir / name, title, names, series)
        files[attr] = name
    labels = sorted({label for m in report["models"] for label in m["per_type"]})
    if labels:
        empty = {"f": 0.0, "n_gold": 0, "n_pred": 0}
        series = {m["name"]: [m["per_type"].get(label, empty) for label in labels] for m in report["models"]}
        bar_chart(out_dir / "per_type.png", "F1 per entity type", labels, series)
        files["per_type"] = "per_type.png"
    return files
