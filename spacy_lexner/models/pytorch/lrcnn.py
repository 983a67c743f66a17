"""The torch module of spacy-lexner.LRCNNEncoder.v1 (see models/encoders/lrcnn.py).

All tensors are channel-last, [batch, time, width]. A kernel-2 convolution
is a Linear over the concatenation of two shifted copies, which needs no
transposes and makes the shifts (the n-gram a position stands for) explicit.
"""

import math
from typing import List, Optional

import torch
from torch import nn
from torch.nn import functional as F

# The context self-attention's dropout, fixed as in the reference code.
ATTENTION_DROPOUT = 0.1


def shift(X: torch.Tensor, k: int) -> torch.Tensor:
    """out[:, t] = X[:, t - k] along dim 1, zero where t - k is outside the
    sequence (k > 0: look back, k < 0: look ahead)."""
    n = X.shape[1]
    if k == 0:
        return X
    if abs(k) >= n:
        return torch.zeros_like(X)
    pad = [0, 0] * (X.dim() - 2)
    if k > 0:
        return F.pad(X[:, : n - k], pad + [k, 0])
    return F.pad(X[:, -k:], pad + [0, -k])


def _xavier_blocks(linear: nn.Linear, width: int) -> None:
    """Xavier-normal init of each width-row block (one per gate), zero bias:
    the reference's init, so every gate starts on the same scale."""
    with torch.no_grad():
        for start in range(0, linear.out_features, width):
            nn.init.xavier_normal_(linear.weight[start : start + width])
        nn.init.zeros_(linear.bias)


class StreamGate(nn.Module):
    """Fuses one stream's n-gram feature c with the lexicon word w matched
    there (zero if none), the global context g and, when rethinking, the
    top layer's feature f of the previous pass:

        [z; a_1; a_2; a_3] = W [c; w; g] + b,   z~ = tanh(z)
        first pass:   alpha = softmax_k(sigmoid(a_k)),          k = 1, 2
                      out = alpha_1 z~ + alpha_2 c
        rethinking:   alpha = softmax_k(sigmoid(a_k + E_k f + d_k)),  k = 1, 2, 3
                      out = alpha_1 z~ + alpha_2 c + alpha_3 f

    The softmax is per hidden unit, over the 2 or 3 candidate states.
    """

    def __init__(self, width: int, word_width: int) -> None:
        super().__init__()
        self.width = width
        self.inputs = nn.Linear(2 * width + word_width, 4 * width)
        self.feedback = nn.Linear(width, 3 * width)
        _xavier_blocks(self.inputs, width)
        _xavier_blocks(self.feedback, width)

    def forward(
        self,
        C: torch.Tensor,
        words: Optional[torch.Tensor],
        G: torch.Tensor,
        feedback: Optional[torch.Tensor],
        feedback_gates: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """feedback_gates: self.feedback(feedback), if already computed (it
        is the same for every layer of a pass)."""
        parts = [C, G] if words is None else [C, words, G]
        z = self.inputs(torch.cat(parts, dim=-1))
        candidate, gates = torch.tanh(z[..., : self.width]), z[..., self.width :]
        if feedback is None:
            gates, states = gates[..., : 2 * self.width], [candidate, C]
        else:
            if feedback_gates is None:
                feedback_gates = self.feedback(feedback)
            gates, states = gates + feedback_gates, [candidate, C, feedback]
        weights = torch.softmax(torch.sigmoid(gates).unflatten(-1, (len(states), self.width)), dim=-2)
        return (weights * torch.stack(states, dim=-2)).sum(dim=-2)


class ContextAttention(nn.Module):
    """One-head self-attention with a residual and LayerNorm; padded keys
    are masked so a text's output does not depend on the batch."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)
        for linear in (self.query, self.key, self.value):
            nn.init.normal_(linear.weight, std=math.sqrt(1.0 / width))
        self.out = nn.Linear(width, width)
        nn.init.xavier_normal_(self.out.weight)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(ATTENTION_DROPOUT)
        self.scale = 1.0 / math.sqrt(width)

    def forward(self, H: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(self.query(H), self.key(H).transpose(1, 2)) * self.scale
        scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
        context = torch.matmul(self.dropout(torch.softmax(scores, dim=-1)), self.value(H))
        return self.norm(H + self.dropout(self.out(context)))


class GlobalContext(nn.Module):
    """The sentence-level context g each gate reads: self-attention over the
    char features, then after each layer m an update from that layer:

        s = SelfAttention(X^m),  u = sigmoid(U [s; g] + b),  g = u s + (1 - u) g
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.attention = ContextAttention(width)
        self.update = nn.Linear(2 * width, width)

    def first(self, X: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        return self.attention(X, key_mask)

    def forward(self, X: torch.Tensor, G: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        S = self.attention(X, key_mask)
        u = torch.sigmoid(self.update(torch.cat([S, G], dim=-1)))
        return u * S + (1 - u) * G


class MultiScaleAttention(nn.Module):
    """Per character, a softmax over the layers (scales) from the sum of each
    layer's feature, through a two-layer tanh MLP; the output is the
    weighted sum of the layers' features."""

    def __init__(self, n_scales: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(n_scales, n_scales),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(n_scales, n_scales),
            nn.Tanh(),
        )

    def forward(self, layers: torch.Tensor) -> torch.Tensor:
        """layers: [batch, time, n_scales, width]."""
        weights = torch.softmax(self.mlp(layers.sum(dim=-1)), dim=-1)
        return (weights.unsqueeze(-1) * layers).sum(dim=-2)


class LRCNN(nn.Module):
    """Layer 0 is the projected characters; layer m (1..depth) stands for the
    (m+1)-gram at each position, in four streams, each fused with the
    matched word of that length by its own StreamGate (shared by all layers):

        forward:         kernel 2 over layer m-1 at t, t+1: the n-gram starting at t
        backward:        kernel 2 over layer m-1 at t-m, t-m+1: the n-gram ending at t
        direct (m >= 2): kernel m+1 over layer 0 at t..t+m: the n-gram starting at t
        direct backward: kernel m+1 over layer 0 at t-m..t: the n-gram ending at t

    The forward streams read the word starting at t, the backward ones the
    word ending at t; layer m's feature is the sum of its streams. The stack
    runs `rethink` times; from the second pass on, every gate also reads the
    previous pass's top layer. The last pass's layers 0..depth go through
    the multi-scale attention.
    """

    def __init__(
        self,
        nI: int,
        *,
        hidden_width: int,
        depth: int,
        rethink: int,
        dropout: float,
        word_rows: int,
        word_width: int,
        use_lattice: bool,
    ) -> None:
        super().__init__()
        width = hidden_width
        self.width, self.depth, self.rethink = width, depth, rethink
        self.project = nn.Linear(nI, width)
        self.forward_convs = nn.ModuleList(nn.Linear(2 * width, width) for _ in range(depth))
        self.backward_convs = nn.ModuleList(nn.Linear(2 * width, width) for _ in range(depth))
        # direct_convs[m - 2] is layer m's kernel-(m+1) convolution.
        self.direct_convs = nn.ModuleList(nn.Linear((m + 1) * width, width) for m in range(2, depth + 1))
        self.direct_back_convs = nn.ModuleList(nn.Linear((m + 1) * width, width) for m in range(2, depth + 1))
        self.word_embed = nn.Embedding(word_rows, word_width) if use_lattice else None
        if self.word_embed is not None:
            nn.init.normal_(self.word_embed.weight, std=0.1)
        self.gates = nn.ModuleList(StreamGate(width, word_width if use_lattice else 0) for _ in range(4))
        self.context = GlobalContext(width)
        self.scales = MultiScaleAttention(depth + 1, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        X: torch.Tensor,
        lengths: torch.Tensor,
        word_rows: Optional[torch.Tensor] = None,
        has_word: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """X: [batch, time, nI]; lengths: [batch]; word_rows: [batch, time,
        depth, seeds] hashed rows of the word of length m+1 starting at t
        (index m-1), has_word: [batch, time, depth] whether there is one."""
        batch, n_chars, _ = X.shape
        if batch == 0 or n_chars == 0:
            return X.new_zeros((batch, n_chars, self.width))
        mask = torch.arange(n_chars, device=X.device)[None, :] < lengths.to(X.device)[:, None]
        key_mask = mask | ~mask.any(dim=1, keepdim=True)  # an empty text: no all-masked rows (NaN)
        mask = mask.unsqueeze(-1).to(X.dtype)
        # Padding is zeroed after every layer, so a convolution at a text's
        # last chars sees zeros, as at the end of the batch's longest text.
        chars = torch.tanh(self.project(X)) * mask
        G0 = self.context.first(chars, key_mask)
        words = None
        if self.word_embed is not None and word_rows is not None:
            words = self.word_embed(word_rows).sum(dim=-2) * has_word.unsqueeze(-1).to(X.dtype)
        feedback: Optional[torch.Tensor] = None
        for _ in range(self.rethink):
            layers = self._one_pass(chars, words, G0, feedback, mask, key_mask)
            feedback = layers[-1]
        return self.scales(torch.stack(layers, dim=2)) * mask

    def _one_pass(
        self,
        chars: torch.Tensor,
        words: Optional[torch.Tensor],
        G: torch.Tensor,
        feedback: Optional[torch.Tensor],
        mask: torch.Tensor,
        key_mask: torch.Tensor,
    ) -> List[torch.Tensor]:
        dropped = self.dropout(chars)
        previous = dropped
        # The feedback's gate terms are the same in every layer: once per pass.
        feedback_gates = [None if feedback is None else gate.feedback(feedback) for gate in self.gates]
        layers = [chars]
        for m in range(1, self.depth + 1):
            streams = [
                torch.tanh(self.forward_convs[m - 1](torch.cat([previous, shift(previous, -1)], dim=-1))),
                torch.tanh(self.backward_convs[m - 1](torch.cat([shift(previous, m), shift(previous, m - 1)], dim=-1))),
            ]
            if m >= 2:
                ahead = torch.cat([shift(dropped, -j) for j in range(m + 1)], dim=-1)
                behind = torch.cat([shift(dropped, m - j) for j in range(m + 1)], dim=-1)
                streams += [
                    torch.tanh(self.direct_convs[m - 2](ahead)),
                    torch.tanh(self.direct_back_convs[m - 2](behind)),
                ]
            stream_words: List[Optional[torch.Tensor]] = [None] * len(streams)
            if words is not None:
                starting = words[:, :, m - 1]
                ending = shift(starting, m)  # the word of length m+1 ending at t starts at t-m
                stream_words = [self.dropout(w) for w in (starting, ending, starting, ending)[: len(streams)]]
            H = sum(
                gate(C, w, G, feedback, f) for gate, C, w, f in zip(self.gates, streams, stream_words, feedback_gates)
            )
            H = H * mask
            if m < self.depth:  # the top layer's context would not be read
                G = self.context(H, G, key_mask)
            layers.append(H)
            previous = self.dropout(H)
        return layers
