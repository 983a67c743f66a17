"""The ``spacy-lexner`` command line. Commands are registered on ``app`` in
this module; add new ones with ``@app.command(...)``.
"""

import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List

import typer
from wasabi import msg

from ..corpora.word2vec_settings import Word2VecSettings

if TYPE_CHECKING:
    from ..corpora.convert import ConversionStats

# The commands import what they run inside their functions: `spacy-lexner
# --help` then loads neither spaCy nor torch (0.3 s instead of 2.4 s).

app = typer.Typer(
    name="spacy-lexner",
    help="Lexicon-enhanced Chinese NER for spaCy.",
    add_completion=False,
    no_args_is_help=True,
    # Plain click help: it wraps at the terminal's width (80 columns as well)
    # without truncating option names, and loads without rich.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
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


@app.command("convert", help=CONVERT_HELP, short_help="Convert an NER corpus (BMES, BIO, Weibo, CLUENER) to .spacy.")
def convert_cli(
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Corpus file"),
    output_path: Path = typer.Argument(..., help="Output .spacy file, or a directory"),
    fmt: InputFormat = typer.Option(InputFormat.auto, "--format", "-f", help="Input format"),
    strict: bool = typer.Option(False, "--strict", help="Error on ill-formed tags instead of repairing them"),
    lang: str = typer.Option("zh", "--lang", help="Language of the blank vocab"),
) -> None:
    from ..corpora.convert import ConversionError, convert_file, detect_format, output_file

    fmt_name = fmt.value
    try:
        if fmt_name == "auto":
            fmt_name = detect_format(input_path)
            msg.info(f"Detected format: {fmt_name}")
        stats = convert_file(input_path, output_path, fmt_name, strict=strict, lang=lang)
    except ConversionError as err:  # includes an OUTPUT that would overwrite the input
        msg.fail("Conversion failed", str(err), exits=1)
    except OSError as err:  # unreadable input, unwritable output: a message, not a traceback
        msg.fail("Conversion failed", str(err), exits=1)
    print_summary(stats, output_file(input_path, output_path))


def print_summary(stats: "ConversionStats", target: Path) -> None:
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


class LexiconFallback(str, Enum):
    jieba = "jieba"
    none = "none"


REPORT_HELP = """Interpretable evaluation of an NER pipeline on a .spacy test set.

Writes to --output: report.json (per-type P/R/F, bucketed F1 for entity
length, sentence length, entity density, OOV density, train frequency, label
consistency and lexicon coverage, F1 per entity-coverage-ratio bucket, EECR,
and every error grouped as boundary/type/missed/spurious), one PNG bar chart
per attribute (two models side by side with --compare) and index.html.
--train is the training set the model saw (read for statistics only).
"""


@app.command("report", help=REPORT_HELP, short_help="Interpretable evaluation: bucketed F1, ECR, errors, HTML.")
def report_cli(
    model: str = typer.Argument(..., help="Pipeline directory or package name"),
    test_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Test .spacy file"),
    train_path: Path = typer.Option(..., "--train", "-t", exists=True, dir_okay=False, help="Training .spacy file"),
    output: Path = typer.Option(..., "--output", "-o", file_okay=False, help="Output directory"),
    compare: str = typer.Option(None, "--compare", "-c", help="A second pipeline to compare with"),
    buckets_path: Path = typer.Option(
        None,
        "--buckets",
        exists=True,
        dir_okay=False,
        help='JSON file of bucket edges per attribute, e.g. {"entity_length": [0, 2, 3, 5, null]}',
    ),
    lexicon_fallback: LexiconFallback = typer.Option(
        LexiconFallback.jieba,
        "--lexicon-fallback",
        help="Lexicon for the coverage attribute when the pipeline has none (none = n/a)",
    ),
    allow_label_mismatch: bool = typer.Option(
        False,
        "--allow-label-mismatch",
        help="Warn instead of failing when the data has labels the model lacks",
    ),
    n_errors: int = typer.Option(10, "--n-errors", min=0, help="Sampled errors per kind shown in index.html"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    try:
        from ..evaluation import ReportError, load_buckets, run_report
        from ..evaluation.plots import _require_matplotlib

        _require_matplotlib()
    except ImportError as err:
        msg.fail("spacy-lexner report cannot run", str(err), exits=1)
    if gpu_id >= 0:
        import spacy

        spacy.require_gpu(gpu_id)
    try:
        buckets = load_buckets(buckets_path) if buckets_path else None
        report = run_report(
            model,
            test_path,
            train_path,
            output,
            compare=compare,
            buckets=buckets,
            lexicon_fallback=lexicon_fallback.value,
            allow_label_mismatch=allow_label_mismatch,
            errors_per_kind=n_errors,
        )
    except ReportError as err:
        msg.fail("Report failed", str(err), exits=1)
    print_report_summary(report)


def print_report_summary(report: dict) -> None:
    """Overall and per-type scores, ECR buckets and EECR, in the terminal."""
    data = report["data"]
    msg.info(f"{data['n_docs']} test docs, {data['n_gold']} gold entities; lexicon: {data['lexicon']}")
    for m in report["models"]:
        o = m["overall"]
        msg.divider(m["name"])
        msg.text(f"P {100 * o['p']:.2f}  R {100 * o['r']:.2f}  F {100 * o['f']:.2f}")
        rows = [
            (label, f"{100 * r['p']:.2f}", f"{100 * r['r']:.2f}", f"{100 * r['f']:.2f}", r["n_gold"])
            for label, r in m["per_type"].items()
        ]
        msg.table(rows, header=("type", "P", "R", "F", "gold"), aligns=("l", "r", "r", "r", "r"))
        rows = [(r["bucket"], r["n_gold"], f"{100 * r['f']:.2f}") for r in m["ecr_buckets"]]
        msg.table(rows, header=("ECR bucket", "gold", "F"), aligns=("l", "r", "r"))
        msg.text("errors: " + ", ".join(f"{k} {v}" for k, v in m["error_counts"].items()))
    eecr = data["eecr"]["eecr"]
    msg.text(f"EECR (train -> test): {'n/a' if eecr is None else f'{eecr:.4f}'}")
    msg.good(f"Wrote {report['files']['json']}, {report['files']['html']} and the charts")


# typer renders help with rich, which reads "[...]" as markup: hence "[".
PRETRAIN_VECTORS_HELP = """Train char, bigram and lexicon-word vectors (word2vec
skip-gram) on unlabelled text, for lexner_tagger's
[initialize.components.lexner_tagger] pretrained_vectors = "OUTPUT".

Inputs: .spacy DocBins (one text per Doc), .jsonl (a "text" field per line)
or UTF-8 text (one text per line). Use train or unlabelled in-domain text,
never dev or test text. The widths must match the config's char_width,
bigram_width and word_width. Needs gensim (pip install 'spacy-lexner[vectors]').
"""


@app.command("pretrain-vectors", help=PRETRAIN_VECTORS_HELP, short_help="Train word2vec char, bigram and word vectors.")
def pretrain_vectors_cli(
    output: Path = typer.Argument(..., dir_okay=False, help="Output .npz file"),
    inputs: List[Path] = typer.Argument(..., exists=True, dir_okay=False, help="Text files"),
    lexicons: List[Path] = typer.Option(
        [], "--lexicon", "-l", exists=True, dir_okay=False, help="A word list added to jieba's for segmentation"
    ),
    char_width: int = typer.Option(Word2VecSettings.char_width, "--char-width", min=1),
    bigram_width: int = typer.Option(Word2VecSettings.bigram_width, "--bigram-width", min=1),
    word_width: int = typer.Option(Word2VecSettings.word_width, "--word-width", min=1),
    window: int = typer.Option(Word2VecSettings.window, "--window", min=1),
    epochs: int = typer.Option(Word2VecSettings.epochs, "--epochs", min=1),
    min_count: int = typer.Option(Word2VecSettings.min_count, "--min-count", min=1),
    workers: int = typer.Option(Word2VecSettings.workers, "--workers", min=1, help="word2vec threads"),
    seed: int = typer.Option(Word2VecSettings.seed, "--seed"),
) -> None:
    from ..corpora.word2vec import TABLE_NAMES, pretrain_vectors, read_texts, save_vectors

    if output.suffix != ".npz":
        msg.fail(f"The output must be an .npz file, got {output}", exits=1)
    settings = Word2VecSettings(
        char_width=char_width,
        bigram_width=bigram_width,
        word_width=word_width,
        window=window,
        epochs=epochs,
        min_count=min_count,
        workers=workers,
        seed=seed,
    )
    start = time.perf_counter()
    try:
        texts = read_texts(inputs)
        msg.info(f"{len(texts)} texts, {sum(map(len, texts)):,} chars")
        arrays = pretrain_vectors(texts, extra_lexicons=lexicons, settings=settings)
    except (ImportError, ValueError) as err:
        msg.fail("Cannot train vectors", str(err), exits=1)
    save_vectors(arrays, output, settings)
    sizes = ", ".join(f"{len(arrays[f'{name}_keys'])} {name}" for name in TABLE_NAMES)
    msg.good(f"Wrote {output} ({sizes}) in {time.perf_counter() - start:.1f}s")


MERGE_HELP = """Combine lexner_tagger pipelines trained separately (one config,
different seeds: --system.seed) into one pipeline whose tagger is an
ensemble (spacy-lexner.LexiconTaggerEnsemble.v1): it averages the members'
emission and CRF scores and decodes once. Inference costs one forward pass
per member. The output is an ordinary pipeline directory (spacy.load,
spacy package); its other components and settings come from the first input.
"""


@app.command("merge-ensemble", help=MERGE_HELP, short_help="Merge separately trained taggers into one ensemble.")
def merge_ensemble_cli(
    output: Path = typer.Argument(..., file_okay=False, help="Output pipeline directory"),
    models: List[Path] = typer.Argument(..., exists=True, file_okay=False, help="Trained pipeline directories"),
    name: str = typer.Option("lexner_tagger", "--name", "-n", help="The tagger component's name"),
) -> None:
    import spacy

    from ..pipeline.merge import merge_taggers

    try:
        nlp = merge_taggers([spacy.load(path) for path in models], name=name)
    except ValueError as err:
        msg.fail("Cannot merge these pipelines", str(err), exits=1)
    output.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    msg.good(f"Wrote a {len(models)}-member ensemble of '{name}' to {output}")


CLEAN_STRINGS_HELP = """Copy a saved pipeline without the text that leaked into
its StringStore (vocab/strings.json). Pipelines saved by spacy-lexner 0.1.0
hold every sentence their lexner_tagger trained and was evaluated on there,
verbatim. The copy keeps single characters, strings the tokenizer reads as
one token, vector keys and labels; it is checked to give the same entities
as the input on the removed texts. The input is never changed.
"""


@app.command("clean-strings", help=CLEAN_STRINGS_HELP, short_help="Copy a 0.1.0 pipeline without its training text.")
def clean_strings_cli(
    input_path: Path = typer.Argument(..., exists=True, file_okay=False, help="Saved pipeline directory"),
    output_path: Path = typer.Argument(..., help="New directory for the cleaned copy"),
) -> None:
    from ..pipeline.clean_strings import clean_strings

    try:
        report = clean_strings(input_path, output_path)
    except ValueError as err:
        msg.fail("Cannot clean the pipeline", str(err), exits=1)
    msg.good(
        f"Wrote {output_path}: removed {report.n_removed:,} of {report.n_strings:,} strings "
        f"(the longest {report.longest_removed:,} chars); same entities on {report.n_checked:,} test texts"
    )


SERVE_INSTALL = 'Install them with: pip install "spacy-lexner[serve]"'
SERVE_HELP = """Serve a pipeline over HTTP: POST /ents (JSON: entities as
character offsets), POST /render (the same, drawn by displaCy), GET / (a
page to try it), GET /health and GET /meta. Each worker process loads the
pipeline once and runs requests in its thread pool; --workers adds
processes, which is what adds CPU throughput. Listens on localhost unless
--host says otherwise. Needs pip install "spacy-lexner[serve]". See
docs/serve.md.
"""


# The defaults repeat serve.DEFAULT_MAX_BODY_BYTES and DEFAULT_MAX_TEXTS: that
# module imports FastAPI, which --help must not load.
@app.command("serve", help=SERVE_HELP, short_help="Serve a pipeline: a JSON API and a page to try it.")
def serve_cli(
    model: str = typer.Argument(..., help="Pipeline directory or package name"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: all interfaces)"),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="Port"),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes, each with its own pipeline"),
    max_body_bytes: int = typer.Option(1_048_576, "--max-body-bytes", min=1, help="Larger bodies get a 413"),
    max_texts: int = typer.Option(128, "--max-texts", min=1, help="Texts per request"),
    max_length: int = typer.Option(None, "--max-length", min=1, help="Chars per text [default: nlp.max_length]"),
    torch_threads: int = typer.Option(1, "--torch-threads", min=1, help="torch threads per worker"),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log every request"),
) -> None:
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as err:
        msg.fail(f"spacy-lexner serve needs FastAPI, uvicorn and python-multipart ({err})", SERVE_INSTALL, exits=1)
    import copy
    import inspect
    import os

    from .serve import ENV_VAR, ServeSettings, Service, create_app, load_service

    path = Path(model)
    if path.exists() and not (path / "config.cfg").exists():
        msg.fail(
            f"{model} is not a pipeline directory: it has no config.cfg",
            "Give a directory written by nlp.to_disk or spacy train (e.g. training/model-best).",
            exits=1,
        )
    settings = ServeSettings(model, max_body_bytes, max_texts, max_length, torch_threads)
    # The workers build the app from the import string and read the settings
    # from the environment, which they inherit.
    os.environ[ENV_VAR] = settings.to_env()
    # uvicorn's logging, plus our logger (the traces of unexpected errors).
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["spacy_lexner"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    common = {"host": host, "port": port, "access_log": access_log, "log_config": log_config}
    # A worker loading a large pipeline on a busy machine may answer the
    # supervisor's health check late; uvicorn's 5 s would kill it. (Older
    # uvicorn versions have no health check, nor the setting.)
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        common["timeout_worker_healthcheck"] = 60
    if workers == 1:
        # Loaded here, so a pipeline that does not load is a message, not a worker's traceback.
        try:
            service: Service = load_service(settings)
        except (OSError, ValueError) as err:
            msg.fail(f"Could not load the pipeline {model}", str(err), exits=1)
        msg.good(
            f"Loaded {service.pipeline['name']} {service.pipeline['version']}: {', '.join(service.nlp.pipe_names)}"
        )
        msg.info(f"Serving on http://{host}:{port}/ (1 worker)")
        uvicorn.run(create_app(service=service), **common)
    else:
        from spacy.util import is_package

        if not path.exists() and not is_package(model):
            msg.fail(
                f"Could not find the pipeline {model}",
                "Give a directory written by nlp.to_disk or spacy train, or an installed pipeline package.",
                exits=1,
            )
        msg.info(f"Serving {model} on http://{host}:{port}/ ({workers} workers, each loads the pipeline)")
        uvicorn.run("spacy_lexner.cli.serve:create_app", factory=True, workers=workers, **common)


class LongTexts(str, Enum):
    reject = "reject"
    split = "split"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


ANNOTATE_HELP = """Annotate a corpus: one output record per input record, with
its id and entities (character offsets, label, text), in input order.

INPUT is a file, a directory or a quoted glob of JSONL (--text-field,
--id-field), plain text (one record per line, the line number as id) or
Parquet. OUTPUT is JSONL, or Parquet for a .parquet name. Records that
cannot be annotated (not UTF-8, not JSON, no text, over nlp.max_length)
go to the rejects file with the reason, and the run goes on.

Resumable: a run that is stopped in any way and started again with the same
arguments continues where it stopped and writes the same bytes as an
uninterrupted run (shards in OUTPUT.parts/). --engine ray runs the shards on
a Ray cluster (pip install "spacy-lexner[ray]"). See docs/annotate.md.
"""


@app.command("annotate", help=ANNOTATE_HELP, short_help="Annotate a corpus (JSONL, text, Parquet), resumable; Ray.")
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline directory or package name"),
    input_path: str = typer.Argument(..., metavar="INPUT", help="Input file, directory or glob"),
    output_path: str = typer.Argument(..., metavar="OUTPUT", help="Output .jsonl or .parquet file"),
    input_format: str = typer.Option("auto", "--input-format", help="jsonl, text, parquet or auto (by extension)"),
    output_format: str = typer.Option("auto", "--output-format", help="jsonl, parquet or auto (by extension)"),
    text_field: str = typer.Option("text", "--text-field", help="Field (column) with the text"),
    id_field: str = typer.Option("id", "--id-field", help="Field (column) with the id; '' for line numbers"),
    keep_fields: bool = typer.Option(False, "--keep-fields", help="Copy the input record into 'fields'"),
    rejects: str = typer.Option(None, "--rejects", help="Rejects file [default: OUTPUT's stem + .rejects.jsonl]"),
    long_texts: LongTexts = typer.Option(
        LongTexts.reject, "--long-texts", help="Texts over nlp.max_length: reject, or split at sentence ends"
    ),
    max_length: int = typer.Option(None, "--max-length", min=1, help="Chars per text [default: nlp.max_length]"),
    shard_size: int = typer.Option(10_000, "--shard-size", min=1, help="Lines per shard (the unit of resuming)"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, help="Texts per nlp.pipe batch"),
    n_process: int = typer.Option(1, "--n-process", "-n", min=1, help="Local engine: nlp.pipe processes"),
    torch_threads: int = typer.Option(1, "--torch-threads", min=1, help="torch threads per process (Ray: CPUs)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="Local engine: GPU id, -1 for CPU"),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local, or ray (pip install 'spacy-lexner[ray]')"),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Ray: worker actors"),
    num_gpus: float = typer.Option(None, "--num-gpus", min=0, help="Ray: GPUs per worker [default: 1 if any]"),
    ray_address: str = typer.Option(None, "--ray-address", help="Ray: cluster address [default: $RAY_ADDRESS]"),
    keep_parts: bool = typer.Option(False, "--keep-parts", help="Keep the shard files after the run"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr"),
) -> None:
    from ..annotate import AnnotateError, AnnotateSettings, run_annotate

    settings = AnnotateSettings(
        model=model,
        input=input_path,
        output=output_path,
        input_format=input_format,
        output_format=output_format,
        text_field=text_field,
        id_field=id_field,
        keep_fields=keep_fields,
        rejects=rejects,
        shard_size=shard_size,
        long_texts=long_texts.value,
        max_length=max_length,
        batch_size=batch_size,
        n_process=n_process,
        torch_threads=torch_threads,
        gpu_id=gpu_id,
        engine=engine.value,
        concurrency=concurrency,
        num_gpus=num_gpus,
        ray_address=ray_address,
        keep_parts=keep_parts,
        progress=progress,
    )
    try:
        summary = run_annotate(settings, log=msg.info)
    except (AnnotateError, OSError) as err:
        msg.fail("Annotation failed", str(err), exits=1)
    if summary.already_complete:
        msg.good(f"{summary.output} is already complete (the run recorded in {output_path}.parts/manifest.json)")
    else:
        rate = f"{summary.records / max(summary.seconds, 1e-9):,.0f} records/s"
        msg.good(
            f"Annotated {summary.annotated:,} of {summary.records:,} records ({summary.chars:,} chars) "
            f"into {summary.output} in {summary.seconds:.1f} s ({rate})"
        )
        if summary.shards_resumed:
            msg.text(f"Resumed: {summary.shards_resumed} of {summary.shards} shards were done before this run")
    if summary.labels:
        msg.table(sorted(summary.labels.items()), header=("label", "entities"), aligns=("l", "r"))
    if summary.rejected:
        msg.warn(f"Rejected {summary.rejected:,} record(s): see {summary.rejects}")
    else:
        msg.text("Rejected 0 records")
