"""Each context encoder of lexner_tagger, with and without SoftLexicon, on
Resume and Weibo, in one run.

    python benchmarks/encoders.py --data-dir ../shared/data --threads 1 --jobs 2 \
        --max-steps resume=2000 weibo=1200

Every run is `spacy train configs/{dataset}.cfg` with only the encoder and
`use_lexicon` overridden (and, for the encoders that read the lattice's words
themselves, Lattice LSTM and LR-CNN, a third run with their `use_lattice`
off and the SoftLexicon input kept; their no-lexicon run turns both off), the same step budget for every encoder of a dataset,
and the usual dev-based choice of model-best. Then, in this one process, each
model-best is evaluated on test and timed with nlp.pipe. Printed per run:
test F1, train wall time, the time to the best dev score (wall time x best
step / last step: spaCy's console log has no clock), training throughput in
sentences/s (sentences seen / wall time), inference chars/s and peak RSS.
--jobs 2 trains two models at a time: each with --threads threads. A run
whose train.json exists is not trained again, so an interrupted benchmark
resumes where it stopped.
"""

import argparse
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_benchmark import DATASETS, REPO, convert, evaluate, thread_env  # noqa: E402

ENCODERS = {
    "bilstm": {"@architectures": "spacy-lexner.BiLSTMEncoder.v1", "hidden_width": 200, "depth": 1, "dropout": 0.5},
    "idcnn": {"@architectures": "spacy-lexner.IDCNNEncoder.v1", "width": 256, "n_blocks": 4, "dropout": 0.3},
    "tener": {
        "@architectures": "spacy-lexner.TENEREncoder.v1",
        "width": 128,
        "depth": 2,
        "n_heads": 4,
        "ff_width": 256,
        "dropout": 0.15,
    },
    "flat": {
        "@architectures": "spacy-lexner.FLATEncoder.v1",
        "width": 160,
        "depth": 1,
        "n_heads": 8,
        "ff_width": 480,
        "dropout": 0.15,
    },
    "lattice_lstm": {
        "@architectures": "spacy-lexner.LatticeLSTMEncoder.v1",
        "hidden_width": 200,
        "dropout": 0.5,
    },
    "lrcnn": {
        "@architectures": "spacy-lexner.LRCNNEncoder.v1",
        "hidden_width": 128,
        "depth": 3,
        "rethink": 2,
        "dropout": 0.5,
    },
}
# Encoders that read the lattice's words themselves: each runs a third way,
# lattice off with the SoftLexicon input kept.
LATTICE_ENCODERS = {"lattice_lstm", "lrcnn"}
# variant -> (SoftLexicon input, the encoder's own lattice input)
VARIANTS = {"lex": (True, True), "nolattice": (True, False), "nolex": (False, False)}
VARIANT_NAMES = {"lex": "yes", "nolattice": "SoftLexicon only", "nolex": "no"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "runs_encoders")
    parser.add_argument("--datasets", nargs="+", default=["resume", "weibo"], choices=list(DATASETS))
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument("--max-steps", nargs="+", default=["resume=2000", "weibo=1200"], help="DATASET=STEPS")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--skip-train", action="store_true")
    return parser.parse_args()


def variants_of(encoder: str) -> List[str]:
    return list(VARIANTS) if encoder in LATTICE_ENCODERS else ["lex", "nolex"]


def train(
    name: str, encoder: str, variant: str, paths: Dict[str, Path], out_dir: Path, steps: int, threads: int
) -> Dict:
    """One spacy train run; a finished run (train.json on disk) is not rerun."""
    if (out_dir / "train.json").exists():
        return json.loads((out_dir / "train.json").read_text())
    soft_lexicon, lattice = VARIANTS[variant]
    encoder_config = dict(ENCODERS[encoder])
    if encoder in LATTICE_ENCODERS:
        encoder_config["use_lattice"] = lattice
    overrides = {
        "components.lexner_tagger.model.encoder": encoder_config,
        "components.lexner_tagger.model.embed.use_lexicon": soft_lexicon,
        "training.max_steps": steps,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_args = []
    for key, value in overrides.items():
        cfg_args += [f"--{key}", json.dumps(value)]
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "measure.py"),
        "--",
        sys.executable,
        "-m",
        "spacy",
        "train",
        str(REPO / "configs" / f"{name}.cfg"),
        "--output",
        str(out_dir / "model"),
        "--paths.train",
        str(paths["train"]),
        "--paths.dev",
        str(paths["dev"]),
        *cfg_args,
    ]
    log = out_dir / "train.log"
    with log.open("w") as log_file:
        result = subprocess.run(cmd, env=thread_env(threads), stdout=subprocess.PIPE, stderr=log_file, text=True)
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    if stats["returncode"] != 0:
        raise SystemExit(f"Training {encoder} ({variant}) on {name} failed; see {log}")
    stats.update(progress(log.read_text() + result.stdout))
    (out_dir / "train.json").write_text(json.dumps(stats))
    return stats


def progress(log: str) -> Dict:
    """Best dev step, last step and last epoch from spaCy's console table."""
    rows = [r for r in re.findall(r"^\s*(\d+)\s+(\d+)\s+.*?([\d.]+)\s*$", log, flags=re.M)]
    epochs, steps, scores = zip(*[(int(e), int(s), float(sc)) for e, s, sc in rows]) if rows else ((0,), (0,), (0.0,))
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return {"best_step": steps[best], "last_step": steps[-1], "last_epoch": epochs[-1]}


def main() -> None:
    args = parse_args()
    import torch
    from spacy.tokens import DocBin

    torch.set_num_threads(args.threads)
    budgets = dict(item.split("=") for item in args.max_steps)
    jobs = []
    for name in args.datasets:
        paths = convert(args.data_dir, name, args.output / name / "corpus")
        for encoder in args.encoders:
            for variant in variants_of(encoder):
                jobs.append((name, encoder, variant, paths, args.output / name / f"{encoder}-{variant}"))
    if not args.skip_train:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(train, n, e, lx, p, d, int(budgets[n]), args.threads) for n, e, lx, p, d in jobs]
            for future in futures:
                future.result()
    results: List[Dict] = []
    for name, encoder, variant, paths, out_dir in jobs:
        if not (out_dir / "train.json").exists():
            print(f"[{name}] {encoder} {variant}: not trained, skipped", flush=True)
            continue
        stats = json.loads((out_dir / "train.json").read_text())
        n_train = len(DocBin().from_disk(paths["train"]))
        scores = evaluate(out_dir / "model" / "model-best", paths["test"])
        results.append(
            {
                "dataset": name,
                "encoder": encoder,
                "lexicon": VARIANTS[variant][0],
                "variant": variant,
                **stats,
                **scores,
                "train_sentences_per_s": stats["last_epoch"] * n_train / stats["wall_s"],
            }
        )
        print(json.dumps({k: v for k, v in results[-1].items() if k != "per_type"}), flush=True)
    (args.output / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\ntorch threads per training run: {args.threads}; parallel runs: {args.jobs}\n")
    print(
        "| dataset | encoder | lexicon | test F1 | train wall (min) | to best dev (min) | train sents/s | chars/s (nlp.pipe) | peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        to_best = r["wall_s"] * r["best_step"] / max(r["last_step"], 1) / 60
        print(
            f"| {r['dataset']} | {r['encoder']} | {VARIANT_NAMES[r.get('variant', 'lex' if r['lexicon'] else 'nolex')]} | {r['f']:.2f} | {r['wall_s'] / 60:.1f} | "
            f"{to_best:.1f} | {r['train_sentences_per_s']:.0f} | {r['chars_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
