"""The ``multimodal_entity_ruler`` pipe.

Without visual conditions it does what spaCy's ``entity_ruler`` does with the
same patterns (same matching, same priority: longer matches first, then
earlier ones). Patterns may carry a visual condition on the doc's image
context and may relabel entities that an earlier component found.
"""

import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy import util
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example

from ..lexicon.readers import read_lexicon_file
from ..util.image_context import (
    ImageContext,
    ImageContextGetter,
    has_image_context,
    read_image_context,
    set_image_context,
)
from ..util.serialize import read_json, read_jsonl, read_msgpack
from . import image_context as _getters  # noqa: F401  registers the getters
from .patterns import validate_pattern, visual_condition_holds

CONFLICT_POLICIES = ("keep_existing", "overwrite", "prefer_longer")
DECISIONS_KEY = "ruler_decisions"
Match = Tuple[int, int, int]  # (pattern index, start, end)


@Language.factory(
    "multimodal_entity_ruler",
    assigns=["doc.ents", "token.ent_type", "token.ent_iob"],
    default_config={
        "phrase_matcher_attr": None,
        "validate": False,
        "overwrite_ents": False,
        "conflict_policy": None,
        "image_context": {"@misc": "spacy-lexner.image_context_from_user_data.v1"},
        "debug": False,
        "scorer": {"@scorers": "spacy.entity_ruler_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_multimodal_entity_ruler(
    nlp: Language,
    name: str,
    phrase_matcher_attr: Optional[str],
    validate: bool,
    overwrite_ents: bool,
    conflict_policy: Optional[str],
    image_context: Optional[ImageContextGetter],
    debug: bool,
    scorer: Optional[Callable],
) -> "MultimodalEntityRuler":
    """Create a multimodal_entity_ruler.

    overwrite_ents: as in entity_ruler; sets the conflict policy when
        conflict_policy is null ("overwrite" if true, else "keep_existing").
    conflict_policy: how a rule match that overlaps an earlier entity is
        resolved: "keep_existing" (the match is dropped), "overwrite" (the
        earlier entities are removed) or "prefer_longer" (the longer wins;
        a tie keeps the earlier entity).
    image_context: getter called for docs with no Doc._.image_tags /
        image_embedding yet (null: only what user code set is used).
    debug: record every decision in doc.spans["ruler_decisions"].
    """
    return MultimodalEntityRuler(
        nlp,
        name,
        phrase_matcher_attr=phrase_matcher_attr,
        validate=validate,
        conflict_policy=conflict_policy or ("overwrite" if overwrite_ents else "keep_existing"),
        image_context=image_context,
        debug=debug,
        scorer=scorer,
    )


class MultimodalEntityRuler(Pipe):
    def __init__(
        self,
        nlp: Language,
        name: str = "multimodal_entity_ruler",
        *,
        phrase_matcher_attr: Optional[str] = None,
        validate: bool = False,
        conflict_policy: str = "keep_existing",
        image_context: Optional[ImageContextGetter] = None,
        debug: bool = False,
        scorer: Optional[Callable] = None,
    ) -> None:
        if conflict_policy not in CONFLICT_POLICIES:
            raise ValueError(f"conflict_policy must be one of {CONFLICT_POLICIES}, got '{conflict_policy}'.")
        self.nlp = nlp
        self.name = name
        self.phrase_matcher_attr = phrase_matcher_attr
        self.validate = validate
        self.conflict_policy = conflict_policy
        self.image_context = image_context
        self.debug = debug
        self.scorer = scorer
        self.patterns: List[Dict] = []
        self.prototypes: Dict[str, numpy.ndarray] = {}
        self._reset_matchers()

    def _reset_matchers(self) -> None:
        self.matcher = Matcher(self.nlp.vocab, validate=self.validate)
        self.phrase_matcher = PhraseMatcher(self.nlp.vocab, attr=self.phrase_matcher_attr, validate=self.validate)
        self._key_to_index: Dict[int, int] = {}

    # -- patterns ------------------------------------------------------------

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(sorted({p["label"] for p in self.patterns}))

    def __len__(self) -> int:
        return len(self.patterns)

    def add_prototype(self, name: str, vector: Sequence[float]) -> None:
        """A named image-embedding prototype for embedding_sim conditions."""
        array = numpy.asarray(vector, dtype="float32")
        if array.ndim != 1 or not numpy.isfinite(array).all() or not numpy.any(array):
            raise ValueError(f"Prototype '{name}' must be a finite, non-zero 1d vector.")
        self.prototypes[name] = array

    def add_patterns(self, patterns: Sequence[Dict]) -> None:
        """Add patterns; all are validated first, so a bad one adds none."""
        start = len(self.patterns)
        checked = [validate_pattern(start + i, p, self.prototypes) for i, p in enumerate(patterns)]
        for offset, pattern in enumerate(checked):
            self._add_to_matchers(start + offset, pattern)
        self.patterns.extend(checked)

    def add_lexicon(self, path: Union[str, Path], label: str, *, pattern_id: Optional[str] = None) -> int:
        """Phrase patterns for every word of a lexicon file (word [freq] [type]
        per line, errors name file:line), all with one label. Returns the count."""
        patterns = [{"label": label, "pattern": word} for word, _, _ in read_lexicon_file(path)]
        if pattern_id is not None:
            for pattern in patterns:
                pattern["id"] = pattern_id
        self.add_patterns(patterns)
        return len(patterns)

    def _add_to_matchers(self, index: int, pattern: Dict) -> None:
        key = f"{self.name}:{index}"
        self._key_to_index[self.nlp.vocab.strings.add(key)] = index
        body = pattern["pattern"]
        if isinstance(body, str):
            self.phrase_matcher.add(key, [self.nlp.make_doc(body)])
        else:
            self.matcher.add(key, [body])

    def clear(self) -> None:
        self.patterns = []
        self._reset_matchers()

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        patterns: Optional[Sequence[Dict]] = None,
        prototypes: Optional[Dict[str, List[float]]] = None,
        lexicons: Optional[Dict[str, str]] = None,
    ) -> None:
        """Load prototypes, patterns and lexicon files ({label: path}) from
        [initialize.components.<name>]."""
        self.clear()
        for name, vector in (prototypes or {}).items():
            self.add_prototype(name, vector)
        if patterns:
            self.add_patterns(patterns)
        for label, path in (lexicons or {}).items():
            self.add_lexicon(path, label)

    # -- processing ------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        if not self.patterns:
            warnings.warn(
                f"[{self.name}] The multimodal_entity_ruler has no patterns; "
                "add_patterns() or initialize with patterns."
            )
            return doc
        context = self._image_context(doc)
        decisions: List[Span] = []
        matches = self.match(doc)
        firing = []
        for index, start, end in matches:
            pattern = self.patterns[index]
            if visual_condition_holds(pattern.get("visual"), context, self.prototypes):
                firing.append((index, start, end))
            else:
                decisions.append(self._decision(doc, index, start, end, "visual_condition_failed"))
        relabels = [m for m in firing if self.patterns[m[0]].get("relabel")]
        additions = [m for m in firing if not self.patterns[m[0]].get("relabel")]
        # Additions first, so relabel rules also apply to this ruler's own entities.
        self._add_entities(doc, additions, decisions)
        self._relabel(doc, relabels, decisions)
        if self.debug:
            doc.spans[DECISIONS_KEY] = decisions
        return doc

    def _image_context(self, doc: Doc) -> Optional[ImageContext]:
        if not has_image_context(doc) and self.image_context is not None:
            found = self.image_context(doc)
            if found is not None:
                set_image_context(doc, found.tags, found.embedding)
        try:
            return read_image_context(doc)
        except ValueError as err:
            raise ValueError(f"[{self.name}] The doc's image context is invalid: {err}") from err

    def match(self, doc: Doc) -> List[Match]:
        """Matches (pattern index, start, end) in entity_ruler's priority order."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="\\[W036")
            raw = list(self.matcher(doc)) + list(self.phrase_matcher(doc))
        matches = {(self._key_to_index[key], start, end) for key, start, end in raw if start != end}
        return sorted(matches, key=lambda m: (m[2] - m[1], -m[1], -m[0]), reverse=True)

    def _relabel(self, doc: Doc, relabels: List[Match], decisions: List[Span]) -> None:
        by_bounds = {(ent.start, ent.end): ent for ent in doc.ents}
        changed = dict(by_bounds)
        for index, start, end in relabels:
            pattern = self.patterns[index]
            ent = changed.get((start, end))
            allowed = pattern.get("relabel_from")
            if ent is None or (allowed is not None and ent.label_ not in allowed):
                decisions.append(self._decision(doc, index, start, end, "relabel_no_matching_entity"))
                continue
            changed[(start, end)] = Span(doc, start, end, label=pattern["label"], span_id=pattern.get("id", ent.id_))
            decisions.append(self._decision(doc, index, start, end, f"relabelled_from_{ent.label_}"))
        if changed != by_bounds:
            doc.set_ents(list(changed.values()), default="unmodified")

    def _add_entities(self, doc: Doc, matches: List[Match], decisions: List[Span]) -> None:
        entities = list(doc.ents)
        new_entities: List[Span] = []
        seen_tokens = set()
        for index, start, end in matches:
            if start in seen_tokens or end - 1 in seen_tokens:
                decisions.append(self._decision(doc, index, start, end, "overlaps_higher_priority_match"))
                continue
            overlapping = [e for e in entities if e.start < end and e.end > start]
            if overlapping and not self._match_wins(end - start, overlapping):
                decisions.append(self._decision(doc, index, start, end, "kept_existing_entity"))
                continue
            pattern = self.patterns[index]
            new_entities.append(Span(doc, start, end, label=pattern["label"], span_id=pattern.get("id", "")))
            for ent in overlapping:
                decisions.append(
                    Span(doc, ent.start, ent.end, label=f"removed_existing_{ent.label_}", span_id=str(index))
                )
            decisions.append(self._decision(doc, index, start, end, "added"))
            entities = [e for e in entities if not (e.start < end and e.end > start)]
            seen_tokens.update(range(start, end))
        doc.ents = entities + new_entities

    def _match_wins(self, length: int, overlapping: List[Span]) -> bool:
        if self.conflict_policy == "overwrite":
            return True
        if self.conflict_policy == "prefer_longer":
            return all(length > len(ent) for ent in overlapping)
        return False

    def _decision(self, doc: Doc, index: int, start: int, end: int, what: str) -> Span:
        """A span whose label is the decision and whose id is the pattern index."""
        return Span(doc, start, end, label=f"{what}:{self.patterns[index]['label']}", span_id=str(index))

    # -- serialization ---------------------------------------------------------

    def _cfg(self) -> Dict:
        return {"phrase_matcher_attr": self.phrase_matcher_attr, "conflict_policy": self.conflict_policy}

    def _prototypes_msg(self) -> Dict:
        return {name: vector.tolist() for name, vector in self.prototypes.items()}

    def _load(self, cfg: Dict, patterns: List[Dict], prototypes: Dict) -> None:
        self.phrase_matcher_attr = cfg.get("phrase_matcher_attr")
        self.conflict_policy = cfg.get("conflict_policy", self.conflict_policy)
        self.prototypes = {}
        self.clear()
        for name, vector in prototypes.items():
            self.add_prototype(name, vector)
        self.add_patterns(patterns)

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps(
            {"cfg": self._cfg(), "patterns": self.patterns, "prototypes": self._prototypes_msg()}
        )

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "MultimodalEntityRuler":
        msg = srsly.msgpack_loads(bytes_data)
        self._load(msg["cfg"], msg["patterns"], msg["prototypes"])
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = util.ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self._cfg())
        srsly.write_jsonl(path / "patterns.jsonl", self.patterns)
        srsly.write_msgpack(path / "prototypes.msgpack", self._prototypes_msg())

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "MultimodalEntityRuler":
        path = util.ensure_path(path)
        for name in ("cfg", "patterns.jsonl", "prototypes.msgpack"):
            if not (path / name).exists():
                raise ValueError(f"Cannot load {self.name}: missing file {path / name}. Re-save the pipeline.")
        # The readers name the file when it does not decode; _load's checks
        # (a pattern that is not a dict, prototypes that are not a map) are
        # about patterns.jsonl and prototypes.msgpack, so name the directory.
        cfg = read_json(path / "cfg")
        patterns = read_jsonl(path / "patterns.jsonl")
        prototypes = read_msgpack(path / "prototypes.msgpack")
        if not isinstance(cfg, dict) or not isinstance(prototypes, dict):
            raise ValueError(
                f"Cannot load {self.name}: {path / 'cfg'} or {path / 'prototypes.msgpack'} "
                "does not hold a map. The file is corrupted; re-save the pipeline."
            )
        try:
            self._load(cfg, patterns, prototypes)
        except ValueError as err:
            raise ValueError(f"Cannot load {self.name} from {path / 'patterns.jsonl'}: {err}") from err
        return self
