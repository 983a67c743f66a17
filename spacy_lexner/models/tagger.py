"""Thinc architectures of ``lexner_tagger``: embed → encoder → decoder.

    Lattice ──embed──▶ Embedded(X[batch, chars, nI], lengths, lattice)
            ──encoder──▶ H[batch, chars, hidden] ──decoder──▶ TagScores

The model takes the lattice the pipe built and returns the decoder's
TagScores (see types.py); the pipe asks those for the loss and the decode.
"""

from typing import Any, Callable, Optional, Tuple

from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats3d

from ..lexicon.lattice import Lattice
from .decoders import (
    build_crf_decoder,
    build_crf_layer,
    build_emission_scorer,
    check_decoder,
    initialize_decoder,
    scores_for,
)
from .types import Embedded, Padded, States, TagScores


@registry.architectures("spacy-lexner.LexiconTagger.v2")
def build_lexicon_tagger_v2(
    embed: Model[Lattice, Embedded],
    encoder: Model[Embedded, Floats3d],
    decoder: Optional[Model[States, TagScores]] = None,
) -> Model[Lattice, TagScores]:
    """Character-level tagger: embed → encoder → decoder.

    embed: maps the lattice to padded per-character vectors
        (e.g. spacy-lexner.SoftLexiconEmbed.v2).
    encoder: a context encoder, e.g. spacy-lexner.BiLSTMEncoder.v1.
    decoder: spacy-lexner.CRFDecoder.v1 (the default) or
        spacy-lexner.SoftmaxDecoder.v1; it owns the tag scheme.
    """
    if decoder is None:
        decoder = build_crf_decoder()
    return Model(
        "lexner_tagger_model",
        _forward_v2,
        init=_init_v2,
        layers=[embed, encoder, decoder],
        refs={"embed": embed, "encoder": encoder, "decoder": decoder},
        dims={"nO": None},
    )


def _init_v2(model: Model, X: Any = None, Y: Any = None) -> None:
    embed, encoder, decoder = model.layers
    initialize_encoding(embed, encoder, X)
    initialize_decoder(decoder, encoder.get_dim("nO"))
    model.set_dim("nO", decoder.get_ref("crf").get_dim("nO"), force=True)


def _forward_v2(model: Model, lattice: Lattice, is_train: bool) -> Tuple[TagScores, Callable]:
    embed, encoder, decoder = model.layers
    states, bp_states = encode(embed, encoder, lattice, is_train)
    scores, bp_decoder = decoder(states, is_train)

    def backprop(d_scores: Any) -> Lattice:
        return bp_states(bp_decoder(d_scores))

    return scores, backprop


@registry.architectures("spacy-lexner.LexiconTagger.v1")
def build_lexicon_tagger(
    embed: Model[Lattice, Embedded],
    encoder: Model[Embedded, Floats3d],
    scheme: str = "BIOES",
    decoder: str = "crf",
) -> Model[Lattice, TagScores]:
    """Character-level tagger: embed → encoder → per-tag emission scores,
    decoded by a CRF or a softmax.

    scheme: "BIOES" or "BIO" tags.
    decoder: "crf" (constrained linear-chain CRF) or "softmax" (independent
        per-character scores, decoded with the same validity constraints).

    spacy-lexner.LexiconTagger.v2 takes the decoder as an architecture. This
    version keeps its layers (embed, encoder, scorer, crf) so saved
    pipelines load; the tagger node is its own decoder node, run by the same
    code as spacy-lexner.CRFDecoder.v1.
    """
    check_decoder(decoder)
    scorer = build_emission_scorer()
    crf = build_crf_layer(scheme)
    return Model(
        "lexner_tagger_model",
        _forward_v1,
        init=_init_v1,
        layers=[embed, encoder, scorer, crf],
        refs={"embed": embed, "encoder": encoder, "scorer": scorer, "crf": crf},
        dims={"nO": None},
        attrs={"decoder": decoder, "scheme": scheme},
    )


def _init_v1(model: Model, X: Any = None, Y: Any = None) -> None:
    embed, encoder = model.layers[:2]
    initialize_encoding(embed, encoder, X)
    initialize_decoder(model, encoder.get_dim("nO"))


def _forward_v1(model: Model, lattice: Lattice, is_train: bool) -> Tuple[TagScores, Callable]:
    (emissions, lengths), backprop = emissions_forward(model, lattice, is_train)
    return scores_for(model, emissions, lengths), backprop


def initialize_encoding(embed: Model, encoder: Model, X: Optional[Lattice] = None) -> None:
    """Wire the dims bottom-up and initialize, so the model can be built
    without data (which is what loading a saved pipeline needs). The embed
    layer gets the sample lattice nlp.initialize() passes, if any: a layer
    with pretrained weights (spacy-lexner.LACEmbed.v1) reads them then, and
    not when a saved pipeline is built to load its own."""
    embed.initialize(X=X)
    if encoder.has_dim("nI") is None:
        encoder.set_dim("nI", embed.get_dim("nO"))
    encoder.initialize()


def encode(
    embed: Model, encoder: Model, lattice: Lattice, is_train: bool, embedded: Optional[Tuple[Embedded, Callable]] = None
) -> Tuple[States, Callable]:
    """The encoder states of the lattice (given the embed output, if already computed)."""
    (X, lengths, _), bp_embed = embedded if embedded is not None else embed(lattice, is_train)
    H, bp_encoder = encoder(Embedded(X, lengths, lattice), is_train)

    def backprop(dH: Floats3d) -> Lattice:
        return bp_embed((bp_encoder(dH), lengths))

    return States(H, lengths, lattice), backprop


def emissions_forward(
    model: Model, lattice: Lattice, is_train: bool, embedded: Optional[Tuple[Embedded, Callable]] = None
) -> Tuple[Padded, Callable]:
    """Emission scores of a model whose first three layers are embed,
    encoder and scorer (spacy-lexner.LexiconTagger.v1 and ensemble members)."""
    embed, encoder, scorer = model.layers[:3]
    states, bp_states = encode(embed, encoder, lattice, is_train, embedded)
    emissions, bp_scorer = scorer((states.H, states.lengths), is_train)

    def backprop(d_emissions: Floats3d) -> Lattice:
        return bp_states(bp_scorer(d_emissions))

    return (emissions, states.lengths), backprop
