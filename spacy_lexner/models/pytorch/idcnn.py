"""The torch module of spacy-lexner.IDCNNEncoder.v1 (see models/encoders/idcnn.py)."""

from typing import List

import torch
from torch import nn


class IDCNN(nn.Module):
    def __init__(
        self, nI: int, width: int, dilations: List[int], n_blocks: int, kernel_size: int, dropout: float
    ) -> None:
        super().__init__()
        self.project = nn.Conv1d(nI, width, kernel_size, padding=kernel_size // 2)
        self.block = nn.ModuleList(
            nn.Conv1d(width, width, kernel_size, dilation=d, padding=d * (kernel_size // 2)) for d in dilations
        )
        self.n_blocks = n_blocks
        self.dropout = nn.Dropout(dropout)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if X.shape[0] == 0 or X.shape[1] == 0:
            return X.new_zeros((X.shape[0], X.shape[1], self.project.out_channels))
        # Padding is zeroed after every layer so it never leaks into real
        # positions through the dilated receptive field.
        mask = (torch.arange(X.shape[1], device=X.device)[None, :] < lengths.to(X.device)[:, None]).unsqueeze(1)
        H = torch.relu(self.project(X.transpose(1, 2))) * mask
        for _ in range(self.n_blocks):
            for conv in self.block:
                H = torch.relu(conv(H)) * mask
            H = self.dropout(H)
        return H.transpose(1, 2)
