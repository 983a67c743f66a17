"""Iterated dilated CNN encoder (Strubell et al., EMNLP 2017): a block of
dilated convolutions applied several times with shared weights. Every layer
runs over the whole batch at once, so it is the fast encoder."""
from functools import partial
from typing import List

import torch
from spacy.util import registry
from thinc.api import Model
from torch import nn

from ..torch_utils import with_input_width
from .common import padded_encoder


@registry.architectures("spacy-lexner.IDCNNEncoder.v1")
def build_idcnn_encoder(
    width: int = 256,
    dilations: List[int] = [1, 1, 2],
    n_blocks: int = 4,
    kernel_size: int = 3,
    dropout: float = 0.2,
) -> Model:
    """width (int): number of filters, also the output width.
    dilations (List[int]): dilation of each convolution in the block.
    n_blocks (int): how often the block (one set of weights) is applied.
    kernel_size (int): odd convolution width.
    dropout (float): dropout after each block.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"IDCNN kernel_size must be odd, got {kernel_size}.")

    build = partial(with_input_width, IDCNN, width=width, dilations=list(dilations), n_blocks=n_blocks, kernel_size=kernel_size, dropout=dropout)
    return padded_encoder("idcnn_encoder", build, width)


class IDCNN(nn.Module):
    def __init__(self, nI: int, width: int, dilations: List[int], n_blocks: int, kernel_size: int, dropout: float) -> None:
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
