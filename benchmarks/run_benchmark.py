"""Train and evaluate lexner_tagger and spaCy's built-in ``ner`` on the same data.

    pip install -r benchmarks/requirements.txt   # gensim, for lexner_w2v
    python benchmarks/run_benchmark.py --data-dir ../shared/data --threads 1

For each dataset (Resume, Weibo by default) it converts the corpus, trains
each system with ``python -m spacy train`` (each in its own process, timed,
peak RSS measured), then, in this one process, evaluates them on the test set
and times ``nlp.pipe`` over the test texts (the fastest of three passes), so the speed ratios compare the
systems under the same conditions. ``lexner`` uses no pretrained vectors;
``lexner_w2v`` first trains word2vec vectors on the train splits' text
(``pretrain_vectors.py``) and counts that time in its train wall time;
``lexner_ens`` does the same, trains three seeds side by side and merges them
into one ensemble pipeline (``spacy-lexner merge-ensemble``). The spaCy ``ner`` config is the one
``spacy init config -l zh -p ner -o efficiency`` writes.

The torch/BLAS thread count is fixed (``--threads``, default 1) and printed:
with another process busy, 2 threads can be far slower than 1.

Runs resume: a finished run (its model-best and ``<run>.train.json``) and its
scores (``<run>.scores.json``) stay in --output and are skipped when the same
command runs again, so a benchmark longer than a working stretch goes on
where it stopped. All four datasets, three seeds, two trainings at a time:

    python benchmarks/run_benchmark.py --datasets resume weibo msra cluener \
        --systems lexner --seeds 0 1 2 --jobs 2 --threads 1

prints each run and, per dataset and system, the mean and range over seeds.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence

REPO = Path(__file__).resolve().parent.parent
# Converted by scripts/convert_dataset.py, as the project does: MSRA has no
# dev or test split here (dev = the last 3,000 train sentences, and its
# "test" is that dev set); CLUENER's official dev is the test set and dev is
# carved off train.
DATASETS = ("resume", "weibo", "msra", "cluener")
DEFAULT_DATASETS = ["resume", "weibo"]


# Systems trained from a config in configs/ (the rest: spaCy's own ner).
# "lexner_w2v" is lexner initialised from word2vec vectors that
# pretrain_vectors.py first trains on train-split text; its wall time and
# peak RSS include that step. "lexner_ens" trains lexner_w2v with seeds 0,
# 1 and 2 side by side (one thread each) and merges the three with
# `spacy-lexner merge-ensemble`; "lexner_ens_joint" trains a two-member
# spacy-lexner.LexiconTaggerEnsemble.v1 in one process (config overrides);
# "lexner_codistill" three codistilled members, the first predicting alone.
SYSTEMS = {
    "lexner": "{dataset}.cfg",
    "lexner_w2v": "{dataset}.cfg",
    "lexner_ens": "{dataset}.cfg",
    "lexner_ens_joint": "{dataset}.cfg",
    "lexner_codistill": "{dataset}.cfg",
    "crf_ner": "crf_ner.cfg",
    "spacy_ner": None,
}
PRETRAINS_VECTORS = {"lexner_w2v", "lexner_ens", "lexner_ens_joint"}
MERGED_SEEDS = {"lexner_ens": (0, 1, 2)}
OVERRIDES = {
    "lexner_ens_joint": [
        "--components.lexner_tagger.model.@architectures",
        "spacy-lexner.LexiconTaggerEnsemble.v1",
        "--components.lexner_tagger.model.n_members",
        "2",
    ],
    # Three members trained together that learn from each other
    # (spacy-lexner.LexiconTaggerEnsemble.v2); the first predicts alone.
    "lexner_codistill": [
        "--components.lexner_tagger.model.@architectures",
        "spacy-lexner.LexiconTaggerEnsemble.v2",
        "--components.lexner_tagger.model.n_members",
        "3",
        "--components.lexner_tagger.model.distill_weight",
        "1.0",
        "--components.lexner_tagger.model.predict_with",
        "first",
    ],
}
DEFAULT_SYSTEMS = ["lexner", "lexner_w2v", "lexner_ens", "spacy_ner"]
SPEED_PASSES = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "runs")
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS, choices=DATASETS)
    parser.add_argument("--systems", nargs="+", default=DEFAULT_SYSTEMS, choices=list(SYSTEMS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="One model per seed (mean and range)")
    parser.add_argument("--jobs", type=int, default=1, help="Trainings run at once, --threads each")
    parser.add_argument("--skip-train", action="store_true", help="Score only models already in --output")
    return parser.parse_args()


def thread_env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


def convert(data_dir: Path, name: str, corpus: Path) -> Dict[str, Path]:
    """corpus/{train,dev,test}.spacy, converted once (kept on disk)."""
    paths = {split: corpus / f"{split}.spacy" for split in ("train", "dev", "test")}
    if not all(path.exists() for path in paths.values()):
        script = REPO / "scripts" / "convert_dataset.py"
        subprocess.run([sys.executable, str(script), name, str(data_dir / name), str(corpus)], check=True)
    return paths


def measured(cmd: List[str], log: Path, threads: int, what: str) -> Dict:
    """Run cmd under measure.py, its stderr to log; wall time and peak RSS."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "measure.py"), "--", *cmd]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as log_file:
        result = subprocess.run(cmd, env=thread_env(threads), stdout=subprocess.PIPE, stderr=log_file, text=True)
    log.open("a").write(result.stdout)
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    if stats["returncode"] != 0:
        raise SystemExit(f"{what} failed; see {log}")
    return stats


def pretrain_vectors(data_dir: Path, output: Path, threads: int) -> Dict:
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "pretrain_vectors.py"),
        "--data-dir",
        str(data_dir),
        "--output",
        str(output),
        "--workers",
        str(threads),
    ]
    return measured(cmd, output.with_suffix(".log"), threads, "Pretraining vectors")


def train(
    system: str,
    name: str,
    paths: Dict[str, Path],
    out_dir: Path,
    threads: int,
    data_dir: Path,
    seed_args: Sequence[str] = (),
) -> Dict:
    extra: List[str] = list(seed_args)
    pretrain_stats = {"wall_s": 0.0, "peak_rss_mb": 0.0}
    if system in PRETRAINS_VECTORS:
        vectors = out_dir.parent / f"{out_dir.name}.vectors.npz"  # one per run: seeds train side by side
        pretrain_stats = pretrain_vectors(data_dir, vectors, threads)
        extra += ["--paths.pretrained_vectors", str(vectors)]
    if SYSTEMS[system] is not None:
        config = REPO / "configs" / SYSTEMS[system].format(dataset=name)
    else:
        config = out_dir.parent / "spacy_ner.cfg"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "spacy",
                "init",
                "config",
                "-l",
                "zh",
                "-p",
                "ner",
                "-o",
                "efficiency",
                str(config),
                "-F",
            ],
            check=True,
            capture_output=True,
        )
    cmd = [
        sys.executable,
        "-m",
        "spacy",
        "train",
        str(config),
        "--paths.train",
        str(paths["train"]),
        "--paths.dev",
        str(paths["dev"]),
        *extra,
        *OVERRIDES.get(system, []),
    ]
    log = out_dir.parent / f"{out_dir.name}.train.log"  # one per run: seeds train side by side
    if system in MERGED_SEEDS:
        stats = train_and_merge(cmd, out_dir, MERGED_SEEDS[system], threads, f"Training {system} on {name}")
    else:
        stats = measured([*cmd, "--output", str(out_dir)], log, threads, f"Training {system} on {name}")
    return {
        **stats,
        "pretrain_wall_s": pretrain_stats["wall_s"],
        "wall_s": stats["wall_s"] + pretrain_stats["wall_s"],
        "peak_rss_mb": max(stats["peak_rss_mb"], pretrain_stats["peak_rss_mb"]),
    }


def train_and_merge(cmd: List[str], out_dir: Path, seeds: Sequence[int], threads: int, what: str) -> Dict:
    """Train one model per seed at the same time (threads split between
    them), then merge them into out_dir/model-best. Wall time: from the
    start to the merged pipeline. Peak RSS: the members' peaks summed (they
    run at once), or the merge's if larger."""
    member_threads = max(1, threads // len(seeds))
    members = [out_dir.parent / f"{out_dir.name}_seed{seed}" for seed in seeds]
    start = time.perf_counter()
    with ThreadPoolExecutor(len(seeds)) as pool:
        runs = [
            pool.submit(
                measured,
                [*cmd, "--output", str(member), "--system.seed", str(seed)],
                member.with_suffix(".train.log"),
                member_threads,
                f"{what} (seed {seed})",
            )
            for seed, member in zip(seeds, members)
        ]
        member_stats = [run.result() for run in runs]
    merge_cmd = [
        sys.executable,
        "-m",
        "spacy_lexner",
        "merge-ensemble",
        str(out_dir / "model-best"),
        *(str(member / "model-best") for member in members),
    ]
    merge_stats = measured(merge_cmd, out_dir.parent / f"{out_dir.name}.merge.log", threads, f"Merging {what}")
    return {
        "returncode": 0,
        "wall_s": time.perf_counter() - start,
        "peak_rss_mb": max(sum(s["peak_rss_mb"] for s in member_stats), merge_stats["peak_rss_mb"]),
        "member_wall_s": [s["wall_s"] for s in member_stats],
    }


def dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def evaluate(model_dir: Path, test_path: Path) -> Dict:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    nlp = spacy.load(model_dir)
    gold = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    texts = [doc.text for doc in gold]
    list(nlp.pipe(texts[:20]))  # warm-up: lazy lexicon automaton, allocator
    seconds = float("inf")
    for _ in range(SPEED_PASSES):  # the fastest pass: the least disturbed by other processes
        start = time.perf_counter()
        predicted = list(nlp.pipe(texts, batch_size=256))
        seconds = min(seconds, time.perf_counter() - start)
    scores = nlp.evaluate([Example(nlp.make_doc(d.text), d) for d in gold])
    return {
        "p": scores["ents_p"] * 100,
        "r": scores["ents_r"] * 100,
        "f": scores["ents_f"] * 100,
        "per_type": scores["ents_per_type"],
        "chars_per_s": sum(map(len, texts)) / seconds,
        "size_mb": dir_size_mb(model_dir),
        "n_predicted": sum(len(d.ents) for d in predicted),
    }


def run_name(system: str, seed: int) -> str:
    """A merged ensemble is one run whatever the seeds; other systems get one per seed."""
    return system if system in MERGED_SEEDS else f"{system}_seed{seed}"


def train_once(
    system: str, name: str, paths: Dict[str, Path], run_dir: Path, seed: int, args: argparse.Namespace
) -> Path:
    """Train one run unless a finished one is on disk: a run is finished when
    its train stats file exists, which is written after its model-best."""
    run = run_name(system, seed)
    stats_file = run_dir / f"{run}.train.json"
    if stats_file.exists() and (run_dir / run / "model-best").is_dir():
        print(f"[{name}] {run}: trained already, kept", flush=True)
        return stats_file
    if args.skip_train:
        raise FileNotFoundError(stats_file)
    print(f"[{name}] training {run} ...", flush=True)
    extra = [] if system in MERGED_SEEDS else ["--system.seed", str(seed)]
    stats = train(system, name, paths, run_dir / run, args.threads, args.data_dir, extra)
    stats_file.write_text(json.dumps({**stats, "seed": seed}))
    return stats_file


def score_once(system: str, name: str, paths: Dict[str, Path], run_dir: Path, seed: int) -> Dict:
    """Score one trained run unless its scores are on disk."""
    run = run_name(system, seed)
    scores_file = run_dir / f"{run}.scores.json"
    if not scores_file.exists():
        scores = evaluate(run_dir / run / "model-best", paths["test"])
        scores_file.write_text(json.dumps(scores))
    train_stats = json.loads((run_dir / f"{run}.train.json").read_text())
    return {"dataset": name, "system": system, "run": run, **train_stats, **json.loads(scores_file.read_text())}


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    jobs = []
    for name in args.datasets:
        run_dir = args.output / name
        run_dir.mkdir(parents=True, exist_ok=True)
        paths = convert(args.data_dir, name, run_dir / "corpus")
        for system in args.systems:
            seeds = [args.seeds[0]] if system in MERGED_SEEDS else args.seeds
            jobs.extend((system, name, paths, run_dir, seed) for seed in seeds)
    # Trainings run side by side (each a subprocess with --threads threads);
    # a failed or missing one is reported and the others still finish.
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(train_once, *job, args) for job in jobs]
        trained = []
        for job, future in zip(jobs, futures):
            try:
                future.result()
                trained.append(job)
            except (FileNotFoundError, SystemExit) as err:
                print(f"[{job[1]}] {run_name(job[0], job[4])}: not trained ({err})", flush=True)
    # Scoring and speed in this one process, one run after the other, so the
    # speed ratios compare the systems under the same conditions.
    results = [score_once(*job) for job in trained]
    for result in results:
        print(json.dumps({k: v for k, v in result.items() if k != "per_type"}), flush=True)
    (args.output / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results, args.threads)
    print_seed_summary(results)


def seed_summary(results: List[Dict]) -> List[Dict]:
    """Per dataset and system: the mean, min and max test F1 over its runs."""
    groups: Dict[tuple, List[float]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["system"]), []).append(r["f"])
    return [
        {"dataset": d, "system": s, "n": len(f), "mean": sum(f) / len(f), "min": min(f), "max": max(f)}
        for (d, s), f in groups.items()
    ]


def print_seed_summary(results: List[Dict]) -> None:
    print("\n| dataset | system | runs | mean test F1 | min | max |\n|---|---|---|---|---|---|")
    for row in seed_summary(results):
        print(
            f"| {row['dataset']} | {row['system']} | {row['n']} | {row['mean']:.2f} | {row['min']:.2f} | {row['max']:.2f} |"
        )


def print_table(results: List[Dict], threads: int) -> None:
    print(f"\ntorch/BLAS threads: {threads}\n")
    print(
        "| dataset | run | test P | test R | test F1 | train wall (min) | chars/s (nlp.pipe) | speed ratio vs ner | model size (MB) | train peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    by_key = {(r["dataset"], r["system"]): r for r in results}
    for r in results:
        base = by_key.get((r["dataset"], "spacy_ner"))
        ratio = f"{r['chars_per_s'] / base['chars_per_s']:.2f}x" if base else "n/a"
        print(
            f"| {r['dataset']} | {r.get('run', r['system'])} | {r['p']:.2f} | {r['r']:.2f} | {r['f']:.2f} | "
            f"{r['wall_s'] / 60:.1f} | {r['chars_per_s']:,.0f} | {ratio} | {r['size_mb']:.1f} | {r['peak_rss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
