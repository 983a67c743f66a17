"""Vocab and memory growth of a loaded pipeline over many distinct texts,
and throughput from 1 and 4 threads calling nlp() at once.

    python benchmarks/serving_memory.py --model training/model-best --texts 100000 --threads 1
    python benchmarks/serving_memory.py --model training/model-best --thread-texts 2000

Texts are random 10-60 character stretches of the Resume test set (or any
.spacy file given with --source) with their index appended, so every text is
distinct, as a server's traffic is. The thread check compares each thread's
entities with sequential nlp() calls and reports mismatches and errors.
"""

import argparse
import json
import random
import threading
import time
from pathlib import Path
from typing import Dict, List

import spacy
import torch
from spacy.tokens import DocBin


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def distinct_texts(source: Path, n: int, seed: int = 0) -> List[str]:
    nlp = spacy.blank("zh")
    corpus = "".join(doc.text for doc in DocBin().from_disk(source).get_docs(nlp.vocab))
    rnd = random.Random(seed)
    texts = []
    for i in range(n):
        length = rnd.randint(10, 60)
        start = rnd.randrange(0, len(corpus) - length)
        texts.append(corpus[start : start + length] + str(i))
    return texts


def vocab_growth(nlp, texts: List[str], every: int) -> List[Dict]:
    rows = []
    seen = set()
    base = {"lexemes": len(nlp.vocab), "strings": len(nlp.vocab.strings), "rss_mb": rss_mb()}
    rows.append({"texts": 0, "distinct_chars": 0, **base})
    for start in range(0, len(texts), every):
        chunk = texts[start : start + every]
        for doc in nlp.pipe(chunk, batch_size=64):
            seen.update(doc.text)
        rows.append(
            {
                "texts": start + len(chunk),
                "distinct_chars": len(seen),
                "lexemes": len(nlp.vocab),
                "strings": len(nlp.vocab.strings),
                "rss_mb": rss_mb(),
            }
        )
    return rows


def ents(doc) -> list:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def thread_check(model: Path, texts: List[str], n_threads: int) -> Dict:
    """A freshly loaded pipeline called from n_threads threads, each over all
    texts; throughput counts every call."""
    expected = [ents(doc) for doc in spacy.load(model).pipe(texts, batch_size=1)]
    nlp = spacy.load(model)
    results: Dict[int, list] = {}
    errors: List[str] = []

    def work(k: int) -> None:
        out = []
        try:
            for text in texts:
                out.append(ents(nlp(text)))
        except Exception as err:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(err).__name__}: {err}"[:200])
        results[k] = out

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    n_chars = sum(map(len, texts)) * n_threads
    mismatches = sum(a != b for k in results for a, b in zip(results[k], expected))
    missing = sum(len(texts) - len(results.get(k, [])) for k in range(n_threads))
    return {
        "threads": n_threads,
        "calls": len(texts) * n_threads,
        "wall_s": round(wall, 2),
        "chars_per_s": round(n_chars / wall),
        "errors": len(errors),
        "first_error": errors[:1],
        "mismatches": mismatches,
        "missing": missing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--source", type=Path, default=Path("benchmarks/runs/resume/corpus/test.spacy"))
    parser.add_argument("--texts", type=int, default=0, help="distinct texts for the vocab growth run (0: skip)")
    parser.add_argument("--every", type=int, default=10000)
    parser.add_argument("--thread-texts", type=int, default=0, help="texts per thread for the thread check (0: skip)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: Dict = {"model": str(args.model), "torch_threads": args.threads}
    if args.texts:
        nlp = spacy.load(args.model)
        result["growth"] = vocab_growth(nlp, distinct_texts(args.source, args.texts), args.every)
        for row in result["growth"]:
            print(json.dumps(row))
    if args.thread_texts:
        texts = distinct_texts(args.source, args.thread_texts, seed=1)
        result["thread_check"] = [thread_check(args.model, texts, n) for n in (1, 4)]
        for row in result["thread_check"]:
            print(json.dumps(row))
    if args.output:
        args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf8")


if __name__ == "__main__":
    main()
