"""The torch module of spacy-lexner.BiLSTMEncoder.v1 (see models/encoders/bilstm.py)."""

import warnings
from typing import List, Optional, Tuple

import numpy
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
        self._fused_weights: Optional[List[FusedLayer]] = None
        self.int8_input_projection = False

    def quantize_int8_(self) -> None:
        """Predict with int8 input projections (the larger half of an LSTM's
        multiply-adds here: nI = 368 against hidden 100 on Resume) while the
        recurrence stays in float: at 1-64 rows per step, an int8 matmul of
        hidden width 100 is slower than the float one (145 against 116 us,
        64 rows, 1 thread). Called by util.torch_utils.quantize_module on a
        copy used only for prediction."""
        self.int8_input_projection = True
        self._fused_weights = None

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if X.shape[0] == 0 or X.shape[1] == 0:
            return X.new_zeros((X.shape[0], X.shape[1], self.lstm.hidden_size * 2))
        lengths = lengths.clamp(min=1)
        # type() rather than isinstance: a quantized or otherwise swapped-in
        # LSTM runs its own forward.
        if X.device.type == "cpu" and not torch.is_grad_enabled() and type(self.lstm) is nn.LSTM:
            return self.dropout(fused_bilstm(self._fused_layers(), X, lengths))
        packed = pack_padded_sequence(X, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        Y, _ = pad_packed_sequence(output, batch_first=True, total_length=X.shape[1])
        return self.dropout(Y)

    def _fused_layers(self) -> List["FusedLayer"]:
        # Rebuilt on every call from the live weights (about 1 MB of copies,
        # well under 1% of a batch's time): the optimizer writes the weights
        # in place through numpy views, which no torch version counter sees,
        # so a cache keyed on versions served stale weights during training
        # evaluation. Only the int8 copy, which is never trained (the shim
        # drops it before an update), keeps its layers.
        if not self.int8_input_projection:
            return [FusedLayer.from_lstm(self.lstm, n) for n in range(self.lstm.num_layers)]
        if self._fused_weights is None:
            self._fused_weights = [FusedLayer.from_lstm(self.lstm, n, int8=True) for n in range(self.lstm.num_layers)]
        return self._fused_weights


class FusedLayer:
    """One bidirectional LSTM layer's weights, laid out for `fused_bilstm`:
    direction-major, gate order i, f, o, g (so one sigmoid covers three gates)."""

    def __init__(
        self, w_ih: torch.Tensor, bias: torch.Tensor, w_hh: torch.Tensor, int8: Optional[List[nn.Module]] = None
    ) -> None:
        self.w_ih = w_ih  # [2, nI, 4 * hidden]
        self.bias = bias  # [2, 1, 4 * hidden]
        self.w_hh = w_hh  # [2, hidden, 4 * hidden]
        self.int8 = int8  # per direction, the int8 dynamic Linear of w_ih and bias

    def input_gates(self, inputs: torch.Tensor) -> torch.Tensor:
        """[2, n, nI] inputs -> [2, n, 4 * hidden] gate pre-activations."""
        if self.int8 is None:
            return torch.baddbmm(self.bias, inputs, self.w_ih)
        return torch.stack([linear(x) for linear, x in zip(self.int8, inputs)])

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, layer: int, *, int8: bool = False) -> "FusedLayer":
        def gates_ifog(weight: torch.Tensor) -> torch.Tensor:
            i, f, g, o = weight.chunk(4, 0)  # torch's gate order
            return torch.cat([i, f, o, g])

        with torch.no_grad():
            w_ih, biases, w_hh = [], [], []
            for suffix in (f"_l{layer}", f"_l{layer}_reverse"):
                w_ih.append(gates_ifog(getattr(lstm, "weight_ih" + suffix)).t())
                w_hh.append(gates_ifog(getattr(lstm, "weight_hh" + suffix)).t())
                if lstm.bias:
                    bias = getattr(lstm, "bias_ih" + suffix) + getattr(lstm, "bias_hh" + suffix)
                    biases.append(gates_ifog(bias))
                else:
                    biases.append(w_ih[-1].new_zeros(4 * lstm.hidden_size))
            quantized = [_int8_linear(w, b) for w, b in zip(w_ih, biases)] if int8 else None
            return cls(torch.stack(w_ih), torch.stack(biases)[:, None], torch.stack(w_hh), quantized)


def _int8_linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """x @ weight + bias as an int8 dynamically quantized Linear."""
    linear = nn.Linear(weight.shape[0], weight.shape[1])
    with torch.no_grad():
        linear.weight.copy_(weight.t())
        linear.bias.copy_(bias)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.10+ points eager-mode quantization to torchao
        return torch.ao.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)[0]


def fused_bilstm(layers: List[FusedLayer], X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A stacked bidirectional LSTM over padded X [B, T, nI], inference only.

    The same function as torch's packed-sequence LSTM (tests compare them),
    rearranged for CPU inference on short texts: the forward and backward
    directions advance together, one batched matmul per step (row j at step
    t reads char t forward and char L_j - 1 - t backward), so there are T
    steps rather than torch's 2T; rows are sorted by length so step t works
    on a contiguous prefix of the rows still running, over time-major
    packed arrays with no padding.
    """
    batch, width = X.shape[0], X.shape[1]
    positions, n_active, offsets = fused_schedule(lengths, width)
    inputs = X.reshape(batch * width, -1)
    for layer in layers:
        inputs = _fused_layer(layer, inputs, positions, n_active, offsets, batch * width)
    return inputs.view(batch, width, -1)


def fused_schedule(lengths: torch.Tensor, width: int) -> Tuple[torch.Tensor, List[int], List[int]]:
    """Where a fused bidirectional recurrence reads, over texts of these
    lengths padded to width: positions [2, n_chars] (flat padded index of the
    forward and the backward direction's char, in step order), and the number
    of rows still running at each step and where each step starts. Rows are
    sorted by length, so step t works on rows 0..n_t-1."""
    sorted_lengths, order = torch.sort(lengths.cpu(), descending=True)
    lengths_np = sorted_lengths.numpy()
    valid = lengths_np[None, :] > numpy.arange(width)[:, None]  # [T, B], time-major
    steps, rows = numpy.nonzero(valid)
    n_active = valid.sum(axis=1)
    n_active = n_active[n_active > 0].tolist()
    offsets = numpy.concatenate([[0], numpy.cumsum(n_active)]).tolist()
    original_rows = order.numpy()[rows] * width
    positions = torch.from_numpy(numpy.stack([original_rows + steps, original_rows + lengths_np[rows] - 1 - steps]))
    return positions, n_active, offsets


def _fused_layer(
    layer: FusedLayer,
    inputs: torch.Tensor,
    positions: torch.Tensor,
    n_active: List[int],
    offsets: List[int],
    n_positions: int,
) -> torch.Tensor:
    hidden = layer.w_hh.shape[1]
    n_chars = positions.shape[1]
    # [2, n_chars, 4 * hidden]: each direction's inputs in its step order
    gates = layer.input_gates(inputs[positions.view(-1)].view(2, n_chars, -1))
    out = inputs.new_empty((2, n_chars, hidden))
    cell = inputs.new_zeros((2, n_active[0], hidden))
    previous: Optional[torch.Tensor] = None
    for n, start in zip(n_active, offsets):
        step = gates[:, start : start + n]
        if previous is not None:
            step = torch.baddbmm(step, previous[:, :n], layer.w_hh)
        sigmoids = step[..., : 3 * hidden].sigmoid()
        candidate = step[..., 3 * hidden :].tanh()
        state = cell[:, :n]
        state.mul_(sigmoids[..., hidden : 2 * hidden]).addcmul_(sigmoids[..., :hidden], candidate)
        previous = out[:, start : start + n]
        torch.mul(sigmoids[..., 2 * hidden :], state.tanh(), out=previous)
    result = inputs.new_zeros((n_positions, 2 * hidden))
    result[:, :hidden].index_copy_(0, positions[0], out[0])
    result[:, hidden:].index_copy_(0, positions[1], out[1])
    return result
