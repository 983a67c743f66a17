"""What a pipe may ask of a tagger model besides predict and begin_update.

The pipes (spacy_lexner.pipeline) call a model only through these functions
and the TagScores it returns (types.py), so they never depend on how a model
is built: a single tagger, an ensemble, or crf_ner's token tagger.
"""

from typing import List, Optional

import numpy
from thinc.api import Model

from ..util.tags import TagScheme
from .decoders import set_crf_labels, tag_scheme_of

# No trained layer of these models comes near this; corrupted weights do.
MAX_PARAMETER = 1e6


def _crf_layers(model: Model) -> List[Model]:
    layers = [node for node in model.walk() if node.name == "crf"]
    if not layers:
        raise ValueError(f"Model '{model.name}' has no CRF layer: it is not a spacy-lexner tagger model.")
    return layers


def set_labels(model: Model, labels: List[str]) -> None:
    """Size the model's decoder to labels (before initialize)."""
    for crf in _crf_layers(model):
        set_crf_labels(crf, labels)


def tag_scheme(model: Model) -> TagScheme:
    """The tags the model predicts (labels and scheme)."""
    return tag_scheme_of(_crf_layers(model)[0])


def is_initialized(model: Model) -> bool:
    """Whether the model's weights exist (initialized or loaded)."""
    return all(bool(crf.shims) for crf in _crf_layers(model))


def reads_pipeline_docs(model: Model) -> bool:
    """Whether the model reads the pipeline's own Docs (a listener, an image
    context), so it must get whole Docs instead of windows of their text, and
    cannot run before its upstream component."""
    return any(node.attrs.get("needs_pipeline_docs") or node.name.endswith("listener") for node in model.walk())


def find_bad_parameter(model: Model) -> Optional[str]:
    """A description of the first non-finite or implausibly large parameter,
    or None when all are plausible."""
    for node in model.walk():
        arrays = [(name, node.get_param(name)) for name in node.param_names if node.has_param(name)]
        for shim in node.shims:
            module = getattr(shim, "_model", None)
            if module is not None:
                arrays.extend((name, tensor.detach().cpu().numpy()) for name, tensor in module.state_dict().items())
        for name, array in arrays:
            values = numpy.asarray(model.ops.to_numpy(array), dtype="float64")
            if values.size and not numpy.isfinite(values).all():
                return f"parameter {name} of layer {node.name} holds NaN or infinite values"
            if values.size and numpy.abs(values).max() > MAX_PARAMETER:
                return f"parameter {name} of layer {node.name} holds values above {MAX_PARAMETER:g}"
    return None


def build_crf_weights(model: Model) -> None:
    """Build only the CRF layers' weights (sized to the labels): what a model
    whose other layers get their dims from the saved weights needs before
    loading them."""
    for crf in _crf_layers(model):
        crf.initialize()


def set_quantized(model: Model, enabled: bool) -> None:
    """Predict with int8 dynamically quantized LSTM and Linear layers (CPU
    only), or with the float weights again. Training and saving always use
    the float weights, so this is a setting of the loaded pipeline."""
    for node in model.walk():
        for shim in node.shims:
            if hasattr(shim, "set_quantized"):
                shim.set_quantized(enabled)
