"""Pretrain char, bigram and lexicon-word vectors on the train splits of ../shared/data.

    pip install -r benchmarks/requirements.txt
    python benchmarks/pretrain_vectors.py --data-dir ../shared/data --output vectors/train50.npz

The raw text of the Resume, MSRA, CLUENER and Weibo *train* splits (2.77M
chars) goes to ``spacy_lexner.corpora.word2vec`` (the library behind
``spacy-lexner pretrain-vectors``). Dev and test text is never read, so a
model initialised from these vectors is still evaluated on unseen text.
The files are read with the same readers as ``convert``, so the text (e.g.
Weibo without position digits) is what the tagger sees.
"""

import argparse
import json
import logging
import time
from pathlib import Path
from typing import List, Tuple

from spacy_lexner.corpora.convert import docs_from_file
from spacy_lexner.corpora.word2vec import Word2VecSettings, pretrain_vectors, save_vectors

# (relative path, format) of each train split; never dev or test.
TRAIN_SPLITS: Tuple[Tuple[str, str], ...] = (
    ("resume/train.char.bmes", "bmes"),
    ("msra/msra_train_bio", "bio"),
    ("cluener/train.json", "cluener"),
    ("weibo/weiboNER_2nd_conll.train", "weibo"),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="shared/data")
    parser.add_argument("--output", type=Path, required=True, help="Output .npz file")
    parser.add_argument("--workers", type=int, default=1, help="word2vec threads")
    parser.add_argument("--epochs", type=int, default=Word2VecSettings.epochs)
    parser.add_argument("--width", type=int, default=Word2VecSettings.char_width, help="char, bigram and word width")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def train_texts(data_dir: Path) -> List[str]:
    texts: List[str] = []
    for rel, fmt in TRAIN_SPLITS:
        docs, _ = docs_from_file(data_dir / rel, fmt)
        texts.extend(doc.text for doc in docs)
        print(f"{rel}: {len(docs)} sentences", flush=True)
    return [t for t in texts if t]


def main() -> None:
    args = parse_args()
    logging.getLogger("spacy").setLevel(logging.INFO)  # per-table timings
    start = time.perf_counter()
    texts = train_texts(args.data_dir)
    print(f"{len(texts)} texts, {sum(map(len, texts))} chars", flush=True)
    settings = Word2VecSettings(
        char_width=args.width,
        bigram_width=args.width,
        word_width=args.width,
        workers=args.workers,
        epochs=args.epochs,
        seed=args.seed,
    )
    arrays = pretrain_vectors(texts, settings=settings)
    save_vectors(arrays, args.output, settings)
    print(json.dumps({"output": str(args.output), "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
