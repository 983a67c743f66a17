"""Annotating shards: records in, one JSON line per record and its rejects out.

Both engines call ``annotate_shards``, so for the same shard they write the
same bytes: an output line depends only on its record (nlp.pipe gives the
same entities as nlp(text) for any batch, docs/reliability.md), never on
the batch, the process or the time.
"""

import json
import os
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from .inputs import ReadSpec, Record, Shard, read_shard

LONG_TEXTS = ("reject", "split")
# Where a long text may be cut: after sentence-final punctuation (Chinese and
# Western) or a line break, keeping the punctuation with its sentence.
SENTENCE_END = re.compile(r"[。！？!?；;…\n]+[”’」』）)]*")
# Test-only crash points, "point:count" (docs/annotate.md, tests/test_annotate.py).
CRASH_ENV = "SPACY_LEXNER_ANNOTATE_CRASH"
_crash_counts: Counter = Counter()
_END = -1
# Set while a failed text is run again alone, in this process only.
_raise_errors = False


def crash_point(point: str) -> None:
    """Exit at once, as kill -9 would, the count-th time ``point`` is reached
    when $SPACY_LEXNER_ANNOTATE_CRASH is "point:count"; how the tests stop a
    run inside a shard or between the writes of one. Unset, it costs a dict lookup."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    _crash_counts[point] += 1
    if _crash_counts[point] == int(count or 1):
        os._exit(137)


def dumps(data: Any) -> str:
    # Sorted keys are not needed (the dicts are built in a fixed order), but
    # ensure_ascii=False keeps Chinese readable and the files half the size.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass
class ShardResult:
    """One shard's output lines, reject lines and counts."""

    shard: Shard
    lines: List[str] = field(default_factory=list)
    rejects: List[Tuple[int, str]] = field(default_factory=list)
    n_chars: int = 0
    labels: Counter = field(default_factory=Counter)

    def output_bytes(self) -> bytes:
        return "".join(line + "\n" for line in self.lines).encode("utf-8")

    def reject_bytes(self) -> bytes:
        return "".join(line + "\n" for _, line in sorted(self.rejects)).encode("utf-8")

    def stats(self) -> Dict[str, Any]:
        return {
            "records": len(self.lines) + len(self.rejects),
            "annotated": len(self.lines),
            "rejected": len(self.rejects),
            "chars": self.n_chars,
            "labels": dict(sorted(self.labels.items())),
        }


@dataclass
class _Pending:
    record: Record
    n_chunks: int
    ents: List[Dict[str, Any]] = field(default_factory=list)
    done: int = 0
    error: Optional[str] = None


def split_text(text: str, max_length: int) -> List[Tuple[int, str]]:
    """(offset, chunk) pieces of at most max_length chars, cut after
    sentence ends where there are any, packing whole sentences greedily; a
    sentence longer than max_length is cut at max_length (an entity across
    that cut is found as two, or not at all)."""
    cuts = [m.end() for m in SENTENCE_END.finditer(text)]
    if not cuts or cuts[-1] != len(text):
        cuts.append(len(text))
    chunks: List[Tuple[int, str]] = []
    start = 0
    last = 0  # the end of the last sentence that fits in the chunk from start
    for cut in cuts:
        while cut - start > max_length:
            end = last if last > start else start + max_length
            chunks.append((start, text[start:end]))
            start = end
        last = cut
    if start < len(text):
        chunks.append((start, text[start:]))
    return chunks


def _drop_failed(proc_name: str, proc: Any, docs: List[Doc], err: Exception) -> None:
    """The pipeline's error handler. spaCy drops the docs of a batch whose
    component raised and goes on; annotate_shards sees the gap in the
    stream and runs those texts again one by one, so one bad text fails
    alone. While a text runs alone (_raise_errors), the error is raised."""
    if _raise_errors:
        raise err


def prepare_nlp(nlp: Language, max_length: Optional[int]) -> Language:
    if max_length is not None:
        nlp.max_length = max_length
    # Sets it on every component that takes one, and as the default that
    # spaCy applies to plain function components.
    nlp.set_error_handler(_drop_failed)
    return nlp


def _retry_alone(nlp: Language, text: str) -> Tuple[Optional[Doc], Optional[str]]:
    global _raise_errors
    _raise_errors = True
    try:
        return nlp(text), None
    except Exception as err:  # noqa: BLE001 - any failure of one text makes it a reject, not a crash
        return None, f"{type(err).__name__}: {err}"
    finally:
        _raise_errors = False


def annotate_shards(
    nlp: Language,
    shards: Iterable[Shard],
    spec: ReadSpec,
    long_texts: str = "reject",
    batch_size: int = 64,
    n_process: int = 1,
    on_record: Optional[Callable[[int], None]] = None,
) -> Iterator[ShardResult]:
    """Each shard's result, in order, from one nlp.pipe stream over all of
    them (with n_process, the processes start once for the whole job).

    Records the reader rejects, and texts over nlp.max_length (unless
    long_texts="split"), never reach the pipeline. Each yielded text carries
    (shard, position, chunk); the record's id and fields wait here, in a dict,
    so they are not pickled to the worker processes. on_record(chars) is
    called after each annotated record (the progress bar).
    """
    max_length = nlp.max_length
    waiting: Dict[Tuple[int, int], _Pending] = {}
    results: Dict[int, ShardResult] = {}
    # The texts given to nlp.pipe and not yet received back, in order.
    sent: Deque[Tuple[Tuple[int, int, int, int], str]] = deque()

    def texts() -> Iterator[Tuple[str, Tuple[int, int, int, int]]]:
        for shard in shards:
            result = results[shard.index] = ShardResult(shard)
            for record in read_shard(shard, spec):
                if record.error is None and len(record.text) > max_length:
                    if long_texts == "split":
                        chunks = split_text(record.text, max_length)
                    else:
                        record.error = (
                            f"{spec.sources[shard.file_index]}:{record.position}: {len(record.text):,} characters, "
                            f"over nlp.max_length ({max_length:,}); pass --long-texts split to annotate it in pieces, "
                            "or raise --max-length"
                        )
                else:
                    chunks = [(0, record.text)]
                if record.error is not None:
                    result.rejects.append((record.position, _reject_line(record, spec, shard)))
                    continue
                waiting[(shard.index, record.position)] = _Pending(record, len(chunks))
                for i, (offset, chunk) in enumerate(chunks):
                    key = (shard.index, record.position, i, offset)
                    sent.append((key, chunk))
                    yield chunk, key
            key = (shard.index, _END, 0, 0)
            sent.append((key, ""))
            yield "", key

    def finish(key: Tuple[int, int, int, int], doc: Optional[Doc], text: str) -> Iterator[ShardResult]:
        shard_index, position, _, offset = key
        result = results[shard_index]
        if position == _END:
            del results[shard_index]
            crash_point("shard-annotated")
            yield result
            return
        pending = waiting[(shard_index, position)]
        if doc is None:  # dropped by spaCy after an error in its batch
            doc, error = _retry_alone(nlp, text)
            pending.error = pending.error or error
        if doc is not None and pending.error is None:
            pending.ents.extend(
                {"start": e.start_char + offset, "end": e.end_char + offset, "label": e.label_, "text": e.text}
                for e in doc.ents
            )
        pending.done += 1
        if pending.done < pending.n_chunks:
            return
        del waiting[(shard_index, position)]
        record = pending.record
        if pending.error is not None:
            where = f"{spec.sources[result.shard.file_index]}:{record.position}"
            record.error = f"{where}: the pipeline failed ({pending.error})"
            result.rejects.append((record.position, _reject_line(record, spec, result.shard)))
        else:
            result.lines.append(_output_line(record, pending.ents, spec, result.shard))
            result.n_chars += len(record.text)
            result.labels.update(e["label"] for e in pending.ents)
            if on_record is not None:
                on_record(len(record.text))
        crash_point("record")

    # Docs come back in the order their texts went in, minus the ones spaCy
    # dropped: every text sent before the one received, and not received, was dropped.
    for doc, key in nlp.pipe(texts(), as_tuples=True, batch_size=batch_size, n_process=n_process):
        while True:
            sent_key, text = sent.popleft()
            if sent_key == key:
                break
            yield from finish(sent_key, None, text)
        yield from finish(key, doc, text)
    while sent:
        sent_key, text = sent.popleft()
        yield from finish(sent_key, None, text)


def _source(spec: ReadSpec, shard: Shard) -> Optional[str]:
    return spec.sources[shard.file_index] if spec.include_source else None


def _output_line(record: Record, ents: List[Dict[str, Any]], spec: ReadSpec, shard: Shard) -> str:
    data: Dict[str, Any] = {"id": record.id}
    source = _source(spec, shard)
    if source is not None:
        data["source"] = source
    data["ents"] = ents
    if spec.keep_fields:
        data["fields"] = record.fields
    return dumps(data)


def _reject_line(record: Record, spec: ReadSpec, shard: Shard) -> str:
    data: Dict[str, Any] = {"id": record.id, "source": spec.sources[shard.file_index], "line": record.position}
    data["reason"] = record.error
    return dumps(data)
