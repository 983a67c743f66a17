"""The torch module of spacy-lexner.BiLSTMEncoder.v1 (see models/encoders/bilstm.py)."""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class BiLSTM(nn.Module):
    def __init__(self, nI: int, nO: int, depth: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            nI,
            nO // 2,
            num_layers=depth,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if depth > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if X.shape[0] == 0 or X.shape[1] == 0:
            return X.new_zeros((X.shape[0], X.shape[1], self.lstm.hidden_size * 2))
        packed = pack_padded_sequence(X, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        Y, _ = pad_packed_sequence(output, batch_first=True, total_length=X.shape[1])
        return self.dropout(Y)
