"""pytorch-crf with transitions constrained to valid tag sequences, and a
batched Viterbi decoder.

pytorch-crf computes the likelihood from ``self.transitions``,
``self.start_transitions`` and ``self.end_transitions``. We keep its code for
the loss and expose those three names as properties that mask forbidden
transitions with a large negative score, so an invalid sequence gets (almost)
zero probability during training and can never be decoded.

pytorch-crf's own ``decode`` backtracks each sequence in a Python loop; ours
keeps the whole batch in tensors for both passes (see benchmarks/crf_decode.py).
"""
from typing import Optional

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
        self.register_buffer("allowed_starts", (ones if allowed_starts is None else allowed_starts).bool(), persistent=False)
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

    neg_log_likelihood = forward

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag ids [batch, time]; positions past each length are 0."""
        return viterbi_decode(
            emissions, mask, self.start_transitions, self.transitions, self.end_transitions
        )


def viterbi_decode(
    emissions: torch.Tensor,
    mask: torch.Tensor,
    start: torch.Tensor,
    transitions: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    """Batched Viterbi over batch-first emissions [B, T, K] and a bool mask [B, T].

    The mask must be a prefix mask (sequences are left-aligned). Both the
    forward pass and the backtrace run over time steps with whole-batch tensor
    ops, so the cost per step does not grow with the batch size in Python.
    """
    batch, length, _ = emissions.shape
    if length == 0:
        return emissions.new_zeros((batch, 0), dtype=torch.long)
    mask = mask.bool()
    score = start + emissions[:, 0]
    history = []
    for t in range(1, length):
        candidates = score.unsqueeze(2) + transitions.unsqueeze(0)
        best, best_prev = candidates.max(dim=1)
        step = mask[:, t].unsqueeze(1)
        score = torch.where(step, best + emissions[:, t], score)
        history.append(best_prev)
    score = score + end
    lengths = mask.sum(dim=1)
    best_last = score.argmax(dim=1)
    paths = emissions.new_zeros((batch, length), dtype=torch.long)
    current = best_last
    for t in range(length - 1, -1, -1):
        # Rows whose sequence ends at t (or later) take their tag from `current`;
        # the backpointer is only followed inside the sequence.
        inside = t < lengths
        paths[:, t] = torch.where(inside, current, paths[:, t])
        if t > 0:
            prev = history[t - 1].gather(1, current.unsqueeze(1)).squeeze(1)
            current = torch.where(inside, prev, current)
    return paths
