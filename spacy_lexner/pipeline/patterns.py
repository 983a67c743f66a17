"""Rule patterns with optional visual conditions: validation and evaluation.

A pattern is entity_ruler's dict plus two optional fields:

    {"label": "ANIMAL", "pattern": "Rocky", "id": "rocky",
     "visual": {"tags_any": ["dog", "cat"], "min_score": 0.5},
     "relabel": true, "relabel_from": ["PER"]}

visual (all given keys must hold):
    tags_any: [tags]  at least one tag has score >= min_score (default 0.0)
    tags_none: [tags] no tag in the list has score >= min_score
    embedding_sim: {"prototype": NAME, "min": x}  cosine(image_embedding,
        prototype NAME) >= x; prototypes are stored with the component.
relabel: when true the pattern adds no entity; it changes the label of an
    entity (from an earlier component or from this ruler's own patterns)
    with exactly the matched boundaries (whose label is in relabel_from, if
    given) to "label".
A doc without image context fails every visual condition.
"""

import math
from typing import Any, Dict, List, Mapping, Optional

import numpy

from ..util.image_context import ImageContext

PATTERN_KEYS = {"label", "pattern", "id", "visual", "relabel", "relabel_from"}
VISUAL_KEYS = {"tags_any", "tags_none", "min_score", "embedding_sim"}


class PatternError(ValueError):
    def __init__(self, index: int, field: str, problem: str) -> None:
        super().__init__(f"Pattern {index}: field '{field}' {problem}")
        self.index, self.field = index, field


def validate_pattern(index: int, pattern: Any, prototypes: Mapping[str, numpy.ndarray]) -> Dict:
    """Check one pattern dict; raise PatternError naming its index and field."""
    if not isinstance(pattern, dict):
        raise PatternError(index, "(pattern)", f"must be a dict, got {type(pattern).__name__}")
    unknown = set(pattern) - PATTERN_KEYS
    if unknown:
        raise PatternError(index, sorted(unknown)[0], f"is not a known field; use {sorted(PATTERN_KEYS)}")
    if not isinstance(pattern.get("label"), str) or not pattern["label"]:
        raise PatternError(index, "label", f"must be a non-empty string, got {pattern.get('label')!r}")
    body = pattern.get("pattern")
    if isinstance(body, str):
        if not body:
            raise PatternError(index, "pattern", "must not be an empty string")
    elif not (isinstance(body, list) and body and all(isinstance(t, dict) for t in body)):
        raise PatternError(index, "pattern", "must be a phrase (string) or a list of token-pattern dicts")
    if "id" in pattern and not isinstance(pattern["id"], str):
        raise PatternError(index, "id", f"must be a string, got {pattern['id']!r}")
    if not isinstance(pattern.get("relabel", False), bool):
        raise PatternError(index, "relabel", "must be true or false")
    relabel_from = pattern.get("relabel_from")
    if relabel_from is not None and not (
        isinstance(relabel_from, list) and all(isinstance(x, str) for x in relabel_from)
    ):
        raise PatternError(index, "relabel_from", "must be a list of labels")
    if "visual" in pattern:
        _validate_visual(index, pattern["visual"], prototypes)
    return pattern


def _validate_visual(index: int, visual: Any, prototypes: Mapping[str, numpy.ndarray]) -> None:
    if not isinstance(visual, dict) or not visual:
        raise PatternError(index, "visual", "must be a non-empty dict")
    unknown = set(visual) - VISUAL_KEYS
    if unknown:
        raise PatternError(
            index, f"visual.{sorted(unknown)[0]}", f"is not a known condition; use {sorted(VISUAL_KEYS)}"
        )
    for key in ("tags_any", "tags_none"):
        tags = visual.get(key)
        if tags is not None and not (isinstance(tags, list) and tags and all(isinstance(t, str) for t in tags)):
            raise PatternError(index, f"visual.{key}", "must be a non-empty list of tag strings")
    score = visual.get("min_score", 0.0)
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0.0 <= score <= 1.0:
        raise PatternError(index, "visual.min_score", f"must be a number in [0, 1], got {score!r}")
    sim = visual.get("embedding_sim")
    if sim is not None:
        if not isinstance(sim, dict) or set(sim) != {"prototype", "min"}:
            raise PatternError(index, "visual.embedding_sim", 'must be {"prototype": NAME, "min": x}')
        if sim["prototype"] not in prototypes:
            raise PatternError(
                index,
                "visual.embedding_sim.prototype",
                f"names an unknown prototype {sim['prototype']!r}; add it first with ruler.add_prototype(name, vector)",
            )
        if not isinstance(sim["min"], (int, float)) or not -1.0 <= sim["min"] <= 1.0:
            raise PatternError(index, "visual.embedding_sim.min", f"must be a number in [-1, 1], got {sim['min']!r}")


def visual_condition_holds(
    visual: Optional[Dict], context: Optional[ImageContext], prototypes: Mapping[str, numpy.ndarray]
) -> bool:
    if not visual:
        return True
    if context is None:
        return False
    min_score = visual.get("min_score", 0.0)
    present = {tag for tag, score in context.tags if score >= min_score}
    if "tags_any" in visual and not present.intersection(visual["tags_any"]):
        return False
    if "tags_none" in visual and (not context.tags or present.intersection(visual["tags_none"])):
        return False
    sim = visual.get("embedding_sim")
    if sim is not None:
        if context.embedding is None:
            return False
        similarity = cosine(context.embedding, prototypes[sim["prototype"]])
        # NaN compares false with everything, so "< min" alone would let it pass.
        if not math.isfinite(similarity) or similarity < sim["min"]:
            return False
    return True


def cosine(a: numpy.ndarray, b: numpy.ndarray) -> float:
    if a.shape != b.shape:
        raise ValueError(
            f"The image embedding has shape {a.shape} but the prototype has {b.shape}: "
            "prototypes must come from the same image encoder."
        )
    norm = float(numpy.linalg.norm(a) * numpy.linalg.norm(b))
    return float(a @ b) / norm if norm else 0.0


def visual_patterns_need_context(patterns: List[Dict]) -> bool:
    return any("visual" in p for p in patterns)
