"""What does extending the lexicon of a trained pipeline do to accuracy?

    python benchmarks/lexicon_extension.py MODEL_DIR TRAIN.spacy TEST.spacy

Builds a domain dictionary from the entity strings of the *training* data
(each typed with its most frequent label; nothing from the test set), adds it
to the trained pipeline's lexicon at load time (no retraining), and reports
test P/R/F1 before and after, plus the same with the lexicon emptied, to show
how much the trained model leans on the lexicon.
"""

import argparse
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict

import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_lexner import Lexicon


def gazetteer(train_path: Path, vocab, type_map: Dict[str, str]) -> Path:
    labels = defaultdict(Counter)
    for doc in DocBin().from_disk(train_path).get_docs(vocab):
        for ent in doc.ents:
            labels[ent.text][ent.label_] += 1
    path = Path(tempfile.mkdtemp()) / "train_entities.txt"
    with path.open("w", encoding="utf8") as file_:
        for text, counts in labels.items():
            if "\t" not in text and "\n" not in text and text.strip():
                label = counts.most_common(1)[0][0]
                file_.write(f"{text}\t{type_map.get(label, label)}\n")
    return path


def scores(nlp, test_path: Path) -> str:
    gold = list(DocBin().from_disk(test_path).get_docs(nlp.vocab))
    s = nlp.evaluate([Example(nlp.make_doc(d.text), d) for d in gold])
    return f"P {s['ents_p'] * 100:.2f}  R {s['ents_r'] * 100:.2f}  F1 {s['ents_f'] * 100:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("train", type=Path)
    parser.add_argument("test", type=Path)
    parser.add_argument("--pipe", default="lexner_tagger")
    parser.add_argument(
        "--type-map",
        default="",
        help="label=type pairs, e.g. NAME=nr,LOC=ns,ORG=nt: give added words the jieba POS types the model was trained with",
    )
    args = parser.parse_args()
    nlp = spacy.load(args.model)
    print(f"trained lexicon:                       {scores(nlp, args.test)}")
    type_map = dict(pair.split("=", 1) for pair in args.type_map.split(",") if pair)
    path = gazetteer(args.train, nlp.vocab, type_map)
    n_words = sum(1 for _ in path.open(encoding="utf8"))
    extended = spacy.load(args.model, config={"components": {args.pipe: {"extra_lexicons": [str(path)]}}})
    typed = f" (types {args.type_map})" if type_map else ""
    print(f"+ {n_words} train entity strings at load{typed}:  {scores(extended, args.test)}")
    tagger = nlp.get_pipe(args.pipe)
    tagger.set_lexicon(Lexicon([("\u0000\u0000", 1.0, None)]))
    print(f"lexicon emptied at load:               {scores(nlp, args.test)}")


if __name__ == "__main__":
    main()
