"""The ``lexner_tagger`` pipe: character-level, lexicon-enhanced NER."""

import warnings
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..lexicon import Lattice, Lexicon
from ..lexicon.windows import Window, clip_spans, split_windows
from ..models.contract import set_quantized
from ..models.pretrained import VectorsLoader, load_pretrained_vectors
from ..models.types import FixedSpans
from ..util.tags import spans_outside
from .crf_base import PROBE_TEXT, CRFPipe, SavedPart

CharSpan = Tuple[int, int, str]
ALIGNMENT_MODES = ("strict", "contract", "expand")

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy-lexner.LexiconTagger.v2"

[model.decoder]
@architectures = "spacy-lexner.CRFDecoder.v1"
scheme = "BIOES"

[model.embed]
@architectures = "spacy-lexner.SoftLexiconEmbed.v2"
char_width = 50
bigram_width = 50
word_width = 50
type_width = 16
weighting = "frequency"
dropout = 0.5
word_dropout = 0.1
use_lexicon = true
sparse_updates = true

[model.encoder]
@architectures = "spacy-lexner.BiLSTMEncoder.v1"
hidden_width = 200
depth = 1
dropout = 0.5
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "lexner_tagger",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "extra_lexicons": [],
        "window_size": 256,
        "window_overlap": 32,
        "batch_chars": 16384,
        "alignment_mode": "expand",
        "overwrite_ents": False,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
        "quantize": False,
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_lexner_tagger(
    nlp: Language,
    name: str,
    model: Model,
    extra_lexicons: List[str],
    window_size: int,
    window_overlap: int,
    batch_chars: int,
    alignment_mode: str,
    overwrite_ents: bool,
    scorer: Optional[Callable],
    quantize: bool = False,
) -> "LexiconTagger":
    """Create a lexner_tagger.

    extra_lexicons (List[str]): lexicon files (word [freq] [type] per line)
        added to the pipeline's lexicon at initialize and every time it is
        loaded, e.g. a domain dictionary for an already trained pipeline.
    window_size (int): texts longer than this are tagged sentence by sentence,
        and sentences longer than this in overlapping windows.
    window_overlap (int): overlap between windows of one long sentence.
    batch_chars (int): at most this many (padded) characters per forward pass.
    alignment_mode (str): how character entities map onto tokens that do not
        share their boundaries (jieba-segmented docs): see Doc.char_span.
    overwrite_ents (bool): false (the default, as spaCy's ner does) keeps
        the entities an earlier component set (e.g. an entity_ruler) and
        predicts the rest around them; true replaces them with the tagger's.
    quantize (bool): predict with int8 dynamically quantized LSTM and Linear
        layers (CPU only). Training and saving keep the float weights, so it
        can be switched on when loading: spacy.load(path, config={"components":
        {"lexner_tagger": {"quantize": True}}}). Speed and F1: docs/lexner_tagger.md.
    """
    return LexiconTagger(
        nlp.vocab,
        model,
        name,
        extra_lexicons=extra_lexicons,
        window_size=window_size,
        window_overlap=window_overlap,
        batch_chars=batch_chars,
        alignment_mode=alignment_mode,
        overwrite_ents=overwrite_ents,
        scorer=scorer,
        quantize=quantize,
    )


class LexiconTagger(CRFPipe):
    """Tag characters with BIOES (or BIO) entity tags and write Doc.ents.

    Entities are predicted on characters of doc.text and then mapped onto the
    doc's tokens, so the pipe works on char-segmented and word-segmented docs.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "lexner_tagger",
        *,
        extra_lexicons: Sequence[str] = (),
        window_size: int = 256,
        window_overlap: int = 32,
        batch_chars: int = 16384,
        alignment_mode: str = "expand",
        overwrite_ents: bool = False,
        scorer: Optional[Callable] = None,
        quantize: bool = False,
    ) -> None:
        if alignment_mode not in ALIGNMENT_MODES:
            raise ValueError(f"alignment_mode must be one of {ALIGNMENT_MODES}, got '{alignment_mode}'.")
        split_windows("", window_size, window_overlap)  # validates the settings
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.extra_lexicons = list(extra_lexicons)
        self.window_size = window_size
        self.window_overlap = window_overlap
        self.batch_chars = batch_chars
        self.alignment_mode = alignment_mode
        self.overwrite_ents = overwrite_ents
        self.quantize = quantize
        self.cfg: Dict = {"labels": []}
        self.lexicon: Optional[Lexicon] = None
        self.alignment_stats = {"whitespace": 0, "unaligned": 0, "overlapping": 0}
        # A listener (e.g. a transformer's) must see the pipeline's own docs,
        # so such models get whole docs instead of windows. The model's
        # structure is fixed, so this is decided once, not per batch.
        self._needs_pipeline_docs = self._reads_pipeline_docs

    # -- labels and lexicon -------------------------------------------------

    def set_lexicon(self, lexicon: Lexicon) -> None:
        """Replace the lexicon (e.g. a larger domain lexicon) without retraining."""
        self.lexicon = lexicon

    def extend_lexicon(self, source: Union[Lexicon, str, Path]) -> None:
        """Add the words of a Lexicon or a lexicon file to this pipe's lexicon."""
        if self.lexicon is None:
            raise ValueError("This lexner_tagger has no lexicon yet: initialize or load it first.")
        other = source if isinstance(source, Lexicon) else Lexicon.from_file(source)
        self.lexicon.update(other)

    def _apply_extra_lexicons(self) -> None:
        for path in self.extra_lexicons:
            self.extend_lexicon(path)

    # -- initialize ----------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
        lexicon: Optional[Callable[[], Lexicon]] = None,
        pretrained_vectors: Optional[Union[str, Path, VectorsLoader]] = None,
        pretrained_rescale: bool = False,
    ) -> None:
        """Set labels from the data (or `labels`), load the lexicon and
        initialise the model.

        lexicon: a loader from the lexicons registry, e.g.
            [initialize.components.lexner_tagger.lexicon]
            @lexicons = "spacy-lexner.jieba_lexicon.v1"
            The default is jieba's bundled dictionary.
        pretrained_vectors: an .npz of char/bigram/word vectors, a word2vec
            file, or a loader such as
            [initialize.components.lexner_tagger.pretrained_vectors]
            @misc = "spacy-lexner.word2vec_vectors.v1"
            (see spacy_lexner.models.pretrained); it initialises the embedding
            tables, null keeps the random initialisation.
        pretrained_rescale: deprecated (it did worse on Resume dev: 94.29 vs
            94.68 unscaled); it still works, with a warning, until 0.3.
        """
        validate_get_examples(get_examples, "LexiconTagger.initialize")
        if labels is None:
            labels = [ent.label_ for eg in get_examples() for ent in eg.reference.ents]
        # Labels added with add_label count too, as they do for spaCy's ner.
        labels = sorted(set(labels) | set(self.cfg["labels"]))
        if not labels:
            raise ValueError(
                "lexner_tagger found no entity labels in the training data. Check "
                "that the training docs have doc.ents, add them with "
                "nlp.get_pipe(name).add_label(label), or pass labels in "
                "[initialize.components.<name>.labels]."
            )
        self._set_labels(labels)
        self.set_lexicon(lexicon() if lexicon is not None else Lexicon.from_jieba())
        self._apply_extra_lexicons()
        sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=self._lattice([doc.text for doc in sample], docs=sample))
        if pretrained_vectors is not None:
            load_pretrained_vectors(
                self.model,
                pretrained_vectors,
                vocab=nlp.vocab if nlp is not None else self.vocab,
                lexicon=self.lexicon,
                rescale=pretrained_rescale,
            )

    def _lattice(
        self,
        texts: Sequence[str],
        *,
        docs: Optional[Sequence[Doc]] = None,
        doc_index: Optional[Sequence[int]] = None,
        window_start: Optional[Sequence[int]] = None,
    ) -> Lattice:
        """The lattice of texts, matched against this pipe's lexicon."""
        return Lattice.build(texts, self.lexicon, docs=docs, doc_index=doc_index, window_start=window_start)

    # -- prediction ----------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[List[CharSpan]]:
        """Character-offset entities (start, end, label) for each doc,
        predicted around the doc's preset entities (unless overwrite_ents),
        which are not among them."""
        docs = list(docs)
        self._check_initialized()
        presets = [self._preset_spans(doc) for doc in docs]
        if self._needs_pipeline_docs:
            return self._predict_whole_docs(docs, presets)
        texts = [doc.text for doc in docs]  # Doc.text is rebuilt on every access
        windows = [(i, w) for i, text in enumerate(texts) for w in self._windows(text)]
        tags = [numpy.zeros((len(text),), dtype="int64") for text in texts]
        for group in self._group_windows(windows):
            lattice = self._lattice(
                [texts[i][w.start : w.end] for i, w in group],
                doc_index=[i for i, _ in group],
                window_start=[w.start for _, w in group],
            )
            fixed = [clip_spans(presets[i], w.start, w.end) for i, w in group]
            paths = self._decode(lattice, fixed)
            for (i, w), path in zip(group, paths):
                lo, hi = w.own_start - w.start, w.own_end - w.start
                tags[i][w.own_start : w.own_end] = path[lo:hi]
        scheme = self.tag_scheme
        return [spans_outside(scheme.decode(doc_tags), fixed) for doc_tags, fixed in zip(tags, presets)]

    def _predict_whole_docs(self, docs: List[Doc], presets: List[List[CharSpan]]) -> List[List[CharSpan]]:
        scheme = self.tag_scheme
        if not any(doc.text for doc in docs):
            return [[] for _ in docs]
        paths = self._decode(self._lattice([doc.text for doc in docs], docs=docs), presets)
        return [
            spans_outside(scheme.decode(path[: len(doc.text)]), fixed) for doc, path, fixed in zip(docs, paths, presets)
        ]

    def _preset_spans(self, doc: Doc) -> List[CharSpan]:
        """The entities of doc that this pipe keeps: those set by an earlier
        component, unless overwrite_ents."""
        if self.overwrite_ents:
            return []
        return [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]

    def _windows(self, text: str, overlap: Optional[int] = None) -> List[Window]:
        return split_windows(text, self.window_size, self.window_overlap if overlap is None else overlap)

    def _group_windows(self, windows: List[Tuple[int, Window]]) -> Iterable[List[Tuple[int, Window]]]:
        """Batches of similar-length windows with at most batch_chars padded chars."""
        ordered = sorted(windows, key=lambda iw: iw[1].end - iw[1].start, reverse=True)
        group: List[Tuple[int, Window]] = []
        max_len = 0
        for item in ordered:
            length = item[1].end - item[1].start
            if group and max(max_len, length) * (len(group) + 1) > self.batch_chars:
                yield group
                group, max_len = [], 0
            group.append(item)
            max_len = max(max_len, length)
        if group:
            yield group

    def _decode(self, lattice: Lattice, fixed: FixedSpans = None) -> numpy.ndarray:
        """Tag ids of each text of the lattice, keeping the fixed
        (start, end, label) spans of each."""
        # Set on every call: loading a pipeline builds the torch layers anew.
        set_quantized(self.model, self.quantize)
        return self.model.predict(lattice).decode(fixed)

    def set_annotations(self, docs: Iterable[Doc], spans_per_doc: List[List[CharSpan]]) -> None:
        whitespace = unaligned = overlapping = 0
        for doc, char_spans in zip(docs, spans_per_doc):
            presets = [] if self.overwrite_ents else list(doc.ents)
            ents = []
            for start, end, label in char_spans:
                start, end = _strip_whitespace(doc, start, end)
                if start == end:
                    # A whitespace-only entity is never useful; it is counted
                    # and reported, not silently dropped.
                    whitespace += 1
                    continue
                span = doc.char_span(start, end, label=label, alignment_mode=self.alignment_mode)
                if span is None or len(span) == 0:
                    unaligned += 1
                else:
                    ents.append(span)
            kept = filter_spans(ents)
            # Alignment (alignment_mode="expand") can widen a prediction
            # into a preset entity; the preset wins.
            taken = {i for ent in presets for i in range(ent.start, ent.end)}
            free = [ent for ent in kept if not taken.intersection(range(ent.start, ent.end))]
            overlapping += len(ents) - len(free)
            doc.set_ents(sorted(presets + free, key=lambda ent: ent.start), default="outside")
        self._warn_alignment(whitespace, unaligned, overlapping)

    def _warn_alignment(self, whitespace: int, unaligned: int, overlapping: int) -> None:
        stats = self.alignment_stats
        stats["whitespace"] = stats.get("whitespace", 0) + whitespace
        stats["unaligned"] += unaligned
        stats["overlapping"] += overlapping
        if not (whitespace or unaligned or overlapping):
            return
        mode = self.alignment_mode
        what, fixes = [], []
        if whitespace:
            what.append(f"{whitespace} covered only whitespace")
        if unaligned:
            what.append(f"{unaligned} did not fall on token boundaries (alignment_mode='{mode}')")
            fixes.append("set alignment_mode='expand' to widen them to the tokens they touch")
        if overlapping:
            how = "once widened to token boundaries" if mode == "expand" else "after alignment"
            what.append(f"{overlapping} overlapped another entity {how}")
            fixes.append(
                "tag char-segmented docs (spacy.blank('zh')), whose tokens are the characters the tagger predicts on"
            )
        fix = f" To keep them, {' or '.join(dict.fromkeys(fixes))}." if fixes else ""
        warnings.warn(
            f"[{self.name}] Of the predicted entities, {'; '.join(what)}; they were not written "
            f"to doc.ents.{fix} Running totals are in nlp.get_pipe('{self.name}').alignment_stats."
        )

    # -- training ------------------------------------------------------------

    def _training_batch(self, examples: List[Example]) -> Tuple[Optional[Lattice], List[numpy.ndarray]]:
        """The lattice of the examples' training windows (whole docs for a
        model that reads Docs) and the gold tags of each."""
        scheme = self.tag_scheme
        texts: List[str] = []
        doc_index: List[int] = []
        window_start: List[int] = []
        gold: List[numpy.ndarray] = []
        whole = self._needs_pipeline_docs
        for i, eg in enumerate(examples):
            text = eg.predicted.text
            spans = [(e.start_char, e.end_char, e.label_) for e in eg.reference.ents]
            windows = [Window(0, len(text), 0, len(text))] if whole else self._windows(text, overlap=0)
            for w in windows:
                inside = clip_spans(spans, w.start, w.end)
                texts.append(text[w.start : w.end])
                doc_index.append(i)
                window_start.append(w.start)
                gold.append(scheme.encode(w.end - w.start, [s for s in inside if s[2] in scheme.labels]))
        if not texts:
            return None, gold
        docs = [eg.predicted for eg in examples] if whole else None
        return self._lattice(texts, docs=docs, doc_index=doc_index, window_start=window_start), gold

    # -- serialization ---------------------------------------------------------

    def _extra_parts(self) -> Dict[str, SavedPart]:
        return {
            "lexicon": SavedPart(
                to_bytes=lambda: self.lexicon.to_bytes() if self.lexicon is not None else None,
                from_bytes=lambda b: self.set_lexicon(Lexicon().from_bytes(b)),
                from_disk=lambda p: self.set_lexicon(Lexicon().from_disk(p)),
            )
        }

    def _after_load(self) -> None:
        self._apply_extra_lexicons()

    def _probe_inputs(self) -> Lattice:
        return self._lattice([PROBE_TEXT])


def _strip_whitespace(doc: Doc, start: int, end: int) -> Tuple[int, int]:
    """Entity offsets without leading/trailing whitespace (documented repair)."""
    # Doc.text joins every token's text on each access: a quarter of the
    # profiled nlp.pipe time on Resume test. The tokens the span touches hold
    # all the characters it needs.
    tokens = doc.char_span(start, end, alignment_mode="expand") if end > start else None
    if tokens is not None and tokens.start_char <= start and end <= tokens.end_char + len(tokens[-1].whitespace_):
        text, offset = tokens.text_with_ws, tokens.start_char
    else:
        text, offset = doc.text, 0
    while start < end and text[start - offset].isspace():
        start += 1
    while end > start and text[end - 1 - offset].isspace():
        end -= 1
    return start, end
