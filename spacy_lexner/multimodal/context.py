"""Image context on the Doc: ``Doc._.image_tags`` and ``Doc._.image_embedding``.

They are set by user code, or by an image-context getter that the
``multimodal_entity_ruler`` calls for docs that have none:

- ``spacy-lexner.image_context_from_user_data.v1`` reads tags/an embedding
  the caller attached: the context of ``nlp.pipe(..., as_tuples=True)`` (a
  dict) or ``doc.user_data``, under the keys "image_tags" / "image_embedding";
- ``spacy-lexner.clip_image_context.v1`` runs a local CLIP or Chinese-CLIP
  model on the image given under "image" (a path or a PIL image);
- null: no getter.
"""
import numbers
import threading
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy
from spacy.tokens import Doc
from spacy.util import registry

from ..excerpt import excerpt

ImageTags = List[Tuple[str, float]]
# What set_image_context / Doc._.image_tags accept; converted to ImageTags.
ImageTagsInput = Union[Iterable[Union[str, Tuple[str, float]]], Mapping[str, float]]
ImageContextGetter = Callable[[Doc], Optional["ImageContext"]]

TAGS_SHAPE = 'a list of tags ["dog"] or of (tag, score) pairs [("dog", 0.9)] with score in [0, 1], or a dict {tag: score}'
EMBEDDING_SHAPE = "a non-empty 1d vector of finite numbers (a list, tuple or numpy array)"
MAX_QUOTED = 80



def _quote(value: Any) -> str:
    # One line: numpy spreads the repr of a matrix over several.
    return " ".join(excerpt(value, MAX_QUOTED).split())


def _user_data_key(name: str) -> Tuple[str, str, None, None]:
    # The key spaCy uses for a plain Doc attribute extension, so docs saved in
    # a DocBin before the extensions had a setter still load, and vice versa.
    return ("._.", name, None, None)


def _get_stored(name: str, doc: Doc) -> Any:
    return doc.user_data.get(_user_data_key(name))


def _set_checked(name: str, check: Callable[[Any, str], Any], doc: Doc, value: Any) -> None:
    if value is None:
        doc.user_data.pop(_user_data_key(name), None)
    else:
        doc.user_data[_user_data_key(name)] = check(value, f"Doc._.{name}")


def _register_extensions() -> None:
    # spaCy only calls a setter when the extension also has a getter.
    for name, check in (("image_tags", _check_tags), ("image_embedding", _check_embedding)):
        if not Doc.has_extension(name):
            # partials of module functions, not closures: nlp.pipe(n_process=...)
            # with spawn pickles the extensions along with the pipeline.
            Doc.set_extension(name, getter=partial(_get_stored, name), setter=partial(_set_checked, name, check))


@dataclass
class ImageContext:
    tags: ImageTags = field(default_factory=list)
    embedding: Optional[numpy.ndarray] = None


def set_image_context(doc: Doc, tags: Optional[ImageTagsInput] = None, embedding: Optional[Any] = None) -> Doc:
    """Attach image tags and/or an image embedding to doc.

    tags: a list of tag strings (score 1.0) or (tag, score) pairs with score
        in [0, 1], or a dict {tag: score}.
    embedding: a 1d vector of finite numbers.
    Anything else raises ValueError; assigning Doc._.image_tags /
    Doc._.image_embedding directly is checked the same way.
    """
    if tags is not None:
        doc._.image_tags = tags
    if embedding is not None:
        doc._.image_embedding = embedding
    return doc


def has_image_context(doc: Doc) -> bool:
    return doc._.image_tags is not None or doc._.image_embedding is not None


def read_image_context(doc: Doc) -> Optional[ImageContext]:
    """The doc's image context, checked again: user_data can be filled
    without the setters (a DocBin from an older version, a raw write)."""
    if not has_image_context(doc):
        return None
    tags, embedding = doc._.image_tags, doc._.image_embedding
    return ImageContext(
        _check_tags(tags, "Doc._.image_tags") if tags is not None else [],
        _check_embedding(embedding, "Doc._.image_embedding") if embedding is not None else None,
    )


def _check_tags(tags: Any, what: str = "image tags") -> ImageTags:
    expected = f"{what} must be {TAGS_SHAPE}"
    if isinstance(tags, str):
        raise ValueError(f"{expected}; got the bare string {_quote(tags)}. Wrap a single tag in a list: {_wrapped(tags)}.")
    if isinstance(tags, Mapping):
        items: Iterable = list(tags.items())
    elif isinstance(tags, (bytes, bytearray)) or not isinstance(tags, Iterable):
        raise ValueError(f"{expected}; got {type(tags).__name__} {_quote(tags)}.")
    else:
        items = tags
        if _is_pair(tags):
            raise ValueError(f"{expected}; got the single pair {_quote(tags)}. Wrap it in a list: {_wrapped(tags)}.")
    checked = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            checked.append((str(item), 1.0))
            continue
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ValueError(f"{expected}; entry {i} is {_quote(item)}.")
        tag, score = item
        if not isinstance(tag, str):
            raise ValueError(f"{expected}; entry {i} has a tag that is not a string: {_quote(item)}.")
        # Also rejects NaN (every comparison with it is false) and inf.
        if not _is_number(score) or not 0.0 <= score <= 1.0:
            raise ValueError(f"{expected}; entry {i} has a score that is not a number in [0, 1]: {_quote(item)}.")
        checked.append((str(tag), float(score)))
    return checked


def _wrapped(value: Any) -> str:
    # The value is quoted once already; repeating a long one only adds noise.
    text = _quote(value)
    return f"[{text}]" if len(text) <= 30 else "[...]"


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but True as a score is a mistake, not 1.0.
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, numpy.bool_))


def _is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and _is_number(value[1])


def _check_embedding(embedding: Any, what: str = "an image embedding") -> numpy.ndarray:
    expected = f"{what} must be {EMBEDDING_SHAPE}"
    # numpy would turn "abc" into a 0d string array and a dict into an object.
    if isinstance(embedding, (str, bytes, bytearray, Mapping)):
        raise ValueError(f"{expected}; got {type(embedding).__name__} {_quote(embedding)}.")
    try:
        raw = numpy.asarray(embedding)
    except (TypeError, ValueError):  # ragged nested lists
        raise ValueError(f"{expected}; got nested sequences of different lengths: {_quote(embedding)}.") from None
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"{expected}; got values of type {raw.dtype} in {_quote(embedding)}.")
    if raw.ndim != 1:
        raise ValueError(f"{expected}; got shape {raw.shape}: {_quote(embedding)}.")
    if raw.size == 0:
        raise ValueError(f"{expected}; got an empty vector.")
    bad = numpy.flatnonzero(~numpy.isfinite(raw))
    if bad.size:
        raise ValueError(f"{expected}; got {raw[bad[0]]} at index {bad[0]} ({bad.size} non-finite value(s)).")
    # A copy, so a caller reusing its buffer cannot change a checked vector.
    with numpy.errstate(over="ignore"):
        vector = numpy.array(raw, dtype="float32")
    bad = numpy.flatnonzero(~numpy.isfinite(vector))
    if bad.size:
        raise ValueError(f"{expected}; the value {raw[bad[0]]} at index {bad[0]} is beyond the float32 range.")
    return vector


_register_extensions()


def _context_value(doc: Doc, key: str) -> Any:
    context = getattr(doc, "_context", None)
    if isinstance(context, dict) and key in context:
        return context[key]
    return doc.user_data.get(key)


@registry.misc("spacy-lexner.image_context_from_user_data.v1")
def make_user_data_getter() -> ImageContextGetter:
    """Read "image_tags" / "image_embedding" from the nlp.pipe context dict or doc.user_data."""
    return UserDataImageContext()


class UserDataImageContext:
    # Getters are classes, not closures, so that a pipeline holding one can
    # be pickled (nlp.pipe(n_process=...) with the spawn start method).
    def __call__(self, doc: Doc) -> Optional[ImageContext]:
        tags, embedding = _context_value(doc, "image_tags"), _context_value(doc, "image_embedding")
        if tags is None and embedding is None:
            return None
        return ImageContext(
            _check_tags(tags, 'The "image_tags" value in the nlp.pipe context or doc.user_data') if tags is not None else [],
            _check_embedding(embedding, 'The "image_embedding" value in the nlp.pipe context or doc.user_data')
            if embedding is not None else None,
        )


@registry.misc("spacy-lexner.clip_image_context.v1")
def make_clip_getter(
    model_path: str,
    tags: List[str],
    prompt_template: str = "{}",
    image_key: str = "image",
    device: str = "cpu",
) -> ImageContextGetter:
    """Zero-shot image tags and the image embedding from a local CLIP or
    Chinese-CLIP model (any model transformers' AutoModel loads with
    get_image_features / get_text_features).

    model_path: directory with the model and its processor (no download).
    tags: the tag vocabulary; each tag is scored against the image through
        the text prompt prompt_template.format(tag), e.g. "一张{}的照片".
    image_key: where the image (a file path or a PIL image) is found in the
        nlp.pipe context dict or doc.user_data.
    """
    return ClipImageContext(_ClipScorer(model_path, tags, prompt_template, device), image_key)


class ClipImageContext:
    def __init__(self, scorer: "_ClipScorer", image_key: str) -> None:
        self.scorer, self.image_key = scorer, image_key

    def __call__(self, doc: Doc) -> Optional[ImageContext]:
        image = _context_value(doc, self.image_key)
        if image is None:
            return None
        loaded = _load_image(image)
        if loaded is None:
            return None
        return self.scorer(loaded)


def _load_image(image: Any):
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    try:
        with Image.open(Path(image)) as opened:
            return opened.convert("RGB")
    except (OSError, UnidentifiedImageError, TypeError, ValueError) as err:
        warnings.warn(f"[multimodal_entity_ruler] Cannot read image {image!r}: {err}. The doc gets no image context.")
        return None


class _ClipScorer:
    """Loads the model on first use, so building a pipeline stays cheap."""

    def __init__(self, model_path: str, tags: List[str], prompt_template: str, device: str) -> None:
        if not tags:
            raise ValueError("clip_image_context needs a non-empty list of tags.")
        self.model_path, self.tags, self.device = model_path, list(tags), device
        self.prompts = [prompt_template.format(tag) for tag in tags]
        # (model, processor, normalised text features), set in one assignment
        # so a thread never sees a model without its processor.
        self._loaded: Optional[Tuple[Any, Any, Any]] = None
        self._lock = threading.Lock()

    def __getstate__(self) -> Dict[str, Any]:
        # nlp.pipe(n_process=...) with spawn pickles the pipeline: a lock
        # cannot be pickled, and each process loads its own model when needed.
        state = dict(self.__dict__)
        del state["_lock"]
        state["_loaded"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _get_loaded(self) -> Tuple[Any, Any, Any]:
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                # Another thread may have loaded it while this one waited.
                if self._loaded is None:
                    self._loaded = self._load()
                loaded = self._loaded
        return loaded

    def _load(self) -> Tuple[Any, Any, Any]:
        import torch
        from transformers import AutoModel, AutoProcessor

        if not Path(self.model_path).exists():
            raise ValueError(f"clip_image_context: model directory {self.model_path} does not exist.")
        model = AutoModel.from_pretrained(self.model_path).to(self.device).eval()
        processor = AutoProcessor.from_pretrained(self.model_path)
        text = processor(text=self.prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            features = model.get_text_features(**{k: v.to(self.device) for k, v in text.items()})
        return model, processor, torch.nn.functional.normalize(features, dim=-1)

    def __call__(self, image) -> ImageContext:
        import torch

        model, processor, text_features = self._get_loaded()
        pixels = processor(images=image, return_tensors="pt")["pixel_values"].to(self.device)
        with torch.no_grad():
            image_features = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels), dim=-1)
            logits = model.logit_scale.exp() * image_features @ text_features.T
            probs = logits.softmax(dim=-1)[0].cpu().numpy()
        order = numpy.argsort(-probs)
        tags = [(self.tags[i], float(probs[i])) for i in order]
        return ImageContext(tags, image_features[0].cpu().numpy().astype("float32"))
