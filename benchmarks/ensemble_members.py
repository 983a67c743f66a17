"""Test F1 of each member of a lexner_tagger ensemble alone, and of the ensemble.

    python benchmarks/ensemble_members.py --test benchmarks/runs/resume/corpus/test.spacy PIPELINE_DIR ...

Each PIPELINE_DIR holds a trained spacy-lexner.LexiconTaggerEnsemble.v1
(trained together, or merged with `spacy-lexner merge-ensemble`). A member
alone is decoded with its own emissions and its own CRF; the ensemble with
the averages, as the pipe does (see ensemble_potentials.py).
"""

import spacy
import torch
from ensemble_potentials import ensemble_f1, model_potentials, parse_args, whole_text_docs
from spacy.tokens import DocBin


def main() -> None:
    args = parse_args(__doc__, "pipelines")
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}\n\n| pipeline | members' test F1 | ensemble test F1 |\n|---|---|---|")
    for path in args.pipelines:
        nlp = spacy.load(path)
        pipe = nlp.get_pipe("lexner_tagger")
        if pipe.model.name != "lexner_tagger_ensemble":
            raise SystemExit(f"{path} is not an ensemble (its model is {pipe.model.name}).")
        gold = list(DocBin().from_disk(args.test).get_docs(nlp.vocab))
        texts = [doc.text for doc in gold]
        docs = whole_text_docs(nlp, texts)
        crf_members = pipe.model.get_ref("crf").shims[0]._model.members
        potentials = [model_potentials(member, crf, docs) for member, crf in zip(pipe.model.layers[:-1], crf_members)]
        alone = ", ".join(f"{ensemble_f1(nlp, [p], texts, gold):.2f}" for p in potentials)
        print(f"| {path} | {alone} | {ensemble_f1(nlp, potentials, texts, gold):.2f} |", flush=True)


if __name__ == "__main__":
    main()
