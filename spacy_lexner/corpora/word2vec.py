"""Train char, bigram and lexicon-word vectors for ``lexner_tagger`` on unlabelled text.

No pretrained Chinese embeddings ship with the package, so this trains
word2vec skip-gram vectors (gensim) on whatever raw text you have: the
train split of your corpus, or a larger pile of in-domain text. Never use
dev or test text: the model would then be evaluated on text it has seen.

Three vocabularies, one per embedding table of ``lexner_tagger``:

* ``chars``: single characters.
* ``bigrams``: char i paired with char i+1, as the featurizer pairs them. A
  key of two chars is an ordinary bigram; a key of one char is "that char at
  the end of the text" (the featurizer pairs the last char with an
  end-of-text marker). Each input text is one text, as in training.
* ``words``: jieba segmentation (dictionary only, no HMM) of each text, with
  the extra word lists added to jieba's dictionary; only lexicon words are
  kept, since only those are ever looked up.

The output is one ``.npz`` (no pickle: string keys are a unicode array) with
``{name}_keys``, ``{name}_vectors`` (float32) and ``{name}_counts`` per
vocabulary, keys sorted by descending count: the loader
(``spacy_lexner.models.pretrained``) gives frequent keys priority when two
keys hash to the same row. Load it with
``[initialize.components.lexner_tagger] pretrained_vectors = "PATH"``.
"""

import logging
import time
from collections import Counter
from dataclasses import asdict
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.tokens import DocBin
from spacy.util import logger

from ..lexicon import Lexicon
from ..lexicon.lexicon import jieba_dict_path
from .convert import blank_vocab, numbered_lines
from .word2vec_settings import Word2VecSettings

TABLE_NAMES = ("chars", "bigrams", "words")
PathLike = Union[str, Path]


def read_texts(paths: Iterable[PathLike]) -> List[str]:
    """The texts of .spacy DocBins (one per Doc), .jsonl files (the "text"
    field of each line) and plain UTF-8 files (one per non-empty line)."""
    texts: List[str] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ValueError(f"Text file not found: {path}")
        if path.suffix == ".spacy":
            texts.extend(doc.text for doc in DocBin().from_disk(path).get_docs(blank_vocab("zh")))
        elif path.suffix == ".jsonl":
            texts.extend(_jsonl_texts(path))
        else:
            texts.extend(line.strip() for _, line in numbered_lines(path))
    return [text for text in texts if text.strip()]


def pretrain_vectors(
    texts: Sequence[str],
    *,
    extra_lexicons: Sequence[PathLike] = (),
    settings: Word2VecSettings = Word2VecSettings(),
) -> Dict[str, numpy.ndarray]:
    """Train the three vocabularies' vectors; the arrays `save_vectors` writes."""
    _require_gensim()
    if not texts:
        raise ValueError("No text to train vectors on: the inputs are empty.")
    # Each extra list is read once: its words join the lexicon (which words
    # get vectors) and jieba's dictionary (how the text is segmented).
    lexicon = Lexicon.from_jieba()
    extra_words: List[str] = []
    for path in extra_lexicons:
        extra = Lexicon.from_file(path)
        lexicon.update(extra)
        extra_words.extend(extra)
    arrays: Dict[str, numpy.ndarray] = {}
    _add_table(arrays, "chars", [list(text) for text in texts], settings.char_width, settings.max_chars, settings)
    _add_table(arrays, "bigrams", bigram_sentences(texts), settings.bigram_width, settings.max_bigrams, settings)
    words = word_sentences(texts, extra_words)
    _add_table(arrays, "words", words, settings.word_width, settings.max_words, settings, keep=lexicon.__contains__)
    return arrays


def save_vectors(arrays: Dict[str, numpy.ndarray], path: PathLike, settings: Word2VecSettings) -> None:
    """Write the .npz, and the settings beside it as ``PATH.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    numpy.savez(path, **arrays)
    srsly.write_json(path.with_suffix(".json"), asdict(settings))


def bigram_sentences(texts: Sequence[str]) -> List[List[str]]:
    # The last char of a text has the one-char key (char + end-of-text).
    return [[text[i : i + 2] for i in range(len(text))] for text in texts]


def word_sentences(texts: Sequence[str], extra_words: Iterable[str] = ()) -> List[List[str]]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer(dictionary=str(jieba_dict_path()))
    for word in extra_words:
        tokenizer.add_word(word)
    return [tokenizer.lcut(text, HMM=False) for text in texts]


def train_table(
    sentences: List[List[str]],
    *,
    width: int,
    settings: Word2VecSettings,
    keep: Optional[Callable[[str], bool]] = None,
    limit: int,
) -> Tuple[List[str], numpy.ndarray, numpy.ndarray]:
    """Skip-gram vectors of the `limit` most frequent tokens that pass `keep`."""
    from gensim.models import Word2Vec

    model = Word2Vec(
        sentences,
        vector_size=width,
        window=settings.window,
        min_count=settings.min_count,
        sg=1,
        negative=5,
        sample=1e-4,
        epochs=settings.epochs,
        workers=settings.workers,
        seed=settings.seed,
    )
    counts = Counter({key: model.wv.get_vecattr(key, "count") for key in model.wv.index_to_key})
    keys = [key for key, _ in counts.most_common() if keep is None or keep(key)][:limit]
    if not keys:
        vectors = numpy.zeros((0, width), dtype="float32")
    else:
        vectors = numpy.stack([model.wv[key] for key in keys]).astype("float32")
    return keys, vectors, numpy.array([counts[key] for key in keys], dtype="int64")


def _add_table(
    arrays: Dict[str, numpy.ndarray],
    name: str,
    sentences: List[List[str]],
    width: int,
    limit: int,
    settings: Word2VecSettings,
    keep: Optional[Callable[[str], bool]] = None,
) -> None:
    start = time.perf_counter()
    keys, vectors, counts = train_table(sentences, width=width, settings=settings, keep=keep, limit=limit)
    arrays[f"{name}_keys"] = numpy.array(keys, dtype="U")
    arrays[f"{name}_vectors"] = vectors
    arrays[f"{name}_counts"] = counts
    logger.info("%s: %d keys x %d in %.1fs", name, len(keys), width, time.perf_counter() - start)


def _require_gensim() -> None:
    if find_spec("gensim") is None:
        raise ImportError("Training vectors needs gensim: pip install 'spacy-lexner[vectors]' (or pip install gensim)")


def _jsonl_texts(path: Path) -> List[str]:
    texts = []
    for lineno, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            record = srsly.json_loads(line)
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({err}).") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f'{path}:{lineno}: expected a JSON object with a string "text" field.')
        texts.append(record["text"])
    return texts
