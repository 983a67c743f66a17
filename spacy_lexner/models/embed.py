"""The SoftLexicon input layer (Ma et al., ACL 2020) of ``lexner_tagger``.

    Lattice ──Featurizer (numpy)──▶ LexFeatures ──SoftLexiconEmbedding (torch)──▶ Embedded

Each character gets its own vector, its bigram's, and for each of its B/M/E/S
word sets the frequency-weighted sum of the vectors of the lattice words in
that set.
"""

from functools import partial
from typing import Any, Callable, List, Tuple

from spacy.util import registry
from thinc.api import ArgsKwargs, Model

from ..lexicon.lattice import Lattice
from ..util.torch_utils import LazyTorchWrapper, to_torch
from .encoders.common import convert_padded_outputs
from .features import Featurizer, LexFeatures
from .pytorch.soft_lexicon import N_SETS, SoftLexiconEmbedding
from .types import Embedded


@registry.architectures("spacy-lexner.SoftLexiconEmbed.v2")
def build_soft_lexicon_embed(
    char_width: int = 50,
    bigram_width: int = 50,
    word_width: int = 50,
    type_width: int = 16,
    char_rows: int = 16384,
    bigram_rows: int = 65536,
    word_rows: int = 65536,
    type_rows: int = 2048,
    weighting: str = "frequency",
    dropout: float = 0.5,
    word_dropout: float = 0.1,
    use_lexicon: bool = True,
    sparse_updates: bool = True,
) -> Model[Lattice, Embedded]:
    """Character, bigram and SoftLexicon features for each character of a text.

    word_width / type_width: widths of lexicon word and word-type vectors;
        use_lexicon=false drops the lexicon features (for ablations).
    *_rows: sizes of the hashed embedding tables (memory stays bounded).
    weighting: z(w) of a matched word: "frequency" (raw lexicon frequency, as
        in the paper), "log" (log(1 + frequency)) or "uniform".
    dropout: dropout on the concatenated character vectors.
    word_dropout: share of matched words whose word vector is hidden in
        training, leaving their (type, length) vector.
    sparse_updates: the optimizer steps only the table rows a batch touched
        (lazy Adam, see util/lazy_adam.py): 0.188 -> 0.115 s per Resume step;
        false steps every row, as v1 does. Predictions of a trained model do
        not depend on it.
    """
    if not use_lexicon:
        word_width = type_width = 0
    featurizer = Featurizer(
        n_char_rows=char_rows,
        n_bigram_rows=bigram_rows,
        n_word_rows=max(word_rows, 1),
        n_type_rows=max(type_rows, 1),
        weighting=weighting,
    )
    module_kwargs = dict(
        n_char_rows=char_rows,
        char_width=char_width,
        n_bigram_rows=bigram_rows,
        bigram_width=bigram_width,
        n_word_rows=max(word_rows, 1),
        word_width=word_width,
        n_type_rows=max(type_rows, 1),
        type_width=type_width,
        dropout=dropout,
        word_dropout=word_dropout,
        sparse_updates=sparse_updates,
    )
    width = char_width + bigram_width + (N_SETS * (word_width + type_width + 1) if word_width else 0)
    embed = LazyTorchWrapper(
        "soft_lexicon_torch",
        partial(_soft_lexicon_module, **module_kwargs),
        convert_inputs=_convert_features,
        convert_outputs=convert_padded_outputs,
        dims={"nO": width},
    )
    return Model(
        "soft_lexicon_embed",
        _embed_forward,
        init=_init_children,
        layers=[embed],
        dims={"nO": width},
        attrs={"featurizer": featurizer, "use_lexicon": use_lexicon},
    )


@registry.architectures("spacy-lexner.SoftLexiconEmbed.v1")
def build_soft_lexicon_embed_v1(
    char_width: int = 50,
    bigram_width: int = 50,
    word_width: int = 50,
    type_width: int = 16,
    char_rows: int = 16384,
    bigram_rows: int = 65536,
    word_rows: int = 65536,
    type_rows: int = 2048,
    weighting: str = "frequency",
    dropout: float = 0.5,
    word_dropout: float = 0.1,
    use_lexicon: bool = True,
) -> Model[Lattice, Embedded]:
    """spacy-lexner.SoftLexiconEmbed.v2 with sparse_updates=false: every
    table row is stepped on every update."""
    return build_soft_lexicon_embed(
        char_width,
        bigram_width,
        word_width,
        type_width,
        char_rows,
        bigram_rows,
        word_rows,
        type_rows,
        weighting,
        dropout,
        word_dropout,
        use_lexicon,
        sparse_updates=False,
    )


def _init_children(model: Model, X: Any = None, Y: Any = None) -> None:
    for layer in model.layers:
        layer.initialize()


def _embed_forward(model: Model, lattice: Lattice, is_train: bool) -> Tuple[Embedded, Callable]:
    return embed_features(model, featurize(model, lattice), lattice, is_train)


def featurize(model: Model, lattice: Lattice) -> LexFeatures:
    """The integer and weight arrays a SoftLexiconEmbed layer reads for a lattice."""
    return model.attrs["featurizer"](lattice, model.attrs["use_lexicon"])


def featurizes_alike(embeds: List[Model]) -> bool:
    """Whether these SoftLexiconEmbed layers compute the same features (same
    tables and weighting), so featurize() can run once for all."""
    first = embeds[0]
    if any(embed.name != "soft_lexicon_embed" for embed in embeds):
        return False
    return all(
        embed.attrs["featurizer"].settings == first.attrs["featurizer"].settings
        and embed.attrs["use_lexicon"] == first.attrs["use_lexicon"]
        for embed in embeds[1:]
    )


def embed_features(model: Model, features: LexFeatures, lattice: Lattice, is_train: bool) -> Tuple[Embedded, Callable]:
    """The forward of a SoftLexiconEmbed layer from already computed features."""
    padded, backprop = model.layers[0](features, is_train)

    def backprop_embed(d_embedded: Tuple) -> Lattice:
        backprop(d_embedded[0])
        return lattice

    return Embedded(padded, features.lengths, lattice), backprop_embed


def _soft_lexicon_module(model: Model, **kwargs: Any) -> SoftLexiconEmbedding:
    return SoftLexiconEmbedding(**kwargs)


def _no_input_gradient(d_inputs: ArgsKwargs) -> None:
    return None


_FEATURE_NAMES = (
    "lengths",
    "char_rows",
    "bigram_rows",
    "lex_index",
    "lex_word_rows",
    "lex_type_rows",
    "lex_weights",
    "empty_sets",
)


def _convert_features(model: Model, X: LexFeatures, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    args = tuple(to_torch(model, getattr(X, name)) for name in _FEATURE_NAMES)
    return ArgsKwargs(args=args, kwargs={}), _no_input_gradient
