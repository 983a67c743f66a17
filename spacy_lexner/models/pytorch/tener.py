"""The torch module of spacy-lexner.TENEREncoder.v1 (see models/encoders/tener.py)."""

import math

import torch
from torch import nn


def relative_sinusoids(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """[2 * length - 1, dim] embeddings of the distances -(length-1) .. length-1."""
    distances = torch.arange(-(length - 1), length, device=device, dtype=torch.float).unsqueeze(1)
    freqs = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float) * (-math.log(10000.0) / dim))
    angles = distances * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class RelativeSelfAttention(nn.Module):
    def __init__(self, width: int, n_heads: int, dropout: float, scaled: bool) -> None:
        super().__init__()
        self.n_heads, self.head_width = n_heads, width // n_heads
        self.query = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.u = nn.Parameter(torch.zeros(n_heads, self.head_width))
        self.v = nn.Parameter(torch.zeros(n_heads, self.head_width))
        nn.init.xavier_normal_(self.u)
        nn.init.xavier_normal_(self.v)
        self.out = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.scale = 1.0 / math.sqrt(self.head_width) if scaled else 1.0

    def forward(self, X: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = X.shape
        split = lambda T: T.view(batch, length, self.n_heads, self.head_width).transpose(1, 2)  # noqa: E731
        Q, K, V = split(self.query(X)), split(X), split(self.value(X))
        content = torch.matmul(Q + self.u[:, None, :], K.transpose(-1, -2))
        R = relative_sinusoids(length, self.head_width, X.device)  # [2L-1, d]
        position_all = torch.matmul(Q + self.v[:, None, :], R.t())  # [B, H, L, 2L-1]
        # Row t needs distance t - j, i.e. column (t - j) + (L - 1).
        index = (
            (torch.arange(length, device=X.device)[:, None] - torch.arange(length, device=X.device)[None, :])
            + length
            - 1
        )
        position = position_all.gather(-1, index.expand(batch, self.n_heads, length, length))
        scores = (content + position) * self.scale
        scores = scores.masked_fill(pad_mask[:, None, None, :], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        context = torch.matmul(weights, V).transpose(1, 2).reshape(batch, length, width)
        return self.out(context)


class TENERLayer(nn.Module):
    def __init__(
        self, width: int, n_heads: int, ff_width: int, dropout: float, attention_dropout: float, scaled: bool
    ) -> None:
        super().__init__()
        self.attention = RelativeSelfAttention(width, n_heads, attention_dropout, scaled)
        self.norm1 = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, ff_width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_width, width)
        )
        self.norm2 = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, X: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        X = self.norm1(X + self.dropout(self.attention(X, pad_mask)))
        return self.norm2(X + self.dropout(self.feed_forward(X)))


class TENER(nn.Module):
    def __init__(
        self,
        nI: int,
        width: int,
        depth: int,
        n_heads: int,
        ff_width: int,
        dropout: float,
        attention_dropout: float,
        scaled: bool,
    ) -> None:
        super().__init__()
        self.width = width
        self.project = nn.Linear(nI, width)
        self.layers = nn.ModuleList(
            TENERLayer(width, n_heads, ff_width, dropout, attention_dropout, scaled) for _ in range(depth)
        )

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if X.shape[0] == 0 or X.shape[1] == 0:
            return X.new_zeros((X.shape[0], X.shape[1], self.width))
        pad_mask = torch.arange(X.shape[1], device=X.device)[None, :] >= lengths.to(X.device)[:, None]
        # An all-padding row (an empty text) would give NaN softmax rows.
        pad_mask = pad_mask & (lengths.to(X.device)[:, None] > 0)
        H = self.project(X)
        for layer in self.layers:
            H = layer(H, pad_mask)
        return H * (~pad_mask).unsqueeze(-1)
