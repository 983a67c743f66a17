"""Choose how lexner_tagger uses Baidu LAC's pretrained character model (issue 30), on dev.

    python benchmarks/lac_variants.py --data-dir ../shared/data --variants softlexicon lac_states lac_states_scores \
        --seeds 0 --jobs 2 --threads 1

Each variant is configs/<dataset>.cfg with its embed block rewritten (the
SoftLexicon embed alone, or wrapped in spacy-lexner.LACEmbed.v1 with other
outputs and settings). Every run trains with `python -m spacy train` in its
own process (threads fixed, printed), then model-best is scored on the dev
set (best dev F1, as spaCy picked it) and on the everyday-names set
(benchmarks/everyday_names.py), never on test. Finished runs are kept in
--output and skipped when the command runs again. `--test` also scores
model-best on the test split: use it once, on the setting chosen on dev.
"""

import argparse
import copy
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from thinc.api import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from everyday_names import score_model  # noqa: E402
from run_benchmark import convert, evaluate, thread_env  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LAC = "spacy-lexner.LACEmbed.v1"


# The training every variant starts from, where the shipped config has
# changed since the variants were run: weibo.cfg trained 3,000 steps without
# parameter averaging in the first stretch (now 1,000 with them).
BASE_TRAINING: Dict[str, Dict[str, Any]] = {"weibo": {"max_steps": 3000, "use_averages": False}}


def _plain_corpus(config: Config) -> None:
    """[corpora.train] as spacy.Corpus.v1 (the shipped config may name a
    name-replacement reader; variants without names must not)."""
    train = config["corpora"]["train"]
    config["corpora"]["train"] = {
        "@readers": "spacy.Corpus.v1",
        "path": train["path"],
        "max_length": 0,
        "gold_preproc": False,
        "limit": 0,
    }


def _soft_lexicon(embed: Dict) -> Dict:
    """The SoftLexicon block of an embed block (unwrapping a LACEmbed)."""
    return copy.deepcopy(embed["embed"] if embed.get("@architectures") == LAC else embed)


def _lac(
    outputs: List[str],
    dropout: float = 0.0,
    char_vectors: bool = False,
    width: Optional[int] = None,
    hidden: Optional[int] = None,
) -> Callable[[Config], None]:
    def apply(config: Config) -> None:
        _plain_corpus(config)
        model = config["components"]["lexner_tagger"]["model"]
        inner = _soft_lexicon(model["embed"])
        if hidden is not None:
            model["encoder"]["hidden_width"] = hidden
        if char_vectors:
            inner["char_width"] = 128
            config["initialize"]["components"]["lexner_tagger"]["pretrained_vectors"] = {
                "@misc": "spacy-lexner.lac_char_vectors.v1",
                "lac_path": None,
            }
        model["embed"] = {
            "@architectures": LAC,
            "outputs": outputs,
            "width": width,
            "dropout": dropout,
            "lac_path": None,
            "embed": inner,
        }

    return apply


def _with_names(apply_embed: Callable[[Config], None], copies: int, **settings: Any) -> Callable[[Config], None]:
    """An embed variant trained on spacy-lexner.NameReplacementCorpus.v2 (LAC as a teacher)."""

    def apply(config: Config) -> None:
        apply_embed(config)
        train = config["corpora"]["train"]
        config["corpora"]["train"] = {
            "@readers": "spacy-lexner.NameReplacementCorpus.v2",
            "path": train["path"],
            "copies": copies,
            "seed": "${system.seed}",
            **settings,
        }

    return apply


def _with_training(
    apply_embed: Callable[[Config], None], max_steps: Optional[int] = None, **optimizer: Any
) -> Callable[[Config], None]:
    """A variant with another training length (the learning rate still
    decays linearly to 0 at max_steps) or other [training.optimizer]
    settings (parameter averaging, the peak learning rate)."""

    def apply(config: Config) -> None:
        apply_embed(config)
        if max_steps is not None:
            config["training"]["max_steps"] = max_steps
        settings = config["training"]["optimizer"]
        for key, value in optimizer.items():
            if key == "learn_rate":
                settings["learn_rate"]["initial_rate"] = value
            else:
                settings[key] = value

    return apply


ALL = ["states1", "states", "scores"]


def _short(copies: int, **names: Any) -> Callable[[Config], None]:
    """LAC's three outputs, name replacement, 1,000 steps with parameter averaging."""
    return _with_training(_with_names(_lac(ALL), copies, **names), max_steps=1000, use_averages=True)


def _without_lac(config: Config) -> None:
    _plain_corpus(config)
    model = config["components"]["lexner_tagger"]["model"]
    model["embed"] = _soft_lexicon(model["embed"])


VARIANTS: Dict[str, Callable[[Config], None]] = {
    "softlexicon": _without_lac,
    "lac_states": _lac(["states"]),
    "lac_states_scores": _lac(["states", "scores"]),
    "lac_all": _lac(["states1", "states", "scores"]),
    "lac_states_scores_drop3": _lac(["states", "scores"], dropout=0.3),
    "lac_states_scores_charvec": _lac(["states", "scores"], char_vectors=True),
    "lac_scores": _lac(["scores"]),
    "lac_all_names1": _with_names(_lac(["states1", "states", "scores"]), 1),
    "lac_all_names2": _with_names(_lac(["states1", "states", "scores"]), 2),
    "lac_all_names1_jiebatypes": _with_names(
        _lac(["states1", "states", "scores"]),
        1,
        lexicon_types={"PER": ["nr", "nrfg", "nrt"], "LOC": ["ns"], "ORG": ["nt", "nz"]},
    ),
    "softlexicon_names1": _with_names(_without_lac, 1),
    "lac_all_w64_names1": _with_names(_lac(["states1", "states", "scores"], width=64), 1),
    "lac_all_w128_names1": _with_names(_lac(["states1", "states", "scores"], width=128), 1),
    "lac_ss_w64_names1": _with_names(_lac(["states", "scores"], width=64), 1),
    "lac_all_names1_teacherlabels": _with_names(_lac(["states1", "states", "scores"]), 1, teacher_labels=True),
    "lac_states1_w64_names1": _with_names(_lac(["states1"], width=64), 1),
    "lac_all_h100_names1": _with_names(_lac(["states1", "states", "scores"], hidden=100), 1),
    "lac_all_w64_h100_names1": _with_names(_lac(["states1", "states", "scores"], width=64, hidden=100), 1),
    "lac_all_names2_teacherlabels": _with_names(_lac(["states1", "states", "scores"]), 2, teacher_labels=True),
    "lac_all_names3": _with_names(_lac(["states1", "states", "scores"]), 3),
    "lac_all_w64_h200_names1": _with_names(_lac(["states1", "states", "scores"], width=64, hidden=200), 1),
    "lac_all_names1_avg": _with_training(_with_names(_lac(ALL), 1), use_averages=True),
    "lac_all_names1_teacherlabels_avg": _with_training(
        _with_names(_lac(ALL), 1, teacher_labels=True), use_averages=True
    ),
    # Second stretch: 1,000 steps (the variants above train 3,000).
    "lac_all_names1_s1000": _with_training(_with_names(_lac(ALL), 1), max_steps=1000),
    "lac_all_names1_avg_s1000": _short(1),
    "lac_all_names1_teacherlabels_avg_s1000": _short(1, teacher_labels=True),
    "lac_all_names1_cmp3_avg_s1000": _short(1, compound_share=0.3),
    "lac_all_names1_teacherlabels_cmp3_avg_s1000": _short(1, teacher_labels=True, compound_share=0.3),
    "lac_all_names1_teacherlabels_cmp5_avg_s1000": _short(1, teacher_labels=True, compound_share=0.5),
    "lac_all_names1_teacherlabels_cmp7_avg_s1000": _short(1, teacher_labels=True, compound_share=0.7),
    "lac_all_names2_teacherlabels_cmp3_avg_s1000": _short(2, teacher_labels=True, compound_share=0.3),
    "lac_all_names2_teacherlabels_cmp5_avg_s1000": _short(2, teacher_labels=True, compound_share=0.5),
}


def variant_config(dataset: str, variant: str) -> Config:
    config = Config().from_disk(REPO / "configs" / f"{dataset}.cfg", interpolate=False)
    base = BASE_TRAINING.get(dataset, {})
    if "max_steps" in base:
        config["training"]["max_steps"] = base["max_steps"]
    if "use_averages" in base:
        config["training"]["optimizer"]["use_averages"] = base["use_averages"]
    VARIANTS[variant](config)
    return config


def run_one(dataset: str, variant: str, seed: int, paths: Dict[str, Path], args: argparse.Namespace) -> Dict[str, Any]:
    run_dir = args.output / dataset / f"{variant}_seed{seed}"
    result_file = run_dir / "result.json"
    if result_file.exists():
        print(f"[{dataset}] {variant} seed {seed}: done already, kept", flush=True)
        result = json.loads(result_file.read_text())
        if result["everyday"] is None and args.everyday.exists():
            result["everyday"] = score_model(run_dir / "training" / "model-best", args.everyday)
            result_file.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        if args.test and "test" not in result:
            result["test"] = _test_scores(run_dir, paths)
            result_file.write_text(json.dumps(result, indent=2, ensure_ascii=False))
        return result
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.cfg"
    variant_config(dataset, variant).to_disk(config_path)
    cmd = [sys.executable, "-m", "spacy", "train", str(config_path), "--output", str(run_dir / "training")]
    cmd += ["--paths.train", str(paths["train"]), "--paths.dev", str(paths["dev"]), "--system.seed", str(seed)]
    if args.max_steps:
        cmd += ["--training.max_steps", str(args.max_steps)]
    print(f"[{dataset}] training {variant} seed {seed} ...", flush=True)
    start = time.perf_counter()
    with (run_dir / "train.log").open("w") as log:
        subprocess.run(cmd, env=thread_env(args.threads), stdout=log, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - start
    best = run_dir / "training" / "model-best"
    meta = json.loads((best / "meta.json").read_text())
    result = {
        "dataset": dataset,
        "variant": variant,
        "seed": seed,
        "threads": args.threads,
        "max_steps": args.max_steps or variant_config(dataset, variant)["training"]["max_steps"],
        "use_averages": variant_config(dataset, variant)["training"]["optimizer"]["use_averages"],
        "train_wall_s": round(wall, 1),
        "dev_f": round(100 * meta["performance"]["ents_f"], 2),
        "everyday": score_model(best, args.everyday) if args.everyday.exists() else None,
    }
    if args.test:
        result["test"] = _test_scores(run_dir, paths)
    result_file.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def _test_scores(run_dir: Path, paths: Dict[str, Path]) -> Dict[str, float]:
    scores = evaluate(run_dir / "training" / "model-best", paths["test"])
    return {key: round(scores[key], 2) for key in ("p", "r", "f")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "runs_lac")
    parser.add_argument("--datasets", nargs="+", default=["weibo"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max-steps", type=int, default=0, help="0: the config's own")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--test", action="store_true", help="also score model-best on test (the chosen setting only)")
    parser.add_argument("--everyday", type=Path, default=REPO / "benchmarks" / "data" / "everyday_names.jsonl")
    args = parser.parse_args()
    print(f"torch threads per training: {args.threads}; trainings at once: {args.jobs}", flush=True)
    jobs = []
    for dataset in args.datasets:
        paths = convert(args.data_dir, dataset, args.output / dataset / "corpus")
        jobs += [(dataset, variant, seed, paths) for variant in args.variants for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: run_one(*job, args), jobs))
    print(
        f"\n| dataset | variant | seed | steps | dev F1 | everyday P / R / F (typed) | test P / R / F "
        f"| train s ({args.threads} thread) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        e = r["everyday"]["typed"] if r["everyday"] else None
        everyday = f"{e['p']:.1f} / {e['r']:.1f} / {e['f']:.1f}" if e else "not measured"
        t = r.get("test")
        test = f"{t['p']:.2f} / {t['r']:.2f} / {t['f']:.2f}" if t else "not run"
        print(
            f"| {r['dataset']} | {r['variant']} | {r['seed']} | {r['max_steps']} | {r['dev_f']:.2f} "
            f"| {everyday} | {test} | {r['train_wall_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
