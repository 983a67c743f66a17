"""benchmarks/run_benchmark.py resumes: finished trainings and scores are
kept on disk and skipped when the same command runs again."""

import importlib.util
import json
import sys

import pytest

from .util import REPO_ROOT


@pytest.fixture
def bench(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("run_benchmark", REPO_ROOT / "benchmarks" / "run_benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = {"train": [], "evaluate": []}

    def fake_convert(data_dir, name, corpus):
        return {split: corpus / f"{split}.spacy" for split in ("train", "dev", "test")}

    def fake_train(system, name, paths, out_dir, threads, data_dir, seed_args=()):
        calls["train"].append((name, out_dir.name))
        if "fail" in str(data_dir):
            raise SystemExit("training failed")
        (out_dir / "model-best").mkdir(parents=True)
        return {"wall_s": 60.0, "peak_rss_mb": 1.0, "returncode": 0}

    def fake_evaluate(model_dir, test_path):
        calls["evaluate"].append(model_dir.parent.name)
        seed = int(model_dir.parent.name.rsplit("seed", 1)[1])
        return {"p": 90.0, "r": 90.0, "f": 90.0 + seed, "per_type": {}, "chars_per_s": 1.0, "size_mb": 1.0}

    monkeypatch.setattr(module, "convert", fake_convert)
    monkeypatch.setattr(module, "train", fake_train)
    monkeypatch.setattr(module, "evaluate", fake_evaluate)

    def run(*extra):
        argv = ["run_benchmark.py", "--output", str(tmp_path / "runs"), "--systems", "lexner", *extra]
        monkeypatch.setattr(sys, "argv", argv)
        module.main()
        return json.loads((tmp_path / "runs" / "results.json").read_text())

    return module, run, calls


def test_second_run_skips_finished_trainings_and_scores(bench, capsys):
    module, run, calls = bench
    first = run("--datasets", "resume", "weibo", "--seeds", "0", "1", "2", "--jobs", "2")
    assert sorted(calls["train"]) == sorted((d, f"lexner_seed{s}") for d in ("resume", "weibo") for s in range(3))
    assert len(calls["evaluate"]) == 6
    calls["train"].clear(), calls["evaluate"].clear()
    second = run("--datasets", "resume", "weibo", "--seeds", "0", "1", "2", "--jobs", "2")
    assert calls == {"train": [], "evaluate": []}
    assert second == first
    summary = module.seed_summary(second)
    assert {(r["dataset"], r["n"], r["mean"], r["min"], r["max"]) for r in summary} == {
        ("resume", 3, 91.0, 90.0, 92.0),
        ("weibo", 3, 91.0, 90.0, 92.0),
    }
    assert "| resume | lexner | 3 | 91.00 | 90.00 | 92.00 |" in capsys.readouterr().out


def test_an_unfinished_run_is_trained_again_and_new_seeds_only_add(bench):
    module, run, calls = bench
    run("--datasets", "resume", "--seeds", "0")
    calls["train"].clear()
    results = run("--datasets", "resume", "--seeds", "0", "1")
    assert calls["train"] == [("resume", "lexner_seed1")]
    assert [r["run"] for r in results] == ["lexner_seed0", "lexner_seed1"]


def test_a_failed_training_is_reported_and_the_rest_scored(bench, capsys, tmp_path):
    module, run, calls = bench
    results = run("--datasets", "resume", "--seeds", "0", "--data-dir", str(tmp_path / "fail"))
    assert results == []
    assert "not trained (training failed)" in capsys.readouterr().out
