"""Thinc layer around the constrained CRF.

The layer owns the CRF's transition parameters, so they are updated by the
optimizer with the rest of the model and saved inside ``model`` bytes. Its
forward pass takes ``(emissions, tag_ids, lengths)`` and returns the summed
negative log-likelihood; its backward pass returns the gradient of the
emissions, which the pipe sends back through the encoder.
"""
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy
import torch
from thinc.api import ArgsKwargs, Model
from thinc.types import Floats3d, Ints1d, Ints2d

from ..torch_utils import LazyTorchWrapper, first_input_gradient, to_torch
from .tag_scheme import Span, TagScheme
from .torch_crf import FORBIDDEN, ConstrainedCRF, CRFEnsemble, viterbi_decode

CRFInput = Tuple[Floats3d, Ints2d, Ints1d]
FixedSpans = Optional[Sequence[Sequence[Span]]]


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


def crf_loss(
    model: Model, emissions: Floats3d, tag_ids: Ints2d, lengths: Ints1d
) -> Tuple[float, Floats3d]:
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
    if emissions.shape[0] == 0:
        return numpy.zeros((0, emissions.shape[1]), dtype="int64")
    module: Union[ConstrainedCRF, CRFEnsemble] = model.shims[0]._model
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
