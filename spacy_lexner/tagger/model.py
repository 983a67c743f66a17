"""Thinc architectures of ``lexner_tagger``.

    docs ──SoftLexiconEmbed──▶ (X[batch, chars, nI], lengths)
         ──encoder──▶ H[batch, chars, hidden] ──scorer──▶ emissions[batch, chars, tags]

The CRF is a separate ref ("crf") so the pipe can compute its loss and run
Viterbi on the emissions, while its transitions are still part of the model
(updated by the optimizer, saved with the weights).
"""
from functools import partial
from typing import Any, Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, serialize_attr
from thinc.types import Floats3d, Ints1d

from ..crf.layer import build_crf_layer
from ..encoders.common import convert_padded_outputs, padded_encoder
from ..lexicon import Lexicon
from ..torch_utils import LazyTorchWrapper, to_torch
from .features import N_SETS, Featurizer, LexFeatures
from .torch_model import EmissionScorer, SoftLexiconEmbedding

Padded = Tuple[Floats3d, Ints1d]
DECODERS = ("crf", "softmax")


@serialize_attr.register(Lexicon)
def _lexicon_is_saved_by_the_pipe(_: Any, value: Any, name: str, model: Model) -> bytes:
    # The pipe writes the lexicon to its own file (so users can inspect and
    # extend it); raising TypeError makes thinc skip the attribute.
    raise TypeError("The lexicon is serialised by the lexner_tagger pipe.")


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
) -> Model[List[Doc], Padded]:
    """Character, bigram and SoftLexicon features for each character of a doc.

    word_width / type_width: widths of lexicon word and word-type vectors;
        use_lexicon=false drops the lexicon features (for ablations).
    *_rows: sizes of the hashed embedding tables (memory stays bounded).
    weighting: z(w) of a matched word: "frequency" (raw lexicon frequency, as
        in the paper), "log" (log(1 + frequency)) or "uniform".
    dropout: dropout on the concatenated character vectors.
    word_dropout: share of matched words whose word vector is hidden in
        training, leaving their (type, length) vector.
    sparse_updates: the optimizer steps only the table rows a batch touched
        (lazy Adam, see lazy_adam.py): 0.188 -> 0.115 s per Resume step;
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
        n_char_rows=char_rows, char_width=char_width,
        n_bigram_rows=bigram_rows, bigram_width=bigram_width,
        n_word_rows=max(word_rows, 1), word_width=word_width,
        n_type_rows=max(type_rows, 1), type_width=type_width,
        dropout=dropout, word_dropout=word_dropout, sparse_updates=sparse_updates,
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
        attrs={"featurizer": featurizer, "lexicon": None, "use_lexicon": use_lexicon},
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
) -> Model[List[Doc], Padded]:
    """spacy-lexner.SoftLexiconEmbed.v2 with sparse_updates=false: every
    table row is stepped on every update."""
    return build_soft_lexicon_embed(
        char_width, bigram_width, word_width, type_width, char_rows, bigram_rows, word_rows, type_rows,
        weighting, dropout, word_dropout, use_lexicon, sparse_updates=False,
    )


def _init_children(model: Model, X: Any = None, Y: Any = None) -> None:
    for layer in model.layers:
        layer.initialize()


def set_lexicon(model: Model, lexicon: Optional[Lexicon]) -> None:
    """Point every layer that reads the lexicon (SoftLexicon, FLAT) at it."""
    for node in model.walk():
        if "lexicon" in node.attrs:
            node.attrs["lexicon"] = lexicon


def _embed_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Padded, Callable]:
    return embed_features(model, featurize(model, docs), docs, is_train)


def featurize(model: Model, docs: List[Doc]) -> LexFeatures:
    """The integer and weight arrays a SoftLexiconEmbed layer reads for docs."""
    lexicon = model.attrs["lexicon"] if model.attrs["use_lexicon"] else None
    if model.attrs["use_lexicon"] and lexicon is None:
        raise ValueError(
            "The SoftLexicon layer has no lexicon. Initialize the pipeline "
            "(nlp.initialize) or load a trained one, which sets it."
        )
    return model.attrs["featurizer"]([doc.text for doc in docs], lexicon)


def featurizes_alike(embeds: List[Model]) -> bool:
    """Whether these SoftLexiconEmbed layers compute the same features (same
    tables, weighting and lexicon), so featurize() can run once for all."""
    first = embeds[0]
    if any(embed.name != "soft_lexicon_embed" for embed in embeds):
        return False
    return all(
        embed.attrs["featurizer"].settings == first.attrs["featurizer"].settings
        and embed.attrs["use_lexicon"] == first.attrs["use_lexicon"]
        and embed.attrs["lexicon"] is first.attrs["lexicon"]
        for embed in embeds[1:]
    )


def embed_features(model: Model, features: LexFeatures, docs: List[Doc], is_train: bool) -> Tuple[Padded, Callable]:
    """The forward of a SoftLexiconEmbed layer from already computed features."""
    padded, backprop = model.layers[0](features, is_train)

    def backprop_embed(d_padded: Padded) -> List[Doc]:
        backprop(d_padded[0])
        return docs

    return (padded, features.lengths), backprop_embed


def _soft_lexicon_module(model: Model, **kwargs: Any) -> SoftLexiconEmbedding:
    return SoftLexiconEmbedding(**kwargs)


def _emission_scorer_module(model: Model) -> EmissionScorer:
    return EmissionScorer(model.get_dim("nI"), model.get_dim("nO"))


def _no_input_gradient(d_inputs: ArgsKwargs) -> None:
    return None


def _convert_features(model: Model, X: LexFeatures, is_train: bool):
    names = ["lengths", "char_rows", "bigram_rows", "lex_index", "lex_word_rows", "lex_type_rows", "lex_weights", "empty_sets"]
    args = tuple(to_torch(model, getattr(X, name)) for name in names)
    return ArgsKwargs(args=args, kwargs={}), _no_input_gradient


@registry.architectures("spacy-lexner.LexiconTagger.v1")
def build_lexicon_tagger(
    embed: Model[List[Doc], Padded],
    encoder: Model[Padded, Floats3d],
    scheme: str = "BIOES",
    decoder: str = "crf",
) -> Model[List[Doc], Padded]:
    """Character-level tagger: embed → encoder → per-tag emission scores.

    embed: maps docs to padded per-character vectors (SoftLexiconEmbed).
    encoder: a context encoder, e.g. spacy-lexner.BiLSTMEncoder.v1.
    scheme: "BIOES" or "BIO" tags.
    decoder: "crf" (constrained linear-chain CRF) or "softmax" (independent
        per-character scores, decoded with the same validity constraints).
    """
    check_decoder(decoder)
    scorer = build_emission_scorer()
    crf = build_crf_layer(scheme)
    return Model(
        "lexner_tagger_model",
        emissions_forward,
        init=_tagger_init,
        layers=[embed, encoder, scorer, crf],
        refs={"embed": embed, "encoder": encoder, "scorer": scorer, "crf": crf},
        dims={"nO": None},
        attrs={"decoder": decoder, "scheme": scheme},
    )


def check_decoder(decoder: str) -> None:
    if decoder not in DECODERS:
        raise ValueError(f"Unknown decoder '{decoder}'. Use one of {DECODERS}.")


def build_emission_scorer() -> Model[Padded, Floats3d]:
    """A linear layer from encoder states to per-tag scores; its widths are
    set by initialize_emissions."""
    return padded_encoder("emission_scorer", _emission_scorer_module, None)


def _tagger_init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    crf = model.get_ref("crf")
    n_tags = crf.get_dim("nO")
    initialize_emissions(model.get_ref("embed"), model.get_ref("encoder"), model.get_ref("scorer"), n_tags)
    model.set_dim("nO", n_tags, force=True)
    crf.initialize()


def initialize_emissions(embed: Model, encoder: Model, scorer: Model, n_tags: int) -> None:
    """Wire the dims top-down and initialize, so the model can be built
    without data (which is what loading a saved pipeline needs)."""
    if encoder.has_dim("nI") is None:
        encoder.set_dim("nI", embed.get_dim("nO"))
    scorer.set_dim("nI", encoder.get_dim("nO"), force=True)
    scorer.set_dim("nO", n_tags, force=True)
    for layer in (embed, encoder, scorer):
        layer.initialize()


def emissions_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Padded, Callable]:
    """Emission scores of a model whose first three layers are embed,
    encoder and scorer."""
    return emissions_from_embedded(model, docs, model.layers[0](docs, is_train), is_train)


def emissions_from_embedded(
    model: Model, docs: List[Doc], embedded: Tuple[Padded, Callable], is_train: bool
) -> Tuple[Padded, Callable]:
    """emissions_forward, given the output and backprop of the embed layer."""
    encoder, scorer = model.layers[1:3]
    (X, lengths), bp_embed = embedded
    # FLAT builds its lattice from the texts; other encoders see vectors only.
    encoder_input = (X, lengths, [doc.text for doc in docs]) if encoder.attrs.get("reads_texts") else (X, lengths)
    H, bp_encoder = encoder(encoder_input, is_train)
    scores, bp_scorer = scorer((H, lengths), is_train)

    def backprop(d_scores: Padded) -> List[Doc]:
        dH = bp_scorer(d_scores[0])
        dX = bp_encoder(dH)
        return bp_embed((dX, lengths))

    return (scores, lengths), backprop
