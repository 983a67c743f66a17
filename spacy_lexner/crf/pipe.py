"""What the CRF pipes (``lexner_tagger``, ``crf_ner``) share: labels kept in
``cfg["labels"]`` and a CRF ref sized to them."""
from typing import Callable, List, Tuple

from thinc.api import Model

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

    def _load_weights(self, load: Callable[[], Model], source: str) -> None:
        """Run load(), turning a bad weights file into an error naming source."""
        try:
            load()
        except (ValueError, KeyError, TypeError, EOFError) as err:
            raise ValueError(
                f"Cannot load the {self.name} model weights from {source}: {err}. "
                "The file is truncated, corrupted or from an incompatible config."
            ) from err
