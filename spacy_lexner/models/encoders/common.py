"""Conversion helpers shared by all padded-sequence encoders: they read
``Embedded`` (or any ``(X, lengths, ...)`` tuple) and return padded states."""

from typing import Any, Callable, Tuple

import numpy
import torch
from thinc.api import ArgsKwargs, Model
from thinc.types import Floats3d, Ints1d

from ...util.torch_utils import LazyTorchWrapper, first_input_gradient, to_torch, torch_to_xp

# (X[batch, time, nI], lengths, ...): an Embedded or a plain (X, lengths).
PaddedInput = Tuple[Floats3d, Ints1d]


def padded_encoder(
    name: str, build_module: Callable[[Model], torch.nn.Module], nO: int, **attrs: Any
) -> Model[PaddedInput, Floats3d]:
    return LazyTorchWrapper(
        name,
        build_module,
        convert_inputs=convert_padded_inputs,
        convert_outputs=convert_padded_outputs,
        dims={"nI": None, "nO": nO},
        attrs=attrs,
        infer_nI=padded_width,
    )


def padded_width(X: PaddedInput) -> int:
    return X[0].shape[-1]


def lengths_array(lengths: Ints1d) -> numpy.ndarray:
    """The lengths as a CPU int64 numpy array (from numpy or cupy)."""
    return numpy.asarray(lengths.tolist() if hasattr(lengths, "tolist") else lengths, dtype="int64")


def convert_padded_inputs(model: Model, X: PaddedInput, is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    vectors, lengths = X[0], X[1]
    Xt = to_torch(model, vectors, requires_grad=is_train)
    # Lengths stay on the CPU: pack_padded_sequence requires it.
    lengths_t = torch.from_numpy(lengths_array(lengths))
    return ArgsKwargs(args=(Xt, lengths_t), kwargs={}), first_input_gradient


def convert_padded_outputs(model: Model, inputs_outputs: Any, is_train: bool) -> Tuple[Floats3d, Callable]:
    _, Yt = inputs_outputs

    def backprop(dY: Floats3d) -> ArgsKwargs:
        return ArgsKwargs(args=(Yt,), kwargs={"grad_tensors": to_torch(model, dY)})

    return torch_to_xp(Yt), backprop
