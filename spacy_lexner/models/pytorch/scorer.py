"""The emission scorer: encoder states to per-tag scores."""

import torch
from torch import nn


class EmissionScorer(nn.Module):
    """A linear layer from encoder states to per-tag scores."""

    def __init__(self, nI: int, nO: int) -> None:
        super().__init__()
        self.linear = nn.Linear(nI, nO)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or X.shape[0] < 2:
            return self.linear(X)
        # In prediction, score only the real positions: a batch of texts of
        # mixed lengths is mostly padding (4.5x on Resume test, 64 per batch).
        # Padded positions get the bias, as the dense path gives zero rows.
        real = torch.arange(X.shape[1], device=X.device)[None, :] < lengths.to(X.device)[:, None]
        bias = self.linear.bias
        bias = bias() if callable(bias) else bias  # a quantized Linear's bias is a method
        scores = bias.expand(X.shape[0], X.shape[1], -1).clone()
        scores[real] = self.linear(X[real])
        return scores
