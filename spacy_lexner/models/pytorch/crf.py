"""pytorch-crf with transitions constrained to valid tag sequences, and a
batched Viterbi decoder.

pytorch-crf computes the likelihood from ``self.transitions``,
``self.start_transitions`` and ``self.end_transitions``. We keep its code for
the loss and expose those three names as properties that mask forbidden
transitions with a large negative score, so an invalid sequence gets (almost)
zero probability during training and can never be decoded.

pytorch-crf's own ``decode`` backtracks each sequence in a Python loop; ours
steps the whole batch at once (see viterbi_decode and benchmarks/decode_share.py).
"""

import warnings
from typing import Optional

import numpy
import torch
from torch import nn
from torchcrf import CRF

FORBIDDEN = -10000.0


class ConstrainedCRF(CRF):
    def __init__(
        self,
        num_tags: int,
        allowed_transitions: Optional[torch.Tensor] = None,
        allowed_starts: Optional[torch.Tensor] = None,
        allowed_ends: Optional[torch.Tensor] = None,
    ) -> None:
        super().__init__(num_tags, batch_first=True)
        ones = torch.ones(num_tags, dtype=torch.bool)
        if allowed_transitions is None:
            allowed_transitions = torch.ones(num_tags, num_tags, dtype=torch.bool)
        self.register_buffer("allowed_transitions", allowed_transitions.bool(), persistent=False)
        self.register_buffer(
            "allowed_starts", (ones if allowed_starts is None else allowed_starts).bool(), persistent=False
        )
        self.register_buffer("allowed_ends", (ones if allowed_ends is None else allowed_ends).bool(), persistent=False)

    @property  # type: ignore[override]
    def transitions(self) -> torch.Tensor:
        return self._masked("transitions", "allowed_transitions")

    @property  # type: ignore[override]
    def start_transitions(self) -> torch.Tensor:
        return self._masked("start_transitions", "allowed_starts")

    @property  # type: ignore[override]
    def end_transitions(self) -> torch.Tensor:
        return self._masked("end_transitions", "allowed_ends")

    def _masked(self, name: str, allowed_name: str) -> torch.Tensor:
        # Raising AttributeError (not KeyError) while pytorch-crf's __init__
        # registers the parameter lets nn.Module see the name as free.
        if name not in self._parameters:
            raise AttributeError(name)
        raw = self._parameters[name]
        allowed = self._buffers.get(allowed_name)
        return raw if allowed is None else raw.masked_fill(~allowed, FORBIDDEN)

    def reset_parameters(self) -> None:
        for name in ("start_transitions", "end_transitions", "transitions"):
            nn.init.uniform_(self._parameters[name], -0.1, 0.1)

    def forward(  # type: ignore[override]
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Summed negative log-likelihood of the batch (batch-first tensors).

        Unlike pytorch-crf's forward (the log-likelihood), this is the loss,
        since the thinc shim calls forward.
        """
        return -CRF.forward(self, emissions, tags, mask=mask.bool(), reduction="sum")

    def neg_log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Deprecated alias of forward (the loss); removed in spacy-lexner 0.3."""
        warnings.warn(
            "ConstrainedCRF.neg_log_likelihood is deprecated and will be removed in spacy-lexner 0.3: "
            "call the module (forward), which returns the same loss.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.forward(emissions, tags, mask)

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag ids [batch, time]; positions past each length are 0."""
        return viterbi_decode(emissions, mask, self.start_transitions, self.transitions, self.end_transitions)


@torch.no_grad()  # a decode: nothing to differentiate, and out= refuses autograd
def viterbi_decode(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    """Batched Viterbi over batch-first emissions [B, T, K] and a bool mask [B, T].

    The mask must be a prefix mask (sequences are left-aligned). The forward
    pass runs one whole-batch tensor step per time step, and only over the
    sequences that are still running: rows are sorted by length, so step t
    works on the first n_active[t] rows. With real length distributions
    (Resume test, batch 32) this is 3x faster than stepping the padded batch
    (benchmarks/decode_share.py). The backtrace is a numpy loop over one
    host copy of the backpointers.
    """
    batch, length, n_tags = emissions.shape
    if length == 0 or batch == 0:
        return emissions.new_zeros((batch, length), dtype=torch.long)
    lengths = mask.long().sum(dim=1)
    order = torch.argsort(lengths, descending=True)
    # Time-major, so step t reads a contiguous block of the running rows.
    emissions = emissions[order].transpose(0, 1).contiguous()
    sorted_lengths = lengths[order].cpu().numpy()
    n_active = (sorted_lengths[None, :] > numpy.arange(length)[:, None]).sum(axis=1).tolist()
    transitions_to_from = transitions.t().unsqueeze(0)
    score = start + emissions[0]
    best = torch.empty_like(score)
    history = torch.zeros((length - 1, batch, n_tags), dtype=torch.long, device=emissions.device)
    # Three ops per step, writing into preallocated buffers (out=): at ~150
    # steps of ~32 rows per batch, per-op overhead is most of the cost.
    for t in range(1, length):
        n = n_active[t]
        if n == 0:
            break
        # Finished rows (n and beyond) keep the score of their last step.
        torch.max(score[:n].unsqueeze(1) + transitions_to_from, dim=2, out=(best[:n], history[t - 1, :n]))
        torch.add(best[:n], emissions[t, :n], out=score[:n])
    current = (score + end).argmax(dim=1).cpu().numpy()
    backpointers = history.cpu().numpy()
    paths = numpy.zeros((batch, length), dtype="int64")
    rows = numpy.arange(batch)
    for t in range(length - 1, -1, -1):
        n = int(n_active[t])
        # Rows that end at t take their best last tag; longer rows follow
        # their backpointer; shorter rows wait for their own end.
        paths[:n, t] = current[:n]
        if t > 0 and n:
            current[:n] = backpointers[t - 1, rows[:n], current[:n]]
    unsorted = numpy.empty_like(paths)
    unsorted[order.cpu().numpy()] = paths
    return torch.from_numpy(unsorted).to(emissions.device)


class CRFEnsemble(nn.Module):
    """One ConstrainedCRF per member of a tagger ensemble.

    In training, the members' emissions arrive stacked along the batch axis
    ([n_members * batch, T, K], member-major) and each member's CRF scores
    its own slice, so every member is trained on its own loss. In decoding,
    the emissions are the members' average and the start, transition and
    end scores are averaged too: one Viterbi over the averaged potentials
    (the ensemble measured in benchmarks/ensemble_potentials.py).
    """

    def __init__(
        self,
        n_members: int,
        num_tags: int,
        allowed_transitions: Optional[torch.Tensor] = None,
        allowed_starts: Optional[torch.Tensor] = None,
        allowed_ends: Optional[torch.Tensor] = None,
    ) -> None:
        super().__init__()
        if n_members < 1:
            raise ValueError(f"A CRF ensemble needs at least one member, got n_members={n_members}.")
        self.members = nn.ModuleList(
            ConstrainedCRF(num_tags, allowed_transitions, allowed_starts, allowed_ends) for _ in range(n_members)
        )

    @property
    def transitions(self) -> torch.Tensor:
        return self._mean("transitions")

    @property
    def start_transitions(self) -> torch.Tensor:
        return self._mean("start_transitions")

    @property
    def end_transitions(self) -> torch.Tensor:
        return self._mean("end_transitions")

    def _mean(self, name: str) -> torch.Tensor:
        return torch.stack([getattr(member, name) for member in self.members]).mean(dim=0)

    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood of every member on its own slice."""
        n_members = len(self.members)
        if emissions.shape[0] % n_members:
            raise ValueError(
                f"A {n_members}-member CRF ensemble got {emissions.shape[0]} sequences: "
                "the batch must hold each member's emissions for the same sequences."
            )
        slices = zip(emissions.chunk(n_members), tags.chunk(n_members), mask.chunk(n_members))
        return sum(member(*member_slice) for member, member_slice in zip(self.members, slices))

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag ids [batch, time] for averaged emissions [batch, T, K]."""
        return viterbi_decode(emissions, mask, self.start_transitions, self.transitions, self.end_transitions)
