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

Word2vec files (text or binary, maybe gzipped: the papers' gigaword/ctb
files, Chinese-Word-Vectors, Tencent AI Lab) are read by key length
instead: 1-char keys go to `chars`, 2-char keys to `bigrams`, and keys the
pipe's lexicon holds to `words` (other words are never looked up, so they
take no rows). `pretrained_vectors` may be such a path (one file for all
three tables), or a loader from the misc registry:
`spacy-lexner.word2vec_vectors.v1` (a file per table) or
`spacy-lexner.vocab_vectors.v1` (the vectors spaCy loaded into
`nlp.vocab.vectors` from `[initialize] vectors`).
"""

import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy
from spacy.util import logger, registry
from spacy.vocab import Vocab
from thinc.api import Model, to_numpy

from ..lexicon.embedding_files import read_embeddings
from ..lexicon.lattice import Lattice
from ..lexicon.lexicon import Lexicon
from ..util.excerpt import excerpt
from .features import Featurizer

try:
    import torch
except ImportError:  # pragma: no cover - torch is a hard requirement
    torch = None  # type: ignore

# vectors-file table name -> attribute of SoftLexiconEmbedding
TABLES: Dict[str, str] = {"chars": "char", "bigrams": "bigram", "words": "word"}
# table -> (keys, float32 vectors [len(keys), width]), most frequent key first.
Vectors = Dict[str, Tuple[List[str], numpy.ndarray]]
# A loader of pretrained vectors (what `pretrained_vectors` in
# [initialize.components.lexner_tagger] resolves to when it is a @misc
# block). lexner_tagger.initialize calls it once, after the model is
# initialised, with the pipeline's Vocab (holding any vectors spaCy loaded
# from [initialize] vectors) and the pipe's Lexicon. Either is None when
# load_pretrained_vectors is called without it; a loader that needs it
# raises (or, for the lexicon, may leave `words` out). It returns the
# tables to write; a table the model lacks is ignored. A Callable rather
# than a Protocol: spaCy validates initialize settings with pydantic from
# the signature, and pydantic cannot build a validator for a Protocol.
VectorsLoader = Callable[[Optional[Vocab], Optional[Lexicon]], Vectors]
# Which keys of a word2vec file each table can use.
_TABLE_KEYS: Dict[str, Callable[[Optional[Lexicon]], Callable[[str], bool]]] = {
    "chars": lambda lexicon: lambda key: len(key) == 1,
    "bigrams": lambda lexicon: lambda key: len(key) == 2,
    "words": lambda lexicon: (lambda key: False) if lexicon is None else lexicon.__contains__,
}


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
    model: Model,
    source: Union[str, Path, VectorsLoader],
    *,
    vocab: Optional[Vocab] = None,
    lexicon: Optional[Lexicon] = None,
    rescale: bool = False,
) -> Dict[str, Dict[str, int]]:
    """Copy pretrained vectors into every SoftLexicon layer of an initialized model.

    source: an .npz vectors file, a word2vec file (any other path: its keys
        are split between the tables by length and by the lexicon), or a
        VectorsLoader (e.g. from spacy-lexner.word2vec_vectors.v1).
    vocab: passed to a loader (spacy-lexner.vocab_vectors.v1 reads its vectors).
    lexicon: the pipe's lexicon: only its words are kept for the word table
        of a word2vec file. None: such a file fills no word table.
    rescale: scale each table's vectors to the spread the sum of its randomly
        initialised rows has, so pretrained and unmatched keys stay on one
        scale. Off by default: word2vec vectors are ~3x larger than that
        init, and unscaled they did better on Resume dev (94.68 vs 94.29
        best F1, one run each); Adam's steps move larger vectors relatively
        less, so more of the pretraining survives training.
    RETURNS: per table, how many keys were given, written exactly and
        collided with more frequent keys.
    """
    if rescale:
        warnings.warn(
            "rescale (pretrained_rescale) is deprecated and will be removed in spacy-lexner 0.3: "
            "it did worse than the unscaled vectors (Resume dev 94.29 vs 94.68). Drop the setting.",
            DeprecationWarning,
            stacklevel=2,
        )
    vectors = _read_source(source, vocab, lexicon)
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
    summary = "; ".join(
        f"{table}: {n['keys']:,} keys, {n['exact']:,} exact, {n['collided']:,} collided" for table, n in stats.items()
    )
    logger.info("Loaded pretrained vectors from %s: %s", source, summary)
    return stats


def _read_source(
    source: Union[str, Path, VectorsLoader], vocab: Optional[Vocab], lexicon: Optional[Lexicon]
) -> Vectors:
    if callable(source):
        return source(vocab, lexicon)
    if Path(source).suffix == ".npz":
        return read_vectors(source)
    if lexicon is None:
        logger.info("No lexicon given: the words of %s fill no word table.", source)
    path = str(source)
    loader = Word2VecVectors(chars=path, bigrams=path, words=path if lexicon is not None else None)
    return loader(vocab, lexicon)


class Word2VecVectors:
    """A VectorsLoader reading each table from a word2vec file (see
    spacy-lexner.word2vec_vectors.v1). A file named for several tables is
    read once; each table takes the keys it can use."""

    def __init__(
        self,
        chars: Optional[str] = None,
        bigrams: Optional[str] = None,
        words: Optional[str] = None,
        *,
        binary: Optional[bool] = None,
        limit: Optional[int] = None,
    ) -> None:
        self.paths = {table: path for table, path in (("chars", chars), ("bigrams", bigrams), ("words", words)) if path}
        self.binary = binary
        self.limit = limit

    def __repr__(self) -> str:
        return f"word2vec files {self.paths}"

    def __call__(self, vocab: Optional[Vocab], lexicon: Optional[Lexicon]) -> Vectors:
        if "words" in self.paths and lexicon is None:
            raise ValueError(
                "spacy-lexner.word2vec_vectors.v1 needs the pipe's lexicon for `words` (only lexicon words are "
                "looked up): load the vectors through lexner_tagger.initialize, or pass lexicon=."
            )
        tables_of: Dict[str, List[str]] = {}
        for table, path in self.paths.items():
            tables_of.setdefault(path, []).append(table)
        vectors: Vectors = {}
        for path, tables in tables_of.items():
            wanted = {table: _TABLE_KEYS[table](lexicon) for table in tables}
            read = read_embeddings(path, keep=_any_of(list(wanted.values())), limit=self.limit, binary=self.binary)
            for table, keep in wanted.items():
                rows = [i for i, key in enumerate(read.keys) if keep(key)]
                vectors[table] = ([read.keys[i] for i in rows], read.vectors[rows])
                logger.info(
                    "%s: %s read %d entries, kept %d, skipped %d (%d duplicates, %d whitespace keys, the rest %s)",
                    path,
                    table,
                    read.n_read,
                    len(rows),
                    read.n_read - len(rows),
                    read.n_duplicates,
                    read.n_whitespace,
                    _SKIPPED[table],
                )
        return vectors


_SKIPPED = {"chars": "not 1 char", "bigrams": "not 2 chars", "words": "not in the lexicon"}


def _any_of(keeps: List[Callable[[str], bool]]) -> Callable[[str], bool]:
    if len(keeps) == 1:
        return keeps[0]
    return lambda key: any(keep(key) for keep in keeps)


class VocabVectors:
    """A VectorsLoader reading the vectors spaCy loaded into nlp.vocab.vectors
    (see spacy-lexner.vocab_vectors.v1)."""

    def __repr__(self) -> str:
        return "nlp.vocab.vectors"

    def __call__(self, vocab: Optional[Vocab], lexicon: Optional[Lexicon]) -> Vectors:
        table = vocab.vectors if vocab is not None else None
        if table is not None and table.mode != "default":
            raise ValueError(
                f"spacy-lexner.vocab_vectors.v1 needs vectors with one row per key; these are {excerpt(table.mode)} "
                "vectors (hashed subwords). Run `spacy init vectors` again without --mode floret."
            )
        if table is None or table.shape[0] == 0 or not len(table.key2row):
            raise ValueError(
                "spacy-lexner.vocab_vectors.v1: nlp.vocab has no vectors. Make a vectors directory with "
                '`python -m spacy init vectors zh vectors.txt DIR` and set [initialize] vectors = "DIR".'
            )
        # to_numpy: the rows are a cupy array when spaCy put the vocab on a GPU.
        data = to_numpy(table.data)
        keys: List[str] = []
        rows: List[int] = []
        missing = 0
        # Row order is the file's order, most frequent first: earlier keys win shared hashed rows.
        for key, row in sorted(table.key2row.items(), key=lambda item: item[1]):
            try:
                keys.append(vocab.strings[key])
            except KeyError:
                missing += 1
                continue
            rows.append(row)
        vectors: Vectors = {}
        for name, make_keep in _TABLE_KEYS.items():
            if name == "words" and lexicon is None:
                continue
            keep = make_keep(lexicon)
            kept = [i for i, key in enumerate(keys) if keep(key)]
            vectors[name] = ([keys[i] for i in kept], numpy.asarray(data[[rows[i] for i in kept]], dtype="float32"))
            logger.info(
                "nlp.vocab.vectors: %s kept %d of %d keys (the rest %s; %d keys without a string)",
                name,
                len(kept),
                len(keys),
                _SKIPPED[name],
                missing,
            )
        return vectors


@registry.misc("spacy-lexner.word2vec_vectors.v1")
def create_word2vec_vectors(
    chars: Optional[str] = None,
    bigrams: Optional[str] = None,
    words: Optional[str] = None,
    binary: Optional[bool] = None,
    limit: Optional[int] = None,
) -> VectorsLoader:
    """Pretrained vectors from word2vec files, one per table (the same file
    may be named for several tables; it is read once).

    chars (Optional[str]): File whose 1-char keys fill the char table
        (e.g. gigaword_chn.all.a2b.uni.ite50.vec).
    bigrams (Optional[str]): File whose 2-char keys fill the bigram table
        (e.g. gigaword_chn.all.a2b.bi.ite50.vec).
    words (Optional[str]): File whose keys in the pipe's lexicon fill the
        word table (e.g. ctb.50d.vec).
    binary (Optional[bool]): The files' format; None detects it per file.
    limit (Optional[int]): Read only the first `limit` entries of each file.
    RETURNS (VectorsLoader): Reads the files when lexner_tagger initializes.
    """
    if not (chars or bigrams or words):
        raise ValueError("spacy-lexner.word2vec_vectors.v1 needs at least one of chars, bigrams or words.")
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ValueError(f"spacy-lexner.word2vec_vectors.v1: limit must be a positive integer or null, got {limit}.")
    return Word2VecVectors(chars, bigrams, words, binary=binary, limit=limit)


@registry.misc("spacy-lexner.vocab_vectors.v1")
def create_vocab_vectors() -> VectorsLoader:
    """Pretrained vectors from nlp.vocab.vectors, which spaCy fills from
    [initialize] vectors (a directory made by `spacy init vectors`) before
    the components initialize. Keys are split between the tables as for a
    word2vec file.

    RETURNS (VectorsLoader): Reads nlp.vocab.vectors when lexner_tagger initializes.
    """
    return VocabVectors()


def _load_table(
    weight: "torch.Tensor", featurizer: Featurizer, table: str, keys: List[str], vectors: numpy.ndarray, rescale: bool
) -> Dict[str, int]:
    if vectors.shape[1] != weight.shape[1]:
        raise ValueError(
            f"Pretrained '{table}' vectors have width {vectors.shape[1]} but the model's "
            f"table has width {weight.shape[1]}: set the matching *_width in the config "
            f"({TABLES[table]}_width = {vectors.shape[1]} in the embed block)."
        )
    if not keys:
        return {"keys": 0, "exact": 0, "collided": 0}
    rows = key_rows(featurizer, table, keys)
    values = weight.detach().cpu().numpy().copy()
    if rescale and len(vectors):
        target = values.std() * numpy.sqrt(rows.shape[1])
        vectors = vectors * (target / max(float(vectors.std()), 1e-12))
    counts = assign_rows(values, rows, vectors)
    with torch.no_grad():
        weight.copy_(torch.from_numpy(values).to(weight.device))
    return {"keys": len(keys), **counts}
