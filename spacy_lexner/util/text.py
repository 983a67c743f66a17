"""Reading UTF-8 text files (corpora, lexicons) with errors that name the
file and line and say how to re-encode the file."""

from pathlib import Path
from typing import Iterator, Tuple, Type

UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _not_utf8(path: Path, lineno: int, detail: str) -> str:
    return (
        f"{path}:{lineno}: not valid UTF-8 ({detail}). Chinese text files are often GBK "
        f"(or GB18030) encoded; re-encode with `iconv -f GBK -t UTF-8 {path} > {path}.utf8` "
        "and use the new file."
    )


def _check_not_utf16(start: bytes, path: Path, error: Type[Exception]) -> None:
    if start.startswith(_UTF16_BOMS):
        raise error(f"{path}:1: the file is UTF-16; convert it with `iconv -f UTF-16 -t UTF-8 {path} > {path}.utf8`.")


def read_utf8(path: Path, error: Type[Exception] = ValueError) -> str:
    """The whole file as text, without a leading BOM (a BOM elsewhere is data).

    Decoding at once is fast; the line of a bad byte is recovered from its offset.
    """
    data = Path(path).read_bytes()
    _check_not_utf16(data[:2], path, error)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        lineno = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.start + 2].hex(" ")
        raise error(_not_utf8(path, lineno, f"bytes {bad}")) from None
    return text[1:] if text.startswith("\ufeff") else text


def numbered_lines(path: Path, error: Type[Exception] = ValueError) -> Iterator[Tuple[int, str]]:
    """(line number, text) for each line, decoded line by line (a corpus
    need not fit in memory twice). Splits on "\\n" only, since
    str.splitlines would also split on characters such as U+2028 that can
    occur as data; a trailing "\\r" is dropped.
    """
    with Path(path).open("rb") as file_:
        for lineno, raw in enumerate(file_, 1):
            if lineno == 1:
                _check_not_utf16(raw, path, error)
                if raw.startswith(UTF8_BOM):
                    raw = raw[len(UTF8_BOM) :]
            try:
                text = raw.decode("utf8")
            except UnicodeDecodeError as err:
                raise error(_not_utf8(path, lineno, f"{err.reason} at byte {err.start} of the line")) from None
            if text.endswith("\n"):
                text = text[:-1]
            if text.endswith("\r"):
                text = text[:-1]
            yield lineno, text
