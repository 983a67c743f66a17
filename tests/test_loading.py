"""Loading saved pipelines: corrupted, truncated or missing files give an
error naming the file; a pipeline saved by an earlier version still loads
(tests/fixtures/v0_1_0, made by tests/fixtures/make_fixture.py)."""

import re
from pathlib import Path

import pytest
import spacy
import srsly

from .tiny_pipelines import check_doc, crf_pipeline, ents_of, lexner_pipeline, write_lexicon

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One saved pipeline with all three components."""
    root = tmp_path_factory.mktemp("saved")
    nlp = lexner_pipeline(write_lexicon(root / "lex.txt"))
    crf = crf_pipeline()
    nlp.add_pipe("crf_ner", source=crf, before="multimodal_entity_ruler")
    nlp.to_disk(root / "nlp")
    return root / "nlp"


def _copy(saved: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(saved, tmp_path / "nlp"))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, len(data) // 3)])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot what you expected\x93{[")


CORRUPTIONS = [
    ("lexner_tagger/model", _truncate),
    ("lexner_tagger/model", _garbage),
    ("lexner_tagger/lexicon", _truncate),
    ("lexner_tagger/lexicon", _garbage),
    ("lexner_tagger/cfg", _truncate),
    ("crf_ner/model", _truncate),
    ("crf_ner/model", _garbage),
    ("crf_ner/cfg", _truncate),
    ("crf_ner/cfg", _garbage),
    ("multimodal_entity_ruler/cfg", _truncate),
    ("multimodal_entity_ruler/patterns.jsonl", _truncate),
    ("multimodal_entity_ruler/patterns.jsonl", _garbage),
    ("multimodal_entity_ruler/prototypes.msgpack", _garbage),
]


@pytest.mark.parametrize("name,corrupt", CORRUPTIONS, ids=lambda x: getattr(x, "__name__", x))
def test_corrupted_file_is_named(saved, tmp_path, name, corrupt):
    nlp_dir = _copy(saved, tmp_path)
    corrupt(nlp_dir / name)
    with pytest.raises(ValueError, match=re.escape(str(nlp_dir / name))):
        spacy.load(nlp_dir)


@pytest.mark.parametrize(
    "name",
    [
        "lexner_tagger/model",
        "lexner_tagger/lexicon",
        "lexner_tagger/cfg",
        "crf_ner/model",
        "crf_ner/cfg",
        "multimodal_entity_ruler/patterns.jsonl",
        "multimodal_entity_ruler/prototypes.msgpack",
    ],
)
def test_missing_file_is_named(saved, tmp_path, name):
    nlp_dir = _copy(saved, tmp_path)
    (nlp_dir / name).unlink()
    with pytest.raises(ValueError, match=re.escape(str(nlp_dir / name))):
        spacy.load(nlp_dir)


def test_missing_extra_lexicon_is_named(saved, tmp_path):
    missing = tmp_path / "no_such_words.txt"
    with pytest.raises((ValueError, OSError), match=re.escape(str(missing))):
        spacy.load(saved, config={"components": {"lexner_tagger": {"extra_lexicons": [str(missing)]}}})


def test_intact_copy_loads(saved, tmp_path):
    nlp = spacy.load(_copy(saved, tmp_path))
    check_doc(nlp("张三在腾讯工作。"), "张三在腾讯工作。")


# -- a pipeline saved by an earlier version --------------------------------


def test_fixture_is_small():
    size = sum(p.stat().st_size for p in (FIXTURES / "v0_1_0").rglob("*") if p.is_file())
    assert size < 400_000, f"the fixture pipeline is {size} bytes; keep it a few hundred KB"


def test_pipeline_saved_by_earlier_version_loads():
    nlp = spacy.load(FIXTURES / "v0_1_0")
    assert nlp.pipe_names == ["lexner_tagger", "crf_ner", "multimodal_entity_ruler"]
    expected = srsly.read_json(FIXTURES / "v0_1_0_expected.json")
    for record in expected["docs"]:
        doc = nlp(record["text"])
        check_doc(doc, record["text"])
        assert [list(e) for e in ents_of(doc)] == record["ents"], record["text"]
        with nlp.select_pipes(disable=["crf_ner"]):
            assert [list(e) for e in ents_of(nlp(record["text"]))] == record["ents_without_crf_ner"]
