"""Peak memory and time of an encoder itself, called directly, by text length.

    python benchmarks/encoder_memory.py --encoders lattice_lstm lrcnn flat --lengths 50 150 300 --batch 8 --threads 1

Each (encoder, length) runs in a fresh process. The encoder (the settings of
benchmarks/encoders.py) is built alone, with the input width of the
default SoftLexicon embed (368), and does one training forward and backward
pass over a batch of texts of that length cut from Resume train, matched
against jieba's lexicon: random char vectors, the real lattice. Calling the
encoder directly lets the texts be longer than the tagger's window (256).
The lattices are matched in the parent process and loaded from disk, so the
lexicon's memory is not in the measured process. Reported: lexicon words per
text, the process's RSS before the pass and its peak during the pass (the
peak is reset just before it), their difference, and the pass's time.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encoders import ENCODERS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
INPUT_WIDTH = 368  # SoftLexiconEmbed.v2 defaults: 50 + 50 + 4 x (50 + 16 + 1)


def save_lattice(path: Path, length: int, batch: int, data: Path) -> None:
    """Match the texts in this process, so the lexicon's memory is not in
    the measured one."""
    import dataclasses

    import numpy

    from spacy_lexner.lexicon import Lattice, Lexicon

    chars = "".join(line.split()[0] for line in data.read_text(encoding="utf8").splitlines() if line.strip())
    texts = [chars[i * length : (i + 1) * length] for i in range(batch)]
    lattice = Lattice.build(texts, Lexicon.from_jieba())
    arrays = {f.name: getattr(lattice, f.name) for f in dataclasses.fields(lattice) if f.name not in NOT_ARRAYS}
    numpy.savez(path, texts=numpy.array(texts), **arrays)


NOT_ARRAYS = ("texts", "word_table", "docs")


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    """Set the process's peak RSS (VmHWM) to its current RSS (Linux), so the
    peak after the pass is the pass's own: importing torch and spaCy peaks
    higher than a short pass does."""
    Path("/proc/self/clear_refs").write_text("5")


def one_run(encoder: str, lattice_path: Path) -> dict:
    import numpy
    import torch
    from spacy.util import registry

    from spacy_lexner.lexicon import Lattice
    from spacy_lexner.models.types import Embedded

    saved = numpy.load(lattice_path)
    lattice = Lattice(texts=saved["texts"].tolist(), **{k: saved[k] for k in saved.files if k != "texts"})
    batch, length = len(lattice), int(lattice.lengths.max())
    model = registry.resolve({"encoder": ENCODERS[encoder]})["encoder"]
    model.set_dim("nI", INPUT_WIDTH)
    model.initialize()
    X = numpy.random.default_rng(0).normal(size=(batch, length, INPUT_WIDTH)).astype("float32")
    lengths = numpy.full((batch,), length, dtype="int32")
    base = status_kb("VmRSS")
    reset_peak_rss()
    start = time.perf_counter()
    Y, backprop = model(Embedded(X, lengths, lattice), is_train=True)
    backprop(numpy.ones_like(Y))
    seconds = time.perf_counter() - start
    peak = status_kb("VmHWM")
    return {
        "encoder": encoder,
        "length": length,
        "batch": batch,
        "words_per_text": float(numpy.mean(lattice.n_words)),
        "rss_before_mb": base / 1024,
        "peak_rss_mb": peak / 1024,
        "extra_rss_mb": (peak - base) / 1024,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", nargs="+", default=["lattice_lstm", "lrcnn"], choices=list(ENCODERS))
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 150, 300])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "resume" / "train.char.bmes")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(one_run(args.one[0], Path(args.one[1]))))
        return
    scratch = Path(tempfile.mkdtemp())
    for length in args.lengths:
        save_lattice(scratch / f"{length}.npz", length, args.batch, args.data)
    print(f"torch threads: {args.threads}; batch {args.batch}\n")
    print(
        "| encoder | text length (chars) | lexicon words per text | RSS before (MB) | peak RSS in the pass (MB) | added by the pass (MB) | forward + backward (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for encoder in args.encoders:
        for length in args.lengths:
            command = [sys.executable, __file__, "--one", encoder, str(scratch / f"{length}.npz")]
            command += ["--threads", str(args.threads)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {encoder} | {length} | {r['words_per_text']:.0f} | {r['rss_before_mb']:,.0f} | {r['peak_rss_mb']:,.0f} | "
                f"{r['extra_rss_mb']:,.0f} | {r['seconds']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
