"""One long document against the same text as short documents, whole `nlp()` call.

    python benchmarks/long_vs_short.py --model training/resume/model-best --texts corpus/resume/test.spacy
    python benchmarks/long_vs_short.py            # untrained default pipeline, generated text

The short documents are the texts of a DocBin (`--texts`), repeated until
`--chars` characters; the long document is their concatenation. Each
(size, tokenizer) pair runs in a fresh process at `--threads` torch threads:
the long doc with `nlp(text)`, the short docs with `list(nlp.pipe(texts))`,
both from raw text (tokenization included), best of `--repeats` passes.

Tokenizers: `spacy_char` is `spacy.zh.ChineseTokenizer` with the `char`
segmenter (quadratic in the text length); `linear` is
`spacy-lexner.ChineseCharTokenizer.v1`, which gives the same tokens. The
pipeline's own tokenizer is replaced by the one measured. Results (JSON
lines) are appended to `--out` and a (size, tokenizer) already there is
skipped, so an interrupted run resumes.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOKENIZERS = ("spacy_char", "linear")


def short_texts(path: str, n_chars: int) -> List[str]:
    import spacy
    from spacy.tokens import DocBin

    if path:
        pool = [doc.text for doc in DocBin().from_disk(path).get_docs(spacy.blank("zh").vocab) if doc.text]
    else:
        from long_doc import SENTENCES

        pool = SENTENCES
    texts, total = [], 0
    while total < n_chars:
        for text in pool:
            texts.append(text)
            total += len(text)
            if total >= n_chars:
                break
    return texts


def child(args: argparse.Namespace) -> None:
    import spacy
    import torch

    torch.set_num_threads(args.threads)
    texts = short_texts(args.texts, args.chars)
    text = "".join(texts)
    if args.model:
        nlp = spacy.load(args.model)
    else:
        from long_doc import build_default_pipeline

        nlp = build_default_pipeline(text)
    nlp.max_length = max(nlp.max_length, len(text) + 1)
    if args.tokenizer == "linear":
        from spacy_lexner.pipeline.tokenizer import ChineseCharTokenizer

        nlp.tokenizer = ChineseCharTokenizer(nlp.vocab)
    else:
        from spacy.lang.zh import ChineseTokenizer

        nlp.tokenizer = ChineseTokenizer(nlp.vocab, segmenter="char")
    nlp("暖身。")
    long_s, short_s = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        long_doc = nlp(text)
        long_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        short_docs = list(nlp.pipe(texts))
        short_s.append(time.perf_counter() - start)
    tokenize_start = time.perf_counter()
    nlp.make_doc(text)
    tokenize_s = time.perf_counter() - tokenize_start
    print(
        json.dumps(
            {
                "chars": len(text),
                "tokenizer": args.tokenizer,
                "short_docs": len(texts),
                "threads": args.threads,
                "long_s": round(min(long_s), 2),
                "short_s": round(min(short_s), 2),
                "ratio": round(min(long_s) / min(short_s), 3),
                "tokenize_long_s": round(tokenize_s, 2),
                "long_ents": len(long_doc.ents),
                "short_ents": sum(len(doc.ents) for doc in short_docs),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, nargs="+", default=[400_000, 1_000_000])
    parser.add_argument("--tokenizers", nargs="+", choices=TOKENIZERS, default=list(TOKENIZERS))
    parser.add_argument("--model", default="")
    parser.add_argument("--texts", default="", help="DocBin whose texts are the short docs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/runs/long_vs_short.jsonl")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", choices=TOKENIZERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.chars = args.chars[0]
        child(args)
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        done = {(r["chars_asked"], r["tokenizer"]) for r in map(json.loads, out.read_text().splitlines())}
    for chars in args.chars:
        for tokenizer in args.tokenizers:
            if (chars, tokenizer) in done:
                continue
            cmd = [sys.executable, __file__, "--child", "--chars", str(chars), "--tokenizer", tokenizer]
            cmd += ["--threads", str(args.threads), "--repeats", str(args.repeats)]
            cmd += ["--model", args.model, "--texts", args.texts]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-3000:])
            row = {"chars_asked": chars, **json.loads(result.stdout.strip().splitlines()[-1])}
            print(json.dumps(row))
            with out.open("a", encoding="utf8") as file:
                file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
