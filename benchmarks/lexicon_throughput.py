"""Measure Lexicon build time and match / lattice throughput.

    python benchmarks/lexicon_throughput.py [--data-dir ../shared/data]

Text: the Resume NER training set (first column of train.char.bmes), matched
as one joined string and sentence by sentence, plus random text of the same
length (80% CJK ideographs, 20% ASCII). Throughput is the best of 3 runs.
"""

import argparse
import random
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spacy_lexner.lexicon import Lattice, Lexicon  # noqa: E402

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
N_RUNS = 3


def read_sentences(path: Path) -> List[str]:
    """The sentences of a `char TAG` per line, blank-line separated file."""
    sentences: List[str] = []
    chars: List[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            chars.append(line.split()[0])
        elif chars:
            sentences.append("".join(chars))
            chars = []
    if chars:
        sentences.append("".join(chars))
    return sentences


def random_text(n_chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    ascii_chars = [chr(c) for c in range(0x20, 0x7F)]
    return "".join(
        chr(rng.randint(0x4E00, 0x9FFF)) if rng.random() < 0.8 else rng.choice(ascii_chars) for _ in range(n_chars)
    )


def best_time(func: Callable[[], object]) -> float:
    times = []
    for _ in range(N_RUNS):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def throughput_rows(lexicon: Lexicon, texts: List[Tuple[str, List[str]]]) -> List[Tuple[str, str, int, float]]:
    """(method, text name, chars, chars/s) for match, match_entries and
    building a Lattice of 256 texts at a time (what the tagger does per batch)."""
    rows = []
    for name, docs in texts:
        n_chars = sum(map(len, docs))
        batches = [docs[i : i + 256] for i in range(0, len(docs), 256)]
        methods = [
            ("match", lambda: deque(map(lexicon.match, docs), maxlen=0)),
            ("match_entries", lambda: deque(map(lexicon.match_entries, docs), maxlen=0)),
            ("Lattice.build", lambda: deque((Lattice.build(b, lexicon) for b in batches), maxlen=0)),
        ]
        for method, run in methods:
            # Results are dropped as a pipeline would after featurizing; keeping
            # them all alive would time the garbage collector instead.
            rows.append((method, name, n_chars, n_chars / best_time(run)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    bmes = args.data_dir / "resume" / "train.char.bmes"
    if not bmes.is_file():
        parser.error(f"{bmes} not found; pass --data-dir pointing at shared/data")
    sentences = read_sentences(bmes)
    joined = "".join(sentences)

    start = time.perf_counter()
    lexicon = Lexicon.from_jieba()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    lexicon.match("")  # builds the automaton
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    data = lexicon.to_bytes()
    to_bytes_s = time.perf_counter() - start
    start = time.perf_counter()
    Lexicon().from_bytes(data)
    from_bytes_s = time.perf_counter() - start

    print(f"jieba lexicon: {len(lexicon)} words, default_freq={lexicon.default_freq}")
    print(f"  load dict.txt {load_s:.2f} s | build automaton {build_s:.2f} s")
    print(f"  to_bytes {to_bytes_s:.2f} s ({len(data) / 1e6:.1f} MB) | from_bytes {from_bytes_s:.2f} s")
    texts = [
        ("resume train, joined", [joined]),
        ("resume train, per sentence", sentences),
        ("random, joined", [random_text(len(joined))]),
    ]
    print(f"\n{'method':<18} {'text':<28} {'chars':>8} {'chars/s':>10}")
    for method, name, n_chars, speed in throughput_rows(lexicon, texts):
        print(f"{method:<18} {name:<28} {n_chars:>8} {speed / 1e6:>9.2f}M")


if __name__ == "__main__":
    main()
