"""The ``spacy-lexner`` command line. Commands are registered on ``app`` in
this module; add new ones with ``@app.command(...)``.
"""
from enum import Enum
from pathlib import Path

import typer
from wasabi import msg

from .convert import ConversionError, ConversionStats, convert_file, detect_format, output_file

app = typer.Typer(
    name="spacy-lexner",
    help="Lexicon-enhanced Chinese NER for spaCy.",
    add_completion=False,
    no_args_is_help=True,
)


@app.callback()
def main() -> None:
    """Lexicon-enhanced Chinese NER for spaCy."""
    # A callback keeps "convert" a sub-command even while it is the only one.


class InputFormat(str, Enum):
    bmes = "bmes"
    bio = "bio"
    weibo = "weibo"
    cluener = "cluener"
    auto = "auto"


CONVERT_HELP = """Convert a Chinese NER corpus to a .spacy DocBin, one Doc per
sentence and one token per character.

Formats: bmes (char TAG per line, BMES/BIOES tags, e.g. Resume), bio (char
TAG, BIO tags, e.g. MSRA), weibo (char+position digit TAB TAG, BIO), cluener
(JSON lines), auto (guessed from the file name and content).

Repair rule: an I-/M-/E- tag that does not continue an open entity of the
same type (at sentence start, after O, after E-/S-, or after another type)
opens a new entity of that type at that position (I-/M- read as B-, E- as
S-). Repairs are counted in the summary; --strict makes the first one an
error instead. Unknown tags, wrong column counts and non-UTF-8 bytes are
always errors naming FILE:LINE.
"""


@app.command("convert", help=CONVERT_HELP)
def convert_cli(
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Corpus file"),
    output_path: Path = typer.Argument(..., help="Output .spacy file, or a directory"),
    fmt: InputFormat = typer.Option(InputFormat.auto, "--format", "-f", help="Input format"),
    strict: bool = typer.Option(False, "--strict", help="Error on ill-formed tags instead of repairing them"),
    lang: str = typer.Option("zh", "--lang", help="Language of the blank vocab"),
) -> None:
    fmt_name = fmt.value
    if fmt_name == "auto":
        fmt_name = detect_format(input_path)
        msg.info(f"Detected format: {fmt_name}")
    try:
        stats = convert_file(input_path, output_path, fmt_name, strict=strict, lang=lang)
    except ConversionError as err:
        msg.fail("Conversion failed", str(err), exits=1)
    print_summary(stats, output_file(input_path, output_path))


def print_summary(stats: ConversionStats, target: Path) -> None:
    """Print docs, chars, entities per label and repairs for a conversion."""
    msg.good(f"Wrote {stats.n_docs} docs ({stats.n_chars} chars, {stats.n_ents} entities) to {target}")
    if stats.labels:
        rows = sorted(stats.labels.items())
        msg.table(rows, header=("label", "entities"), aligns=("l", "r"))
    else:
        msg.warn("No entities: these docs are unlabelled; do not use them for training or evaluation")
    if stats.n_repaired:
        msg.warn(f"Repaired {stats.n_repaired} ill-formed tag(s) (see --help for the rule)")
    else:
        msg.text("Repaired 0 ill-formed tags")
    if stats.n_dropped_overlaps:
        msg.warn(f"Dropped {stats.n_dropped_overlaps} overlapping span(s), keeping the longer ones")
