"""Image-context getters: what the ``multimodal_entity_ruler`` calls for
docs that have no ``Doc._.image_tags`` / ``Doc._.image_embedding`` yet.

- ``spacy-lexner.image_context_from_user_data.v1`` reads tags/an embedding
  the caller attached: the context of ``nlp.pipe(..., as_tuples=True)`` (a
  dict) or ``doc.user_data``, under the keys "image_tags" / "image_embedding";
- ``spacy-lexner.clip_image_context.v1`` runs a local CLIP or Chinese-CLIP
  model on the image given under "image" (a path or a PIL image);
- null: no getter.
"""

import threading
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry

from ..util.image_context import ImageContext, ImageContextGetter, _check_embedding, _check_tags


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
            _check_tags(tags, 'The "image_tags" value in the nlp.pipe context or doc.user_data')
            if tags is not None
            else [],
            _check_embedding(embedding, 'The "image_embedding" value in the nlp.pipe context or doc.user_data')
            if embedding is not None
            else None,
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

    def __call__(self, image: Any) -> ImageContext:
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
