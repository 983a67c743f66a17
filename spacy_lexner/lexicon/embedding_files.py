"""Streaming readers of word2vec embedding files (text and binary).

These read the files the Chinese NER papers use: the Lattice LSTM /
SoftLexicon `gigaword_chn.all.a2b.uni.ite50.vec` (chars),
`gigaword_chn.all.a2b.bi.ite50.vec` (bigrams) and `ctb.50d.vec` (words),
Chinese-Word-Vectors' `sgns.merge.word` and the Tencent AI Lab embeddings.

Formats:

- text: one `key v1 v2 ... vd` entry per line, values separated by spaces
  or tabs, with or without a first `count dim` line (the gigaword and ctb
  files have none; a first line of exactly two integers is taken as the
  header). A BOM, CRLF line ends, trailing spaces and blank lines are
  accepted. A line starting with a space or tab has a whitespace key, which
  no table or lexicon can use: it is skipped and counted.
- binary (word2vec `-binary 1`, gensim `save_word2vec_format(binary=True)`):
  a `count dim` line, then per entry the UTF-8 key and a space, `dim`
  little-endian float32 and an optional newline.
- either one gzipped (read through gzip, recognised by its magic bytes).

`binary=None` detects the format: a `.bin` name, or a header followed by
bytes that are not a line of UTF-8 text with numbers, is binary.

Why not gensim's `KeyedVectors.load_word2vec_format`: it parses every
value of every line and holds the whole matrix, while the tagger needs only
the keys its tables can use (for Tencent's 12M keys, a lexicon-filtered
few percent). Measured on a generated 200,000 x 200 text file (382 MB;
gensim 4.4.0; peak RSS above the process's RSS after its imports): gensim
+187 MB in 78 s; `read_embeddings` keeping every key +197 MB in 17 s,
keeping 10% of the keys +40 MB in 3.4 s (lines of keys not kept are never
parsed). Duplicate keys: gensim keeps the last; here the first wins, as
the files are sorted by frequency.
"""

import gzip
import re
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, List, Optional, Tuple, Union

import numpy
from tqdm import tqdm

from ..util.excerpt import excerpt
from ..util.text import UTF8_BOM, _check_not_utf16, _not_utf8

KeepFn = Callable[[str], bool]

_GZIP_MAGIC = b"\x1f\x8b"
_HEADER = re.compile(rb"\s*(\d+)\s+(\d+)\s*")
# Bytes after the header looked at to tell text from binary.
_SNIFF_BYTES = 1 << 16
_READ_BYTES = 1 << 20
# A binary entry's key longer than this means the file is not binary word2vec.
_MAX_KEY_BYTES = 1 << 16
_ROWS_PER_CHUNK = 1 << 14
_PROGRESS_EVERY = 1 << 13


class EmbeddingFileError(ValueError):
    """An embedding file cannot be read. The message names the file and
    the line (text) or the entry and byte offset (binary)."""


@dataclass
class Embeddings:
    """The entries of an embedding file that were kept, in file order.

    keys (List[str]): The kept keys, each once (the first entry wins).
    vectors (numpy.ndarray): float32 [len(keys), width].
    width (int): The file's vector width.
    binary (bool): Whether the file was read as binary word2vec.
    n_read (int): Entries read (up to `limit`), kept or not.
    n_duplicates (int): Entries dropped because their key was kept before.
    n_whitespace (int): Entries skipped because their key is whitespace.
    """

    keys: List[str]
    vectors: numpy.ndarray
    width: int
    binary: bool
    n_read: int
    n_duplicates: int
    n_whitespace: int


def read_embeddings(
    path: Union[str, Path],
    *,
    keep: Optional[KeepFn] = None,
    limit: Optional[int] = None,
    binary: Optional[bool] = None,
    progress: bool = True,
) -> Embeddings:
    """Read the vectors of a word2vec file, streaming.

    path (Union[str, Path]): A text or binary word2vec file, maybe gzipped.
    keep (Optional[Callable[[str], bool]]): Keep only the keys it accepts;
        the lines of other keys are not parsed. None keeps every key.
    limit (Optional[int]): Read only the first `limit` entries (the files
        are sorted by descending frequency).
    binary (Optional[bool]): The format; None detects it.
    progress (bool): Show a progress bar over the bytes read (only on a TTY).
    RETURNS (Embeddings): The kept keys and their vectors.
    RAISES EmbeddingFileError: The file is missing, empty or malformed.
    """
    reader = _Reader(path, binary=binary, limit=limit, progress=progress)
    rows = _Rows()
    keys: List[str] = []
    seen = set()
    n_duplicates = 0
    for key, vector in reader.entries(keep, parse=True):
        if key in seen:
            n_duplicates += 1
            continue
        seen.add(key)
        keys.append(key)
        rows.append(vector)
    return Embeddings(
        keys=keys,
        vectors=rows.array(reader.width),
        width=reader.width,
        binary=reader.binary,
        n_read=reader.n_read,
        n_duplicates=n_duplicates,
        n_whitespace=reader.n_whitespace,
    )


def read_embedding_vocabulary(
    path: Union[str, Path],
    *,
    limit: Optional[int] = None,
    binary: Optional[bool] = None,
    progress: bool = True,
) -> List[str]:
    """The keys of a word2vec file in file order, each once, without
    parsing the vectors (for building a lexicon from the vocabulary).

    Arguments as for `read_embeddings`.
    RETURNS (List[str]): The keys, most frequent first.
    RAISES EmbeddingFileError: The file is missing, empty or malformed.
    """
    reader = _Reader(path, binary=binary, limit=limit, progress=progress)
    return list(dict.fromkeys(key for key, _ in reader.entries(None, parse=False)))


class _Rows:
    """float32 rows appended one at a time into fixed-size chunks."""

    def __init__(self) -> None:
        self.chunks: List[Optional[numpy.ndarray]] = []
        self.n = _ROWS_PER_CHUNK  # the current chunk (none yet) is full

    def append(self, vector: numpy.ndarray) -> None:
        if self.n == _ROWS_PER_CHUNK:
            self.chunks.append(numpy.empty((_ROWS_PER_CHUNK, len(vector)), dtype="float32"))
            self.n = 0
        self.chunks[-1][self.n] = vector  # type: ignore[index]
        self.n += 1

    def array(self, width: int) -> numpy.ndarray:
        """All rows; the chunks are freed while they are copied, so the
        peak is the rows plus one chunk, not twice the rows."""
        if not self.chunks:
            return numpy.zeros((0, width), dtype="float32")
        out = numpy.empty(((len(self.chunks) - 1) * _ROWS_PER_CHUNK + self.n, width), dtype="float32")
        for i in range(len(self.chunks)):
            chunk = self.chunks[i]
            assert chunk is not None
            self.chunks[i] = None
            start = i * _ROWS_PER_CHUNK
            out[start : start + len(chunk)] = chunk[: len(out) - start]
            del chunk
        self.chunks = []
        return out


class _Reader:
    """One pass over an embedding file: format, header and entries."""

    def __init__(self, path: Union[str, Path], *, binary: Optional[bool], limit: Optional[int], progress: bool) -> None:
        self.path = path = Path(path)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {excerpt(limit)}.")
        self.limit = limit
        self.progress = progress
        if not path.exists():
            raise EmbeddingFileError(
                f"{path}: no such embedding file. Check the path (a relative one starts where you run spaCy)."
            )
        if path.is_dir():
            raise EmbeddingFileError(
                f"{path} is a directory, not an embedding file. For a directory made by `spacy init vectors`, "
                "set [initialize] vectors to it and use spacy-lexner.vocab_vectors.v1."
            )
        self.size = path.stat().st_size
        if self.size == 0:
            raise EmbeddingFileError(f"{path}: the file is empty (0 bytes). Download or write it again.")
        with path.open("rb") as file_:
            self.gzipped = file_.read(2) == _GZIP_MAGIC
        first, sample = self._sniff()
        _check_not_utf16(first, path, EmbeddingFileError)
        header = _HEADER.fullmatch(first[len(UTF8_BOM) :] if first.startswith(UTF8_BOM) else first)
        self.count: Optional[int] = int(header.group(1)) if header else None
        self.width: int = int(header.group(2)) if header else 0  # 0: from the first entry
        if header and self.width < 1:
            raise EmbeddingFileError(f"{path}:1: the header {excerpt(first.strip())} gives width 0; it must be >= 1.")
        if binary is None:
            binary = header is not None and (_is_bin_name(path) or not _looks_like_text(sample))
        elif binary and header is None:
            raise EmbeddingFileError(
                f"{path}:1: binary word2vec files start with a 'count dim' line, this one starts with "
                f"{excerpt(first[:40])}. It looks like text: set binary = false (or leave it unset)."
            )
        self.binary = binary
        self.n_read = 0
        self.n_whitespace = 0

    def _open(self) -> Tuple[BinaryIO, BinaryIO]:
        """(the raw file, for progress; the stream to read)."""
        raw = self.path.open("rb", buffering=_READ_BYTES)
        return raw, (gzip.GzipFile(fileobj=raw, mode="rb") if self.gzipped else raw)  # type: ignore[return-value]

    def _sniff(self) -> Tuple[bytes, bytes]:
        """The first line, and up to _SNIFF_BYTES after it."""
        raw, stream = self._open()
        try:
            with raw, stream:
                return stream.readline(), stream.read(_SNIFF_BYTES)
        except (OSError, EOFError, zlib.error) as err:
            raise self._gzip_error(err) from None

    def _gzip_error(self, err: Exception) -> EmbeddingFileError:
        return EmbeddingFileError(
            f"{self.path}: cannot decompress the gzip file ({err}). It is probably truncated: download it again."
        )

    def entries(self, keep: Optional[KeepFn], *, parse: bool) -> Iterator[Tuple[str, Optional[numpy.ndarray]]]:
        """(key, vector) of each kept entry; vector is None when not parse."""
        raw, stream = self._open()
        bar = tqdm(
            total=self.size,
            unit="B",
            unit_scale=True,
            desc=self.path.name,
            leave=False,
            disable=not (self.progress and sys.stderr.isatty()),
        )
        try:
            with raw, stream, bar:
                read = self._binary_entries if self.binary else self._text_entries
                yield from read(stream, raw, bar, keep, parse)
        except (OSError, EOFError, zlib.error) as err:
            if not self.gzipped:
                raise
            raise self._gzip_error(err) from None

    # -- text ------------------------------------------------------------------

    def _text_entries(
        self, stream: BinaryIO, raw: BinaryIO, bar: tqdm, keep: Optional[KeepFn], parse: bool
    ) -> Iterator[Tuple[str, Optional[numpy.ndarray]]]:
        path, width, limit = self.path, self.width, self.limit
        width_from = f"the header (line 1) says {width}" if width else ""
        if self.count is not None:
            stream.readline()
        for lineno, line in enumerate(stream, 1 if self.count is None else 2):
            if lineno % _PROGRESS_EVERY == 0:
                bar.update(raw.tell() - bar.n)
            if lineno == 1 and line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM) :]
            fields = line.split()  # bytes: splits on ASCII whitespace only, never inside a key
            if not fields:
                continue
            if limit is not None and self.n_read == limit:
                return
            self.n_read += 1
            if line[:1] in (b" ", b"\t"):
                self.n_whitespace += 1
                continue
            if not width:
                width = self.width = len(fields) - 1
                width_from = f"the first entry (line {lineno}) has {width}"
                if not width:
                    raise EmbeddingFileError(
                        f"{path}:{lineno}: {excerpt(_text(fields[0]))} has no values. Each line must be "
                        "'key v1 v2 ...': is this an embedding file?"
                    )
            try:
                key = fields[0].decode("utf-8")
            except UnicodeDecodeError as err:
                raise EmbeddingFileError(self._not_utf8(lineno, f"{err.reason} in the key")) from None
            if keep is not None and not keep(key):
                continue
            if not parse:
                yield key, None
                continue
            values = fields[1:]
            if len(values) != width:
                raise EmbeddingFileError(
                    f"{path}:{lineno}: {len(values)} values after the key {excerpt(key)}, but {width_from}. "
                    + (
                        "If the key contains spaces, remove or fix that line; otherwise the file is corrupt."
                        if len(values) > width
                        else "The line is cut short: the file may be truncated; download it again."
                    )
                )
            try:
                vector = numpy.array(values, dtype="float32")
            except ValueError:
                bad = next((i, v) for i, v in enumerate(values, 1) if not _is_number(v))
                raise EmbeddingFileError(
                    f"{path}:{lineno}: value {bad[0]} of {excerpt(key)} is {excerpt(_text(bad[1]))}, not a number. "
                    "Each line must be 'key v1 v2 ...' with numbers; if this is a binary file, set binary = true."
                ) from None
            if not numpy.isfinite(vector).all():
                raise EmbeddingFileError(
                    f"{path}:{lineno}: the vector of {excerpt(key)} has NaN or infinite values "
                    "(or values beyond float32). Fix or drop that line."
                )
            yield key, vector
        bar.update(self.size - bar.n)
        if self.n_read == 0:
            raise EmbeddingFileError(f"{path}: no entries (only a header or blank lines). Download or write it again.")
        if self.count is not None and self.n_read != self.count:
            warnings.warn(
                f"{path}: the header says {self.count:,} entries but the file has {self.n_read:,}; "
                + ("it may be truncated: download it again." if self.n_read < self.count else "all were read.")
            )

    def _not_utf8(self, lineno: int, detail: str) -> str:
        if not self.gzipped:
            return _not_utf8(self.path, lineno, detail)
        return (
            f"{self.path}:{lineno} (decompressed): not valid UTF-8 ({detail}). If the file is GBK encoded, "
            f"re-encode it: `zcat {self.path} | iconv -f GBK -t UTF-8 | gzip > {self.path}.utf8.gz`."
        )

    # -- binary ----------------------------------------------------------------

    def _binary_entries(
        self, stream: BinaryIO, raw: BinaryIO, bar: tqdm, keep: Optional[KeepFn], parse: bool
    ) -> Iterator[Tuple[str, Optional[numpy.ndarray]]]:
        assert self.count is not None
        path, width = self.path, self.width
        n_bytes = 4 * width
        header = stream.readline()
        offset = len(header)  # of buf[0] in the (decompressed) file
        buf, pos = b"", 0
        total = self.count if self.limit is None else min(self.count, self.limit)
        for entry in range(1, total + 1):
            if entry % _PROGRESS_EVERY == 0:
                bar.update(raw.tell() - bar.n)
            # The key: up to the next space; a newline left by the previous entry is dropped.
            while True:
                space = buf.find(b" ", pos, pos + _MAX_KEY_BYTES)
                if space >= 0:
                    break
                if len(buf) - pos >= _MAX_KEY_BYTES:
                    raise EmbeddingFileError(
                        f"{path}: entry {entry:,} (byte {offset + pos:,}): no space-terminated key in "
                        f"{_MAX_KEY_BYTES:,} bytes. This is not a binary word2vec file: if it is text, "
                        "set binary = false."
                    )
                buf, pos, offset = self._more(stream, buf, pos, offset, entry)
            key_start = pos
            while key_start < space and buf[key_start] in b"\r\n":
                key_start += 1
            # Offsets from pos, which _more moves to 0.
            rel_start, rel_space = key_start - pos, space - pos
            while len(buf) - pos < rel_space + 1 + n_bytes:
                buf, pos, offset = self._more(stream, buf, pos, offset, entry, vector=True)
            start, space = pos + rel_start, pos + rel_space
            end = space + 1 + n_bytes
            self.n_read += 1
            word = buf[start:space]
            try:
                key = word.decode("utf-8")
            except UnicodeDecodeError as err:
                raise EmbeddingFileError(
                    f"{path}: entry {entry:,} (byte {offset + start:,}): the key {excerpt(word)} is not valid "
                    f"UTF-8 ({err.reason}). The file is corrupt, or not binary word2vec: if it is text, "
                    "set binary = false."
                ) from None
            pos = end
            if not key.strip():
                self.n_whitespace += 1
                continue
            if keep is not None and not keep(key):
                continue
            if not parse:
                yield key, None
                continue
            vector = numpy.frombuffer(buf, dtype="<f4", count=width, offset=space + 1)
            if not numpy.isfinite(vector).all():
                raise EmbeddingFileError(
                    f"{path}: entry {entry:,} (byte {offset + start:,}): the vector of {excerpt(key)} has NaN or "
                    "infinite values. The file is corrupt: download it again."
                )
            yield key, vector.astype("float32")
        bar.update(self.size - bar.n)
        if total == 0:
            raise EmbeddingFileError(f"{path}: the header says 0 entries. Download or write the file again.")

    def _more(
        self, stream: BinaryIO, buf: bytes, pos: int, offset: int, entry: int, vector: bool = False
    ) -> Tuple[bytes, int, int]:
        """buf[pos:] plus the next block of the file, as (buf, 0, new offset)."""
        more = stream.read(_READ_BYTES)
        if not more:
            have = len(buf) - pos
            inside = f"its vector ({4 * self.width:,} bytes)" if vector else "its key"
            raise EmbeddingFileError(
                f"{self.path}: entry {entry:,} of {self.count:,} (byte {offset + pos:,}): the file ends inside "
                f"{inside}, {have:,} bytes left. The file is truncated (or the header's count or width is wrong): "
                "download it again."
            )
        return buf[pos:] + more, 0, offset + pos


def _is_bin_name(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    return ".bin" in suffixes[-2:]


def _looks_like_text(sample: bytes) -> bool:
    """Whether the bytes after a header start with a text entry line (or
    are blank: then the text reader reports that there are no entries)."""
    line = sample.lstrip(b" \t\r\n").split(b"\n", 1)[0].rstrip(b"\r")
    if not line:
        return True
    if any(byte < 0x20 and byte != 0x09 for byte in line):
        return False
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    fields = line.split()
    return len(fields) >= 2 and all(_is_number(value) for value in fields[1:])


def _is_number(value: bytes) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")
