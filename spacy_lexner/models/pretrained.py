"""Initialise the hashed embedding tables of ``lexner_tagger`` from pretrained vectors.

The tagger has no key-to-row vocabulary: a character, bigram or lexicon word
is hashed with two seeds and its vector is the *sum* of the two rows (see
``models.features.Featurizer``). So a pretrained vector v for a key is written as
rows whose sum is v: both rows v/2 if neither is taken yet. When a row is
already taken by another (more frequent) key, it is left as is and the
key's free row gets v minus the taken row, so the sum is still exactly v.
A key both of whose rows are taken keeps whatever those rows hold: that is
a hash collision, as the tagger has anyway, and it is counted. Rows of keys
without a pretrained vector keep their random initialisation.

The vectors file is an ``.npz`` (read with ``allow_pickle=False``) with
``{table}_keys`` (unicode), ``{table}_vectors`` (float32, one row per key,
most frequent key first) for tables ``chars``, ``bigrams`` and ``words``.
A bigram key is two chars, or one char for "that char at the end of the
text". ``spacy-lexner pretrain-vectors`` (``spacy_lexner.corpora.word2vec``) writes
such a file.
"""

import warnings
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy
from spacy.util import logger
from thinc.api import Model

from ..lexicon.lattice import Lattice
from .features import Featurizer

try:
    import torch
except ImportError:  # pragma: no cover - torch is a hard requirement
    torch = None  # type: ignore

# vectors-file table name -> attribute of SoftLexiconEmbedding
TABLES: Dict[str, str] = {"chars": "char", "bigrams": "bigram", "words": "word"}
Vectors = Dict[str, Tuple[List[str], numpy.ndarray]]


def read_vectors(path: Union[str, Path]) -> Vectors:
    """The (keys, vectors) of each table present in a vectors file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Pretrained vectors file not found: {path}")
    try:
        with numpy.load(path, allow_pickle=False) as data:
            found = {}
            for table in TABLES:
                if f"{table}_keys" in data.files:
                    keys = [str(k) for k in data[f"{table}_keys"]]
                    vectors = numpy.asarray(data[f"{table}_vectors"], dtype="float32")
                    if vectors.ndim != 2 or len(vectors) != len(keys):
                        raise ValueError(f"'{table}_vectors' must be [n_keys, width], got {vectors.shape}")
                    found[table] = (keys, vectors)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"Cannot read pretrained vectors from {path}: {err}") from err
    if not found:
        raise ValueError(f"{path} has none of the tables {sorted(TABLES)} (e.g. 'chars_keys').")
    return found


def key_rows(featurizer: Featurizer, table: str, keys: List[str]) -> numpy.ndarray:
    """The rows the featurizer reads for each key: [len(keys), n_seeds].

    Asks the featurizer itself (on one-key texts) so the hashing lives in
    one place.
    """
    if table == "words":
        return featurizer.word_rows(keys)
    if any(len(k) != 1 for k in keys) and table == "chars":
        raise ValueError("Pretrained 'chars' keys must be single characters.")
    if table == "bigrams" and any(len(k) not in (1, 2) for k in keys):
        raise ValueError("Pretrained 'bigrams' keys must be 2 chars (or 1: char + end of text).")
    features = featurizer(Lattice.build(keys, None), use_lexicon=False)
    if table == "chars":
        return features.char_rows
    # Each key is its own text: its first char's bigram is (key[0], key[1])
    # or, for a one-char key, (key[0], end of text).
    firsts = numpy.cumsum(features.lengths) - features.lengths
    return features.bigram_rows[firsts]


def assign_rows(weights: numpy.ndarray, rows: numpy.ndarray, vectors: numpy.ndarray) -> Dict[str, int]:
    """Write vectors into weights so that weights[rows[i]].sum(0) == vectors[i],
    in key order (earlier keys win shared rows). Modifies weights in place."""
    taken = numpy.zeros(len(weights), dtype=bool)
    exact = collided = 0
    for key_rows_, vector in zip(rows.tolist(), vectors):
        free = [r for r in key_rows_ if not taken[r]]  # with repeats: a row used twice counts twice
        if not free:
            collided += 1
            continue
        fixed = sum((weights[r] for r in key_rows_ if taken[r]), numpy.zeros_like(vector))
        value = (vector - fixed) / len(free)
        for r in set(free):
            weights[r] = value
            taken[r] = True
        exact += 1
    return {"exact": exact, "collided": collided}


def load_pretrained_vectors(
    model: Model, path: Union[str, Path], *, rescale: bool = False
) -> Dict[str, Dict[str, int]]:
    """Copy pretrained vectors into every SoftLexicon layer of an initialized model.

    rescale: scale each table's vectors to the spread the sum of its randomly
        initialised rows has, so pretrained and unmatched keys stay on one
        scale. Off by default: word2vec vectors are ~3x larger than that
        init, and unscaled they did better on Resume dev (94.68 vs 94.29
        best F1, one run each); Adam's steps move larger vectors relatively
        less, so more of the pretraining survives training.
    RETURNS: per table, how many keys were written exactly and how many
        collided with more frequent keys.
    """
    if rescale:
        warnings.warn(
            "rescale (pretrained_rescale) is deprecated and will be removed in spacy-lexner 0.3: "
            "it did worse than the unscaled vectors (Resume dev 94.29 vs 94.68). Drop the setting.",
            DeprecationWarning,
            stacklevel=2,
        )
    vectors = read_vectors(path)
    stats: Dict[str, Dict[str, int]] = {}
    for node in model.walk():
        if node.name != "soft_lexicon_embed":
            continue
        wrapper = node.layers[0]
        if not wrapper.shims:
            raise ValueError("Initialize the model before loading pretrained vectors into it.")
        module = wrapper.shims[0]._model
        featurizer: Featurizer = node.attrs["featurizer"]
        for table, (keys, table_vectors) in vectors.items():
            embedding = getattr(module, TABLES[table], None)
            if embedding is None:  # e.g. use_lexicon = false: nothing reads it
                continue
            stats[table] = _load_table(embedding.weight, featurizer, table, keys, table_vectors, rescale)
    if not stats:
        raise ValueError("The model has no SoftLexicon embedding tables to load pretrained vectors into.")
    logger.info("Loaded pretrained vectors from %s: %s", path, stats)
    return stats


def _load_table(
    weight: "torch.Tensor", featurizer: Featurizer, table: str, keys: List[str], vectors: numpy.ndarray, rescale: bool
) -> Dict[str, int]:
    if vectors.shape[1] != weight.shape[1]:
        raise ValueError(
            f"Pretrained '{table}' vectors have width {vectors.shape[1]} but the model's "
            f"table has width {weight.shape[1]}: set the matching *_width in the config."
        )
    rows = key_rows(featurizer, table, keys)
    values = weight.detach().cpu().numpy().copy()
    if rescale and len(vectors):
        target = values.std() * numpy.sqrt(rows.shape[1])
        vectors = vectors * (target / max(float(vectors.std()), 1e-12))
    counts = assign_rows(values, rows, vectors)
    with torch.no_grad():
        weight.copy_(torch.from_numpy(values).to(weight.device))
    return {"keys": len(keys), **counts}
