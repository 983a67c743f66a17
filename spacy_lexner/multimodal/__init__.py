"""``multimodal_entity_ruler``: entity rules conditioned on the image that
goes with a text, and the image-context getters that attach it to the Doc."""
from .context import ImageContext, set_image_context

__all__ = ["ImageContext", "set_image_context"]
