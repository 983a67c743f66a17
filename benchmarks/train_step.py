"""Time lexner_tagger's training step, and split off the optimizer's share.

    python benchmarks/train_step.py --train benchmarks/runs/resume/corpus/train.spacy --threads 1
    python benchmarks/train_step.py --train ... --sparse-updates false   # every row stepped, as SoftLexiconEmbed.v1

Builds the config's pipeline, initialises it on the training DocBin, then runs
``nlp.update`` over the config's batcher (``spacy.batch_by_padded.v1``, size
600 in resume.cfg) with the config's optimizer: a few warm-up steps, then
``--steps`` timed steps, then the same number under cProfile to report the
time spent in the optimizer step of the torch layers (our shim's
``finish_update``: thinc's Adam, averages and clipping, or lazy_adam) and in
torch's backward pass, per step.
"""

import argparse
import cProfile
import pstats
import random
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "resume.cfg")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument(
        "--sparse-updates", choices=["true", "false"], default="true", help="SoftLexiconEmbed.v2's sparse_updates"
    )
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    import torch
    from spacy.tokens import DocBin
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config, registry

    torch.set_num_threads(args.threads)
    overrides = {"paths.train": str(args.train), "paths.dev": str(args.train)}
    overrides["components.lexner_tagger.model.embed.sparse_updates"] = args.sparse_updates == "true"
    config = load_config(args.config, overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True)
    gold = list(DocBin().from_disk(args.train).get_docs(nlp.vocab))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    optimizer = nlp.initialize(lambda: examples)
    batcher = registry.resolve({"batcher": config["training"]["batcher"]})["batcher"]
    random.seed(0)
    random.shuffle(examples)
    batches = iter(list(batcher(examples)) * 10)

    def run(n_steps: int) -> None:
        for _ in range(n_steps):
            nlp.update(next(batches), sgd=optimizer, losses={})
            optimizer.step_schedules()

    run(args.warmup)
    start = time.perf_counter()
    run(args.steps)
    per_step = (time.perf_counter() - start) / args.steps
    profile = cProfile.Profile()
    profile.enable()
    run(args.steps)
    profile.disable()
    stats = pstats.Stats(profile).stats
    optimizer_s = sum(
        v[3] for (path, _, name), v in stats.items() if name == "finish_update" and path.endswith("torch_utils.py")
    )
    backward_s = sum(
        v[3] for (_, _, name), v in stats.items() if name == "<method 'run_backward' of 'torch._C._EngineBase' objects>"
    )
    print(
        f"{args.config.name}, sparse_updates = {args.sparse_updates}, torch threads: {args.threads}, steps: {args.steps}"
    )
    print(f"s/step: {per_step:.3f}")
    print(
        f"under cProfile, per step: optimizer step {optimizer_s / args.steps:.3f} s, torch backward {backward_s / args.steps:.3f} s"
    )


if __name__ == "__main__":
    main()
