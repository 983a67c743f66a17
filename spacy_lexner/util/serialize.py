"""Reading a pipe's saved files with errors that name the file.

srsly's own errors ("Unexpected character found when decoding array value")
do not say which file of a pipeline directory is broken, so loading a
truncated or corrupted pipeline left the user guessing.
"""

from pathlib import Path
from typing import Any, Callable, List

import srsly


def read_named(path: Path, read: Callable[[Path], Any], what: str = "file") -> Any:
    """read(path), re-raising decoding errors as a ValueError naming path."""
    try:
        return read(path)
    except (ValueError, TypeError, EOFError) as err:  # UnicodeDecodeError and msgpack errors are ValueErrors
        raise ValueError(
            f"Cannot read {what} {path}: {err}. The file is truncated or corrupted; "
            "re-save the pipeline or restore the file."
        ) from err


def read_json(path: Path) -> Any:
    return read_named(path, srsly.read_json, "JSON file")


def read_jsonl(path: Path) -> List[Any]:
    return read_named(path, lambda p: list(srsly.read_jsonl(p)), "JSONL file")


def read_msgpack(path: Path) -> Any:
    return read_named(path, srsly.read_msgpack, "msgpack file")
