"""Convert one dataset folder to corpus/<name>/{train,dev,test}.spacy.

    python scripts/convert_dataset.py weibo assets/weibo corpus/weibo

SRC_DIR holds the dataset's files under the names used in shared/data/<name>/
(see docs/data.md). Two upstream forms that `spacy project assets --extra`
downloads are also read, so a downloaded assets/ folder works as a data_dir:
MSRA as the MSRA.zip archive, and CLUENER as pretty-printed JSON records.

Every split always gets a file, so the train/evaluate commands are the same
for every dataset: MSRA has no dev or test set here (dev is carved off the
end of train, test.spacy is a copy of dev), and CLUENER's test split is
unlabelled (its dev split becomes test.spacy, dev is carved off train).
"""

import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import typer
from spacy.tokens import DocBin
from split_dev import carve_dev
from wasabi import msg

from spacy_lexner.corpora.convert import ConversionError, blank_vocab, docs_from_file


@dataclass(frozen=True)
class DatasetSpec:
    fmt: str
    train: str
    dev: Optional[str]  # None: carve the last n_dev train docs off as dev
    test: Optional[str]  # None: no labelled test set, test.spacy = dev.spacy
    n_dev: int = 0


SPECS: Dict[str, DatasetSpec] = {
    "resume": DatasetSpec("bmes", "train.char.bmes", "dev.char.bmes", "test.char.bmes"),
    "weibo": DatasetSpec("weibo", "weiboNER_2nd_conll.train", "weiboNER_2nd_conll.dev", "weiboNER_2nd_conll.test"),
    "msra": DatasetSpec("bio", "msra_train_bio", None, None, n_dev=3000),
    "cluener": DatasetSpec("cluener", "train.json", None, "dev.json", n_dev=1000),
}
# md5 of the reference copies (shared/data). A mismatch is only a warning:
# another faithful copy may differ in bytes (see the MSRA note in the data README).
REFERENCE_MD5 = {
    "train.char.bmes": "badab28955123a81149f5d3148290bf1",
    "dev.char.bmes": "3053f33e3347af60dabc03e5e2a98dd6",
    "test.char.bmes": "a0b7592d9fc2f254a03d9cf0bf81ba7a",
    "weiboNER_2nd_conll.train": "452359bfc9c5b1a5196b16772e5ff8bb",
    "weiboNER_2nd_conll.dev": "1c0d3912fb7162d9c36450efe34dedd4",
    "weiboNER_2nd_conll.test": "8e098069b27c3765726416ecce6b1b01",
    "msra_train_bio": "40f4961d2b38352689103b8aa8f30b97",
    "train.json": "6cf6f466b20c1681ed12e6b18e6345df",
    "dev.json": "ecf3cf49219eb6a5a32fe958da713f04",
}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def unzip_member(archive: Path, name: str, tmp_dir: Path) -> Path:
    """Extract the member whose base name is `name` (MSRA.zip keeps it in a subfolder)."""
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.namelist() if Path(m).name == name]
        if not members:
            raise ConversionError(f"{archive}: no member named {name}")
        target = tmp_dir / name
        target.write_bytes(zf.read(members[0]))
    return target


def to_json_lines(path: Path, tmp_dir: Path) -> Path:
    """Re-serialise a stream of JSON records (pretty-printed or one per line)
    to one record per line, the layout the CLUENER converter reads.
    """
    text = path.read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    lines = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            break
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise ConversionError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from None
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    target = tmp_dir / path.name
    target.write_text("".join(lines), encoding="utf-8")
    return target


def locate(src_dir: Path, dataset: str, name: str, tmp_dir: Path) -> Path:
    """The file to convert: src_dir/name, or its normalised upstream form."""
    path = src_dir / name
    if dataset == "msra" and not path.exists() and (src_dir / "MSRA.zip").exists():
        path = unzip_member(src_dir / "MSRA.zip", name, tmp_dir)
    elif dataset == "cluener" and path.exists():
        path = to_json_lines(path, tmp_dir)
    if not path.exists():
        raise ConversionError(
            f"{src_dir / name}: not found. Point vars.data_dir at a copy of the data "
            f"(e.g. --vars.data_dir ../shared/data) or run `spacy project assets --extra`."
        )
    expected = REFERENCE_MD5.get(name)
    if expected and md5(path) != expected:
        msg.warn(f"{src_dir / name}: md5 differs from the reference copy; counts may differ")
    return path


def convert_split(path: Path, fmt: str) -> DocBin:
    docs, stats = docs_from_file(path, fmt, vocab=blank_vocab("zh"))
    msg.text(f"{stats.n_docs} docs, {stats.n_chars} chars, {stats.n_ents} entities")
    msg.table(sorted(stats.labels.items()), header=("label", "entities"), aligns=("l", "r"))
    if stats.n_repaired:
        msg.warn(f"Repaired {stats.n_repaired} ill-formed tag(s) (rule: spacy-lexner convert --help)")
    if stats.n_dropped_overlaps:
        msg.warn(f"Dropped {stats.n_dropped_overlaps} overlapping span(s), keeping the longer ones")
    return DocBin(docs=docs, store_user_data=False)


def main(
    dataset: str = typer.Argument(..., help=f"One of: {', '.join(SPECS)}"),
    src_dir: Path = typer.Argument(..., help="Folder with the dataset's files"),
    out_dir: Path = typer.Argument(..., help="Folder for train/dev/test.spacy"),
) -> None:
    if dataset not in SPECS:
        msg.fail(f"Unknown dataset {dataset!r}", f"Use one of: {', '.join(SPECS)}", exits=1)
    spec = SPECS[dataset]
    out: Dict[str, DocBin] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_dir = Path(tmp)
            for split, name in (("train", spec.train), ("dev", spec.dev), ("test", spec.test)):
                if name is not None:
                    msg.divider(f"{dataset} {split}: {src_dir / name}")
                    out[split] = convert_split(locate(src_dir, dataset, name, tmp_dir), spec.fmt)
    except ConversionError as err:
        msg.fail("Conversion failed", str(err), exits=1)
    if spec.dev is None:
        out["train"], out["dev"] = carve_dev(out["train"], spec.n_dev)
        msg.info(f"dev = the last {spec.n_dev} train docs (no official dev split)")
    if spec.test is None:
        out["test"] = out["dev"]
        msg.warn("No labelled test set: test.spacy is a copy of dev, so test scores are dev scores")
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        out[split].to_disk(out_dir / f"{split}.spacy")
    sizes = ", ".join(f"{split} {len(out[split])}" for split in ("train", "dev", "test"))
    msg.good(f"Wrote {out_dir}/{{train,dev,test}}.spacy ({sizes} docs)")


if __name__ == "__main__":
    typer.run(main)
