"""How much of a CRF component's time goes to decoding (Viterbi + spans).

    python benchmarks/decode_share.py MODEL_DIR [MODEL_DIR ...] --texts ../shared/data/resume/test.char.bmes

For each pipeline and each batch size (1, 32, 256 by default), the docs go
through the pipeline's earlier components once, then the CRF component's
``pipe`` runs over them while the shared decode functions are timed. The
share is decode time / component time, and also decode time / time of
the whole pipeline (for crf_ner over a listener, the shared tok2vec runs in
its own component). The thread count is fixed and printed.
"""

import argparse
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterator, List

REPO = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--texts", type=Path, default=REPO.parent / "shared" / "data" / "resume" / "test.char.bmes")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--repeat", type=int, default=2, help="passes over the texts per batch size; the fastest counts"
    )
    return parser.parse_args()


def read_texts(path: Path) -> List[str]:
    """Sentences of a char-per-line file (BMES/BIO/Weibo), or one text per line."""
    lines = path.read_text(encoding="utf8").splitlines()
    if not any(" " in line or "\t" in line for line in lines[:5]):
        return [line for line in lines if line.strip()]
    texts, chars = [], []
    for line in lines + [""]:
        if line.strip():
            chars.append(line.split()[0][0])
        elif chars:
            texts.append("".join(chars))
            chars = []
    return texts


@contextmanager
def timed(module, name: str, totals: Dict[str, float]) -> Iterator[None]:
    """Time every call of module.name (a function looked up at call time)."""
    original: Callable = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals["decode"] += time.perf_counter() - start

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def measure(model_dir: Path, texts: List[str], batch_size: int, repeat: int) -> Dict[str, float]:
    import spacy

    from spacy_lexner.models import decoders
    from spacy_lexner.pipeline import crf_ner, lexner_tagger
    from spacy_lexner.util import tags

    nlp = spacy.load(model_dir)
    name, pipe = next(
        (n, p) for n, p in nlp.pipeline if isinstance(p, (lexner_tagger.LexiconTagger, crf_ner.CRFEntityRecognizer))
    )
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        with nlp.select_pipes(disable=[name]):
            docs = list(nlp.pipe(texts, batch_size=batch_size))
        upstream = time.perf_counter() - start
        totals = {"decode": 0.0}
        with timed(decoders, "crf_decode", totals), timed(tags.TagScheme, "decode", totals):
            start = time.perf_counter()
            list(pipe.pipe(docs, batch_size=batch_size))
            total = time.perf_counter() - start
        if best is None or total < best["component_s"]:
            best = {"component_s": total, "decode_s": totals["decode"], "pipeline_s": total + upstream}
    best["share"] = best["decode_s"] / best["component_s"]
    best["pipeline_share"] = best["decode_s"] / best["pipeline_s"]
    best["component"] = name
    return best


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    texts = read_texts(args.texts)
    print(f"torch threads: {args.threads}; {len(texts)} texts, {sum(map(len, texts)):,} chars from {args.texts}\n")
    print(
        "| pipeline | component | batch size | component time (s) | decode time (s) | decode share of component | of whole pipeline |"
    )
    print("|---|---|---|---|---|---|---|")
    for model_dir in args.models:
        for batch_size in args.batch_sizes:
            r = measure(model_dir, texts, batch_size, args.repeat)
            print(
                f"| {model_dir} | {r['component']} | {batch_size} | {r['component_s']:.2f} | {r['decode_s']:.2f} | {100 * r['share']:.1f}% | {100 * r['pipeline_share']:.1f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
