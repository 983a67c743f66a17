"""Would an ensemble of lexner_tagger models help? An offline measurement.

    python benchmarks/ensemble_potentials.py --test benchmarks/runs/resume/corpus/test.spacy MODEL_DIR MODEL_DIR ...

Every model must have the same labels and tag scheme (e.g. the same config
trained with different seeds). For every subset of the models, the CRF
potentials (emission scores, start, transition and end scores) are averaged
and decoded with the constrained Viterbi; the test F1 of each subset is
printed, then the mean F1 per ensemble size. Reporting the mean per size
(rather than the best subset) avoids choosing members on the test set.

This is a measurement, not a component: an ensemble of k models costs k
times the inference time.
"""

import argparse
import itertools
from pathlib import Path
from statistics import mean
from typing import Dict, List, Sequence, Tuple

import numpy
import spacy
import torch
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from thinc.api import Model

from spacy_lexner.lexicon import Lattice
from spacy_lexner.models.decoders import _lengths_to_mask
from spacy_lexner.models.pytorch.crf import viterbi_decode

Potentials = Tuple[torch.Tensor, numpy.ndarray, torch.Tensor, torch.Tensor, torch.Tensor]


def parse_args(description: str = __doc__, models: str = "models") -> argparse.Namespace:
    """Pipeline directories (positional, named `models`), --test and --threads."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(models, nargs="+", type=Path)
    parser.add_argument("--test", type=Path, required=True, help="a .spacy DocBin with gold entities")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def whole_text_docs(nlp: Language, texts: Sequence[str]) -> Lattice:
    """Whole texts as the tagger's model reads them (one lattice, without
    windows): every text must fit the tagger's window_size."""
    window_size = nlp.get_pipe("lexner_tagger").window_size
    too_long = [len(t) for t in texts if len(t) > window_size]
    if too_long:
        raise SystemExit(f"{len(too_long)} test texts are longer than window_size ({window_size}).")
    return Lattice.build(texts, nlp.get_pipe("lexner_tagger").lexicon)


def potentials(nlp: Language, texts: Sequence[str]) -> Potentials:
    """The tagger's emissions for whole texts and its CRF's start,
    transition and end scores."""
    model = nlp.get_pipe("lexner_tagger").model
    return model_potentials(model, model.get_ref("crf").shims[0]._model, whole_text_docs(nlp, texts))


def model_potentials(model: Model, crf: torch.nn.Module, lattice: Lattice) -> Potentials:
    """The emissions of model (a tagger, or one ensemble member) for a
    lattice, with the start, transition and end scores of its CRF module."""
    output = model.predict(lattice)
    # A tagger returns TagScores; an ensemble member its (emissions, lengths).
    scores, lengths = (output.emissions, output.lengths) if hasattr(output, "emissions") else output
    with torch.no_grad():
        return (
            torch.as_tensor(numpy.asarray(scores)).float(),
            numpy.asarray(lengths),
            crf.start_transitions.detach(),
            crf.transitions.detach(),
            crf.end_transitions.detach(),
        )


def ensemble_f1(nlp: Language, members: List[Potentials], texts: Sequence[str], gold: Sequence[Doc]) -> float:
    emissions, start, transitions, end = (sum(m[k] for m in members) / len(members) for k in (0, 2, 3, 4))
    mask = _lengths_to_mask(torch.as_tensor(members[0][1]).long(), emissions.shape[1])
    paths = viterbi_decode(emissions, mask, start, transitions, end).numpy()
    scheme = nlp.get_pipe("lexner_tagger").tag_scheme
    examples = []
    for text, reference, path in zip(texts, gold, paths):
        doc = nlp.make_doc(text)
        spans = [
            doc.char_span(s, e, label=label, alignment_mode="expand")
            for s, e, label in scheme.decode(path[: len(text)])
        ]
        doc.ents = [span for span in spans if span is not None]
        examples.append(Example(doc, reference))
    return Scorer.score_spans(examples, "ents")["ents_f"] * 100


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    nlps = [spacy.load(path) for path in args.models]
    tags = {tuple(nlp.get_pipe("lexner_tagger").tag_scheme.tags) for nlp in nlps}
    if len(tags) != 1:
        raise SystemExit("The models have different labels or tag schemes; an ensemble needs the same ones.")
    gold = list(DocBin().from_disk(args.test).get_docs(nlps[0].vocab))
    texts = [doc.text for doc in gold]
    all_potentials = [potentials(nlp, texts) for nlp in nlps]
    by_size: Dict[int, List[float]] = {}
    print(f"torch threads: {args.threads}; {len(texts)} test texts\n\n| members | test F1 |\n|---|---|")
    for size in range(1, len(nlps) + 1):
        for subset in itertools.combinations(range(len(nlps)), size):
            f1 = ensemble_f1(nlps[0], [all_potentials[i] for i in subset], texts, gold)
            by_size.setdefault(size, []).append(f1)
            print(f"| {', '.join(str(args.models[i]) for i in subset)} | {f1:.2f} |", flush=True)
    print("\n| ensemble size | subsets | mean test F1 | min | max |\n|---|---|---|---|---|")
    for size, scores in by_size.items():
        print(f"| {size} | {len(scores)} | {mean(scores):.2f} | {min(scores):.2f} | {max(scores):.2f} |")


if __name__ == "__main__":
    main()
