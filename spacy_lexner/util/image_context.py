"""Image context on the Doc: ``Doc._.image_tags`` and ``Doc._.image_embedding``.

They are set by user code, or by an image-context getter that the
``multimodal_entity_ruler`` calls for docs that have none (the getters are in
``spacy_lexner.pipeline.image_context``). Setting either extension checks the
value; ``read_image_context`` checks values that bypassed the setter.
"""

import numbers
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, List, Mapping, Optional, Tuple, Union

import numpy
from spacy.tokens import Doc

from .excerpt import excerpt

ImageTags = List[Tuple[str, float]]
# What set_image_context / Doc._.image_tags accept; converted to ImageTags.
ImageTagsInput = Union[Iterable[Union[str, Tuple[str, float]]], Mapping[str, float]]
ImageContextGetter = Callable[[Doc], Optional["ImageContext"]]

TAGS_SHAPE = (
    'a list of tags ["dog"] or of (tag, score) pairs [("dog", 0.9)] with score in [0, 1], or a dict {tag: score}'
)
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
        raise ValueError(
            f"{expected}; got the bare string {_quote(tags)}. Wrap a single tag in a list: {_wrapped(tags)}."
        )
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
