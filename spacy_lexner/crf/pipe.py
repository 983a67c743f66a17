"""What the CRF pipes (``lexner_tagger``, ``crf_ner``) share: labels kept in
``cfg["labels"]`` and a CRF ref sized to them."""
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy
from thinc.api import Model

from ..excerpt import excerpt, shorten

from .layer import tag_scheme_of
from .tag_scheme import TagScheme


class CRFLabelsMixin:
    """Mixed into a TrainablePipe whose model has a "crf" ref."""

    cfg: dict
    model: Model
    name: str

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def tag_scheme(self) -> TagScheme:
        return tag_scheme_of(self.model.get_ref("crf"))

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ValueError(f"Entity labels must be strings, got {label!r}.")
        if label in self.cfg["labels"]:
            return 0
        if self.model.get_ref("crf").shims:
            raise ValueError(
                f"Cannot add label '{label}' to a trained {self.name}: its CRF is sized "
                "to its labels. Retrain the component with the new label."
            )
        self.cfg["labels"] = sorted(self.cfg["labels"] + [label])
        return 1

    def _read_cfg(self, cfg: Any, source: str) -> Dict:
        """A loaded cfg, checked: a dict whose "labels" is a list of strings."""
        labels = cfg.get("labels") if isinstance(cfg, dict) else None
        # An empty list is what a pipe saved before initialize holds.
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise ValueError(
                f"Cannot load {self.name}: {source} has no valid \"labels\" (a list of label "
                f"strings); found {excerpt(cfg)}. The file is corrupted or was edited; "
                "restore it or re-save the pipeline."
            )
        return cfg

    def _load_weights(self, load: Callable[[], Model], source: str, probe: Optional[List] = None) -> None:
        """Run load(), turning a bad weights file into an error naming source,
        then check the weights are usable: every parameter finite and of a
        size training produces, and (given probe inputs) finite scores."""
        try:
            load()
        except (ValueError, KeyError, TypeError, EOFError, RuntimeError) as err:
            # torch's load_state_dict raises RuntimeError on a shape mismatch.
            raise ValueError(
                f"Cannot load the {self.name} model weights from {source}: {shorten(str(err), 300)}. "
                "The file is truncated, corrupted or from an incompatible config."
            ) from err
        bad = _bad_parameter(self.model)
        if bad is None and probe is not None:
            scores, _ = self.model.predict(probe)
            if not numpy.isfinite(self.model.ops.to_numpy(scores)).all():
                bad = "the scores of a test sentence (they are not finite)"
        if bad is not None:
            raise ValueError(
                f"Cannot load the {self.name} model weights from {source}: {bad}. The "
                "weights are corrupted (or training diverged); restore the file or retrain."
            )


PROBE_TEXT = "张三在北京大学工作，iPhone 12卖3999元。"
# No trained layer of these models comes near this; corrupted weights do.
MAX_PARAMETER = 1e6


def _bad_parameter(model: Model) -> Optional[str]:
    """A description of the first non-finite or implausibly large parameter."""
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

