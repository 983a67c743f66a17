"""CPU inference speed of lexner_tagger (float and int8) against spaCy's ner, one process.

    python benchmarks/inference_speed.py --lexner training/resume/model-best \\
        --ner training/resume_spacy_ner/model-best --test corpus/resume/test.spacy

The texts are the test DocBin's texts, `--repeat` times over (4 by default),
run through `nlp.pipe(texts, batch_size=--batch-size)` at `--threads` torch
threads. The systems take turns, `--passes` times each after a warm-up, and
each keeps its fastest pass, so all of them see the same machine load; the
table reports chars/s and the ratio to spaCy's ner. Each lexner system is
also scored on the test set (entity F1 of the same loaded pipeline), so a
speed-up is never reported without its F1.

Systems: `lexner` (float weights), `lexner_int8` (the same pipeline loaded
with `quantize = true`: int8 dynamically quantized LSTM and Linear layers),
`lexner_baseline` (`--baseline`: another lexner pipeline, e.g. the config
before a change), `spacy_ner`. The JSON lands in `--out`.
"""

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Dict, List


def load_systems(args: argparse.Namespace) -> Dict:
    import spacy

    systems = {}
    if args.lexner:
        systems["lexner"] = spacy.load(args.lexner)
        if not args.no_int8:
            int8 = {"components": {"lexner_tagger": {"quantize": True}}}
            systems["lexner_int8"] = spacy.load(args.lexner, config=int8)
    if args.baseline:
        systems["lexner_baseline"] = spacy.load(args.baseline)
    if args.ner:
        systems["spacy_ner"] = spacy.load(args.ner)
    if not systems:
        raise SystemExit("Give --lexner and/or --ner.")
    return systems


def entity_f1(nlp, gold: List) -> Dict[str, float]:
    from spacy.scorer import Scorer
    from spacy.training import Example

    examples = [Example(predicted, reference) for predicted, reference in zip(nlp.pipe(d.text for d in gold), gold)]
    scores = Scorer.score_spans(examples, "ents")
    return {key: round(100 * scores[f"ents_{key}"], 2) for key in ("p", "r", "f")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lexner", default="", help="a trained lexner_tagger pipeline")
    parser.add_argument("--ner", default="", help="a trained spaCy ner pipeline")
    parser.add_argument(
        "--baseline", default="", help="another lexner_tagger pipeline (e.g. before a change), timed in the same run"
    )
    parser.add_argument("--test", required=True, help="test DocBin")
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--no-int8", action="store_true", help="skip lexner_int8 (e.g. for a version without it)")
    parser.add_argument("--out", default="benchmarks/runs/inference_speed.json")
    args = parser.parse_args()
    import torch
    from spacy.tokens import DocBin

    torch.set_num_threads(args.threads)
    systems = load_systems(args)
    vocab = next(iter(systems.values())).vocab
    gold = list(DocBin().from_disk(args.test).get_docs(vocab))
    texts = [doc.text for doc in gold] * args.repeat
    n_chars = sum(map(len, texts))
    for nlp in systems.values():
        list(nlp.pipe(texts[:256], batch_size=args.batch_size))
    # Wall time is what a user sees; CPU time (process_time) is also kept
    # because on a shared VM the wall time of one pass varies by up to 30%.
    best = {name: float("inf") for name in systems}
    best_cpu = dict(best)
    for _ in range(args.passes):
        for name, nlp in systems.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _doc in nlp.pipe(texts, batch_size=args.batch_size):
                pass
            best[name] = min(best[name], time.perf_counter() - start)
            best_cpu[name] = min(best_cpu[name], time.process_time() - start_cpu)
    rows = []
    baseline, baseline_cpu = best.get("spacy_ner"), best_cpu.get("spacy_ner")
    for name, nlp in systems.items():
        row = {
            "system": name,
            "chars_per_s": round(n_chars / best[name]),
            "ratio_vs_ner": round(baseline / best[name], 2) if baseline else None,
            "cpu_chars_per_s": round(n_chars / best_cpu[name]),
            "cpu_ratio_vs_ner": round(baseline_cpu / best_cpu[name], 2) if baseline_cpu else None,
        }
        if name != "spacy_ner":
            row.update({f"test_{k}": v for k, v in entity_f1(nlp, gold).items()})
        rows.append(row)
        print(json.dumps(row))
    result = {
        "threads": args.threads,
        "batch_size": args.batch_size,
        "texts": len(texts),
        "chars": n_chars,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf8")


if __name__ == "__main__":
    main()
