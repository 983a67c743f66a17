"""The project scripts: dev carving and the upstream forms of the downloaded
MSRA (zip) and CLUENER (pretty-printed JSON) assets."""

import json
import zipfile
from pathlib import Path

import pytest
from spacy.tokens import DocBin

from spacy_lexner.corpora.convert import blank_vocab, make_doc

from .util import REPO_ROOT


@pytest.fixture
def scripts(monkeypatch: pytest.MonkeyPatch):
    # The scripts import each other as top-level modules, as when run from scripts/.
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    import convert_dataset
    import split_dev

    return convert_dataset, split_dev


def docbin(n: int) -> DocBin:
    vocab = blank_vocab("zh")
    return DocBin(docs=[make_doc(vocab, list(f"句子{i}"), []) for i in range(n)])


def test_carve_dev_takes_the_last_docs(scripts) -> None:
    _, split_dev = scripts
    train, dev = split_dev.carve_dev(docbin(10), 3)
    vocab = blank_vocab("zh")
    assert [d.text for d in train.get_docs(vocab)] == [f"句子{i}" for i in range(7)]
    assert [d.text for d in dev.get_docs(vocab)] == ["句子7", "句子8", "句子9"]


@pytest.mark.parametrize("n_dev", [0, 10, 11])
def test_carve_dev_rejects_bad_sizes(scripts, n_dev: int) -> None:
    _, split_dev = scripts
    with pytest.raises(ValueError, match="--n-dev"):
        split_dev.carve_dev(docbin(10), n_dev)


def test_pretty_printed_json_becomes_json_lines(scripts, tmp_path: Path) -> None:
    convert_dataset, _ = scripts
    records = [
        {"text": "彭小军认为台湾", "label": {"name": {"彭小军": [[0, 2]]}, "address": {"台湾": [[5, 6]]}}},
        {"text": "无实体"},
    ]
    src = tmp_path / "dev.json"
    src.write_text("".join(json.dumps(r, ensure_ascii=False, indent=2) + "\n" for r in records), encoding="utf-8")
    (tmp_path / "out").mkdir()
    out = convert_dataset.to_json_lines(src, tmp_path / "out")
    # The same bytes as the reference JSON-lines copy would have.
    assert out.read_text(encoding="utf-8") == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def test_msra_member_is_read_from_the_zip(scripts, tmp_path: Path) -> None:
    convert_dataset, _ = scripts
    src = tmp_path / "msra"
    src.mkdir()
    with zipfile.ZipFile(src / "MSRA.zip", "w") as zf:
        zf.writestr("MSRA/msra_train_bio", "北\tB-LOC\n京\tI-LOC\n\n好\tO\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    path = convert_dataset.locate(src, "msra", "msra_train_bio", tmp)
    assert path.read_text(encoding="utf-8").startswith("北\tB-LOC")


def test_missing_data_names_the_fix(scripts, tmp_path: Path) -> None:
    convert_dataset, _ = scripts
    with pytest.raises(convert_dataset.ConversionError, match="vars.data_dir"):
        convert_dataset.locate(tmp_path, "resume", "train.char.bmes", tmp_path)
