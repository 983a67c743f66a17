"""The learned visual gate on the generated disambiguation set.

    python benchmarks/visual_gate.py --threads 1

Trains lexner_tagger with and without spacy-lexner.VisualGateEmbed.v1 on
generated sentences whose entity is ANIMAL or PER depending only on the image
vector (spacy_lexner/corpora/synthetic.py), and prints the held-out label
accuracy of both. Text alone can only reach chance (50%).
"""

import argparse
import random
import time

from spacy.util import minibatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-width", type=int, default=32)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from spacy_lexner.corpora.synthetic import blank_pipeline, label_accuracy, make_examples

    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}; train {args.train}, test {args.test}, noise {args.noise}\n")
    print("| model | held-out label accuracy | train time (s) |")
    print("|---|---|---|")
    for visual in (False, True):
        start = time.perf_counter()
        nlp, _ = blank_pipeline(args.image_width, visual)
        train = make_examples(nlp, args.train, image_width=args.image_width, noise=args.noise, seed=0)
        test = make_examples(nlp, args.test, image_width=args.image_width, noise=args.noise, seed=1)
        optimizer = nlp.initialize(lambda: train)
        optimizer.learn_rate = 0.01
        for epoch in range(args.epochs):
            random.Random(epoch).shuffle(train)
            for batch in minibatch(train, 16):
                nlp.update(batch, sgd=optimizer)
        seconds = time.perf_counter() - start
        name = "text + visual gate" if visual else "text only"
        print(f"| {name} | {100 * label_accuracy(nlp, test):.1f}% | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
