"""An ensemble of ``lexner_tagger`` models inside one pipe.

    docs ──member 1: embed → encoder → scorer──▶ emissions 1 ─┐
    docs ──member 2: embed → encoder → scorer──▶ emissions 2 ─┴─▶ CRF ensemble

Every member has its own weights and its own CRF, and is trained on its own
CRF loss (the pipe sees the members' emissions stacked along the batch axis
in training). Prediction averages the members' emissions and CRF scores and
runs one constrained Viterbi over the average. Members see the same batches;
they differ by their random initialisation, their dropout masks and, with
bagging, by how much each sequence counts for each of them. (Bagging weighs
the emission gradients; each member's CRF transitions get their plain
gradient.) Members trained apart can be merged into this architecture with
``spacy-lexner merge-ensemble`` (see merge.py).
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats3d

from ..crf.layer import build_crf_layer
from .model import (
    Padded, build_emission_scorer, check_decoder, embed_features, emissions_forward, emissions_from_embedded,
    featurize, featurizes_alike, initialize_emissions,
)


@registry.architectures("spacy-lexner.LexiconTaggerEnsemble.v1")
def build_lexicon_tagger_ensemble(
    embed: Model[List[Doc], Padded],
    encoder: Model[Padded, Floats3d],
    scheme: str = "BIOES",
    decoder: str = "crf",
    n_members: int = 2,
    bagging: bool = True,
) -> Model[List[Doc], Padded]:
    """n_members copies of spacy-lexner.LexiconTagger.v1 (same arguments),
    decoded together.

    bagging: online bagging (Oza & Russell, 2001) in training: each member
        weighs each sequence's gradient by its own Poisson(1) draw, which
        stands in for the different bootstrap samples and batch orders of
        separately trained models (members trained together otherwise see
        the same batches).

    Inference and training cost n_members times one model's. The refs
    "embed", "encoder" and "scorer" are the first member's.
    """
    check_decoder(decoder)
    if n_members < 1:
        raise ValueError(f"n_members must be at least 1, got {n_members}.")
    if n_members > 1:
        _check_copyable(embed)
    members = [_build_member(embed, encoder)]
    members += [_build_member(copy_with_refs(embed), copy_with_refs(encoder)) for _ in range(n_members - 1)]
    crf = build_crf_layer(scheme, n_members=n_members if decoder == "crf" else 1)
    first = members[0]
    return Model(
        "lexner_tagger_ensemble",
        _ensemble_forward,
        init=_ensemble_init,
        layers=[*members, crf],
        refs={"embed": first.layers[0], "encoder": first.layers[1], "scorer": first.layers[2], "crf": crf},
        dims={"nO": None},
        attrs={"decoder": decoder, "scheme": scheme, "n_members": n_members, "bagging": bagging},
    )


def _build_member(embed: Model, encoder: Model) -> Model[List[Doc], Padded]:
    return Model("lexner_tagger_member", emissions_forward, layers=[embed, encoder, build_emission_scorer()])


def _check_copyable(embed: Model) -> None:
    # A listener is registered with its upstream component (a transformer or
    # tok2vec) by identity, and thinc's copy drops its subclass: a copied
    # listener would never receive the upstream's output.
    if any(node.attrs.get("needs_pipeline_docs") for node in embed.walk()):
        raise ValueError(
            "spacy-lexner.LexiconTaggerEnsemble.v1 cannot copy an embed that listens to "
            "another component (a transformer or tok2vec listener). Use "
            "spacy-lexner.LexiconTagger.v1 for listener-fed taggers."
        )


def copy_with_refs(model: Model) -> Model:
    """An uninitialised copy of model, with its refs pointing into the copy.

    thinc's Model.copy keeps layers, dims, params and attrs, but not refs.
    """
    if any(node.shims for node in model.walk()):
        raise ValueError("Ensemble members must be copied before initialization, or they would share weights.")
    copied = model.copy()
    pairs = list(zip(model.walk(), copied.walk()))
    copy_of: Dict[int, Model] = {id(original): new for original, new in pairs}
    for original, new in pairs:
        for name in original.ref_names:
            ref = original.maybe_get_ref(name)
            if ref is not None and id(ref) not in copy_of:
                raise ValueError(f"Cannot copy {original.name}: its ref '{name}' is not one of its layers.")
            new.set_ref(name, copy_of[id(ref)] if ref is not None else None)
    return copied


def _ensemble_init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    crf = model.get_ref("crf")
    n_tags = crf.get_dim("nO")
    for member in model.layers[:-1]:
        initialize_emissions(*member.layers, n_tags)
    model.set_dim("nO", n_tags, force=True)
    crf.initialize()


def _ensemble_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Padded, Callable]:
    """Training: the members' emissions stacked member-major along the batch
    axis, with lengths tiled to match. Prediction: their average."""
    xp = model.ops.xp
    outputs = _member_outputs(model.layers[:-1], docs, is_train)
    n_members = len(outputs)
    lengths = outputs[0][0][1]
    scores = [scores for (scores, _), _ in outputs]
    backprops = [backprop for _, backprop in outputs]
    weights = None
    if is_train:
        Y = (xp.concatenate(scores, axis=0), xp.concatenate([lengths] * n_members, axis=0))
        if model.attrs["bagging"] and n_members > 1:
            draws = numpy.random.poisson(1.0, size=(n_members * len(docs), 1, 1))
            weights = model.ops.asarray(draws.astype("float32"))
    else:
        Y = (sum(scores[1:], scores[0]) / n_members, lengths)

    def backprop(dY: Padded) -> List[Doc]:
        d_scores = dY[0] if weights is None else dY[0] * weights
        parts = xp.split(d_scores, n_members, axis=0) if is_train else [d_scores / n_members] * n_members
        for member_backprop, d_member in zip(backprops, parts):
            member_backprop((d_member, lengths))
        return docs

    return Y, backprop


def _member_outputs(members: List[Model], docs: List[Doc], is_train: bool) -> List[Tuple[Padded, Callable]]:
    """Each member's emissions. Members built from one embed config read the
    same features, so the lexicon matching and hashing run once."""
    embeds = [member.layers[0] for member in members]
    if not featurizes_alike(embeds):
        return [member(docs, is_train) for member in members]
    features = featurize(embeds[0], docs)
    return [
        emissions_from_embedded(member, docs, embed_features(embed, features, docs, is_train), is_train)
        for member, embed in zip(members, embeds)
    ]
