"""Pretrain character, bigram and lexicon-word vectors on unlabelled train text.

    pip install -r benchmarks/requirements.txt
    python benchmarks/pretrain_vectors.py --data-dir ../shared/data --output vectors/train50.npz

No pretrained Chinese embeddings can be obtained here (see shared/data/README),
so this trains word2vec skip-gram vectors on the raw text of the *train*
splits only (Resume, MSRA, CLUENER, Weibo): dev and test text is never read,
so a model initialised from these vectors is still evaluated on unseen text.

Three vocabularies, one per embedding table of ``lexner_tagger``:

* ``chars``: single characters.
* ``bigrams``: char i paired with char i+1, as the featurizer pairs them. A
  key of two chars is an ordinary bigram; a key of one char is "that char at
  the end of the text" (the featurizer pairs the last char with an
  end-of-text marker). Each sentence is one text, as in training.
* ``words``: jieba segmentation (dictionary only, no HMM) of each sentence;
  only words of the lexicon are kept, since only those are ever looked up.

The output is one ``.npz`` (no pickle: string keys are a unicode array) with
``{name}_keys``, ``{name}_vectors`` (float32) and ``{name}_counts`` per
vocabulary, keys sorted by descending count: the loader
(``spacy_lexner.tagger.pretrained``) gives frequent keys priority when two
keys hash to the same row. Load it with
``[initialize.components.lexner_tagger] pretrained_vectors = "PATH"``.
"""
import argparse
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy

from spacy_lexner.convert import docs_from_file
from spacy_lexner.lexicon import Lexicon

# (relative path, format) of each train split; never dev or test.
TRAIN_SPLITS: Tuple[Tuple[str, str], ...] = (
    ("resume/train.char.bmes", "bmes"),
    ("msra/msra_train_bio", "bio"),
    ("cluener/train.json", "cluener"),
    ("weibo/weiboNER_2nd_conll.train", "weibo"),
)
LEXICON_FILE = "lexicon/jieba-0.42.1.dict.txt"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="shared/data")
    parser.add_argument("--output", type=Path, required=True, help="Output .npz file")
    parser.add_argument("--char-width", type=int, default=50)
    parser.add_argument("--bigram-width", type=int, default=50)
    parser.add_argument("--word-width", type=int, default=50)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=2)
    # The tables have 16k char, 64k bigram and 64k word rows, each key using
    # 2 of them: beyond ~half the rows most keys would only collide.
    parser.add_argument("--max-chars", type=int, default=8000)
    parser.add_argument("--max-bigrams", type=int, default=32000)
    parser.add_argument("--max-words", type=int, default=32000)
    parser.add_argument("--workers", type=int, default=1, help="word2vec threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def train_texts(data_dir: Path) -> List[str]:
    """One text per train sentence, read with the same readers as `convert`,
    so the text (e.g. Weibo without position digits) is what the tagger sees."""
    texts: List[str] = []
    for rel, fmt in TRAIN_SPLITS:
        docs, _ = docs_from_file(data_dir / rel, fmt)
        texts.extend(doc.text for doc in docs)
        print(f"{rel}: {len(docs)} sentences", flush=True)
    return [t for t in texts if t]


def char_sentences(texts: Sequence[str]) -> Iterator[List[str]]:
    for text in texts:
        yield list(text)


def bigram_sentences(texts: Sequence[str]) -> Iterator[List[str]]:
    # The last char of a text has the one-char key (char + end-of-text).
    for text in texts:
        yield [text[i : i + 2] for i in range(len(text))]


def word_sentences(texts: Sequence[str], dict_path: Path) -> List[List[str]]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer(dictionary=str(dict_path))
    return [tokenizer.lcut(text, HMM=False) for text in texts]


def train_vectors(
    sentences: List[List[str]], *, width: int, args: argparse.Namespace, keep=None, limit: int
) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
    """Skip-gram vectors of the most frequent `limit` tokens (that pass `keep`)."""
    from gensim.models import Word2Vec

    model = Word2Vec(
        sentences, vector_size=width, window=args.window, min_count=args.min_count, sg=1,
        negative=5, sample=1e-4, epochs=args.epochs, workers=args.workers, seed=args.seed,
    )
    counts = Counter({k: model.wv.get_vecattr(k, "count") for k in model.wv.index_to_key})
    keys = [k for k, _ in counts.most_common() if keep is None or keep(k)][:limit]
    vectors = numpy.stack([model.wv[k] for k in keys]).astype("float32")
    return keys, vectors, numpy.array([counts[k] for k in keys], dtype="int64")


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    texts = train_texts(args.data_dir)
    print(f"{len(texts)} texts, {sum(map(len, texts))} chars", flush=True)
    dict_path = args.data_dir / LEXICON_FILE
    lexicon = Lexicon.from_file(dict_path)
    arrays: Dict[str, numpy.ndarray] = {}
    timings: Dict[str, float] = {}
    plan = (
        ("chars", lambda: list(char_sentences(texts)), args.char_width, None, args.max_chars),
        ("bigrams", lambda: list(bigram_sentences(texts)), args.bigram_width, None, args.max_bigrams),
        ("words", lambda: word_sentences(texts, dict_path), args.word_width, lexicon.__contains__, args.max_words),
    )
    for name, make_sentences, width, keep, limit in plan:
        t0 = time.perf_counter()
        keys, vectors, counts = train_vectors(make_sentences(), width=width, args=args, keep=keep, limit=limit)
        arrays[f"{name}_keys"] = numpy.array(keys, dtype="U")
        arrays[f"{name}_vectors"] = vectors
        arrays[f"{name}_counts"] = counts
        timings[name] = time.perf_counter() - t0
        print(f"{name}: {len(keys)} keys x {width} in {timings[name]:.1f}s", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    numpy.savez(args.output, **arrays)
    total = time.perf_counter() - start
    print(json.dumps({"output": str(args.output), "seconds": round(total, 1), **{f"{k}_s": round(v, 1) for k, v in timings.items()}}))


if __name__ == "__main__":
    main()
