"""An ensemble of ``lexner_tagger`` models inside one pipe.

    lattice ──member 1: embed → encoder → scorer──▶ emissions 1 ─┐
    lattice ──member 2: embed → encoder → scorer──▶ emissions 2 ─┴─▶ CRF ensemble

Every member has its own weights and its own CRF, and is trained on its own
CRF loss. Prediction averages the members' emissions and CRF scores and
runs one constrained Viterbi over the average. Members see the same batches;
they differ by their random initialisation, their dropout masks and, with
bagging, by how much each sequence counts for each of them. (Bagging weighs
the emission gradients; each member's CRF transitions get their plain
gradient.) Members trained apart can be merged into this architecture with
``spacy-lexner merge-ensemble`` (see pipeline/merge.py, copy_member_weights).

The model returns TagScores like a single tagger, so the pipe does not know
it is an ensemble: in training, loss() scores each member's emissions with
its own CRF and returns their stacked gradients, which the ensemble's
backprop splits between the members.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats3d, Ints1d

from ..lexicon.lattice import Lattice
from .decoders import (
    build_crf_layer,
    build_emission_scorer,
    check_decoder,
    crf_gold_loss,
    crf_module,
    member_decode,
    member_log_likelihood,
    scores_for,
)
from .embed import embed_features, featurize, featurizes_alike
from .pytorch.crf import CRFEnsemble
from .tagger import emissions_forward, initialize_encoding
from .types import Embedded, FixedSpans, GoldTags, Padded, TagScores


@registry.architectures("spacy-lexner.LexiconTaggerEnsemble.v1")
def build_lexicon_tagger_ensemble(
    embed: Model[Lattice, Embedded],
    encoder: Model[Embedded, Floats3d],
    scheme: str = "BIOES",
    decoder: str = "crf",
    n_members: int = 2,
    bagging: bool = True,
) -> Model[Lattice, TagScores]:
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


@registry.architectures("spacy-lexner.LexiconTaggerEnsemble.v2")
def build_lexicon_tagger_ensemble_v2(
    embed: Model[Lattice, Embedded],
    encoder: Model[Embedded, Floats3d],
    scheme: str = "BIOES",
    decoder: str = "crf",
    n_members: int = 2,
    bagging: bool = True,
    distill_weight: float = 0.0,
    predict_with: str = "mean",
) -> Model[Lattice, TagScores]:
    """spacy-lexner.LexiconTaggerEnsemble.v1, plus codistillation (Anil et
    al., 2018): members trained together that also learn from each other.

    distill_weight: in training, each member's loss adds this weight times,
        at every character, the KL divergence from the other members' mean
        tag distribution (the softmax of their averaged emissions, held
        fixed) to its own. 0 trains the members apart, as v1 does.
    predict_with: "mean" decodes the members' average, as v1 does;
        "first" decodes with the first member and its own CRF alone, at one
        model's inference cost (training still costs n_members models).
    """
    if predict_with not in PREDICT_WITH:
        raise ValueError(f"predict_with must be one of {PREDICT_WITH}, got {predict_with!r}.")
    if distill_weight < 0:
        raise ValueError(f"distill_weight must be 0 or more, got {distill_weight}.")
    if distill_weight > 0 and n_members < 2:
        raise ValueError("distill_weight > 0 needs n_members of 2 or more: a member learns from the others.")
    model = build_lexicon_tagger_ensemble(embed, encoder, scheme, decoder, n_members, bagging)
    model.attrs["distill_weight"] = float(distill_weight)
    model.attrs["predict_with"] = predict_with
    return model


PREDICT_WITH = ("mean", "first")


def _build_member(embed: Model, encoder: Model) -> Model[Lattice, Padded]:
    return Model("lexner_tagger_member", _member_forward, layers=[embed, encoder, build_emission_scorer()])


def _member_forward(model: Model, lattice: Lattice, is_train: bool) -> Tuple[Padded, Callable]:
    return emissions_forward(model, lattice, is_train)


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


def _ensemble_init(model: Model, X: Optional[Lattice] = None, Y: Any = None) -> None:
    crf = model.get_ref("crf")
    n_tags = crf.get_dim("nO")
    for member in model.layers[:-1]:
        embed, encoder, scorer = member.layers
        initialize_encoding(embed, encoder, X)
        scorer.set_dim("nI", encoder.get_dim("nO"), force=True)
        scorer.set_dim("nO", n_tags, force=True)
        scorer.initialize()
    model.set_dim("nO", n_tags, force=True)
    crf.initialize()


class EnsembleScores(TagScores):
    """The members' emissions, scored together.

    In training, each member's emissions are scored by its own CRF; in
    prediction, by the averaged CRF over the averaged emissions.
    """

    def __init__(self, model: Model, member_emissions: List[Floats3d], lengths: Ints1d) -> None:
        self.model, self.member_emissions, self.lengths = model, member_emissions, lengths
        self.n_members = len(member_emissions)
        self._mean: Optional[Floats3d] = None

    @property
    def emissions(self) -> Floats3d:  # type: ignore[override]
        """The members' average, computed when first read (training reads
        only the members' own emissions)."""
        if self._mean is None:
            first = self.member_emissions[0]
            self._mean = sum(self.member_emissions[1:], first) / self.n_members
        return self._mean

    def loss(self, gold: GoldTags) -> Tuple[float, Floats3d]:
        """The sum of the members' mean losses, so each member gets the
        gradient it would get alone; the gradient is the members' stacked.
        With distill_weight, each member's loss adds its distillation term."""
        xp = self.model.ops.xp
        n = self.n_members
        stacked = xp.concatenate(self.member_emissions, axis=0)
        lengths = xp.concatenate([self.lengths] * n, axis=0)
        gold = list(gold) * n
        if self.model.attrs["decoder"] == "crf":
            loss, d_scores = crf_gold_loss(self.model.get_ref("crf"), stacked, lengths, gold)
        else:
            loss, d_scores = scores_for(self.model, stacked, lengths).loss(gold)
        weight = self.model.attrs.get("distill_weight", 0.0)
        if weight > 0:  # the v2 builder refuses it with fewer than two members
            distill_loss, d_distill = self._distill_loss(stacked, lengths)
            loss += weight * distill_loss
            d_scores = d_scores + weight * d_distill
        return loss * n, d_scores * n

    def _distill_loss(self, stacked: Floats3d, lengths: Ints1d) -> Tuple[float, Floats3d]:
        """Mean per sequence over the members of sum_t KL(q_t || p_t), where p
        is a member's softmax over its emissions and q the softmax of the
        other members' mean emissions (a fixed target), and its gradient
        p - q per position. The CRF scores a tag path by emissions plus
        transitions, so pulling the emissions together is what makes one
        member decode like the averaged ensemble."""
        xp = self.model.ops.xp
        n, n_seqs = self.n_members, len(self.lengths)
        total = sum(self.member_emissions[1:], self.member_emissions[0])
        others = xp.concatenate([(total - em) / (n - 1) for em in self.member_emissions], axis=0)
        log_p = _log_softmax(xp, stacked)
        log_q = _log_softmax(xp, others)
        q = xp.exp(log_q)
        max_len = stacked.shape[1]
        mask = (xp.arange(max_len)[None, :] < lengths[:, None]).astype(stacked.dtype)[:, :, None]
        kl = float((q * (log_q - log_p) * mask).sum())
        d_stacked = (xp.exp(log_p) - q) * mask
        # The same scale as crf_gold_loss: mean per sequence of each member.
        return kl / max(n_seqs * n, 1), d_stacked / max(n_seqs, 1)

    def decode(self, fixed: FixedSpans = None) -> numpy.ndarray:
        return scores_for(self.model, self.emissions, self.lengths).decode(fixed)

    def log_likelihood(self, tags: GoldTags) -> numpy.ndarray:
        """The members' mean log-likelihood, each under its own CRF."""
        crf = self.model.get_ref("crf")
        if self.model.attrs["decoder"] != "crf" or not isinstance(crf_module(crf), CRFEnsemble):
            return scores_for(self.model, self.emissions, self.lengths).log_likelihood(tags)
        return numpy.mean(
            [member_log_likelihood(crf, i, em, self.lengths, tags) for i, em in enumerate(self.member_emissions)],
            axis=0,
        )


def _log_softmax(xp: Any, scores: Floats3d) -> Floats3d:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def _ensemble_forward(model: Model, lattice: Lattice, is_train: bool) -> Tuple[TagScores, Callable]:
    if not is_train and model.attrs.get("predict_with", "mean") == "first":
        return _first_member_forward(model, lattice)
    outputs = _member_outputs(model.layers[:-1], lattice, is_train)
    n_members = len(outputs)
    lengths = outputs[0][0][1]
    scores = [scores for (scores, _), _ in outputs]
    backprops = [backprop for _, backprop in outputs]
    weights = None
    if is_train and model.attrs["bagging"] and n_members > 1:
        draws = numpy.random.poisson(1.0, size=(n_members * len(lattice), 1, 1))
        weights = model.ops.asarray(draws.astype("float32"))

    def backprop(d_scores: Floats3d) -> Lattice:
        """d_scores: the stacked gradient of EnsembleScores.loss (training),
        or a gradient of the averaged emissions."""
        xp = model.ops.xp
        if d_scores.shape[0] == n_members * len(lattice):
            d_scores = d_scores if weights is None else d_scores * weights
            parts = xp.split(d_scores, n_members, axis=0)
        else:
            parts = [d_scores / n_members] * n_members
        for member_backprop, d_member in zip(backprops, parts):
            member_backprop(d_member)
        return lattice

    return EnsembleScores(model, scores, lengths), backprop


def _first_member_forward(model: Model, lattice: Lattice) -> Tuple[TagScores, Callable]:
    """Prediction by the first member alone, scored by its own CRF."""
    (emissions, lengths), _ = model.layers[0](lattice, is_train=False)
    crf = model.get_ref("crf")
    module = crf_module(crf)
    if model.attrs["decoder"] == "crf" and isinstance(module, CRFEnsemble):
        scores: TagScores = MemberScores(model, emissions, lengths, member=0)
    else:
        scores = scores_for(model, emissions, lengths)

    def backprop(d_scores: Floats3d) -> Lattice:
        raise ValueError("predict_with = 'first' scores are for prediction; training uses all members.")

    return scores, backprop


class MemberScores(TagScores):
    """One member's emissions, decoded and scored with its own CRF."""

    def __init__(self, model: Model, emissions: Floats3d, lengths: Ints1d, member: int) -> None:
        self.model, self.emissions, self.lengths, self.member = model, emissions, lengths, member

    def loss(self, gold: GoldTags) -> Tuple[float, Floats3d]:
        raise ValueError("predict_with = 'first' scores are for prediction; training uses all members.")

    def decode(self, fixed: FixedSpans = None) -> numpy.ndarray:
        return member_decode(self.model.get_ref("crf"), self.member, self.emissions, self.lengths, fixed)

    def log_likelihood(self, tags: GoldTags) -> numpy.ndarray:
        return member_log_likelihood(self.model.get_ref("crf"), self.member, self.emissions, self.lengths, tags)


def _member_outputs(members: List[Model], lattice: Lattice, is_train: bool) -> List[Tuple[Padded, Callable]]:
    """Each member's emissions. Members built from one embed config read the
    same features, so the hashing runs once."""
    embeds = [member.layers[0] for member in members]
    if not featurizes_alike(embeds):
        return [member(lattice, is_train) for member in members]
    features = featurize(embeds[0], lattice)
    return [
        emissions_forward(member, lattice, is_train, embed_features(embed, features, lattice, is_train))
        for member, embed in zip(members, embeds)
    ]


def weights_shapes(model: Model) -> List[Tuple[str, Tuple]]:
    """(layer name, its torch parameter shapes) of every torch layer: two
    models trained from one config have the same."""
    return [
        (node.name, tuple(sorted((k, tuple(v.shape)) for k, v in node.shims[0]._model.state_dict().items())))
        for node in model.walk()
        if node.shims
    ]


def copy_member_weights(ensemble: Model, sources: Sequence[Model]) -> None:
    """Copy each trained spacy-lexner.LexiconTagger.v1 model of sources into
    one member of an initialized ensemble (and its CRF into the member's CRF)."""
    for member, source in zip(ensemble.layers[:-1], sources):
        for target_layer, source_layer in zip(member.layers, source.layers[:3]):
            target_layer.from_bytes(source_layer.to_bytes())
    crf = crf_module(ensemble.get_ref("crf"))
    # A softmax ensemble keeps one (unused, constraint-only) CRF.
    crf_members = crf.members if isinstance(crf, CRFEnsemble) else [crf]
    for crf_member, source in zip(crf_members, sources):
        crf_member.load_state_dict(crf_module(source.get_ref("crf")).state_dict())
