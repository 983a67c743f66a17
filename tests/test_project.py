"""Smoke test of project.yml: the `all` workflow on a 20-sentence slice of
the Weibo assets, trained for 10 steps, in a copy of the project. A second
run must skip every step.
"""

import shutil
from pathlib import Path

import pytest
import srsly
from weasel.cli.run import project_run

from .util import REPO_ROOT

STEPS = ("convert", "train", "evaluate", "package", "demo")
N_SENTENCES = 20
OVERRIDES = {"vars.max_steps": 10, "vars.eval_frequency": 5}


def make_project(root: Path) -> None:
    """Copy the project files and a slice of each Weibo split into root."""
    shutil.copy(REPO_ROOT / "project.yml", root / "project.yml")
    for name in ("scripts", "meta"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "configs").mkdir()
    # Name replacement types every word of jieba's dictionary with LAC once
    # per training (about 20 s): here a short typed list keeps the test fast.
    (root / "names.txt").write_text(
        "姚明 97 nr\n马云 100 nr\n复旦大学 50 nt\n杭州 300 ns\n明白 500 nr\n", encoding="utf-8"
    )
    config = (REPO_ROOT / "configs" / "weibo.cfg").read_text(encoding="utf-8")
    assert "\nlexicon_path = null\n" in config
    config = config.replace("\nlexicon_path = null\n", '\nlexicon_path = "names.txt"\n', 1)
    (root / "configs" / "weibo.cfg").write_text(config, encoding="utf-8")
    (root / "assets" / "weibo").mkdir(parents=True)
    for split in ("train", "dev", "test"):
        name = f"weiboNER_2nd_conll.{split}"
        text = (REPO_ROOT / "assets" / "weibo" / name).read_text(encoding="utf-8")
        blocks = [block for block in text.split("\n\n") if block.strip()][:N_SENTENCES]
        (root / "assets" / "weibo" / name).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_project_all_runs_then_skips(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_project(tmp_path)
    project_run(tmp_path, "all", overrides=OVERRIDES, capture=True)

    for split in ("train", "dev", "test"):
        assert (tmp_path / "corpus" / "default" / f"{split}.spacy").is_file()
    assert (tmp_path / "training" / "default" / "model-best" / "config.cfg").is_file()
    metrics = srsly.read_json(tmp_path / "metrics" / "default.json")
    assert {"ents_p", "ents_r", "ents_f"} <= set(metrics)
    wheel = tmp_path / "packages" / "zh_lexner_weibo-0.1.0-py3-none-any.whl"
    assert wheel.is_file()
    assert len(list((tmp_path / "packages").glob("spacy_lexner-*.whl"))) == 1  # so the wheel installs alone
    meta = srsly.read_json(tmp_path / "packages" / "zh_lexner_weibo-0.1.0" / "meta.json")
    assert any(req.startswith("spacy-lexner") for req in meta["requirements"])
    assert meta["license"].startswith("CC BY-SA 3.0")
    # The LAC weights inside the pipeline carry their licence (Apache-2.0).
    assert any("LAC" in source["name"] and "Apache-2.0" in source["license"] for source in meta["sources"])
    records = list(srsly.read_jsonl(tmp_path / "demo" / "default.jsonl"))
    assert [r["text"] for r in records][1] == "南京市长江大桥"
    html = (tmp_path / "demo" / "default.html").read_text(encoding="utf-8")
    assert html.count('class="entities"') == len(records)  # one displaCy block per sentence

    lock = (tmp_path / "project.lock").read_text(encoding="utf-8")
    wheel_mtime = wheel.stat().st_mtime_ns
    capsys.readouterr()
    project_run(tmp_path, "all", overrides=OVERRIDES, capture=True)
    out = capsys.readouterr().out
    for step in STEPS:
        assert f"Skipping '{step}': nothing changed" in out
    assert (tmp_path / "project.lock").read_text(encoding="utf-8") == lock
    assert wheel.stat().st_mtime_ns == wheel_mtime


@pytest.mark.slow
def test_project_trains_from_pretrained_vectors(tmp_path: Path) -> None:
    pytest.importorskip("gensim")
    make_project(tmp_path)
    for command in ("convert", "pretrain-vectors"):
        project_run(tmp_path, command, capture=True)
    vectors = "corpus/default/vectors.npz"
    assert (tmp_path / vectors).is_file()
    project_run(tmp_path, "train", overrides={**OVERRIDES, "vars.vectors": vectors}, capture=True)
    config = (tmp_path / "training" / "default" / "model-best" / "config.cfg").read_text(encoding="utf-8")
    assert f'pretrained_vectors = "{vectors}"' in config
