"""spacy-lexner clean-strings: a pipeline saved by 0.1.0 (whose StringStore
holds its training sentences) cleaned into one that predicts the same."""

import shutil
from pathlib import Path

import pytest
import spacy
import srsly

from spacy_lexner.pipeline.clean_strings import clean_strings

from .tiny_pipelines import ents_of
from .util import TRAIN_DATA

FIXTURE = Path(__file__).parent / "fixtures" / "v0_1_0"
EXPECTED = srsly.read_json(Path(__file__).parent / "fixtures" / "v0_1_0_expected.json")


def test_clean_removes_training_sentences_and_keeps_ents(tmp_path: Path) -> None:
    source = tmp_path / "in"
    shutil.copytree(FIXTURE, source)
    before = (source / "vocab" / "strings.json").read_bytes()
    sentences = [text for text, _ in TRAIN_DATA]
    assert all(s in srsly.read_json(source / "vocab" / "strings.json") for s in sentences)  # the 0.1.0 leak
    report = clean_strings(source, tmp_path / "out")
    assert (source / "vocab" / "strings.json").read_bytes() == before  # input untouched
    cleaned = srsly.read_json(tmp_path / "out" / "vocab" / "strings.json")
    assert not [s for s in cleaned if len(s) > 1 and any(s in sentence for sentence in sentences)]
    assert report.n_removed >= len(sentences) and report.longest_removed >= max(map(len, sentences))
    assert report.n_checked >= report.n_removed
    nlp = spacy.load(tmp_path / "out")
    original = spacy.load(source)
    for record in EXPECTED["docs"]:
        assert [list(e) for e in ents_of(nlp(record["text"]))] == record["ents"]
        assert ents_of(nlp(record["text"])) == ents_of(original(record["text"]))


def test_clean_refuses_to_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "in"
    shutil.copytree(FIXTURE, source)
    for target in (source, source / "sub", tmp_path / "in" / ".." / "in"):
        with pytest.raises(ValueError, match="is the input pipeline or inside it"):
            clean_strings(source, target)
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        clean_strings(source, tmp_path / "taken")
    with pytest.raises(ValueError, match="not a saved spaCy pipeline"):
        clean_strings(tmp_path / "taken", tmp_path / "out")


def test_clean_strings_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from spacy_lexner.cli.app import app

    runner = CliRunner()
    result = runner.invoke(app, ["clean-strings", str(FIXTURE), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "removed" in result.output and "same entities" in result.output
    again = runner.invoke(app, ["clean-strings", str(FIXTURE), str(tmp_path / "out")])
    assert again.exit_code == 1 and "already exists" in " ".join(again.output.split())
