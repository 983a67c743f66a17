"""Shared glue between thinc and PyTorch.

Two things are shared by every torch-backed layer in this package:

* serialisation of torch parameters *without* pickle (``torch.save`` pickles
  by default, and a pipeline directory is untrusted input), and
* a thinc layer whose torch module is built lazily, at ``initialize``, once
  its input width and label count are known. Thinc's ``PyTorchWrapper`` wants
  the module up front, which would force users to spell out widths that spaCy
  can infer.

The shim also updates parameters in place, honours ``use_averages`` and
steps sparse (embedding-row) gradients lazily (see ``InPlacePyTorchShim``
and ``lazy_adam``).
"""

import contextlib
import copy
import threading
import warnings
from typing import Any, Callable, Dict, Iterator, Optional

import numpy
import srsly
from thinc.api import ArgsKwargs, Model, PyTorchShim, get_torch_default_device
from thinc.layers.pytorchwrapper import forward as pytorch_forward
from thinc.util import torch2xp, xp2torch

from .lazy_adam import flush_averages, sparse_adam_step

try:
    import torch
except ImportError:  # pragma: no cover - torch is a hard requirement
    torch = None  # type: ignore

BuildModule = Callable[[Model], "torch.nn.Module"]


def serialize_torch_state(module: "torch.nn.Module") -> bytes:
    """Serialise a module's state dict as msgpack'd numpy arrays (no pickle)."""
    state = {}
    for name, tensor in module.state_dict().items():
        array = tensor.detach().cpu()
        if array.dtype == torch.bfloat16:
            array = array.float()
        state[name] = array.numpy()
    return srsly.msgpack_dumps(state)


def deserialize_torch_state(module: "torch.nn.Module", state_bytes: bytes, device: "torch.device") -> "torch.nn.Module":
    try:
        state = srsly.msgpack_loads(state_bytes)
    except Exception as err:
        raise ValueError(
            "Could not read the torch weights of a spacy-lexner layer: the model "
            "file is truncated or corrupted. Re-save or re-train the pipeline."
        ) from err
    if not isinstance(state, dict):
        raise ValueError("Corrupted torch weights: expected a mapping of arrays.")
    tensors = {name: torch.from_numpy(numpy.array(value)) for name, value in state.items()}
    module.load_state_dict(tensors)
    module.to(device)
    return module


class InPlacePyTorchShim(PyTorchShim):
    """PyTorchShim whose optimizer step writes into the existing parameters.

    thinc's PyTorchShim.finish_update re-wraps each updated array as a new
    tensor (``param.data = xp2torch(...)``). Measured here, that grew the
    training process by ~3 MB per update (a 600-step Weibo run reached 5 GB
    RSS); copying into the parameter in place keeps memory flat.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mode_lock = threading.Lock()
        self._in_eval_mode = False
        self.quantize = False
        self._quantized: Optional["torch.nn.Module"] = None
        self._warned_gpu_quantize = False

    def set_quantized(self, enabled: bool) -> None:
        """Predict with an int8 dynamically quantized copy of the module (CPU
        only; training keeps the float weights, which are what is saved).
        On a GPU, where torch has no int8 dynamic kernels, the float weights
        predict, with one warning: a config that ships quantize = true (the
        Weibo one) still trains and runs with --gpu-id."""
        if enabled and self.device.type != "cpu":
            if not self._warned_gpu_quantize:
                warnings.warn(
                    f"quantize = true predicts in int8 on the CPU only; this pipeline is on {self.device}, "
                    "so it predicts with its float weights. Set quantize = false to silence this."
                )
                self._warned_gpu_quantize = True
            enabled = False
        if enabled != self.quantize:
            self.quantize = enabled
            self._quantized = None

    def _inference_module(self) -> "torch.nn.Module":
        if not self.quantize:
            return self._model
        quantized = self._quantized
        if quantized is None:
            with self._mode_lock:
                if self._quantized is None:
                    self._quantized = quantize_module(self._model)
                quantized = self._quantized
        return quantized

    def predict(self, inputs: ArgsKwargs) -> Any:
        """The module's output in eval mode (no dropout), without gradients.

        thinc's PyTorchShim.predict switches the module to eval mode and back
        to train mode around every call, so a thread predicting while another
        thread's call had just finished ran with dropout on. Here the module
        is switched to eval mode once, under a lock, and stays there until the
        next begin_update: concurrent predictions never change the mode.
        """
        if not self._in_eval_mode:
            with self._mode_lock:
                if not self._in_eval_mode:
                    self._model.eval()
                    self._in_eval_mode = True
        with torch.no_grad():
            with torch.autocast(device_type="cuda", enabled=self._mixed_precision):
                return self._inference_module()(*inputs.args, **inputs.kwargs)

    def begin_update(self, inputs: ArgsKwargs) -> Any:
        # Training is not run concurrently with prediction (spaCy's training
        # loop calls them in turn), so the flags need no lock here.
        self._in_eval_mode = False
        self._quantized = None  # the weights are about to change
        return super().begin_update(inputs)

    def from_bytes(self, bytes_data: bytes) -> "InPlacePyTorchShim":
        self._quantized = None
        return super().from_bytes(bytes_data)

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        del state["_mode_lock"]
        state["_quantized"] = None  # rebuilt from the float weights on first use
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._mode_lock = threading.Lock()

    def finish_update(self, optimizer: Any) -> None:
        for name, torch_data in self._model.named_parameters():
            if torch_data.grad is None:
                continue
            if self._grad_scaler.found_inf:  # mixed precision overflow: skip the step
                torch_data.grad = None
                continue
            if torch_data.grad.is_sparse:  # hashed embedding tables: update the touched rows
                sparse_adam_step(optimizer, (self.id, name), torch_data.data, torch_data.grad)
                torch_data.grad = None
                continue
            param, _ = optimizer((self.id, name), torch2xp(torch_data.data), torch2xp(torch_data.grad))
            updated = xp2torch(param, device=torch_data.device)
            if updated.data_ptr() != torch_data.data_ptr():
                with torch.no_grad():
                    torch_data.copy_(updated)
            torch_data.grad.zero_()
        self._grad_scaler.update()

    @contextlib.contextmanager
    def use_params(self, params: Dict) -> Iterator[None]:
        """Swap in averaged parameters (`use_averages = true`), in place.

        The optimizer keys a torch parameter as (shim id, name), but thinc
        8.3's PyTorchShim.use_params looks for "pytorch_{id}_{name}" keys, so
        spaCy's evaluation and model-best never saw the averages of a torch
        layer. Copying in place also keeps buffers and parameters without an
        average (a strict load_state_dict would fail on them).
        """
        for name, param in self._model.named_parameters():
            flush_averages(params, (self.id, name), param.detach())
        averaged = [
            (param, params[(self.id, name)])
            for name, param in self._model.named_parameters()
            if (self.id, name) in params
        ]
        backup = [param.detach().clone() for param, _ in averaged]
        with torch.no_grad():
            for param, average in averaged:
                param.copy_(xp2torch(average, device=param.device))
        try:
            yield
        finally:
            with torch.no_grad():
                for (param, _), saved in zip(averaged, backup):
                    param.copy_(saved)


def quantize_module(module: "torch.nn.Module") -> "torch.nn.Module":
    """An eval-mode copy of module for int8 prediction, or the module itself
    if it has nothing to quantize.

    Linear layers, and LSTMs, are int8 dynamically quantized
    (torch.ao.quantization.quantize_dynamic). A submodule with a
    `quantize_int8_()` method (the BiLSTM encoder) quantizes its own layers
    instead, and its LSTM is left to it.
    """
    layers = (torch.nn.LSTM, torch.nn.Linear)
    if not any(isinstance(layer, layers) for layer in module.modules()):
        return module
    quantized = copy.deepcopy(module).eval()
    owned = set()
    for layer in quantized.modules():
        if hasattr(layer, "quantize_int8_"):
            layer.quantize_int8_()
            owned.update(id(sub) for sub in layer.modules() if sub is not layer)
    qconfig = torch.ao.quantization.default_dynamic_qconfig
    spec = {
        name: qconfig
        for name, layer in quantized.named_modules()
        if isinstance(layer, layers) and id(layer) not in owned
    }
    if spec:
        with warnings.catch_warnings():
            # torch 2.10+ points eager-mode quantization users to torchao, which
            # is not a dependency; the eager API still works and is what we test.
            warnings.simplefilter("ignore")
            torch.ao.quantization.quantize_dynamic(quantized, spec, dtype=torch.qint8, inplace=True)
    return quantized


def make_shim(module: "torch.nn.Module") -> PyTorchShim:
    return InPlacePyTorchShim(
        module,
        device=get_torch_default_device(),
        serialize_model=serialize_torch_state,
        deserialize_model=deserialize_torch_state,
    )


def LazyTorchWrapper(
    name: str,
    build_module: BuildModule,
    *,
    convert_inputs: Callable,
    convert_outputs: Callable,
    dims: Dict[str, Optional[int]],
    attrs: Optional[Dict[str, Any]] = None,
    infer_nI: Optional[Callable[[Any], int]] = None,
) -> Model:
    """A thinc layer wrapping a torch module that is built at initialize.

    build_module receives the thinc model, so it can read its (now known) dims.
    build_module and infer_nI must be picklable (module-level functions or
    functools.partial of them): nlp.pipe(n_process=...) with the spawn start
    method pickles the pipeline.
    """
    all_attrs = {"convert_inputs": convert_inputs, "convert_outputs": convert_outputs}
    all_attrs.update(attrs or {})
    return Model(
        name,
        pytorch_forward,
        init=LazyInit(build_module, infer_nI),
        dims=dims,
        attrs=all_attrs,
        shims=[],
    )


class LazyInit:
    """The init of a LazyTorchWrapper: a class rather than a closure, so the
    model can be pickled."""

    def __init__(self, build_module: BuildModule, infer_nI: Optional[Callable[[Any], int]]) -> None:
        self.build_module = build_module
        self.infer_nI = infer_nI

    def __call__(self, model: Model, X: Any = None, Y: Any = None) -> None:
        if X is not None and self.infer_nI is not None and model.has_dim("nI") is None:
            model.set_dim("nI", self.infer_nI(X))
        if model.shims:
            return
        model.shims.append(make_shim(self.build_module(model)))


def with_input_width(
    module_class: Callable[..., "torch.nn.Module"], model: Model, **settings: Any
) -> "torch.nn.Module":
    """A build_module for LazyTorchWrapper: module_class(nI, **settings).
    Bind it with functools.partial, which keeps the model picklable."""
    return module_class(model.get_dim("nI"), **settings)


def first_input_gradient(d_inputs: ArgsKwargs) -> Any:
    """The convert_inputs reverse of a layer whose only differentiable input
    is its first argument."""
    return torch_to_xp(d_inputs.args[0])


def shim_device(model: Model) -> "torch.device":
    return model.shims[0].device


def torch_module(model: Model) -> "torch.nn.Module":
    """The torch module of a built LazyTorchWrapper (for that layer's own init)."""
    return model.shims[0]._model


def to_torch(model: Model, array: Any, *, requires_grad: bool = False) -> "torch.Tensor":
    return xp2torch(array, requires_grad=requires_grad, device=shim_device(model))


def torch_to_xp(tensor: "torch.Tensor") -> Any:
    return torch2xp(tensor)
