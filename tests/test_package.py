"""`spacy package` of a trained lexner pipeline installs into a clean venv
and predicts the same entities there as the trained directory does here.

Slow (a venv with torch, spaCy and spacy-lexner is built from the pip cache
and index), but CI runs it: it is the only check that the entry points make
spaCy list spacy-lexner as a requirement of the packaged pipeline.
"""

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
import srsly
import torch

from .util import REPO_ROOT, blank_with_tagger, ents_of, make_examples, train_nlp

TEXTS = ["张三在北京大学工作。", "李四去了上海。", "南京市长江大桥很长。", "王五是腾讯公司的工程师"]
WORDS = ["北京大学", "上海", "南京市", "长江大桥", "腾讯公司", "工程师"]
PREDICT = """
import json, sys
import spacy, spacy_lexner
nlp = spacy.load("zh_lexner_tiny")
print(json.dumps({
    "ents": [[[e.start_char, e.end_char, e.label_] for e in doc.ents] for doc, _ in nlp.pipe(json.loads(sys.argv[1]), as_tuples=True)],
    "spacy_lexner": spacy_lexner.__file__,
    "sys_path": sys.path,
}))
"""


def train_tiny_pipeline(path: Path, wordlist: Path) -> None:
    nlp = blank_with_tagger()
    # A six-word lexicon instead of jieba's 350k words keeps the package small.
    wordlist.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    nlp.config["initialize"]["components"]["lexner_tagger"] = {
        "lexicon": {"@lexicons": "spacy-lexner.file_lexicon.v1", "paths": [str(wordlist)]}
    }
    train_nlp(nlp, make_examples(nlp), n_iter=30)
    # A multimodal ruler whose visual pattern and prototype must survive packaging.
    ruler = nlp.add_pipe("multimodal_entity_ruler")
    ruler.add_prototype("bridge_photo", [1.0, 0.0])
    ruler.add_patterns(
        [
            {"label": "BRIDGE", "pattern": "长江大桥", "visual": {"tags_any": ["bridge"]}, "relabel": True},
            {
                "label": "JOB",
                "pattern": "工程师",
                "visual": {"embedding_sim": {"prototype": "bridge_photo", "min": -1.0}},
            },
        ]
    )
    nlp.to_disk(path)


# Texts with the image context the ruler reads (nlp.pipe(..., as_tuples=True)).
INPUTS = [[text, {"image_tags": [["bridge", 0.9]], "image_embedding": [0.5, 0.5]}] for text in TEXTS]


def clean_env() -> Dict[str, str]:
    """The environment for the venv: nothing that would add the checkout or
    user site-packages to sys.path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CONDA"))}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(cmd: List[str], cwd: Path, env: Dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_packaged_pipeline_in_clean_venv(tmp_path: Path) -> None:
    env = clean_env()
    model_dir = tmp_path / "model"
    train_tiny_pipeline(model_dir, tmp_path / "words.txt")
    expected = [[list(e) for e in ents_of(doc)] for doc, _ in spacy.load(model_dir).pipe(INPUTS, as_tuples=True)]
    assert any(expected), "the tiny pipeline should find some entities; train it longer"
    labels = {e[2] for doc_ents in expected for e in doc_ents}
    assert "JOB" in labels, expected

    # What `spacy project run package` runs: both wheels into one folder.
    packages = tmp_path / "packages"
    script = REPO_ROOT / "scripts" / "package_wheels.py"
    cmd = [sys.executable, str(script), str(model_dir), str(packages), "--name", "lexner_tiny", "--version", "0.0.1"]
    run(cmd, cwd=tmp_path, env=dict(os.environ))
    requirements = srsly.read_json(packages / "zh_lexner_tiny-0.0.1" / "meta.json")["requirements"]
    assert any(req.startswith("spacy-lexner") for req in requirements), requirements
    wheels = sorted(packages.glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["spacy_lexner", "zh_lexner_tiny"], wheels
    assert any(name.endswith("py.typed") for name in zipfile.ZipFile(wheels[0]).namelist())
    assert "spacy_lexner/cli/templates/serve.html" in zipfile.ZipFile(wheels[0]).namelist()  # the serve page

    venv_dir = tmp_path / "venv"
    venv.create(venv_dir, with_pip=True, clear=True)  # no system site-packages
    python = str(venv_dir / "bin" / "python")
    # torch first and pinned to the version under test, as in .ci/run: a bare
    # requirement could pull a multi-GB CUDA build. "2.13.0" also matches "2.13.0+cpu".
    torch_version = torch.__version__.split("+")[0]
    run([python, "-m", "pip", "install", "--quiet", f"torch=={torch_version}"], cwd=tmp_path, env=env)
    # The README's install: the wheels alone, nothing from the checkout.
    run([python, "-m", "pip", "install", "--quiet", *map(str, wheels)], cwd=tmp_path, env=env)

    # An empty working directory: `python -c` puts it first on sys.path.
    workdir = tmp_path / "run"
    workdir.mkdir()
    out = json.loads(run([python, "-c", PREDICT, json.dumps(INPUTS)], cwd=workdir, env=env))
    assert out["ents"] == expected
    assert Path(out["spacy_lexner"]).resolve().is_relative_to(venv_dir.resolve())
    repo = str(REPO_ROOT.resolve())
    assert not [p for p in out["sys_path"] if p and str(Path(p).resolve()).startswith(repo)]
