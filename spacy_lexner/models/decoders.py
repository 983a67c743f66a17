"""Decoders: emission scorer, loss and decode, as one registered architecture.

    States(H, lengths) ──scorer──▶ emissions[batch, time, tags] ──▶ TagScores
                                   .loss(gold)     (CRF NLL or softmax cross-entropy)
                                   .decode(fixed)  (constrained Viterbi)

``spacy-lexner.CRFDecoder.v1`` scores tag sequences with a linear-chain CRF
whose transitions forbid invalid tag sequences; ``spacy-lexner.SoftmaxDecoder.v1``
scores each position on its own and decodes with the same constraints. The
CRF layer owns its transition parameters, so they are updated by the
optimizer with the rest of the model and saved inside ``model`` bytes. Its
forward pass takes ``(emissions, tag_ids, lengths)`` and returns the summed
negative log-likelihood; its backward pass returns the gradient of the
emissions.

A decoder node has the refs "scorer" and "crf" and the attrs "decoder"
("crf" or "softmax") and "scheme". spacy-lexner.LexiconTagger.v1, which
predates the decoder architectures, keeps those on the tagger node itself, so
pipelines saved with it load unchanged and run through the same code.
"""

from typing import Any, Callable, List, Optional, Tuple, Union

import numpy
import torch
from spacy.util import registry
from thinc.api import ArgsKwargs, Model
from thinc.types import Floats3d, Ints1d, Ints2d
from torchcrf import CRF

from ..util.tags import TagScheme
from ..util.torch_utils import LazyTorchWrapper, first_input_gradient, to_torch
from .encoders.common import padded_encoder
from .pytorch.crf import FORBIDDEN, ConstrainedCRF, CRFEnsemble, viterbi_decode
from .pytorch.scorer import EmissionScorer
from .types import FixedSpans, GoldTags, States, TagScores

DECODERS = ("crf", "softmax")

CRFInput = Tuple[Floats3d, Ints2d, Ints1d]


def build_crf_layer(scheme: str = "BIOES", n_members: int = 1) -> Model[CRFInput, float]:
    """The CRF layer. Its labels are set by the pipe (attrs "labels") before
    ``initialize``; the tag inventory and the constraints follow from them.

    n_members > 1 gives one CRF per member of a tagger ensemble (see
    torch_crf.CRFEnsemble); 1 keeps the single CRF and its saved format.
    """
    return LazyTorchWrapper(
        "crf",
        _build_crf_module,
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        dims={"nO": None},
        attrs={"labels": [], "scheme": scheme, "n_members": n_members},
    )


def tag_scheme_of(model: Model) -> TagScheme:
    return TagScheme(model.attrs["labels"], model.attrs["scheme"])


def set_crf_labels(model: Model, labels: List[str]) -> None:
    model.attrs["labels"] = sorted(labels)
    model.set_dim("nO", len(tag_scheme_of(model)), force=True)


def _build_crf_module(model: Model) -> Union[ConstrainedCRF, CRFEnsemble]:
    scheme = tag_scheme_of(model)
    if len(scheme) != model.get_dim("nO"):
        raise ValueError(
            f"CRF layer has nO={model.get_dim('nO')} but its labels give "
            f"{len(scheme)} tags. Set labels with set_crf_labels()."
        )
    constraints = (
        torch.from_numpy(scheme.allowed_transitions()),
        torch.from_numpy(scheme.allowed_starts()),
        torch.from_numpy(scheme.allowed_ends()),
    )
    n_members = model.attrs.get("n_members", 1)
    if n_members > 1:
        return CRFEnsemble(n_members, len(scheme), *constraints)
    return ConstrainedCRF(len(scheme), *constraints)


def _lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def _convert_inputs(model: Model, X: CRFInput, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    emissions, tag_ids, lengths = X
    em = to_torch(model, emissions, requires_grad=is_train)
    tags = to_torch(model, tag_ids).long()
    mask = _lengths_to_mask(to_torch(model, lengths).long(), em.shape[1])
    return ArgsKwargs(args=(em, tags, mask), kwargs={}), first_input_gradient


def _convert_outputs(model: Model, inputs_outputs: Any, is_train: bool):
    _, nll = inputs_outputs

    def get_d_nll(d_loss: float) -> ArgsKwargs:
        grad = torch.tensor(float(d_loss), device=nll.device, dtype=nll.dtype)
        return ArgsKwargs(args=(nll,), kwargs={"grad_tensors": grad})

    return float(nll.detach().cpu()), get_d_nll


def crf_loss(model: Model, emissions: Floats3d, tag_ids: Ints2d, lengths: Ints1d) -> Tuple[float, Floats3d]:
    """Summed NLL of the gold tags and d(NLL)/d(emissions)."""
    if emissions.shape[0] == 0:
        return 0.0, emissions
    nll, backprop = model.begin_update((emissions, tag_ids, lengths))
    return nll, backprop(1.0)


def pad_gold(gold: List[numpy.ndarray], max_len: int) -> numpy.ndarray:
    """Gold tag id sequences, zero padded to [len(gold), max_len]."""
    padded = numpy.zeros((len(gold), max_len), dtype="int64")
    for i, tags in enumerate(gold):
        padded[i, : len(tags)] = tags
    return padded


def crf_gold_loss(
    model: Model, emissions: Floats3d, lengths: Ints1d, gold: List[numpy.ndarray]
) -> Tuple[float, Floats3d]:
    """Mean NLL per sequence of the gold tags, and its gradient. Empty
    sequences (empty docs) add nothing: pytorch-crf cannot score them."""
    ops = model.ops
    n_seqs = emissions.shape[0]
    nonempty = ops.to_numpy(lengths) > 0
    d_emissions = ops.alloc3f(*emissions.shape)
    if not nonempty.any():
        return 0.0, d_emissions
    rows = ops.asarray1i(numpy.nonzero(nonempty)[0])
    gold_padded = ops.asarray(pad_gold([g for g, keep in zip(gold, nonempty) if keep], emissions.shape[1]))
    loss, d_rows = crf_loss(model, emissions[rows], gold_padded, lengths[rows])
    d_emissions[rows] = d_rows
    return loss / n_seqs, d_emissions / n_seqs


def fixed_tag_scores(scheme: TagScheme, fixed: FixedSpans, shape: Tuple[int, int]) -> Optional[numpy.ndarray]:
    """Scores to add to the emissions [n_seqs, max_len, n_tags] so that the
    best path keeps the fixed (preset) spans of each sequence.

    A span whose label the scheme knows must get exactly its own tags
    (B-, I-, E- or S-); a span with any other label must get O, so no
    predicted entity runs into it. Every other tag there scores FORBIDDEN,
    as a forbidden transition does, so the constrained Viterbi also moves
    the boundaries of neighbouring entities where the transitions demand it.
    None when nothing is fixed.
    """
    if not fixed or not any(fixed):
        return None
    n_seqs, max_len = shape
    scores = numpy.zeros((n_seqs, max_len, len(scheme)), dtype="float32")
    known = set(scheme.labels)
    for i, spans in enumerate(fixed):
        for start, end, label in spans:
            end = min(end, max_len)
            if start >= end:
                continue
            n = end - start
            tags = scheme.encode(n, [(0, n, label)]) if label in known else numpy.zeros((n,), dtype="int64")
            scores[i, start:end] = FORBIDDEN
            scores[i, numpy.arange(start, end), tags] = 0.0
    return scores


def crf_decode(model: Model, emissions: Floats3d, lengths: Ints1d, fixed: FixedSpans = None) -> numpy.ndarray:
    """Best valid tag ids per sequence, batched; returned as a numpy array.
    fixed: per sequence, (start, end, label) spans the path must keep."""
    return _viterbi_with(model, crf_module(model), emissions, lengths, fixed)


def member_decode(
    model: Model, index: int, emissions: Floats3d, lengths: Ints1d, fixed: FixedSpans = None
) -> numpy.ndarray:
    """crf_decode with member `index` of an ensemble's CRF layer alone."""
    return _viterbi_with(model, crf_module(model).members[index], emissions, lengths, fixed)


def _viterbi_with(model: Model, module: Any, emissions: Floats3d, lengths: Ints1d, fixed: FixedSpans) -> numpy.ndarray:
    if emissions.shape[0] == 0:
        return numpy.zeros((0, emissions.shape[1]), dtype="int64")
    with torch.no_grad():
        em = to_torch(model, emissions).float()
        forced = fixed_tag_scores(tag_scheme_of(model), fixed, em.shape[:2])
        if forced is not None:
            em = em + torch.from_numpy(forced).to(em.device)
        mask = _lengths_to_mask(to_torch(model, lengths).long(), em.shape[1])
        paths = module.viterbi(em, mask)
    return paths.cpu().numpy()


def masked_decode(model: Model, scores: Floats3d, lengths: Ints1d, fixed: FixedSpans = None) -> numpy.ndarray:
    """Softmax decoding that still only yields valid sequences: Viterbi over
    log-probabilities with zero-cost (but constrained) transitions. fixed
    spans are kept as in crf_decode."""
    scheme = tag_scheme_of(model)
    allowed = torch.from_numpy(scheme.allowed_transitions())
    with torch.no_grad():
        em = torch.log_softmax(torch.as_tensor(numpy.asarray(scores)).float(), dim=-1)
        forced = fixed_tag_scores(scheme, fixed, em.shape[:2])
        if forced is not None:
            em = em + torch.from_numpy(forced)
        mask = _lengths_to_mask(torch.as_tensor(numpy.asarray(lengths)).long(), em.shape[1])
        zeros = torch.zeros(len(scheme))
        start = zeros.masked_fill(~torch.from_numpy(scheme.allowed_starts()), FORBIDDEN)
        end = zeros.masked_fill(~torch.from_numpy(scheme.allowed_ends()), FORBIDDEN)
        trans = torch.zeros_like(allowed, dtype=torch.float).masked_fill(~allowed, FORBIDDEN)
        return viterbi_decode(em, mask, start, trans, end).numpy()


def crf_module(model: Model) -> Union[ConstrainedCRF, CRFEnsemble]:
    """The torch module of an initialized CRF layer."""
    return model.shims[0]._model


def softmax_loss(ops: Any, scores: Floats3d, gold: GoldTags, lengths: Ints1d) -> Tuple[float, Floats3d]:
    """Mean cross-entropy per sequence of gold tags under a per-position
    softmax, and its gradient."""
    scores_np = ops.to_numpy(scores).astype("float32")
    lengths_np = ops.to_numpy(lengths)
    n_seqs, max_len, n_tags = scores_np.shape
    gold_padded = pad_gold(list(gold), max_len)
    mask = numpy.arange(max_len)[None, :] < lengths_np[:, None]
    shifted = scores_np - scores_np.max(axis=-1, keepdims=True)
    probs = numpy.exp(shifted)
    probs /= probs.sum(axis=-1, keepdims=True)
    truth = numpy.zeros_like(probs)
    numpy.put_along_axis(truth, gold_padded[..., None], 1.0, axis=-1)
    d_scores = (probs - truth) * mask[..., None] / max(n_seqs, 1)
    picked = numpy.take_along_axis(probs, gold_padded[..., None], axis=-1)[..., 0]
    loss = float(-(numpy.log(picked + 1e-12) * mask).sum() / max(n_seqs, 1))
    return loss, ops.asarray(d_scores.astype("float32"))


def crf_log_likelihood(model: Model, emissions: Floats3d, lengths: Ints1d, tags: GoldTags) -> numpy.ndarray:
    """[batch] log p(tags) of each sequence under a CRF layer (0 for empty
    sequences); an ensemble's CRF scores with its averaged potentials."""
    return _log_likelihood(model, crf_module(model), emissions, lengths, tags)


def member_log_likelihood(
    model: Model, index: int, emissions: Floats3d, lengths: Ints1d, tags: GoldTags
) -> numpy.ndarray:
    """crf_log_likelihood under member `index` of an ensemble's CRF layer."""
    return _log_likelihood(model, crf_module(model).members[index], emissions, lengths, tags)


def _log_likelihood(model: Model, module: Any, emissions: Floats3d, lengths: Ints1d, tags: GoldTags) -> numpy.ndarray:
    result = numpy.zeros((emissions.shape[0],), dtype="float32")
    lengths_np = numpy.asarray(model.ops.to_numpy(lengths))
    rows = numpy.nonzero(lengths_np > 0)[0]
    if not len(rows):
        return result
    with torch.no_grad():
        em = to_torch(model, emissions).float()[torch.as_tensor(rows)]
        gold = torch.as_tensor(pad_gold([tags[i] for i in rows], em.shape[1]), device=em.device)
        mask = _lengths_to_mask(torch.as_tensor(lengths_np[rows], device=em.device), em.shape[1])
        if isinstance(module, ConstrainedCRF):
            # pytorch-crf's own forward is the log-likelihood (ours is the loss).
            result[rows] = CRF.forward(module, em, gold, mask=mask, reduction="none").cpu().numpy()
        else:
            result[rows] = _potentials_log_likelihood(module, em, gold, mask).cpu().numpy()
    return result


def _potentials_log_likelihood(module: Any, em: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(tags) under any module with start/transition/end scores (an
    ensemble's averaged potentials), batch-first, by the forward algorithm."""
    start, trans, end = module.start_transitions, module.transitions, module.end_transitions
    rows = torch.arange(em.shape[0], device=em.device)
    lengths = mask.long().sum(dim=1)
    score = start[tags[:, 0]] + em[rows, 0, tags[:, 0]]
    alpha = start + em[:, 0]
    for t in range(1, em.shape[1]):
        active = mask[:, t]
        step = trans[tags[:, t - 1], tags[:, t]] + em[rows, t, tags[:, t]]
        score = score + step * active
        stepped = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + em[:, t]
        alpha = torch.where(active.unsqueeze(1), stepped, alpha)
    score = score + end[tags[rows, lengths - 1]]
    return score - torch.logsumexp(alpha + end, dim=1)


def softmax_log_likelihood(ops: Any, emissions: Floats3d, lengths: Ints1d, tags: GoldTags) -> numpy.ndarray:
    """[batch] sum over positions of log softmax(emissions)[tag]."""
    scores = torch.log_softmax(torch.as_tensor(ops.to_numpy(emissions)).float(), dim=-1).numpy()
    return numpy.array(
        [float(scores[i, numpy.arange(len(t)), t].sum()) if len(t) else 0.0 for i, t in enumerate(tags)],
        dtype="float32",
    )


class CRFScores(TagScores):
    """Emissions decoded by a CRF layer (one CRF or a member-per-CRF ensemble)."""

    def __init__(self, emissions: Floats3d, lengths: Ints1d, crf: Model) -> None:
        self.emissions, self.lengths, self.crf = emissions, lengths, crf

    def loss(self, gold: GoldTags) -> Tuple[float, Floats3d]:
        return crf_gold_loss(self.crf, self.emissions, self.lengths, list(gold))

    def decode(self, fixed: FixedSpans = None) -> numpy.ndarray:
        return crf_decode(self.crf, self.emissions, self.lengths, fixed)

    def log_likelihood(self, tags: GoldTags) -> numpy.ndarray:
        return crf_log_likelihood(self.crf, self.emissions, self.lengths, tags)


class SoftmaxScores(TagScores):
    """Per-position scores; the CRF layer only lends its tag constraints."""

    def __init__(self, emissions: Floats3d, lengths: Ints1d, crf: Model) -> None:
        self.emissions, self.lengths, self.crf = emissions, lengths, crf

    def loss(self, gold: GoldTags) -> Tuple[float, Floats3d]:
        return softmax_loss(self.crf.ops, self.emissions, gold, self.lengths)

    def decode(self, fixed: FixedSpans = None) -> numpy.ndarray:
        ops = self.crf.ops
        return masked_decode(self.crf, ops.to_numpy(self.emissions), ops.to_numpy(self.lengths), fixed)

    def log_likelihood(self, tags: GoldTags) -> numpy.ndarray:
        return softmax_log_likelihood(self.crf.ops, self.emissions, self.lengths, tags)


def scores_for(decoder: Model, emissions: Floats3d, lengths: Ints1d) -> TagScores:
    """The TagScores a decoder node gives for its emissions."""
    cls = CRFScores if decoder.attrs["decoder"] == "crf" else SoftmaxScores
    return cls(emissions, lengths, decoder.get_ref("crf"))


def check_decoder(decoder: str) -> None:
    if decoder not in DECODERS:
        raise ValueError(f"Unknown decoder '{decoder}'. Use one of {DECODERS}.")


def build_emission_scorer() -> Model[Tuple[Floats3d, Ints1d], Floats3d]:
    """A linear layer from encoder states to per-tag scores; its widths are
    set when the decoder is initialized."""
    return padded_encoder("emission_scorer", _emission_scorer_module, None)


def _emission_scorer_module(model: Model) -> EmissionScorer:
    return EmissionScorer(model.get_dim("nI"), model.get_dim("nO"))


@registry.architectures("spacy-lexner.CRFDecoder.v1")
def build_crf_decoder(scheme: str = "BIOES") -> Model[States, TagScores]:
    """Emission scores decoded by a linear-chain CRF whose transitions only
    allow valid tag sequences.

    scheme: "BIOES" or "BIO" tags.
    """
    return _build_decoder("crf", scheme)


@registry.architectures("spacy-lexner.SoftmaxDecoder.v1")
def build_softmax_decoder(scheme: str = "BIOES") -> Model[States, TagScores]:
    """Independent per-position tag scores (cross-entropy loss), decoded with
    the same validity constraints as the CRF (a Viterbi with zero-cost,
    constrained transitions).

    scheme: "BIOES" or "BIO" tags.
    """
    return _build_decoder("softmax", scheme)


def _build_decoder(kind: str, scheme: str) -> Model[States, TagScores]:
    TagScheme([], scheme)  # validates the scheme name
    scorer = build_emission_scorer()
    crf = build_crf_layer(scheme)
    return Model(
        f"{kind}_decoder",
        decoder_forward,
        init=_decoder_init,
        layers=[scorer, crf],
        refs={"scorer": scorer, "crf": crf},
        dims={"nI": None, "nO": None},
        attrs={"decoder": kind, "scheme": scheme},
    )


def _decoder_init(model: Model, X: Any = None, Y: Any = None) -> None:
    initialize_decoder(model, model.get_dim("nI"))


def initialize_decoder(decoder: Model, n_inputs: int) -> None:
    """Size the scorer to n_inputs and the decoder's tags, then build the
    scorer and the CRF (in that order: it fixes the random initialisation)."""
    crf = decoder.get_ref("crf")
    n_tags = crf.get_dim("nO")
    scorer = decoder.get_ref("scorer")
    scorer.set_dim("nI", n_inputs, force=True)
    scorer.set_dim("nO", n_tags, force=True)
    scorer.initialize()
    crf.initialize()
    if decoder.has_dim("nO") is not False:
        decoder.set_dim("nO", n_tags, force=True)


def decoder_forward(model: Model, states: States, is_train: bool) -> Tuple[TagScores, Callable]:
    """Emission scores of the states, as the decoder's TagScores; the
    backprop takes the gradient TagScores.loss returned."""
    H, lengths = states[0], states[1]
    emissions, bp_scorer = model.get_ref("scorer")((H, lengths), is_train)
    return scores_for(model, emissions, lengths), bp_scorer
