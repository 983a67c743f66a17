"""README.md is the front door: short, with the two commands a newcomer (and
.ci/run) relies on, and a usage example that runs as written.

The example loads the pipeline that `spacy project run all` trains. Here it
runs against a tiny pipeline trained in seconds, saved to a temp dir whose
path replaces the README's, in a temp working directory (the example writes
files).
"""

import re
from pathlib import Path

import pytest
import srsly

from .tiny_pipelines import lexner_pipeline, write_lexicon
from .util import REPO_ROOT

README = REPO_ROOT / "README.md"
MAX_LINES = 220
COMMANDS = (
    'pip install torch==2.13.0 -e ".[project]" && python -m spacy project run all',
    'pip install torch==2.13.0 -e ".[test]" && python -m pytest tests -q -n 2 --dist loadfile',
)
# Where `spacy project run all` writes the trained pipeline.
PIPELINE_PATH = "training/default/model-best"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def python_blocks(text: str):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_is_short() -> None:
    n_lines = len(readme().splitlines())
    assert n_lines <= MAX_LINES, f"README.md has {n_lines} lines; move details to docs/ (at most {MAX_LINES})"


def test_readme_has_the_two_commands() -> None:
    text = readme()
    for command in COMMANDS:
        assert command in text
    # .ci/run runs the tests the way command 2 does.
    assert "python -m pytest tests -q -n 2 --dist loadfile" in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_pipeline_path_is_where_the_workflow_writes() -> None:
    project = srsly.read_yaml(REPO_ROOT / "project.yml")
    assert "train" in project["workflows"]["all"]
    train = next(c for c in project["commands"] if c["name"] == "train")
    assert PIPELINE_PATH in train["outputs"]


def test_readme_results_match_benchmarks_results() -> None:
    """Every measured number of the README's results table is the one in
    benchmarks/RESULTS.md: the mean (range) in its three-seed table, the
    spaCy ner F1 in its lexner-against-ner table."""
    results = (REPO_ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (Resume|Weibo|CLUENER|MSRA)[^|]* \| ([^|]+) \| ([^|]+) \|$", readme(), re.MULTILINE)
    assert len(rows) == 4, f"the README's results table should have a row per dataset, got {rows}"
    measured = 0
    for dataset, ours, spacy_ner in rows:
        match = re.match(r"([\d.]+) \(([\d.]+)–([\d.]+)\)$", ours.strip())
        if match:
            mean, low, high = match.groups()
            cell = f"**{mean}** ({low}–{high})"
            lines = [li for li in results.splitlines() if li.startswith(f"| {dataset} | ") and cell in li]
            assert lines, f"README {dataset} {ours.strip()} not in RESULTS.md"
            measured += 1
        if re.match(r"[\d.]+$", spacy_ner.strip()):
            pattern = rf"^\| {dataset.lower()} \| spacy_ner \| [\d.]+ \| [\d.]+ \| {re.escape(spacy_ner.strip())} \|"
            assert re.search(pattern, results, re.MULTILINE), f"README spaCy ner {dataset} not in RESULTS.md"
    assert measured >= 2


@pytest.mark.filterwarnings("ignore:.*W006")
def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(readme())
    assert blocks, "README.md has no ```python block"
    model_dir = tmp_path / "model"
    lexner_pipeline(write_lexicon(tmp_path / "lexicon.txt")).to_disk(model_dir)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    namespace = {"__name__": "__readme__"}
    n_substituted = 0
    for i, block in enumerate(blocks):
        n_substituted += block.count(f'"{PIPELINE_PATH}"')
        code = block.replace(f'"{PIPELINE_PATH}"', repr(str(model_dir)))
        exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)
    assert n_substituted, f"the README example does not load {PIPELINE_PATH!r}"
