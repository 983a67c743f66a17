"""The ``crf_ner`` pipe: token-level CRF NER over a shared embedding layer."""

import warnings
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples
from spacy.util import filter_spans, registry
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..models.contract import build_crf_weights
from ..util.tags import spans_outside
from .crf_base import PROBE_TEXT, CRFPipe

TokenSpan = Tuple[int, int, str]

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy-lexner.CRFTagger.v1"
scheme = "BIOES"

[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 96
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
rows = [5000, 1000, 2500, 2500]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 96
depth = 4
window_size = 1
maxout_pieces = 3
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@registry.scorers("spacy-lexner.crf_ner_scorer.v1")
def make_crf_ner_scorer() -> Callable:
    return score_crf_ner


def score_crf_ner(examples: Iterable[Example], *, spans_key: Optional[str] = None, **kwargs) -> Dict:
    """ents_* scores, or spans_{key}_* scores when the pipe writes doc.spans."""
    if spans_key is None:
        return get_ner_prf(examples)
    # score_spans names the scores after attr and passes attr to the getter.
    return Scorer.score_spans(
        examples,
        f"spans_{spans_key}",
        getter=lambda doc, attr: doc.spans.get(spans_key, []),
        has_annotation=lambda doc: spans_key in doc.spans,
        allow_overlap=False,
    )


@Language.factory(
    "crf_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": None,
        "overwrite_ents": False,
        "scorer": {"@scorers": "spacy-lexner.crf_ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_crf_ner(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: Optional[str],
    overwrite_ents: bool,
    scorer: Optional[Callable],
) -> "CRFEntityRecognizer":
    """Create a crf_ner component.

    model: a spacy-lexner.CRFTagger.v1 over any tok2vec or listener.
    spans_key: write the entities to doc.spans[spans_key] instead of doc.ents
        (and read the gold entities from there). Set the score weights to
        spans_{key}_f etc. in your training config when you use it.
    overwrite_ents: false (the default, as spaCy's ner does) keeps the
        entities an earlier component set (in doc.spans[spans_key] when
        spans_key is set) and predicts the rest around them; true replaces
        them.
    """
    return CRFEntityRecognizer(
        nlp.vocab, model, name, spans_key=spans_key, overwrite_ents=overwrite_ents, scorer=scorer
    )


class CRFEntityRecognizer(CRFPipe):
    """Tag tokens with BIOES (or BIO) tags under a CRF and write entities.

    Works on any tokenization: characters (spacy.blank("zh")), jieba words, or
    English words. Gold entities that do not line up with the predicted
    tokens cannot be tagged; they are counted in alignment_stats and
    reported in a warning.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "crf_ner",
        *,
        spans_key: Optional[str] = None,
        overwrite_ents: bool = False,
        scorer: Optional[Callable] = score_crf_ner,
    ) -> None:
        self.overwrite_ents = overwrite_ents
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict = {"labels": [], "spans_key": spans_key}
        self.alignment_stats = {"unaligned_gold": 0, "overlapping_gold": 0}

    @property
    def spans_key(self) -> Optional[str]:
        return self.cfg["spans_key"]

    def _gold_spans(self, doc: Doc) -> List[Span]:
        if self.spans_key is None:
            return list(doc.ents)
        return list(doc.spans[self.spans_key]) if self.spans_key in doc.spans else []

    # -- initialize ----------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Set the labels (from the data unless given) and initialise the model."""
        validate_get_examples(get_examples, "CRFEntityRecognizer.initialize")
        if labels is None:
            labels = [s.label_ for eg in get_examples() for s in self._gold_spans(eg.reference)]
        # Labels added with add_label count too, as they do for spaCy's ner.
        labels = sorted(set(labels) | set(self.cfg["labels"]))
        if not labels:
            where = "doc.ents" if self.spans_key is None else f"doc.spans['{self.spans_key}']"
            raise ValueError(
                f"crf_ner found no entity labels in {where} of the training data. "
                "Check the data, add them with nlp.get_pipe(name).add_label(label), or "
                "pass labels in [initialize.components.<name>.labels]."
            )
        self._set_labels(labels)
        sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=sample)

    # -- prediction ----------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[List[TokenSpan]]:
        """Token-offset entities (start, end, label) for each doc."""
        docs = list(docs)
        self._check_initialized()
        if not any(len(doc) for doc in docs):
            return [[] for _ in docs]
        presets = [self._preset_spans(doc) for doc in docs]
        paths = self.model.predict(docs).decode(presets)
        scheme = self.tag_scheme
        return [spans_outside(scheme.decode(path[: len(doc)]), fixed) for doc, path, fixed in zip(docs, paths, presets)]

    def _presets(self, doc: Doc) -> List[Span]:
        """Spans an earlier component set, which predictions keep (none with
        overwrite_ents). A span group may overlap; the longer span wins."""
        return [] if self.overwrite_ents else filter_spans(self._gold_spans(doc))

    def _preset_spans(self, doc: Doc) -> List[TokenSpan]:
        return [(span.start, span.end, span.label_) for span in self._presets(doc)]

    def set_annotations(self, docs: Iterable[Doc], spans_per_doc: List[List[TokenSpan]]) -> None:
        for doc, token_spans in zip(docs, spans_per_doc):
            spans = self._presets(doc) + [Span(doc, start, end, label=label) for start, end, label in token_spans]
            spans.sort(key=lambda span: span.start)
            if self.spans_key is None:
                doc.set_ents(spans, default="outside")
            else:
                doc.spans[self.spans_key] = spans

    # -- training ------------------------------------------------------------

    def _training_batch(self, examples: List[Example]) -> Tuple[Optional[List[Doc]], List[numpy.ndarray]]:
        """The examples' docs and their gold tags (mean CRF negative
        log-likelihood per doc is the loss)."""
        if not any(len(eg.predicted) for eg in examples):
            return None, []
        return [eg.predicted for eg in examples], [self._gold_tags(eg) for eg in examples]

    def _gold_tags(self, eg: Example) -> numpy.ndarray:
        gold_spans = self._gold_spans(eg.reference)
        kept = filter_spans(gold_spans)
        aligned = eg.get_aligned_spans_y2x(kept, allow_overlap=False)
        unaligned, overlapping = len(kept) - len(aligned), len(gold_spans) - len(kept)
        if unaligned or overlapping:
            self._warn_gold(unaligned, overlapping)
        scheme = self.tag_scheme
        token_spans = [(s.start, s.end, s.label_) for s in aligned if s.label_ in scheme.labels]
        return scheme.encode(len(eg.predicted), token_spans)

    def _warn_gold(self, unaligned: int, overlapping: int) -> None:
        first = not any(self.alignment_stats.values())
        self.alignment_stats["unaligned_gold"] += unaligned
        self.alignment_stats["overlapping_gold"] += overlapping
        if first:
            warnings.warn(
                f"[crf_ner] {unaligned} gold entities do not line up with token "
                f"boundaries and {overlapping} overlap another gold entity; they are "
                "trained as O. Use a tokenizer whose tokens match the entity "
                "boundaries (e.g. spacy.blank('zh') characters). Running totals are in "
                "nlp.get_pipe(name).alignment_stats (this warning is shown once)."
            )

    # -- serialization -------------------------------------------------------

    def _build_for_loading(self) -> None:
        # Only the CRF needs building (its torch module holds the weights);
        # every other layer gets its dims and weights from the saved model,
        # and a listener could not be initialized before its upstream.
        build_crf_weights(self.model)

    def _probe_inputs(self) -> List[Doc]:
        return [Doc(self.vocab, words=list(PROBE_TEXT))]
