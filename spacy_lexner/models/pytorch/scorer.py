"""The emission scorer: encoder states to per-tag scores."""

import torch
from torch import nn


class EmissionScorer(nn.Module):
    """A linear layer from encoder states to per-tag scores."""

    def __init__(self, nI: int, nO: int) -> None:
        super().__init__()
        self.linear = nn.Linear(nI, nO)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.linear(X)
