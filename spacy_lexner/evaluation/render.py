"""Render the report dict as a self-describing ``index.html``.

Every string that comes from data (entity text, labels, model names) is
escaped; entity markup comes from displaCy (``style="ent"``, ``manual=True``
on the error's context window), which escapes the text itself. The page has
no scripts and links only the chart PNGs next to it.
"""

import html
from typing import Any, Callable, Dict, List, Optional

from spacy import displacy

from .core import sample_errors

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.error { border-left: 4px solid #d66; padding: 0.2em 0.8em; margin: 0.6em 0; }
.side { font-size: 0.8em; color: #666; margin: 0.2em 0 0; }
.note { color: #555; font-size: 0.9em; }
"""

_PALETTE = [
    "#7aecec",
    "#bfeeb7",
    "#feca74",
    "#ff9561",
    "#aa9cfc",
    "#c887fb",
    "#9cc9cc",
    "#ffeb80",
    "#ff8197",
    "#f0d0ff",
    "#bfe1d9",
    "#e4e7d2",
]

_ERROR_TEXT = {
    "boundary": "Boundary errors: predicted and gold spans overlap with different boundaries.",
    "type": "Type errors: right boundaries, wrong label.",
    "missed": "Missed: gold entities that no prediction touches (false negatives).",
    "spurious": "Spurious: predictions that touch no gold entity (false positives).",
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def _table(header: List[str], rows: List[List]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def _bucket_table(names: List[str], models: List[Dict], key: Callable[[Dict], Any]) -> str:
    header = ["bucket", "gold"]
    for m in models:
        header += [f"{m['name']} pred", f"{m['name']} P", f"{m['name']} R", f"{m['name']} F1"]
    rows = []
    for i, name in enumerate(names):
        row = [name, key(models[0])[i]["n_gold"]]
        for m in models:
            r = key(m)[i]
            row += [r["n_pred"], _pct(r["p"]), _pct(r["r"]), _pct(r["f"])]
        rows.append(row)
    return _table(header, rows)


def _displacy(text: str, offset: int, spans: List[Dict], colors: Dict[str, str]) -> str:
    ents = [{"start": s["start"] - offset, "end": s["end"] - offset, "label": s["label"]} for s in spans]
    return displacy.render(
        [{"text": text, "ents": ents, "title": None}],
        style="ent",
        manual=True,
        page=False,
        jupyter=False,
        options={"colors": colors},
    )


def render_error(error: Dict, colors: Dict[str, str]) -> str:
    ctx = error["context"]
    text = ctx["left"] + ctx["span"] + ctx["right"]
    offset = error["start"] - len(ctx["left"])
    extra = ""
    if error["kind"] == "boundary":
        extra = " (same label)" if error.get("same_label") else " (label differs too)"
    return (
        f'<div class="error"><p class="side">doc {error["doc_index"]}, chars '
        f"{error['start']}-{error['end']}{_e(extra)} &mdash; gold:</p>"
        f"{_displacy(text, offset, error['gold'], colors)}"
        f'<p class="side">predicted:</p>{_displacy(text, offset, error["pred"], colors)}</div>\n'
    )


def render_html(report: Dict, plots: Dict[str, str], errors_per_kind: int = 10) -> str:
    models = report["models"]
    data = report["data"]
    labels = sorted(set(data["labels"]["data"]) | {label for m in models for label in m["per_type"]})
    colors = {label: _PALETTE[i % len(_PALETTE)] for i, label in enumerate(labels)}
    names = ", ".join(m["name"] for m in models)
    parts = [
        '<!DOCTYPE html>\n<html lang="zh">\n<head>\n<meta charset="utf-8">\n',
        # An empty icon stops browsers requesting /favicon.ico (a 404 in the console).
        '<link rel="icon" href="data:,">\n',
        f"<title>NER report: {_e(names)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
        f"<h1>NER evaluation report</h1>\n<p>Models: {_e(names)}. Test set: {data['n_docs']} docs, "
        f"{data['n_gold']} gold entities. Lexicon for the coverage attribute: {_e(data['lexicon'])}.</p>\n",
        "<h2>Overall</h2>\n",
        _table(
            ["model", "P", "R", "F1", "TP", "FP", "FN"],
            [
                [
                    m["name"],
                    _pct(m["overall"]["p"]),
                    _pct(m["overall"]["r"]),
                    _pct(m["overall"]["f"]),
                    m["overall"]["tp"],
                    m["overall"]["fp"],
                    m["overall"]["fn"],
                ]
                for m in models
            ],
        ),
        "<h2>Per entity type</h2>\n",
    ]
    header = ["type"]
    for m in models:
        header += [f"{m['name']} P", f"{m['name']} R", f"{m['name']} F1", f"{m['name']} gold"]
    rows = []
    for label in labels:
        row = [label]
        for m in models:
            r = m["per_type"].get(label)
            row += [_pct(r["p"]), _pct(r["r"]), _pct(r["f"]), r["n_gold"]] if r else ["n/a"] * 4
        rows.append(row)
    parts.append(_table(header, rows))
    if "per_type" in plots:
        parts.append(f'<img src="{_e(plots["per_type"])}" alt="F1 per entity type">\n')

    parts.append(
        '<h2>Bucketed F1</h2>\n<p class="note">Precision counts predicted spans by their own '
        "attribute value, recall counts gold spans; attributes are computed on characters. "
        "Buckets with no spans show 0.</p>\n"
    )
    for attr, title in report["attributes"].items():
        bucket_names = [b["name"] for b in report["bucket_specs"][attr]]
        parts.append(f"<h3>{_e(title)}</h3>\n")
        if attr in plots:
            parts.append(f'<img src="{_e(plots[attr])}" alt="{_e(title)}">\n')
        parts.append(_bucket_table(bucket_names, models, lambda m, a=attr: m["buckets"][a]))

    eecr = data["eecr"]
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
    parts.append(
        '<h2>Generalisation: entity coverage ratio</h2>\n<p class="note">&rho;(e) measures how '
        "consistently a test entity string carries the same labels in train and test (Fu et al., "
        "AAAI 2020); &rho;=0 for strings unseen in train. EECR is the mean &rho; over test mentions.</p>\n"
        f"<p>EECR (train &rarr; test): <b>{fmt(eecr['eecr'])}</b> "
        f"(mean over distinct strings: {fmt(eecr['eecr_unweighted'])})</p>\n"
    )
    if "ecr" in plots:
        parts.append(f'<img src="{_e(plots["ecr"])}" alt="F1 per ECR bucket">\n')
    parts.append(_bucket_table(report["ecr_buckets"], models, lambda m: m["ecr_buckets"]))

    parts.append("<h2>Errors</h2>\n")
    parts.append(
        _table(
            ["model"] + report["error_kinds"],
            [[m["name"]] + [m["error_counts"][k] for k in report["error_kinds"]] for m in models],
        )
    )
    for m in models:
        parts.append(f"<h3>Sampled errors of {_e(m['name'])}</h3>\n")
        for kind, items in sample_errors(m["errors"], errors_per_kind).items():
            parts.append(f"<h4>{_e(_ERROR_TEXT[kind])} ({m['error_counts'][kind]} in all, {len(items)} shown)</h4>\n")
            parts.extend(render_error(e, colors) for e in items)
    parts.append("</body>\n</html>\n")
    return "".join(parts)
