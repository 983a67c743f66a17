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
DATASETS = {
    "resume": ("resume/train.char.bmes", "resume/dev.char.bmes", "resume/test.char.bmes", "bmes"),
    "weibo": (
        "weibo/weiboNER_2nd_conll.train",
        "weibo/weiboNER_2nd_conll.dev",
        "weibo/weiboNER_2nd_conll.test",
        "weibo",
    ),
}


# Systems trained from a config in configs/ (the rest: spaCy's own ner).
# "lexner_w2v" is lexner initialised from word2vec vectors that
# pretrain_vectors.py first trains on train-split text; its wall time and
# peak RSS include that step. "lexner_ens" trains lexner_w2v with seeds 0,
# 1 and 2 side by side (one thread each) and merges the three with
# `spacy-lexner merge-ensemble`; "lexner_ens_joint" trains a two-member
# spacy-lexner.LexiconTaggerEnsemble.v1 in one process (config overrides).
SYSTEMS = {
    "lexner": "{dataset}.cfg",
    "lexner_w2v": "{dataset}.cfg",
    "lexner_ens": "{dataset}.cfg",
    "lexner_ens_joint": "{dataset}.cfg",
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
}
DEFAULT_SYSTEMS = ["lexner", "lexner_w2v", "lexner_ens", "spacy_ner"]
SPEED_PASSES = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "runs")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--systems", nargs="+", default=DEFAULT_SYSTEMS, choices=list(SYSTEMS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-train", action="store_true", help="Reuse trained models in --output")
    return parser.parse_args()


def thread_env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    return env


def convert(data_dir: Path, name: str, corpus: Path) -> Dict[str, Path]:
    from spacy_lexner.corpora.convert import convert_file

    *splits, fmt = DATASETS[name]
    paths = {}
    for split, rel in zip(("train", "dev", "test"), splits):
        out = corpus / f"{split}.spacy"
        if not out.exists():
            convert_file(data_dir / rel, out, fmt)
        paths[split] = out
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


def train(system: str, name: str, paths: Dict[str, Path], out_dir: Path, threads: int, data_dir: Path) -> Dict:
    extra: List[str] = []
    pretrain_stats = {"wall_s": 0.0, "peak_rss_mb": 0.0}
    if system in PRETRAINS_VECTORS:
        vectors = out_dir.parent / "vectors.npz"
        pretrain_stats = pretrain_vectors(data_dir, vectors, threads)
        extra = ["--paths.pretrained_vectors", str(vectors)]
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
    log = out_dir.parent / f"{system}.train.log"
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


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    results: List[Dict] = []
    for name in args.datasets:
        run_dir = args.output / name
        paths = convert(args.data_dir, name, run_dir / "corpus")
        for system in args.systems:
            model_dir = run_dir / system
            stats_file = run_dir / f"{system}.train.json"
            if not args.skip_train:
                print(f"[{name}] training {system} ...", flush=True)
                stats_file.parent.mkdir(parents=True, exist_ok=True)
                stats_file.write_text(json.dumps(train(system, name, paths, model_dir, args.threads, args.data_dir)))
            elif not stats_file.exists():
                print(f"[{name}] {system} was not trained in {run_dir}: skipped", flush=True)
                continue
            train_stats = json.loads(stats_file.read_text())
            scores = evaluate(model_dir / "model-best", paths["test"])
            results.append({"dataset": name, "system": system, **train_stats, **scores})
            print(json.dumps({k: v for k, v in results[-1].items() if k != "per_type"}), flush=True)
    (args.output / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results, args.threads)


def print_table(results: List[Dict], threads: int) -> None:
    print(f"\ntorch/BLAS threads: {threads}\n")
    print(
        "| dataset | system | test P | test R | test F1 | train wall (min) | chars/s (nlp.pipe) | speed ratio vs ner | model size (MB) | train peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    by_key = {(r["dataset"], r["system"]): r for r in results}
    for r in results:
        base = by_key.get((r["dataset"], "spacy_ner"))
        ratio = f"{r['chars_per_s'] / base['chars_per_s']:.2f}x" if base else "n/a"
        print(
            f"| {r['dataset']} | {r['system']} | {r['p']:.2f} | {r['r']:.2f} | {r['f']:.2f} | "
            f"{r['wall_s'] / 60:.1f} | {r['chars_per_s']:,.0f} | {ratio} | {r['size_mb']:.1f} | {r['peak_rss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
