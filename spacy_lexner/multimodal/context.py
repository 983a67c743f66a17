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
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry

ImageTags = List[Tuple[str, float]]
ImageContextGetter = Callable[[Doc], Optional["ImageContext"]]
for _name in ("image_tags", "image_embedding"):
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=None)


@dataclass
class ImageContext:
    tags: ImageTags = field(default_factory=list)
    embedding: Optional[numpy.ndarray] = None


def set_image_context(doc: Doc, tags: Optional[Sequence] = None, embedding: Optional[Any] = None) -> Doc:
    """Attach image tags [(tag, score), ...] (or bare tag strings, score 1.0)
    and/or an image embedding to doc, checking their types."""
    if tags is not None:
        doc._.image_tags = _check_tags(tags)
    if embedding is not None:
        doc._.image_embedding = _check_embedding(embedding)
    return doc


def has_image_context(doc: Doc) -> bool:
    return doc._.image_tags is not None or doc._.image_embedding is not None


def _check_tags(tags: Sequence) -> ImageTags:
    checked = []
    for item in tags:
        tag, score = (item, 1.0) if isinstance(item, str) else tuple(item)
        if not isinstance(tag, str) or not 0.0 <= float(score) <= 1.0:
            raise ValueError(f"Image tags must be (str, score in [0, 1]) pairs or strings, got {item!r}.")
        checked.append((tag, float(score)))
    return checked


def _check_embedding(embedding: Any) -> numpy.ndarray:
    vector = numpy.asarray(embedding, dtype="float32")
    if vector.ndim != 1 or not numpy.isfinite(vector).all():
        raise ValueError(f"An image embedding must be a finite 1d vector, got shape {vector.shape}.")
    return vector


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
            _check_tags(tags) if tags is not None else [],
            _check_embedding(embedding) if embedding is not None else None,
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
        self._model = self._processor = self._text_features = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoProcessor

        if not Path(self.model_path).exists():
            raise ValueError(f"clip_image_context: model directory {self.model_path} does not exist.")
        self._model = AutoModel.from_pretrained(self.model_path).to(self.device).eval()
        self._processor = AutoProcessor.from_pretrained(self.model_path)
        text = self._processor(text=self.prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            features = self._model.get_text_features(**{k: v.to(self.device) for k, v in text.items()})
        self._text_features = torch.nn.functional.normalize(features, dim=-1)

    def __call__(self, image) -> ImageContext:
        import torch

        if self._model is None:
            self._load()
        pixels = self._processor(images=image, return_tensors="pt")["pixel_values"].to(self.device)
        with torch.no_grad():
            image_features = torch.nn.functional.normalize(self._model.get_image_features(pixel_values=pixels), dim=-1)
            logits = self._model.logit_scale.exp() * image_features @ self._text_features.T
            probs = logits.softmax(dim=-1)[0].cpu().numpy()
        order = numpy.argsort(-probs)
        tags = [(self.tags[i], float(probs[i])) for i in order]
        return ImageContext(tags, image_features[0].cpu().numpy().astype("float32"))
