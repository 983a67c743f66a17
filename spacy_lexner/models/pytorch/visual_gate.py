"""The torch side of the visual gate (spacy-lexner.VisualGateEmbed.v1)."""

import torch
from torch import nn


class VisualGate(nn.Module):
    """Gated fusion of an image vector into each character vector, in the
    spirit of ACN (Zhang et al., AAAI 2018): the image is projected, and a
    per-character sigmoid gate decides how much of it each character takes.
    A doc without an image has an all-zero image vector, so it adds nothing.
    """

    def __init__(self, char_width: int, image_width: int, width: int) -> None:
        super().__init__()
        self.project = nn.Linear(image_width, width)
        self.gate = nn.Linear(char_width + width, width)

    def forward(self, X: torch.Tensor, images: torch.Tensor, has_image: torch.Tensor) -> torch.Tensor:
        visual = torch.tanh(self.project(images)) * has_image.unsqueeze(1)
        visual = visual.unsqueeze(1).expand(-1, X.shape[1], -1)
        gate = torch.sigmoid(self.gate(torch.cat([X, visual], dim=-1)))
        return torch.cat([X, gate * visual], dim=-1)
