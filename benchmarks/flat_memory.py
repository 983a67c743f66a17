"""Peak memory of the FLAT encoder on CPU, by sentence length.

    python benchmarks/flat_memory.py --lengths 50 150 300 --threads 1

Each length runs in a fresh process: a lexner_tagger with the FLAT encoder
(the sizes of the FLAT paper: width 160, 8 heads, 1 layer) does one
forward+backward pass over one batch of sentences of that length, cut from
Resume train, with jieba's lexicon. Reported: lattice size (chars + words),
peak RSS of the process above its RSS after loading, and the time of the pass.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_length(length: int, batch: int, data: Path) -> dict:
    import spacy
    import torch
    from spacy.training import Example

    chars = "".join(line.split()[0] for line in data.read_text(encoding="utf8").splitlines() if line.strip())
    texts = [chars[i * length : (i + 1) * length] for i in range(batch)]
    nlp = spacy.blank("zh")
    nlp.add_pipe(
        "lexner_tagger",
        config={
            "window_size": max(length, 256),
            "model": {
                "encoder": {
                    "@architectures": "spacy-lexner.FLATEncoder.v1",
                    "width": 160,
                    "n_heads": 8,
                    "depth": 1,
                    "ff_width": 480,
                    "max_words": 10 * length,
                }
            },
        },
    )
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": [(0, 2, "ORG")]}) for t in texts]
    nlp.initialize(lambda: examples)
    tagger = nlp.get_pipe("lexner_tagger")
    from spacy_lexner.lexicon import Lattice
    from spacy_lexner.models.encoders.flat import lattice_words

    n_words = sum(len(w) for w in lattice_words(Lattice.build(texts, tagger.lexicon), 10 * length)) / batch
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    tagger.update(examples)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "length": length,
        "batch": batch,
        "words_per_text": n_words,
        "peak_rss_mb": peak / 1024,
        "extra_rss_mb": (peak - base) / 1024,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 150, 300])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "resume" / "train.char.bmes")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(one_length(args.one, args.batch, args.data)))
        return
    print(f"torch threads: {args.threads}; batch {args.batch}\n")
    print(
        "| sentence length (chars) | lexicon words per text | lattice length | peak RSS (MB) | RSS added by one train step (MB) | step time (s) |"
    )
    print("|---|---|---|---|---|---|")
    for length in args.lengths:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                str(length),
                "--batch",
                str(args.batch),
                "--threads",
                str(args.threads),
                "--data",
                str(args.data),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {length} | {r['words_per_text']:.0f} | {length + r['words_per_text']:.0f} | {r['peak_rss_mb']:.0f} | {r['extra_rss_mb']:.0f} | {r['seconds']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
