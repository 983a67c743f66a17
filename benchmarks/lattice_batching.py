"""Training speed of an encoder at one sentence per batch against the
config's batcher, in sentences per second.

    python benchmarks/lattice_batching.py --train benchmarks/runs_encoders/resume/corpus/train.spacy \\
        --encoders lattice_lstm lrcnn --sentences 400 --threads 1

The original Lattice LSTM code trains one sentence per batch. Here the
pipeline of configs/resume.cfg with the encoder swapped in (the settings of
benchmarks/encoders.py) is initialised on the training DocBin, then the same
--sentences shuffled sentences are trained on twice, timed: once one per
`nlp.update`, once in the batches of the config's batcher
(`spacy.batch_by_padded.v1`, 600 padded characters: about 20 Resume
sentences), each after a few warm-up updates. Both use the config's
optimizer. Reported: sentences/s of each, and the ratio.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encoders import ENCODERS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "resume.cfg")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--encoders", nargs="+", default=["lattice_lstm"], choices=list(ENCODERS))
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def sentences_per_s(nlp, optimizer, batches) -> float:
    start = time.perf_counter()
    for batch in batches:
        nlp.update(batch, sgd=optimizer, losses={})
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    import torch
    from spacy.tokens import DocBin
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config, registry

    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}; {args.sentences} sentences\n")
    print("| encoder | batch of 1: sentences/s | config batcher: sentences/s | ratio |")
    print("|---|---|---|---|")
    for encoder in args.encoders:
        overrides = {
            "paths.train": str(args.train),
            "paths.dev": str(args.train),
            "components.lexner_tagger.model.encoder": ENCODERS[encoder],
        }
        config = load_config(args.config, overrides=overrides, interpolate=True)
        nlp = load_model_from_config(config, auto_fill=True)
        gold = list(DocBin().from_disk(args.train).get_docs(nlp.vocab))
        examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
        optimizer = nlp.initialize(lambda: examples)
        random.seed(0)
        random.shuffle(examples)
        sample = examples[: args.sentences]
        batcher = registry.resolve({"batcher": config["training"]["batcher"]})["batcher"]
        batched = list(batcher(sample))
        singles = [[eg] for eg in sample]
        sentences_per_s(nlp, optimizer, batched[:2] + singles[:10])  # warm-up
        one = sentences_per_s(nlp, optimizer, singles)
        many = sentences_per_s(nlp, optimizer, batched)
        result = {"encoder": encoder, "batch_1": one, "batched": many, "ratio": many / one, "threads": args.threads}
        print(f"| {encoder} | {one:.1f} | {many:.1f} | {many / one:.1f}x |", flush=True)
        print(json.dumps(result), file=sys.stderr)


if __name__ == "__main__":
    main()
