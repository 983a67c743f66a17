"""The torch module of spacy-lexner.LatticeLSTMEncoder.v1 (see models/encoders/lattice_lstm.py).

One direction, at character e with input x_e (Zhang & Yang, ACL 2018, eq. 11-15):

    [i; o; f; g]    = [σ; σ; σ; tanh](W_x x_e + W_h h_{e-1} + b)
    word b..e:  [f_w; i_w; g_w] = [σ; σ; tanh](V_x w_{b,e} + V_h h_b + d)
                c_w(b,e)        = f_w ⊙ c_b + i_w ⊙ g_w
                a(b,e)          = σ(U_x x_e + U_c c_w(b,e) + u)
    c_e = Σ_b α(b,e) ⊙ c_w(b,e) + α_e ⊙ g,  with [α_e; α(b,e)...] = the
          element-wise normalised exp of [i; a(b,e)...]; when no word ends
          at e: c_e = f ⊙ c_{e-1} + i ⊙ g
    h_e = o ⊙ tanh(c_e)

A word's cell is computed at its first character, from the state just
after it (as in the authors' code), and read at its last. The backward
direction runs the same steps over each text reversed within its own
length, so padding never reaches a real position.

Batched: each step runs one set of matmuls over every text of the batch.
The cells of the words that start at a step are kept as one tensor; a
later step gathers the cells of the words ending there into [texts,
words, hidden], zero-padded, with a mask.
"""

from typing import List, NamedTuple, Optional

import numpy
import torch
from torch import nn


class WordSchedule(NamedTuple):
    """For one direction, which words start and end at each step.

    starts[t]: (word indices, their texts) of the words starting at t, in
        the order their cells are stored for that step.
    ends[t]: None, or (texts, slots, start steps, source rows, slot count)
        of the words ending at t: word k of text b lands in slot k; its cell
        is row `source` of the concatenated cells of `start steps`.
    """

    starts: List[Optional[tuple]]
    ends: List[Optional[tuple]]


def reverse_within_lengths(lengths: numpy.ndarray, n_steps: int) -> numpy.ndarray:
    """[texts, steps] int64: position p of text i read backward (L_i - 1 - p
    inside the text, p itself in the padding). Applying it twice is the identity."""
    positions = numpy.arange(n_steps)[None, :]
    lengths = lengths[:, None]
    return numpy.where(positions < lengths, lengths - 1 - positions, positions).astype("int64")


def build_schedule(
    n_steps: int,
    word_text: numpy.ndarray,
    first: numpy.ndarray,
    last: numpy.ndarray,
    device: torch.device,
) -> WordSchedule:
    """The schedule of words with first char `first` and last char `last`
    (positions in the direction's own order, first < last)."""
    starts: List[Optional[tuple]] = [None] * n_steps
    ends: List[Optional[tuple]] = [None] * n_steps
    if not len(word_text):
        return WordSchedule(starts, ends)
    # Row of each word among the words that start at the same step.
    by_start = numpy.lexsort((word_text, first))
    rank = numpy.empty(len(first), dtype="int64")
    start_counts = numpy.bincount(first, minlength=n_steps)
    start_offsets = numpy.cumsum(start_counts) - start_counts
    rank[by_start] = numpy.arange(len(first)) - start_offsets[first[by_start]]
    for t in numpy.flatnonzero(start_counts).tolist():
        index = by_start[start_offsets[t] : start_offsets[t] + start_counts[t]]
        starts[t] = (torch.from_numpy(index).to(device), torch.from_numpy(word_text[index]).to(device))
    by_end = numpy.lexsort((first, word_text, last))
    end_counts = numpy.bincount(last, minlength=n_steps)
    end_offsets = numpy.cumsum(end_counts) - end_counts
    for t in numpy.flatnonzero(end_counts).tolist():
        index = by_end[end_offsets[t] : end_offsets[t] + end_counts[t]]
        texts = word_text[index]
        # Slot of each word among the words of its text ending at t.
        new_text = numpy.r_[True, texts[1:] != texts[:-1]]
        group_start = numpy.maximum.accumulate(numpy.where(new_text, numpy.arange(len(texts)), 0))
        slots = numpy.arange(len(texts)) - group_start
        steps = numpy.unique(first[index])
        step_offsets = numpy.cumsum(start_counts[steps]) - start_counts[steps]
        source = step_offsets[numpy.searchsorted(steps, first[index])] + rank[index]
        ends[t] = tuple(torch.from_numpy(a).to(device) for a in (texts, slots)) + (
            steps.tolist(),
            torch.from_numpy(source).to(device),
            int(slots.max()) + 1,
        )
    return WordSchedule(starts, ends)


class LatticeDirection(nn.Module):
    """The lattice LSTM of one direction."""

    def __init__(self, nI: int, hidden: int, word_width: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.char_input = nn.Linear(nI, 4 * hidden)
        self.char_hidden = nn.Linear(hidden, 4 * hidden, bias=False)
        self.word_input = nn.Linear(word_width, 3 * hidden)
        self.word_hidden = nn.Linear(hidden, 3 * hidden, bias=False)
        self.link_input = nn.Linear(nI, hidden)
        self.link_cell = nn.Linear(hidden, hidden, bias=False)
        with torch.no_grad():
            # Forget gates start open, as is usual for LSTMs.
            self.char_input.bias[2 * hidden : 3 * hidden].fill_(1.0)
            self.word_input.bias[:hidden].fill_(1.0)

    def forward(self, X: torch.Tensor, word_vectors: torch.Tensor, schedule: WordSchedule) -> torch.Tensor:
        n_texts, n_steps, _ = X.shape
        H = self.hidden
        char_gates = self.char_input(X)
        link_gates = self.link_input(X) if word_vectors.shape[0] else None
        word_gates = self.word_input(word_vectors) if word_vectors.shape[0] else None
        h = X.new_zeros((n_texts, H))
        c = X.new_zeros((n_texts, H))
        outputs = []
        word_cells: List[Optional[torch.Tensor]] = [None] * n_steps
        for t in range(n_steps):
            i, o, f, g = (char_gates[:, t] + self.char_hidden(h)).split(H, dim=1)
            i, o, f, g = torch.sigmoid(i), torch.sigmoid(o), torch.sigmoid(f), torch.tanh(g)
            c = f * c + i * g
            ending = schedule.ends[t]
            if ending is not None:
                c = self._merge_words(c, i, g, link_gates[:, t], word_cells, ending)
            h = o * torch.tanh(c)
            outputs.append(h)
            starting = schedule.starts[t]
            if starting is not None:
                words, texts = starting
                f_w, i_w, g_w = (word_gates[words] + self.word_hidden(h[texts])).split(H, dim=1)
                word_cells[t] = torch.sigmoid(f_w) * c[texts] + torch.sigmoid(i_w) * torch.tanh(g_w)
        if not outputs:
            return X.new_zeros((n_texts, 0, H))
        return torch.stack(outputs, dim=1)

    def _merge_words(
        self,
        plain_cell: torch.Tensor,
        i: torch.Tensor,
        g: torch.Tensor,
        link_gate: torch.Tensor,
        word_cells: List[Optional[torch.Tensor]],
        ending: tuple,
    ) -> torch.Tensor:
        """The cells of texts where words end: the normalised mix of the
        char's candidate and the word cells; other texts keep plain_cell."""
        texts, slots, steps, source, n_slots = ending
        cells = torch.cat([word_cells[s] for s in steps]) if len(steps) > 1 else word_cells[steps[0]]
        cells = cells[source]
        n_texts, H = plain_cell.shape
        word_cell = plain_cell.new_zeros((n_texts, n_slots, H))
        word_cell = word_cell.index_put((texts, slots), cells)
        present = plain_cell.new_zeros((n_texts, n_slots, 1))
        present = present.index_put((texts, slots), plain_cell.new_ones((texts.shape[0], 1)))
        word_gate = torch.sigmoid(link_gate[:, None, :] + self.link_cell(word_cell))
        # exp of sigmoids lies in (1, e): no overflow, no max to subtract.
        weights = torch.cat([torch.exp(i)[:, None, :], torch.exp(word_gate) * present], dim=1)
        weights = weights / weights.sum(dim=1, keepdim=True)
        mixed = (weights * torch.cat([g[:, None, :], word_cell], dim=1)).sum(dim=1)
        has_word = present[:, :, 0].amax(dim=1, keepdim=True) > 0
        return torch.where(has_word, mixed, plain_cell)


class LatticeLSTM(nn.Module):
    """Bidirectional lattice LSTM over padded char vectors and lattice words."""

    def __init__(
        self,
        nI: int,
        *,
        hidden_width: int,
        word_width: int,
        word_rows: int,
        dropout: float,
        use_lattice: bool,
    ) -> None:
        super().__init__()
        if hidden_width % 2:
            raise ValueError(f"Lattice LSTM hidden_width must be even, got {hidden_width}.")
        self.hidden_width = hidden_width
        self.use_lattice = use_lattice
        self.word_embed = nn.Embedding(word_rows, word_width)
        nn.init.normal_(self.word_embed.weight, std=0.1)
        self.directions = nn.ModuleList(LatticeDirection(nI, hidden_width // 2, word_width) for _ in range(2))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        X: torch.Tensor,
        lengths: torch.Tensor,
        word_rows: torch.Tensor,
        word_text: torch.Tensor,
        word_start: torch.Tensor,
        word_end: torch.Tensor,
    ) -> torch.Tensor:
        n_texts, n_steps, _ = X.shape
        if n_texts == 0 or n_steps == 0:
            return X.new_zeros((n_texts, n_steps, self.hidden_width))
        lengths_np = lengths.cpu().numpy()
        text_np, start_np, last_np = (t.cpu().numpy() for t in (word_text, word_start, word_end - 1))
        if not self.use_lattice:
            text_np = start_np = last_np = text_np[:0]
        vectors = self.dropout(self.word_embed(word_rows[: len(text_np)].to(X.device)).sum(dim=1))
        forward = self.directions[0](X, vectors, build_schedule(n_steps, text_np, start_np, last_np, X.device))
        reverse = torch.from_numpy(reverse_within_lengths(lengths_np, n_steps)).to(X.device)
        flipped = lambda T: T.gather(1, reverse[:, :, None].expand(-1, -1, T.shape[2]))  # noqa: E731
        # Reversed, a word's last char comes first.
        n_minus_1 = lengths_np[text_np] - 1
        schedule = build_schedule(n_steps, text_np, n_minus_1 - last_np, n_minus_1 - start_np, X.device)
        backward = flipped(self.directions[1](flipped(X), vectors, schedule))
        mask = (torch.arange(n_steps, device=X.device)[None, :] < lengths.to(X.device)[:, None]).unsqueeze(-1)
        return self.dropout(torch.cat([forward, backward], dim=-1)) * mask
