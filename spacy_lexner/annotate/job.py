"""An annotation job: its shards on disk, resuming, and the final output.

Layout while a job runs, for ``OUTPUT = out.jsonl``:

    out.jsonl.parts/manifest.json            inputs (size, mtime), settings, model, shard count
    out.jsonl.parts/shard-000012.jsonl       the shard's output lines
    out.jsonl.parts/shard-000012.rejects.jsonl
    out.jsonl.parts/shard-000012.done.json   its counts; written last: the shard is done

Every file is written to a temporary name, fsynced and renamed into place,
so a file with a final name is complete. A resumed run skips the shards that
have a ``.done.json`` and redoes the others; the end concatenates the shards
in order into OUTPUT and the rejects file (each again through a temporary
file and a rename), marks the manifest complete and deletes the shard files.
A shard's bytes depend only on its input records and the settings the
manifest pins, so an interrupted and resumed run writes the same bytes as an
uninterrupted one.
"""

import hashlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .core import LONG_TEXTS, ShardResult, crash_point, dumps
from .inputs import AnnotateError, ReadSpec, Shard, detect_format, file_fingerprint, plan_shards, resolve_inputs

MANIFEST_VERSION = 1
OUTPUT_FORMATS = ("jsonl", "parquet")
ENGINES = ("local", "ray")


@dataclass
class AnnotateSettings:
    """Everything ``spacy-lexner annotate`` was given (see its --help)."""

    model: str
    input: str
    output: str
    input_format: str = "auto"
    output_format: str = "auto"
    text_field: str = "text"
    id_field: str = "id"
    keep_fields: bool = False
    rejects: Optional[str] = None
    shard_size: int = 10_000
    long_texts: str = "reject"
    max_length: Optional[int] = None
    batch_size: int = 64
    n_process: int = 1
    torch_threads: Optional[int] = 1
    gpu_id: int = -1
    engine: str = "local"
    concurrency: int = 1
    num_gpus: Optional[float] = None
    ray_address: Optional[str] = None
    keep_parts: bool = False
    progress: bool = True

    # What the output bytes depend on: a resume must have the same.
    def pinned(self) -> Dict[str, Any]:
        keys = ("text_field", "id_field", "keep_fields", "shard_size", "long_texts", "max_length")
        return {key: getattr(self, key) for key in keys}


@dataclass
class Summary:
    records: int = 0
    annotated: int = 0
    rejected: int = 0
    chars: int = 0
    labels: Optional[Dict[str, int]] = None
    shards: int = 0
    shards_resumed: int = 0
    seconds: float = 0.0
    output: str = ""
    rejects: str = ""
    already_complete: bool = False


def fsync_dir(path: Path) -> None:
    # The rename itself is durable only once the directory is synced (POSIX).
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def model_fingerprint(model: str) -> Dict[str, Any]:
    """What identifies the pipeline: its config and meta, and every file's
    name and size (a retrained model changes its weights' sizes rarely, its
    meta.json's performance and timestamps always)."""
    path = Path(model)
    if not path.is_dir():
        try:
            from importlib.metadata import version

            return {"package": model, "version": version(model)}
        except Exception:  # noqa: BLE001 - not an installed distribution: the name is all we know
            return {"package": model}
    digest = hashlib.sha256()
    for name in ("config.cfg", "meta.json"):
        if (path / name).exists():
            digest.update((path / name).read_bytes())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\0".encode())
    return {"path": str(path.resolve()), "sha256": digest.hexdigest()}


class Job:
    """The shards of one job and the files it writes."""

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings
        self._check_settings()
        self.files = resolve_inputs(settings.input)
        self.fmt = detect_format(self.files, settings.input_format)
        self.output = Path(settings.output)
        self.output_format = settings.output_format
        if self.output_format == "auto":
            self.output_format = "parquet" if self.output.suffix.lower() in (".parquet", ".pq") else "jsonl"
        if settings.rejects:
            self.rejects_path = Path(settings.rejects)
        else:
            stem = self.output.name[: -len(self.output.suffix)] if self.output.suffix else self.output.name
            self.rejects_path = self.output.with_name(f"{stem}.rejects.jsonl")
        self.parts = self.output.with_name(self.output.name + ".parts")
        self.manifest_path = self.parts / "manifest.json"
        self._check_paths()
        self.spec = ReadSpec(
            text_field=settings.text_field,
            id_field=settings.id_field,
            keep_fields=settings.keep_fields,
            sources=[str(p) for p in self.files],
            include_source=len(self.files) > 1,
        )
        self.shards = plan_shards(self.files, self.fmt, settings.shard_size, self.spec)

    def _check_settings(self) -> None:
        s = self.settings
        if s.long_texts not in LONG_TEXTS:
            raise AnnotateError(f"--long-texts is {s.long_texts!r}; use one of {', '.join(LONG_TEXTS)}.")
        if s.engine not in ENGINES:
            raise AnnotateError(f"--engine is {s.engine!r}; use one of {', '.join(ENGINES)}.")
        if s.output_format not in OUTPUT_FORMATS + ("auto",):
            raise AnnotateError(f"--output-format is {s.output_format!r}; use one of {', '.join(OUTPUT_FORMATS)}.")
        for name in ("shard_size", "batch_size", "n_process", "concurrency"):
            if getattr(s, name) < 1:
                raise AnnotateError(f"--{name.replace('_', '-')} is {getattr(s, name)}; it must be at least 1.")

    def _check_paths(self) -> None:
        inputs = {p.resolve() for p in self.files}
        roots = [Path(self.settings.input).resolve()] if Path(self.settings.input).is_dir() else []
        for what, path in (
            ("OUTPUT", self.output),
            ("The rejects file", self.rejects_path),
            ("OUTPUT.parts", self.parts),
        ):
            resolved = path.resolve()
            if resolved in inputs:
                raise AnnotateError(f"{what} {path} is an input file; write the output to another path.")
            if any(root == resolved or root in resolved.parents for root in roots):
                raise AnnotateError(
                    f"{what} {path} is inside the input directory {self.settings.input}, so a later run would read "
                    "it as input; write the output outside it."
                )
        if self.rejects_path.resolve() == self.output.resolve():
            raise AnnotateError(f"--rejects {self.rejects_path} is OUTPUT itself; give another path.")
        if not self.output.parent.exists():
            raise AnnotateError(f"The directory of OUTPUT ({self.output.parent}) does not exist; create it first.")

    # -- the manifest ----------------------------------------------------------

    def identity(self) -> Dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "inputs": [file_fingerprint(p) for p in self.files],
            "input_format": self.fmt,
            "output_format": self.output_format,
            "settings": self.settings.pinned(),
            "model": model_fingerprint(self.settings.model),
            "shards": len(self.shards),
        }

    def start(self) -> Optional[Dict[str, Any]]:
        """Create or check the manifest; the previous summary when the job
        is already complete (and OUTPUT is there), else None."""
        identity = self.identity()
        if self.manifest_path.exists():
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            previous = {k: manifest.get(k) for k in identity}
            if previous != identity:
                raise AnnotateError(
                    f"{self.manifest_path} was written by a run with other inputs, settings or model: "
                    f"{'; '.join(_differences(previous, identity))}. Rerun with the same arguments and inputs to "
                    f"resume, or delete {self.parts} (and {self.output}) to start over."
                )
            if manifest.get("complete") and self.output.exists():
                return manifest
        else:
            if self.output.exists():
                raise AnnotateError(
                    f"{self.output} exists and no run of this command is recorded for it ({self.manifest_path} "
                    "is missing); delete it or choose another OUTPUT. (annotate never overwrites a file it did "
                    "not write.)"
                )
            self.parts.mkdir(exist_ok=True)
            atomic_write(self.manifest_path, (json.dumps(identity, indent=2) + "\n").encode("utf-8"))
            fsync_dir(self.parts)
        # Temporary files of a killed run: never renamed, so never part of a result.
        for tmp in self.parts.glob("*.tmp-*"):
            tmp.unlink()
        return None

    # -- shards ----------------------------------------------------------------

    def _path(self, shard_index: int, kind: str) -> Path:
        return self.parts / f"shard-{shard_index:06d}.{kind}"

    def is_done(self, shard: Shard) -> bool:
        return self._path(shard.index, "done.json").exists()

    def pending(self) -> List[Shard]:
        return [shard for shard in self.shards if not self.is_done(shard)]

    def write_shard(self, index: int, output: bytes, rejects: bytes, stats: Dict[str, Any]) -> None:
        """Write a shard's files; .done.json last. Writing a shard twice (a
        retried Ray task) writes the same bytes to the same names."""
        atomic_write(self._path(index, "jsonl"), output)
        crash_point("shard-output-written")
        atomic_write(self._path(index, "rejects.jsonl"), rejects)
        atomic_write(self._path(index, "done.json"), (json.dumps(stats) + "\n").encode("utf-8"))
        fsync_dir(self.parts)
        crash_point("shard-done")

    def write_result(self, result: ShardResult) -> None:
        self.write_shard(result.shard.index, result.output_bytes(), result.reject_bytes(), result.stats())

    # -- the end ---------------------------------------------------------------

    def finish(self, started: float, n_resumed: int) -> Summary:
        missing = self.pending()
        if missing:
            raise RuntimeError(f"{len(missing)} shards have no output (the first: {missing[0]}); rerun to resume.")
        summary = Summary(shards=len(self.shards), shards_resumed=n_resumed, output=str(self.output))
        labels: Counter = Counter()
        for shard in self.shards:
            stats = json.loads(self._path(shard.index, "done.json").read_text(encoding="utf-8"))
            summary.records += stats["records"]
            summary.annotated += stats["annotated"]
            summary.rejected += stats["rejected"]
            summary.chars += stats["chars"]
            labels.update(stats["labels"])
        summary.labels = dict(sorted(labels.items()))
        summary.rejects = str(self.rejects_path)
        self._concatenate("rejects.jsonl", self.rejects_path)
        if self.output_format == "parquet":
            self._write_parquet()
        else:
            self._concatenate("jsonl", self.output)
        crash_point("output-written")
        summary.seconds = time.perf_counter() - started
        manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        manifest["complete"] = True
        manifest["summary"] = {k: v for k, v in asdict(summary).items() if k not in ("seconds", "already_complete")}
        atomic_write(self.manifest_path, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
        fsync_dir(self.parts)
        if not self.settings.keep_parts:
            for shard in self.shards:
                for kind in ("jsonl", "rejects.jsonl", "done.json"):
                    self._path(shard.index, kind).unlink(missing_ok=True)
        return summary

    def _concatenate(self, kind: str, target: Path) -> None:
        tmp = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        with open(tmp, "wb") as out:
            for shard in self.shards:
                with open(self._path(shard.index, kind), "rb") as f:
                    while True:
                        block = f.read(1 << 20)
                        if not block:
                            break
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent.resolve())

    def _write_parquet(self) -> None:
        """OUTPUT as Parquet, one row group per shard: id (a string: ids of
        mixed types cannot share an Arrow column), source (several inputs),
        ents (a list of start/end/label/text structs), fields (the original
        record as a JSON string, with --keep-fields)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        ent = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string()), ("text", pa.string())])
        columns = [("id", pa.string())]
        if self.spec.include_source:
            columns.append(("source", pa.string()))
        columns.append(("ents", pa.list_(ent)))
        if self.settings.keep_fields:
            columns.append(("fields", pa.string()))
        schema = pa.schema(columns)
        tmp = self.output.with_name(f"{self.output.name}.tmp-{uuid.uuid4().hex[:8]}")
        with pq.ParquetWriter(tmp, schema) as writer:
            for shard in self.shards:
                rows: Dict[str, List[Any]] = {name: [] for name, _ in columns}
                with open(self._path(shard.index, "jsonl"), encoding="utf-8") as f:
                    for line in f:
                        data = json.loads(line)
                        rows["id"].append(data["id"] if isinstance(data["id"], str) else dumps(data["id"]))
                        if "source" in rows:
                            rows["source"].append(data["source"])
                        rows["ents"].append(data["ents"])
                        if "fields" in rows:
                            rows["fields"].append(dumps(data["fields"]))
                writer.write_table(pa.table(rows, schema=schema))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.output)
        fsync_dir(self.output.parent.resolve())


def _differences(previous: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    out = []
    for key in current:
        old, new = previous.get(key), current[key]
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            out.extend(f"{key}.{k} was {old.get(k)!r}, now {new.get(k)!r}" for k in new if old.get(k) != new.get(k))
        elif key == "inputs":
            out.append("the input files changed (names, sizes or modification times)")
        else:
            out.append(f"{key} was {old!r}, now {new!r}")
    return out


class Progress:
    """A tqdm bar on stderr with records/s and chars/s; silent when stderr
    is not a terminal or --no-progress is given."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="rec",
            file=sys.stderr,
            disable=not enabled or not sys.stderr.isatty(),
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self.started = time.perf_counter()
        self.chars = 0
        self.last = 0.0

    def update(self, n_records: int, n_chars: int) -> None:
        self.chars += n_chars
        self.bar.update(n_records)
        now = time.perf_counter()
        if now - self.last > 0.5:
            self.last = now
            self.bar.set_postfix_str(f"{self.chars / max(now - self.started, 1e-9):,.0f} chars/s", refresh=False)

    def close(self) -> None:
        self.bar.close()


def run_annotate(settings: AnnotateSettings, log: Callable[[str], None] = lambda text: None) -> Summary:
    """Run (or resume) a job to the end; the summary of the whole job."""
    started = time.perf_counter()
    job = Job(settings)
    previous = job.start()
    if previous is not None:
        summary = Summary(**{**previous["summary"], "already_complete": True})
        return summary
    pending = job.pending()
    n_resumed = len(job.shards) - len(pending)
    if n_resumed:
        log(f"Resuming: {n_resumed} of {len(job.shards)} shards are done, {len(pending)} to go")
    if pending:
        total = sum(s.n_lines for s in job.shards)
        progress = Progress(total, total - sum(s.n_lines for s in pending), settings.progress)
        try:
            if settings.engine == "ray":
                from .ray_engine import run_ray

                run_ray(job, pending, progress, log)
            else:
                _run_local(job, pending, progress)
        finally:
            progress.close()
    return job.finish(started, n_resumed)


def load_pipeline(settings: AnnotateSettings) -> Any:
    """The pipeline, with the job's max_length, error handler and threads."""
    import spacy

    from .core import prepare_nlp

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    if settings.gpu_id >= 0:
        spacy.require_gpu(settings.gpu_id)
    try:
        nlp = spacy.load(settings.model)
    except OSError as err:
        raise AnnotateError(f"Could not load the pipeline {settings.model}: {err}") from None
    return prepare_nlp(nlp, settings.max_length)


def _run_local(job: Job, pending: List[Shard], progress: Progress) -> None:
    from .core import annotate_shards

    nlp = load_pipeline(job.settings)
    s = job.settings
    results = annotate_shards(
        nlp, pending, job.spec, s.long_texts, s.batch_size, s.n_process, on_record=lambda n: progress.update(1, n)
    )
    for result in results:
        job.write_result(result)
        # Blank lines and rejects: the bar counts lines.
        progress.update(result.shard.n_lines - len(result.lines), 0)
