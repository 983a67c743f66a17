"""Read Chinese NER corpora and write them as spaCy ``.spacy`` DocBin files.

Input formats (one ``Doc`` per sentence, one token per character):

* ``bmes``: ``char<whitespace>TAG`` per line, blank line between sentences,
  tags in BMES or BIOES (Resume NER).
* ``bio``: the same layout with BIO tags (MSRA).
* ``weibo``: ``TOKEN<TAB>TAG`` where TOKEN is the character followed by its
  position inside a jieba word (``李0``, and ``p10`` for the 11th character of
  a long word), BIO tags (Weibo NER). The position digits are dropped, and
  a run of U+FFFD (how Weibo wrote an emoji it lost) becomes one U+FFFD.
* ``cluener``: JSON lines ``{"text": ..., "label": {type: {mention:
  [[start, end_inclusive], ...]}}}``. A record without ``"label"`` becomes a
  doc with no entities (the unlabelled CLUENER test split).
* ``auto``: picked by :func:`detect_format`.

One tag parser serves all tagged formats: ``B-X``, ``I-X``/``M-X`` (inside;
``I`` and ``M`` mean the same), ``E-X``, ``S-X`` and ``O``. An entity that is
not closed by ``E-`` (BIO style) ends before the next tag that does not
continue it, so BIO and BIOES/BMES files need no separate parsers.

Repair rule (the only one): an inside or end tag (``I-X``, ``M-X``, ``E-X``)
that does not continue an open entity of the same type -- at sentence start,
after ``O``, after an ``E-``/``S-`` that closed an entity, or after a tag of a
different type -- opens a new entity of type X at that position. So a stray
``I-X``/``M-X`` is read as ``B-X`` and a stray ``E-X`` as ``S-X``. Each such
tag counts as one repair (2 in Resume train, 10 in Weibo train, 4 in Weibo
test). With ``strict=True`` the first such tag raises ``ConversionError``.

Other bad input is always an error naming ``path:line``: an unknown tag
(``X-PER``, ``B-``, ``PER``), a line without exactly two columns, a first
column that is not one character (plus position digits for ``weibo``), a
CLUENER span that does not match its mention, and bytes that are not UTF-8.
A UTF-8 BOM, CRLF line ends, a missing final newline and any run of tabs and
spaces between the columns are accepted. A line that starts with whitespace
is read as ``<char><sep><tag>``, so a space or U+3000 character is kept as
the character. Overlapping CLUENER spans keep the longer one; the dropped
ones are counted and reported in a warning.
"""

import json
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin
from spacy.tokens import Span as SpacySpan
from spacy.util import get_lang_class
from spacy.vocab import Vocab, create_vocab

from ..util.excerpt import excerpt, shorten
from ..util.tags import STRING_SCHEMES as SCHEMES
from ..util.tags import decode_parts, parse_tag, span_tags
from ..util.tags import tags_to_spans as decode_tags
from ..util.text import numbered_lines as read_numbered_lines

Span = Tuple[int, int, str]
Example = Tuple[List[str], List[Span]]
PathLike = Union[str, Path]

FORMATS = ("bmes", "bio", "weibo", "cluener", "auto")
TAGGED_FORMATS = ("bmes", "bio", "weibo")
# Suffixes that name a format and are dropped from the output file name;
# anything else (e.g. Weibo's ".train") is kept so splits do not collide.
KNOWN_SUFFIXES = (".bmes", ".bio", ".bioes", ".conll", ".txt", ".json", ".jsonl", ".tsv")
# How many non-blank lines detect_format looks at before deciding on "bio".
DETECT_MAX_LINES = 5000

# Weibo writes a lost non-BMP character (an emoji) as two U+FFFD; such a run
# is read as one U+FFFD so that there is still one token per character.
_WEIBO_TOKEN = re.compile(r"(\ufffd+|.)([0-9]+)\Z", re.DOTALL)
# A line whose first column is itself whitespace: <char><digits?><sep><tag>.
_SPACE_CHAR_LINE = re.compile(r"(\s\S*)\s+(\S+)\s*\Z")


class ConversionError(ValueError):
    """Input that cannot be converted; the message names path:line."""


@dataclass
class ConversionStats:
    """Counts collected while reading one or more input files."""

    n_docs: int = 0
    n_chars: int = 0
    n_ents: int = 0
    labels: Counter = field(default_factory=Counter)
    n_repaired: int = 0
    n_dropped_overlaps: int = 0

    def add(self, chars: Sequence[str], spans: Sequence[Span]) -> None:
        self.n_docs += 1
        self.n_chars += len(chars)
        self.n_ents += len(spans)
        self.labels.update(label for _, _, label in spans)


# ---------------------------------------------------------------------------
# Tags <-> spans: the codec is util/tags.py; these add the converters' checks


def tags_to_spans(tags: Sequence[str], *, strict: bool = False) -> Tuple[List[Span], int]:
    """Decode BIO / BIOES / BMES tags into (start, end_exclusive, label) spans.

    tags (Sequence[str]): one tag per character.
    strict (bool): raise on the first ill-formed tag instead of repairing it.
    RETURNS (Tuple[List[Span], int]): the spans and the number of repaired tags.
    """
    spans, repairs = decode_tags(tags)
    if strict and repairs:
        i = repairs[0]
        raise ConversionError(
            f"ill-formed tag {excerpt(tags[i])} at position {i}: it does not continue an "
            f"open entity of the same type. Fix the data, or drop strict to read "
            f"it as the start of a new entity."
        )
    return spans, len(repairs)


def _check_spans(n: int, spans: Iterable[Span]) -> List[Span]:
    ordered = sorted(spans)
    prev_end = 0
    for start, end, label in ordered:
        if not (0 <= start < end <= n):
            raise ValueError(f"span {excerpt((start, end, label))} is empty or outside 0..{n}")
        if not label or any(c.isspace() for c in label):
            raise ValueError(f"span {excerpt((start, end, label))} needs a label without whitespace")
        if start < prev_end:
            raise ValueError(f"span {excerpt((start, end, label))} overlaps the previous span")
        prev_end = end
    return ordered


def spans_to_tags(n: int, spans: Iterable[Span], scheme: str = "BIOES") -> List[str]:
    """Encode non-overlapping (start, end_exclusive, label) spans as tags.

    n (int): sequence length.
    spans (Iterable[Span]): entity spans; they must not overlap.
    scheme (str): "BIOES", "BMES" (M instead of I) or "BIO".
    RETURNS (List[str]): one tag per position.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {excerpt(scheme)}: use one of {SCHEMES}")
    return span_tags(n, _check_spans(n, spans), scheme)


# ---------------------------------------------------------------------------
# Reading files


def numbered_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, text) of each line (see util.text.numbered_lines);
    encoding errors are ConversionErrors."""
    return read_numbered_lines(path, ConversionError)


def _split_columns(line: str) -> Optional[Tuple[str, str]]:
    if line[0].isspace():
        match = _SPACE_CHAR_LINE.match(line)
        return match.groups() if match else None  # type: ignore[return-value]
    parts = line.split()
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _parse_line(line: str, fmt: str, where: str) -> Tuple[str, str]:
    """(char, tag) of one non-blank line of a tagged file."""
    columns = _split_columns(line)
    if columns is None:
        raise ConversionError(f"{where}: expected 2 columns '<char> <tag>', got {len(line.split())} in {excerpt(line)}")
    token, tag = columns
    if fmt == "weibo":
        match = _WEIBO_TOKEN.match(token)
        if match is None:
            raise ConversionError(
                f"{where}: weibo token {excerpt(token)} should be one character followed by "
                f"its word-position digits (e.g. '李0'); use --format bio for plain "
                f"characters"
            )
        char = match.group(1)[0]
    else:
        if len(token) != 1:
            hint = " (looks like weibo: use --format weibo)" if _WEIBO_TOKEN.match(token) else ""
            raise ConversionError(f"{where}: expected one character in the first column, got {excerpt(token)}{hint}")
        char = token
    try:
        parse_tag(tag)
    except ValueError as err:
        raise ConversionError(f"{where}: {err}") from None
    return char, tag


def _tagged_sentences(path: Path, fmt: str) -> Iterator[Tuple[List[str], List[str], List[int]]]:
    """(chars, tags, line numbers) per blank-line separated sentence."""
    chars: List[str] = []
    tags: List[str] = []
    linenos: List[int] = []
    for lineno, line in numbered_lines(path):
        if not line.strip():
            if chars:
                yield chars, tags, linenos
                chars, tags, linenos = [], [], []
            continue
        char, tag = _parse_line(line, fmt, f"{path}:{lineno}")
        chars.append(char)
        tags.append(tag)
        linenos.append(lineno)
    if chars:
        yield chars, tags, linenos


def read_tagged_file(
    path: PathLike,
    fmt: str,
    *,
    strict: bool = False,
    stats: Optional[ConversionStats] = None,
) -> Iterator[Example]:
    """Read a char-per-line file (bmes, bio or weibo).

    path (PathLike): the input file.
    fmt (str): "bmes", "bio" or "weibo" ("auto" runs detect_format).
    strict (bool): raise on the first ill-formed tag instead of repairing it.
    stats (Optional[ConversionStats]): updated with counts if given.
    YIELDS (Example): (chars, [(start, end_exclusive, label)]) per sentence.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in TAGGED_FORMATS:
        raise ValueError(f"read_tagged_file reads {TAGGED_FORMATS}, not {excerpt(fmt)}")
    n_sentences = 0
    for chars, tags, linenos in _tagged_sentences(path, fmt):
        spans, repairs = decode_parts(parse_tag(tag) for tag in tags)
        if strict and repairs:
            i = repairs[0]
            context = f"after {excerpt(tags[i - 1])}" if i else "at sentence start"
            raise ConversionError(
                f"{path}:{linenos[i]}: ill-formed tag {excerpt(tags[i])} {context} does not "
                f"continue an open entity of the same type. Fix the data, or convert "
                f"without --strict to read it as the start of a new entity."
            )
        if stats is not None:
            stats.add(chars, spans)
            stats.n_repaired += len(repairs)
        n_sentences += 1
        yield chars, spans
    if n_sentences == 0:
        raise ConversionError(f"{path}: no sentences found: the file is empty or blank")


def _cluener_spans(text: str, label: object, where: str) -> List[Span]:
    if not isinstance(label, dict):
        raise ConversionError(f"{where}: 'label' should be an object {{type: {{mention: [[start, end]]}}}}")
    spans: List[Span] = []
    for ent_type, mentions in label.items():
        if not isinstance(mentions, dict):
            raise ConversionError(f"{where}: label {excerpt(ent_type)} should map mentions to [[start, end], ...]")
        for mention, offsets in mentions.items():
            for pair in offsets if isinstance(offsets, list) else [offsets]:
                ok = isinstance(pair, list) and len(pair) == 2 and all(type(x) is int for x in pair)
                if not ok or not (0 <= pair[0] <= pair[1] < len(text)):
                    raise ConversionError(
                        f"{where}: bad offsets {excerpt(pair)} for {shorten(ent_type)} {excerpt(mention)}: "
                        f"expected [start, end_inclusive] within the text (length {len(text)})"
                    )
                start, end = pair[0], pair[1] + 1
                if text[start:end] != mention:
                    raise ConversionError(
                        f"{where}: {shorten(ent_type)} span [{pair[0]}, {pair[1]}] is "
                        f"{excerpt(text[start:end])} in the text but the mention is {excerpt(mention)}; "
                        f"the offsets must be inclusive character offsets"
                    )
                spans.append((start, end, ent_type))
    return spans


def _drop_overlaps(spans: List[Span]) -> Tuple[List[Span], List[Span]]:
    """(kept, dropped): of overlapping spans keep the longer one (ties: the
    earlier, then the first label in sort order). An exact duplicate counts as
    an overlap, so nothing is discarded without being counted.
    """
    kept: List[Span] = []
    dropped: List[Span] = []
    taken = set()
    for span in sorted(spans, key=lambda s: (s[0] - s[1], s[0], s[2])):
        positions = range(span[0], span[1])
        if any(i in taken for i in positions):
            dropped.append(span)
        else:
            kept.append(span)
            taken.update(positions)
    return sorted(kept), dropped


def read_cluener(path: PathLike, *, stats: Optional[ConversionStats] = None) -> Iterator[Example]:
    """Read CLUENER2020 JSON lines.

    path (PathLike): the input file.
    stats (Optional[ConversionStats]): updated with counts if given.
    YIELDS (Example): (chars, [(start, end_exclusive, label)]) per record.
    """
    path = Path(path)
    n_records = 0
    dropped_at: List[str] = []
    for lineno, line in numbered_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConversionError(f"{where}: invalid JSON ({err.msg}); expected one record per line") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ConversionError(f"{where}: expected an object with a string 'text'")
        text = record["text"]
        spans = _cluener_spans(text, record.get("label") or {}, where)
        spans, dropped = _drop_overlaps(spans)
        dropped_at.extend(f"{where}: {excerpt(s)}" for s in dropped)
        chars = list(text)
        if stats is not None:
            stats.add(chars, spans)
            stats.n_dropped_overlaps += len(dropped)
        n_records += 1
        yield chars, spans
    if n_records == 0:
        raise ConversionError(f"{path}: no sentences found: the file is empty or blank")
    if dropped_at:
        warnings.warn(
            f"{path}: dropped {len(dropped_at)} CLUENER span(s) that overlap a longer "
            f"one: {'; '.join(dropped_at[:5])}{' ...' if len(dropped_at) > 5 else ''}",
            stacklevel=2,
        )


def detect_format(path: PathLike) -> str:
    """Guess the input format from the file name and the first lines.

    .json/.jsonl or a first line starting with "{" -> cluener; a first column
    of one character plus digits with a dotted type (PER.NAM) -> weibo; any
    M-/E-/S- tag -> bmes; otherwise bio.

    path (PathLike): the input file.
    RETURNS (str): "cluener", "weibo", "bmes" or "bio".
    """
    path = Path(path)
    if path.suffix.lower() in (".json", ".jsonl"):
        return "cluener"
    all_weibo_tokens = True
    n_seen = 0
    with path.open("rb") as file_:
        for raw in file_:
            line = raw.decode("utf8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
            if not line.strip():
                continue
            if n_seen == 0 and line.lstrip().startswith("{"):
                return "cluener"
            n_seen += 1
            columns = _split_columns(line)
            if columns is None:
                continue  # the reader reports the bad line
            token, tag = columns
            is_weibo_token = _WEIBO_TOKEN.match(token) is not None
            all_weibo_tokens = all_weibo_tokens and is_weibo_token
            if is_weibo_token and "." in tag:
                return "weibo"
            if tag[:2] in ("M-", "E-", "S-"):
                return "bmes"
            if n_seen >= DETECT_MAX_LINES:
                break
    return "weibo" if n_seen and all_weibo_tokens else "bio"


# ---------------------------------------------------------------------------
# Docs and DocBins


def blank_vocab(lang: str = "zh") -> Vocab:
    """The vocab spacy.blank(lang) would have. Built directly because
    spacy.blank also resolves the pipeline config, which takes seconds.
    """
    try:
        defaults = get_lang_class(lang).Defaults
    except ImportError:
        raise ConversionError(f"unknown language {excerpt(lang)}: use a spaCy language code such as 'zh'") from None
    return create_vocab(lang, defaults)


def make_doc(vocab: Vocab, chars: List[str], spans: Iterable[Span]) -> Doc:
    """One token per character, no spaces, so doc.text == "".join(chars) and
    token offsets equal character offsets. Characters outside spans are "O".
    """
    doc = Doc(vocab, words=chars, spaces=[False] * len(chars))
    doc.ents = [SpacySpan(doc, start, end, label=label) for start, end, label in spans]
    return doc


def _read(path: Path, fmt: str, strict: bool, stats: ConversionStats) -> Iterator[Example]:
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "cluener":
        return read_cluener(path, stats=stats)
    if fmt in TAGGED_FORMATS:
        return read_tagged_file(path, fmt, strict=strict, stats=stats)
    raise ValueError(f"unknown format {excerpt(fmt)}: use one of {FORMATS}")


def docs_from_file(
    path: PathLike,
    fmt: str = "auto",
    *,
    vocab: Optional[Vocab] = None,
    strict: bool = False,
) -> Tuple[List[Doc], ConversionStats]:
    """Read a corpus file into Docs.

    path (PathLike): the input file.
    fmt (str): one of FORMATS.
    vocab (Optional[Vocab]): defaults to blank_vocab("zh").
    strict (bool): raise on ill-formed tags instead of repairing them.
    RETURNS (Tuple[List[Doc], ConversionStats]): the docs and their counts.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    if vocab is None:
        vocab = blank_vocab("zh")
    stats = ConversionStats()
    docs = [make_doc(vocab, chars, spans) for chars, spans in _read(path, fmt, strict, stats)]
    return docs, stats


def output_file(input_path: PathLike, output_path: PathLike) -> Path:
    """The .spacy file to write: output_path itself if it ends in .spacy,
    else <input name>.spacy inside the directory output_path (a format
    suffix such as .bmes or .json is dropped from the name).
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.suffix == ".spacy" and not output_path.is_dir():
        return output_path
    if output_path.suffix and not output_path.is_dir():
        raise ConversionError(f"{output_path}: OUTPUT must be a file ending in .spacy or a directory")
    name = input_path.name
    if input_path.suffix.lower() in KNOWN_SUFFIXES:
        name = input_path.stem
    return output_path / f"{name}.spacy"


def checked_output_file(input_path: PathLike, output_path: PathLike) -> Path:
    """output_file(input_path, output_path), refused with a ConversionError
    when writing it would overwrite the input (the same path, a ./ spelling,
    a symlink or hard link to it, or the input file taken as the OUTPUT
    directory) or when a file stands where OUTPUT needs a directory.

    input_path (PathLike): the corpus file.
    output_path (PathLike): a .spacy file or a directory.
    RETURNS (Path): the .spacy file to write.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if _same_file(output_path, input_path):
        raise ConversionError(
            f"{output_path}: OUTPUT is the input file {input_path}; converting would "
            f"overwrite the corpus. Give a new file name ending in .spacy or a "
            f"directory as OUTPUT, e.g. {output_file(input_path, input_path.parent)}"
        )
    target = output_file(input_path, output_path)
    if _same_file(target, input_path):
        raise ConversionError(
            f"{target}: the output file is the input file {input_path} (a link to it); "
            f"converting would overwrite the corpus. Give another OUTPUT file or directory"
        )
    for folder in (target.parent, *target.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                hint = " (an OUTPUT not ending in .spacy is a directory)" if folder == output_path else ""
                raise ConversionError(
                    f"{output_path}: cannot write {target}: {folder} is an existing file, "
                    f"not a directory{hint}. Give a file name ending in .spacy or a "
                    f"directory as OUTPUT"
                )
            break
    return target


def _same_file(path: Path, other: Path) -> bool:
    # resolve() sees through symlinks and "./", samefile through hard links
    # (and case-insensitive file systems) where both exist.
    try:
        if path.resolve() == other.resolve():
            return True
        return path.exists() and other.exists() and os.path.samefile(path, other)
    except OSError:  # e.g. a symlink loop: not the input, and open() will say why
        return False


def convert_file(
    input_path: PathLike,
    output_path: PathLike,
    fmt: str = "auto",
    *,
    strict: bool = False,
    lang: str = "zh",
) -> ConversionStats:
    """Convert a corpus file to a .spacy DocBin (see output_file for naming;
    checked_output_file refuses an OUTPUT that would overwrite the input).

    input_path (PathLike): the corpus file.
    output_path (PathLike): a .spacy file or a directory.
    fmt (str): one of FORMATS.
    strict (bool): raise on ill-formed tags instead of repairing them.
    lang (str): language whose blank vocab the docs use.
    RETURNS (ConversionStats): counts for the summary.
    """
    # Checked before reading, so a bad OUTPUT fails fast and the input is
    # never overwritten.
    target = checked_output_file(input_path, output_path)
    docs, stats = docs_from_file(input_path, fmt, vocab=blank_vocab(lang), strict=strict)
    target.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=False).to_disk(target)
    return stats


def write_tagged_file(docs: Iterable[Doc], path: PathLike, scheme: str = "BIOES") -> None:
    """Write docs as char-per-line "char<TAB>tag", blank line between docs.

    Works from doc.text and character offsets, so any tokenisation is fine.
    Read BIOES/BMES output back with fmt="bmes" and BIO output with fmt="bio".

    docs (Iterable[Doc]): docs with entities.
    path (PathLike): the file to write (UTF-8, "\\n" line ends).
    scheme (str): "BIOES", "BMES" or "BIO".
    """
    lines: List[str] = []
    for i, doc in enumerate(docs):
        text = doc.text
        if "\n" in text or not text:
            raise ValueError(
                f"doc {i} {'is empty' if not text else 'contains a newline'}: the "
                f"char-per-line format cannot represent it; drop or clean the doc"
            )
        spans = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
        tags = spans_to_tags(len(text), spans, scheme)
        lines.extend(f"{char}\t{tag}" for char, tag in zip(text, tags))
        lines.append("")
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf8")
