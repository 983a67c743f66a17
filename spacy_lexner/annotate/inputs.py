"""Finding the input files, cutting them into shards and reading a shard's records.

A shard is a fixed range of lines (JSONL, plain text) or rows (Parquet) of
one input file: ``shard_size`` of them, in input order, numbered across the
files in order. The plan depends only on the files and ``shard_size``, so a
resumed run, the local engine and every Ray worker see the same shards.
Line shards also record the byte offset of their first line, so a worker
reads its shard with one seek instead of re-reading the file from the start.
"""

import glob
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

FORMATS = ("jsonl", "text", "parquet")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".txt": "text",
    ".text": "text",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# Read size of the planning pass that finds line offsets.
SCAN_CHUNK = 1 << 22


class AnnotateError(ValueError):
    """A problem with the job's arguments or inputs: printed as a message, not a trace."""


@dataclass(frozen=True)
class Shard:
    """One shard: ``n_lines`` lines (or rows) of ``path`` from line ``start``
    (0-based; ``offset`` is its byte position for line formats)."""

    index: int
    file_index: int
    path: str
    fmt: str
    start: int
    n_lines: int
    offset: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Shard":
        return cls(**{k: (v.item() if hasattr(v, "item") else v) for k, v in data.items()})


@dataclass
class ReadSpec:
    """How records are read from a shard; part of what the output depends on."""

    text_field: str = "text"
    id_field: str = "id"
    keep_fields: bool = False
    # Each input file's name as given (for messages, rejects and, with
    # include_source, output records); shards hold the absolute path, which
    # a Ray worker with another working directory can open.
    sources: List[str] = field(default_factory=list)
    include_source: bool = False


@dataclass
class Record:
    """One input record: a text to annotate, or the reason it cannot be."""

    position: int  # line (or row) number in its file, 1-based
    id: Any = None
    text: Optional[str] = None
    fields: Optional[Dict[str, Any]] = None
    error: Optional[str] = None


def resolve_inputs(input_path: str) -> List[Path]:
    """The input files: the file itself, a directory's files with a known
    extension (recursively), or a glob's matches; sorted, so the order (and
    the shard numbers) are the same on every run."""
    path = Path(input_path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not files:
            raise AnnotateError(
                f"{input_path} is a directory with no input files; known extensions are {', '.join(EXTENSIONS)}."
            )
        return files
    if glob.has_magic(input_path):
        files = sorted(Path(p) for p in glob.glob(input_path, recursive=True) if Path(p).is_file())
        if not files:
            raise AnnotateError(f"The pattern {input_path} matches no files.")
        return files
    raise AnnotateError(
        f"{input_path} does not exist. Give a file, a directory or a glob (quoted, e.g. 'data/*.jsonl')."
    )


def detect_format(files: List[Path], fmt: str = "auto") -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise AnnotateError(f"Unknown input format {fmt!r}; use one of {', '.join(FORMATS)} or auto.")
        return fmt
    found = {}
    for path in files:
        name = EXTENSIONS.get(path.suffix.lower())
        if name is None:
            raise AnnotateError(
                f"Cannot tell the format of {path} from its extension; pass --input-format ({', '.join(FORMATS)})."
            )
        found.setdefault(name, path)
    if len(found) > 1:
        examples = ", ".join(f"{p} ({name})" for name, p in found.items())
        raise AnnotateError(f"The inputs mix formats: {examples}. Annotate each format separately.")
    return next(iter(found))


def plan_shards(files: List[Path], fmt: str, shard_size: int, spec: ReadSpec) -> List[Shard]:
    """Every shard of every file, in input order."""
    shards: List[Shard] = []
    for file_index, path in enumerate(files):
        if fmt == "parquet":
            spans = _parquet_spans(path, shard_size, spec)
        else:
            spans = _line_spans(path, shard_size)
        for start, n_lines, offset in spans:
            shards.append(Shard(len(shards), file_index, str(path.resolve()), fmt, start, n_lines, offset))
    return shards


def _line_spans(path: Path, shard_size: int) -> List[Tuple[int, int, int]]:
    """(first line, lines, byte offset) of each shard of a line file. Lines
    end at b"\\n" only: a text's own \\u2028 or \\r stays in the text."""
    spans = []
    n_lines, position, start_offset, pending = 0, 0, 0, False
    with open(path, "rb") as f:
        while True:
            chunk = f.read(SCAN_CHUNK)
            if not chunk:
                break
            i = 0
            while True:
                j = chunk.find(b"\n", i)
                if j < 0:
                    pending = pending or i < len(chunk)
                    break
                n_lines += 1
                pending = False
                i = j + 1
                if n_lines % shard_size == 0:
                    spans.append((n_lines - shard_size, shard_size, start_offset))
                    start_offset = position + i
            position += len(chunk)
    if pending:  # a last line without a newline
        n_lines += 1
    if n_lines % shard_size:
        spans.append((n_lines - n_lines % shard_size, n_lines % shard_size, start_offset))
    return spans


def _parquet_spans(path: Path, shard_size: int, spec: ReadSpec) -> List[Tuple[int, int, int]]:
    pq = _require_pyarrow()
    parquet = pq.ParquetFile(path)
    columns = parquet.schema_arrow.names
    for what, name in (("--text-field", spec.text_field), ("--id-field", spec.id_field)):
        if name and name not in columns:
            raise AnnotateError(
                f"{path} has no column {name!r} ({what}); its columns are {', '.join(columns)}."
                + (" Pass --id-field '' to use row numbers as ids." if what == "--id-field" else "")
            )
    n_rows = parquet.metadata.num_rows
    return [(start, min(shard_size, n_rows - start), 0) for start in range(0, n_rows, shard_size)]


def _require_pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise AnnotateError(
            f'Parquet needs pyarrow ({err}). Install it with: pip install "spacy-lexner[parquet]"'
        ) from None
    return pq


def read_shard(shard: Shard, spec: ReadSpec) -> Iterator[Record]:
    """The shard's records, in order. Blank lines are not records."""
    if shard.fmt == "parquet":
        yield from _read_parquet(shard, spec)
        return
    with open(shard.path, "rb") as f:
        f.seek(shard.offset)
        for i in range(shard.n_lines):
            raw = f.readline()
            number = shard.start + i + 1
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
                raw = raw[3:]
            raw = raw.rstrip(b"\n")
            if raw.endswith(b"\r"):  # Windows line ends
                raw = raw[:-1]
            if not raw.strip():
                continue
            yield _line_record(raw, number, shard, spec)


def _where(shard: Shard, number: int, spec: ReadSpec) -> str:
    return f"{spec.sources[shard.file_index] if spec.sources else shard.path}:{number}"


def _line_record(raw: bytes, number: int, shard: Shard, spec: ReadSpec) -> Record:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Record(
            number,
            error=f"{_where(shard, number, spec)}: not UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start} "
            "of the line); re-encode the file as UTF-8",
        )
    if shard.fmt == "text":
        return Record(number, id=number, text=line, fields={"text": line} if spec.keep_fields else None)
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        return Record(number, error=f"{_where(shard, number, spec)}: not valid JSON ({err})")
    if not isinstance(data, dict):
        return Record(number, error=f"{_where(shard, number, spec)}: a JSON {type(data).__name__}, expected an object")
    return _dict_record(data, number, shard, spec)


def _dict_record(data: Dict[str, Any], number: int, shard: Shard, spec: ReadSpec) -> Record:
    where = _where(shard, number, spec)
    if spec.id_field:
        if data.get(spec.id_field) is None:
            return Record(
                number,
                error=f"{where}: no {spec.id_field!r} field (--id-field); pass --id-field '' to use line numbers",
            )
        record_id = data[spec.id_field]
    else:
        record_id = number
    text = data.get(spec.text_field)
    if not isinstance(text, str):
        problem = "is missing" if text is None else f"is a JSON {type(text).__name__}, not a string"
        return Record(number, id=record_id, error=f"{where}: the {spec.text_field!r} field (--text-field) {problem}")
    return Record(number, id=record_id, text=text, fields=data if spec.keep_fields else None)


def _read_parquet(shard: Shard, spec: ReadSpec) -> Iterator[Record]:
    pq = _require_pyarrow()
    parquet = pq.ParquetFile(shard.path)
    # Skip whole row groups before the shard, then slice.
    first_group, group_start = 0, 0
    metadata = parquet.metadata
    while first_group < metadata.num_row_groups:
        n = metadata.row_group(first_group).num_rows
        if group_start + n > shard.start:
            break
        group_start += n
        first_group += 1
    columns = None if spec.keep_fields else [c for c in (spec.text_field, spec.id_field) if c]
    groups = list(range(first_group, metadata.num_row_groups))
    row = group_start
    end = shard.start + shard.n_lines
    for batch in parquet.iter_batches(batch_size=4096, row_groups=groups, columns=columns):
        if row >= end:
            break
        lo, hi = max(shard.start - row, 0), min(end - row, batch.num_rows)
        for i, data in enumerate(batch.slice(lo, max(hi - lo, 0)).to_pylist()):
            yield _dict_record(data, row + lo + i + 1, shard, spec)
        row += batch.num_rows


def file_fingerprint(path: Path) -> Dict[str, Any]:
    stat = os.stat(path)
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
