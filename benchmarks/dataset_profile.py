"""What a dataset asks of lexner_tagger: sentence lengths against the
tagger's window, and how many gold entities the lexicon holds as words.

    python benchmarks/dataset_profile.py corpus/msra/train.spacy corpus/msra/dev.spacy --window-size 256

For each file: the number of docs and characters, the share of docs and of
characters in docs longer than --window-size (those are tagged sentence by
sentence or in overlapping windows), and per entity type the number of gold
entities, their mean length, the share that are a jieba word themselves,
and the share whose every character is covered by some jieba word that lies
inside the entity (the SoftLexicon signal an entity can get from inside).
"""

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import spacy
from spacy.tokens import DocBin

from spacy_lexner.lexicon import Lexicon


def profile(path: Path, lexicon: Lexicon, window_size: int) -> None:
    nlp = spacy.blank("zh")
    docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    n_chars = sum(len(d.text) for d in docs)
    long_docs = [d for d in docs if len(d.text) > window_size]
    print(f"\n## {path}\n")
    print(f"{len(docs):,} docs, {n_chars:,} chars; longest {max(len(d.text) for d in docs):,} chars")
    print(
        f"docs longer than {window_size}: {len(long_docs):,} ({100 * len(long_docs) / len(docs):.2f}%), "
        f"holding {100 * sum(len(d.text) for d in long_docs) / max(n_chars, 1):.2f}% of the chars"
    )
    counts, lengths, is_word, covered = Counter(), defaultdict(list), Counter(), Counter()
    for doc in docs:
        matches = lexicon.match(doc.text)
        for ent in doc.ents:
            label = ent.label_
            counts[label] += 1
            lengths[label].append(len(ent.text))
            is_word[label] += ent.text in lexicon
            inside = set()
            for start, end, _ in matches:
                if start >= ent.start_char and end <= ent.end_char and end - start >= 2:
                    inside.update(range(start, end))
            covered[label] += len(inside) == len(ent.text)
    print("\n| type | gold | mean length | a jieba word | covered by jieba words inside |\n|---|---|---|---|---|")
    for label in sorted(counts):
        n = counts[label]
        mean = sum(lengths[label]) / n
        print(f"| {label} | {n:,} | {mean:.2f} | {100 * is_word[label] / n:.1f}% | {100 * covered[label] / n:.1f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--window-size", type=int, default=256)
    args = parser.parse_args()
    lexicon = Lexicon.from_jieba()
    for path in args.paths:
        profile(path, lexicon, args.window_size)


if __name__ == "__main__":
    main()
