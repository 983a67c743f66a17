"""What the CRF pipes (``lexner_tagger``, ``crf_ner``) share: labels kept in
``cfg["labels"]``, training and decoding through the model contract
(spacy_lexner.models.types.TagScores), and serialisation that checks what
it loads."""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy import util
from spacy.pipeline import TrainablePipe
from spacy.training import Example, validate_examples
from thinc.api import Model, Optimizer, set_dropout_rate

from ..models.contract import find_bad_parameter, is_initialized, reads_pipeline_docs, set_labels, tag_scheme
from ..models.types import TagScores
from ..util.excerpt import excerpt, shorten
from ..util.serialize import read_json
from ..util.tags import TagScheme

PROBE_TEXT = "张三在北京大学工作，iPhone 12卖3999元。"


class SavedPart(NamedTuple):
    """How a pipe saves one extra file (e.g. lexner_tagger's lexicon)."""

    to_bytes: Callable[[], Optional[bytes]]
    from_bytes: Callable[[bytes], None]
    from_disk: Callable[[Path], None]


class CRFPipe(TrainablePipe):
    """A TrainablePipe whose model returns TagScores (see models/types.py).

    Subclasses say what the model reads (`_training_batch`) and how the
    decoded tags become entities (`predict`, `set_annotations`); training,
    labels and serialisation are shared.
    """

    cfg: Dict
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
        return tag_scheme(self.model)

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ValueError(f"Entity labels must be strings, got {label!r}.")
        if label in self.cfg["labels"]:
            return 0
        if is_initialized(self.model):
            raise ValueError(
                f"Cannot add label '{label}' to a trained {self.name}: its CRF is sized "
                "to its labels. Retrain the component with the new label."
            )
        self.cfg["labels"] = sorted(self.cfg["labels"] + [label])
        return 1

    def _set_labels(self, labels: Iterable[str]) -> None:
        self.cfg["labels"] = sorted(labels)
        set_labels(self.model, self.labels)

    def _check_initialized(self) -> None:
        if not is_initialized(self.model):
            raise ValueError(
                f"[E109] Component '{self.name}' could not be run. Was it initialized? "
                "Call nlp.initialize() or load a trained pipeline."
            )

    @property
    def _reads_pipeline_docs(self) -> bool:
        return reads_pipeline_docs(self.model)

    # -- training ------------------------------------------------------------

    def _training_batch(self, examples: List[Example]) -> Tuple[Any, List[numpy.ndarray]]:
        """The model's input for examples and the gold tag ids of each of its
        sequences (None as input: nothing to train on). Each pipe defines it."""
        raise TypeError(f"{type(self).__name__} must define _training_batch (see CRFPipe).")

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.update")
        inputs, gold = self._training_batch(examples)
        if inputs is None:
            return losses
        # Reaches thinc layers inside the model (e.g. a spaCy Tok2Vec); the
        # torch modules take their dropout from the architecture config.
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update(inputs)
        loss, d_scores = scores.loss(gold)
        backprop(d_scores)
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: TagScores) -> Tuple[float, Any]:
        """The loss of the model's scores for examples (as returned by
        model.begin_update on _training_batch(examples)), and its gradient."""
        _, gold = self._training_batch(list(examples))
        return scores.loss(gold)

    # -- serialization -------------------------------------------------------

    def _extra_parts(self) -> Dict[str, "SavedPart"]:
        """Files the component saves besides cfg and model, by name; a part
        whose to_bytes returns None is not saved (and not required)."""
        return {}

    def _after_load(self) -> None:
        """Runs after every from_bytes / from_disk."""

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        serialize = {"cfg": lambda: srsly.json_dumps(self.cfg), "model": lambda: self.model.to_bytes()}
        for name, part in self._extra_parts().items():
            serialize[name] = lambda part=part: part.to_bytes() or b""
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "CRFPipe":
        deserialize = {"cfg": lambda b: self.cfg.update(self._read_cfg(srsly.json_loads(b), "the cfg bytes"))}
        for name, part in self._extra_parts().items():
            deserialize[name] = lambda b, part=part: part.from_bytes(b) if b else None
        deserialize["model"] = lambda b: self._load_model(lambda: self.model.from_bytes(b), "bytes")
        util.from_bytes(bytes_data, deserialize, exclude)
        self._after_load()
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = util.ensure_path(path)
        serialize = {"cfg": lambda p: srsly.write_json(p, self.cfg), "model": lambda p: self.model.to_disk(p)}
        for name, part in self._extra_parts().items():
            data = part.to_bytes()
            if data is not None:
                serialize[name] = lambda p, data=data: Path(p).write_bytes(data)
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "CRFPipe":
        path = util.ensure_path(path)
        extra = self._extra_parts()
        for required in ("cfg", "model", *extra):
            if required not in exclude and not (path / required).exists():
                raise ValueError(
                    f"Cannot load {self.name}: missing file {path / required}. "
                    "The pipeline directory is incomplete; re-save or re-download it."
                )
        deserialize = {"cfg": lambda p: self.cfg.update(self._read_cfg(read_json(p), str(p)))}
        for name, part in extra.items():
            deserialize[name] = part.from_disk
        deserialize["model"] = lambda p: self._load_model(lambda: self.model.from_disk(p), str(p))
        util.from_disk(path, deserialize, exclude)
        self._after_load()
        return self

    def _read_cfg(self, cfg: Any, source: str) -> Dict:
        """A loaded cfg, checked: a dict whose "labels" is a list of strings."""
        labels = cfg.get("labels") if isinstance(cfg, dict) else None
        # An empty list is what a pipe saved before initialize holds.
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise ValueError(
                f'Cannot load {self.name}: {source} has no valid "labels" (a list of label '
                f"strings); found {excerpt(cfg)}. The file is corrupted or was edited; "
                "restore it or re-save the pipeline."
            )
        return cfg

    def _probe_inputs(self) -> Optional[Any]:
        """A model input to check loaded weights on, or None (a model that
        reads the pipeline's Docs cannot run before its upstream component)."""
        return None

    def _load_model(self, load: Callable[[], Model], source: str) -> None:
        set_labels(self.model, self.labels)
        self._build_for_loading()
        self._load_weights(load, source, None if self._reads_pipeline_docs or not self.labels else self._probe_inputs())

    def _build_for_loading(self) -> None:
        """Build the model's weights so that the saved ones can be read in."""
        self.model.initialize()

    def _load_weights(self, load: Callable[[], Model], source: str, probe: Optional[Sequence] = None) -> None:
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
        bad = find_bad_parameter(self.model)
        if bad is None and probe is not None and not self.model.predict(probe).is_finite():
            bad = "the scores of a test sentence (they are not finite)"
        if bad is not None:
            raise ValueError(
                f"Cannot load the {self.name} model weights from {source}: {bad}. The "
                "weights are corrupted (or training diverged); restore the file or retrain."
            )
