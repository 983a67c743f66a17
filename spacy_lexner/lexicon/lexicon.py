"""A word list with frequencies and types, matched against text with Aho-Corasick."""

import gc
import math
import statistics
import sys
import threading
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from itertools import count
from operator import itemgetter
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import ahocorasick
import numpy
import srsly
from spacy.strings import hash_string

from ..util.excerpt import excerpt
from .hashing import type_key
from .readers import LexiconEntry, read_lexicon_file

SERIALIZATION_VERSION = 1
DEFAULT_MIN_LENGTH = 1
DEFAULT_MAX_LENGTH = 16

Match = Tuple[int, int, str]
SoftLexiconSets = Tuple[List[str], List[str], List[str], List[str]]

_SERIALIZED_KEYS = ("min_length", "max_length", "default_freq", "words", "freqs", "types")
# First code point of the letters used to re-encode text for the automaton;
# the letters never meet real text, so any range works.
_LETTER_BASE = 0x100
_BY_START = itemgetter(0)
# Characters outside the lexicon remembered by a _Matcher's translate table.
_MAX_CACHED_UNKNOWN = 1 << 16
_IDENTITIES = count()
_MAX_FREQ = sys.float_info.max


class Lexicon:
    """Words with a frequency (float > 0) and an optional type (e.g. jieba POS
    `nr`/`ns`/`nt`/`nz`, or a user type such as `ORG`).

    Words shorter than `min_length` or longer than `max_length` are never
    stored, so they are never matched.

    Words added without a frequency get `default_freq`. It defaults to the
    median frequency of the words that had one at construction (1.0 if none
    did). Why: SoftLexicon weights words by frequency, and jieba's counts run
    into the millions. A user's domain word ("华为云") listed without a count
    should weigh like a typical word, not like 1.0 next to 的 (318825).
    """

    def __init__(
        self,
        entries: Optional[Iterable[Tuple[str, Optional[float], Optional[str]]]] = None,
        *,
        min_length: int = DEFAULT_MIN_LENGTH,
        max_length: int = DEFAULT_MAX_LENGTH,
        default_freq: Optional[float] = None,
    ) -> None:
        """Create a lexicon.

        entries (Optional[Iterable[Tuple[str, Optional[float], Optional[str]]]]):
            `(word, freq, type)` triples; freq or type may be None.
        min_length (int): Shortest word (in characters) to keep.
        max_length (int): Longest word (in characters) to keep.
        default_freq (Optional[float]): Frequency for words added without one.
            None: the median of the given frequencies, or 1.0.
        """
        _check_length_limits(min_length, max_length)
        self._min_length = min_length
        self._max_length = max_length
        self._freqs: Dict[str, float] = {}
        self._types: Dict[str, str] = {}
        # None means "stale": rebuilt on the next match() (the dirty flag).
        self._matcher: Optional[_Matcher] = None
        self._matcher_lock = threading.Lock()
        self._version = 0
        self._identity = next(_IDENTITIES)
        cleaned = self._clean(entries if entries is not None else [])
        if default_freq is not None:
            self._default_freq = _check_freq("default_freq", default_freq)
        else:
            given = [freq for _, freq, _ in cleaned if freq is not None]
            self._default_freq = float(statistics.median(given)) if given else 1.0
        self._store(cleaned)

    @classmethod
    def from_jieba(
        cls,
        *,
        min_length: int = DEFAULT_MIN_LENGTH,
        max_length: int = DEFAULT_MAX_LENGTH,
        default_freq: Optional[float] = None,
    ) -> "Lexicon":
        """Load jieba's bundled dict.txt (`word freq pos`, 349,046 lines).

        Words beyond `max_length` are dropped without a warning: shortening
        the bundled list is a deliberate setting, not a data problem.

        RETURNS (Lexicon): The jieba lexicon, typed with jieba's POS tags.
        """
        entries = list(read_lexicon_file(jieba_dict_path()))
        return cls(entries, min_length=min_length, max_length=max_length, default_freq=default_freq)

    @classmethod
    def from_file(
        cls,
        path: Union[str, Path],
        *,
        default_freq: Optional[float] = None,
        default_type: Optional[str] = None,
        min_length: int = DEFAULT_MIN_LENGTH,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> "Lexicon":
        """Load a word list (see `readers.read_lexicon_file` for the formats).

        Words longer than `max_length` are skipped with one warning per file.

        path (Union[str, Path]): The UTF-8 word list.
        default_freq (Optional[float]): Frequency for words without one.
            None: the median of the file's frequencies, or 1.0.
        default_type (Optional[str]): Type for words without one.
        RETURNS (Lexicon): The loaded lexicon.
        """
        return cls.from_files(
            [path],
            default_freq=default_freq,
            default_type=default_type,
            min_length=min_length,
            max_length=max_length,
        )

    @classmethod
    def from_files(
        cls,
        paths: Sequence[Union[str, Path]],
        *,
        default_freq: Optional[float] = None,
        default_type: Optional[str] = None,
        min_length: int = DEFAULT_MIN_LENGTH,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> "Lexicon":
        """Load several word lists into one lexicon, like `from_file`.

        RETURNS (Lexicon): The merged lexicon.
        """
        entries: List[LexiconEntry] = []
        for path in paths:
            entries.extend(_read_checked(path, default_type, max_length))
        return cls(entries, min_length=min_length, max_length=max_length, default_freq=default_freq)

    @property
    def min_length(self) -> int:
        """RETURNS (int): The shortest word length stored."""
        return self._min_length

    @property
    def max_length(self) -> int:
        """RETURNS (int): The longest word length stored."""
        return self._max_length

    @property
    def version(self) -> int:
        """A counter that changes whenever the words change (for caches)."""
        return self._version

    @property
    def cache_key(self) -> Tuple[int, int]:
        """(identity, version): unique to this lexicon object and its words,
        unlike id(), which Python reuses once an object is freed."""
        return (self._identity, self._version)

    def __getstate__(self) -> Dict[str, Any]:
        # nlp.pipe(n_process=...) with spawn pickles the pipeline: the lock
        # and the automaton (rebuilt on the next match) stay behind.
        state = dict(self.__dict__)
        state["_matcher"] = None
        del state["_matcher_lock"]
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._matcher_lock = threading.Lock()
        self._identity = next(_IDENTITIES)

    @property
    def default_freq(self) -> float:
        """RETURNS (float): The frequency given to words added without one."""
        return self._default_freq

    @property
    def types(self) -> List[str]:
        """RETURNS (List[str]): The distinct word types, sorted."""
        return sorted(set(self._types.values()))

    def __len__(self) -> int:
        return len(self._freqs)

    def __contains__(self, word: object) -> bool:
        return word in self._freqs

    def __iter__(self) -> Iterator[str]:
        return iter(self._freqs)

    def __repr__(self) -> str:
        return (
            f"Lexicon({len(self)} words, types={self.types[:8]}, "
            f"min_length={self._min_length}, max_length={self._max_length})"
        )

    def freq(self, word: str) -> float:
        """RETURNS (float): The word's frequency. RAISES KeyError: not in the lexicon."""
        try:
            return self._freqs[word]
        except KeyError:
            raise KeyError(f"{excerpt(word)} is not in the lexicon; check `word in lexicon` first.") from None

    def type_of(self, word: str) -> Optional[str]:
        """RETURNS (Optional[str]): The word's type, or None if it has none.
        RAISES KeyError: The word is not in the lexicon.
        """
        if word not in self._freqs:
            raise KeyError(f"{excerpt(word)} is not in the lexicon; check `word in lexicon` first.")
        return self._types.get(word)

    def add(self, word: str, freq: Optional[float] = None, type_: Optional[str] = None) -> None:
        """Add a word. Re-adding keeps the larger frequency; a given type replaces the old one.

        Words outside [min_length, max_length] are ignored.

        word (str): The word.
        freq (Optional[float]): Its frequency (> 0). None: `default_freq`.
        type_ (Optional[str]): Its type. None keeps any existing type.
        """
        self._store(self._clean([(word, freq, type_)]))

    def update(self, other: "Lexicon") -> None:
        """Merge another lexicon in, as if each of its words were `add`ed.

        Words outside this lexicon's length limits are ignored.
        """
        entries = [(word, freq, other._types.get(word)) for word, freq in other._freqs.items()]
        self._store(self._clean(entries))

    def add_file(self, path: Union[str, Path], *, default_type: Optional[str] = None) -> None:
        """Add the words of a word list; words without a frequency get `default_freq`.

        Words longer than `max_length` are skipped with one warning.
        """
        self._store(self._clean(_read_checked(path, default_type, self._max_length)))

    def match(self, text: str) -> List[Match]:
        """Find every occurrence of every word.

        text (str): Any text; offsets are Python str indices.
        RETURNS (List[Tuple[int, int, str]]): `(start, end, word)`, end
            exclusive, sorted by (start, end).
        """
        matcher = self._get_matcher()
        if matcher is None:
            return []
        with gc_paused():
            return matcher.match(text)

    def match_batch(self, texts: Sequence[str]) -> "BatchMatches":
        """Every match in each of texts, as arrays (what a Lattice holds):
        per text the number of matches, and per match its start, end and the
        id of its word in `table`, the word table of the automaton that
        matched (one snapshot, even if the lexicon changes meanwhile)."""
        matcher = self._get_matcher()
        if matcher is None:
            return BatchMatches.empty(len(texts))
        with gc_paused():
            return matcher.match_batch(texts)

    def _get_matcher(self) -> Optional["_Matcher"]:
        matcher = self._matcher
        if matcher is None:
            if not self._freqs:
                return None
            # One thread builds the automaton (seconds for jieba's list);
            # the others wait for it instead of building their own.
            with self._matcher_lock:
                if self._matcher is None:
                    # Building allocates a few tuples per word and no cycles:
                    # with the collector paused it takes 0.6 s, not 1.0 s, for jieba.
                    with gc_paused():
                        self._matcher = _Matcher(self._freqs, self._types)
                matcher = self._matcher
        return matcher

    def soft_lexicon_sets(self, text: str) -> List[SoftLexiconSets]:
        """The SoftLexicon (Ma et al., ACL 2020) word sets of each character.

        For each char: B = words starting at it (length >= 2), M = words
        strictly containing it inside, E = words ending at it (length >= 2),
        S = the single-char word equal to it. Lists follow `match` order.

        text (str): Any text.
        RETURNS (List[Tuple[List[str], List[str], List[str], List[str]]]):
            One (B, M, E, S) tuple per character.

        Deprecated: the tagger reads SoftLexicon sets from the lattice
        (spacy_lexner.lexicon.Lattice), which this method is not used by.
        """
        warnings.warn(
            "Lexicon.soft_lexicon_sets is deprecated and will be removed in spacy-lexner 0.3: "
            "build a spacy_lexner.lexicon.Lattice, which holds every matched word with its "
            "offsets, instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        n_chars = len(text)
        with gc_paused():
            begin: List[List[str]] = [[] for _ in range(n_chars)]
            middle: List[List[str]] = [[] for _ in range(n_chars)]
            end_: List[List[str]] = [[] for _ in range(n_chars)]
            single: List[List[str]] = [[] for _ in range(n_chars)]
            for start, end, word in self.match(text):
                if end - start == 1:
                    single[start].append(word)
                    continue
                begin[start].append(word)
                end_[end - 1].append(word)
                for inside in middle[start + 1 : end - 1]:
                    inside.append(word)
            return list(zip(begin, middle, end_, single))

    def to_bytes(self) -> bytes:
        """RETURNS (bytes): The lexicon as msgpack (the automaton is rebuilt on load)."""
        words = list(self._freqs)
        types = self._types
        msg = {
            "version": SERIALIZATION_VERSION,
            "min_length": self._min_length,
            "max_length": self._max_length,
            "default_freq": self._default_freq,
            "words": words,
            "freqs": list(self._freqs.values()),
            "types": [types.get(word) for word in words],
        }
        return srsly.msgpack_dumps(msg)

    def from_bytes(self, data: bytes) -> "Lexicon":
        """Replace the contents with data from `to_bytes`.

        RETURNS (Lexicon): self. RAISES ValueError: the data is not a lexicon.
        """
        try:
            msg = srsly.msgpack_loads(data)
        except Exception as err:
            raise ValueError(
                f"Cannot decode lexicon data ({type(err).__name__}: {err}). "
                f"Expected bytes written by Lexicon.to_bytes; they are truncated "
                f"or corrupt, so serialize the lexicon again."
            ) from err
        self._load_msg(msg)
        return self

    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the lexicon to a msgpack FILE, creating parent directories."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())

    def from_disk(self, path: Union[str, Path]) -> "Lexicon":
        """Replace the contents with a file written by `to_disk`.

        RETURNS (Lexicon): self. RAISES ValueError: missing or corrupt file.
        """
        path = Path(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ValueError(
                f"Cannot load lexicon: {path} {what}. Expected the file written "
                f"by Lexicon.to_disk; check the path, or re-create the file "
                f"with Lexicon.to_disk."
            )
        try:
            return self.from_bytes(path.read_bytes())
        except ValueError as err:
            raise ValueError(
                f"Cannot load lexicon from {path}: {err} Re-create the file with "
                f"Lexicon.to_disk (e.g. re-save the pipeline)."
            ) from err

    def _clean(self, entries: Iterable[Any]) -> List[LexiconEntry]:
        """Validate entries; drop the words outside the length limits."""
        min_length, max_length = self._min_length, self._max_length
        cleaned = []
        for entry in entries:
            try:
                word, freq, type_ = entry
            except (TypeError, ValueError):
                raise ValueError(
                    f"Lexicon entries must be (word, freq, type) triples, got "
                    f"{excerpt(entry)}. Use None for a missing freq or type."
                ) from None
            if not isinstance(word, str) or not word:
                raise ValueError(f"Lexicon words must be non-empty strings, got {excerpt(word)}.")
            if not min_length <= len(word) <= max_length:
                continue
            if freq is not None:
                freq = _check_freq(f"the frequency of {excerpt(word)}", freq)
            if type_ is not None and (not isinstance(type_, str) or not type_):
                raise ValueError(
                    f"The type of {excerpt(word)} must be a non-empty string or None, got {excerpt(type_)}."
                )
            cleaned.append((word, freq, type_))
        return cleaned

    def _store(self, entries: List[LexiconEntry]) -> None:
        freqs, types, default = self._freqs, self._types, self._default_freq
        for word, freq, type_ in entries:
            if freq is None:
                freq = default
            old = freqs.get(word)
            if old is None or freq > old:
                freqs[word] = freq
            if type_ is not None:
                types[word] = type_
        if entries:
            self._matcher = None
            self._version += 1

    def _load_msg(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            raise ValueError(
                f"Expected lexicon data (a msgpack map), found a {type(msg).__name__}. "
                f"Use bytes written by Lexicon.to_bytes."
            )
        if msg.get("version") != SERIALIZATION_VERSION:
            raise ValueError(
                f"Unsupported lexicon data version {excerpt(msg.get('version'))} (expected "
                f"{SERIALIZATION_VERSION}). Serialize it again with this version "
                f"of spacy-lexner."
            )
        missing = [key for key in _SERIALIZED_KEYS if key not in msg]
        columns = [msg.get(key) for key in ("words", "freqs", "types")]
        if (
            missing
            or not all(isinstance(column, list) for column in columns)
            or len({len(column) for column in columns}) != 1
        ):
            raise ValueError(
                f"Malformed lexicon data (missing keys {missing}, or words/freqs/"
                f"types are not lists of one length). Serialize the lexicon again."
            )
        _check_length_limits(msg["min_length"], msg["max_length"])
        words, freqs, types = columns
        # Checked here because to_bytes never writes such values: a NaN or
        # negative frequency loaded silently and the tagger then found nothing.
        if not _is_freq(msg["default_freq"]):
            raise ValueError(
                f"Corrupt lexicon data: default_freq is {excerpt(msg['default_freq'])}, "
                f"not a finite number > 0. Serialize the lexicon again."
            )
        _check_serialized_columns(words, freqs, types)
        self._min_length = msg["min_length"]
        self._max_length = msg["max_length"]
        self._default_freq = float(msg["default_freq"])
        self._freqs = dict(zip(words, map(float, freqs)))
        self._types = {word: type_ for word, type_ in zip(words, types) if type_ is not None}
        self._matcher = None
        self._version += 1


@dataclass(frozen=True)
class WordTable:
    """The words of one automaton by id, with their key (hash_string), frequency
    and type key (hashing.type_key)."""

    words: List[str]
    keys: numpy.ndarray
    freqs: numpy.ndarray
    type_keys: numpy.ndarray


@dataclass(frozen=True)
class BatchMatches:
    """The matches of a batch of texts (see Lexicon.match_batch)."""

    counts: numpy.ndarray  # [n_texts]
    starts: numpy.ndarray  # [n_matches]
    ends: numpy.ndarray
    word_ids: numpy.ndarray
    table: Optional[WordTable]

    @classmethod
    def empty(cls, n_texts: int) -> "BatchMatches":
        none = numpy.zeros((0,), dtype="int64")
        return cls(numpy.zeros((n_texts,), dtype="int64"), none, none, none, None)


class _Matcher:
    """pyahocorasick automaton over a two-letter re-encoding of the text.

    Why re-encode: pyahocorasick finds a trie node's child by a linear scan.
    With jieba's list the root has ~11,800 children, and almost every
    character passes through the root, so matching ran at only 0.5-0.7M
    chars/s. Writing each character as two letters (rank // K, rank % K),
    with K = ceil(sqrt(#distinct chars)), caps every node at K children (110
    for jieba) and gives 1.5-2M chars/s; the build also gets faster. Ranks
    follow how often a char occurs in the lexicon, and words are inserted in
    encoded order, so common characters come first in each child list.

    The two letters come from disjoint ranges, so a match can only start at
    a character boundary. Characters that occur in no word map to a letter
    pair that starts no key, so every character is exactly two letters: with
    one pad letter in front, the letter index of a word's last letter,
    halved, is the word's exclusive end offset in the text.
    """

    def __init__(self, freqs: Dict[str, float], types: Dict[str, str]) -> None:
        words = list(freqs)
        chars = [char for char, _ in Counter("".join(words)).most_common()]
        k = math.isqrt(max(len(chars) - 1, 0)) + 1
        unknown = chr(_LETTER_BASE + 2 * k)
        self.table_letters = _EncodingTable(unknown * 2)
        for rank, char in enumerate(chars):
            high, low = divmod(rank, k)
            self.table_letters[ord(char)] = chr(_LETTER_BASE + high) + chr(_LETTER_BASE + k + low)
        self.pad = unknown
        self.automaton = ahocorasick.Automaton()
        keyed = sorted((word.translate(self.table_letters), word) for word in words)
        self._ordered = [word for _, word in keyed]
        # Read now: the lexicon changes its dicts in place (and then drops
        # this matcher). Hashing waits for the first match_batch.
        self._freqs = numpy.fromiter(map(freqs.__getitem__, self._ordered), dtype="float64", count=len(self._ordered))
        self._types = list(map(types.get, self._ordered))
        self._table: Optional[WordTable] = None
        add_word = self.automaton.add_word
        lengths = list(map(len, self._ordered))
        for word_id, ((encoded, word), length) in enumerate(zip(keyed, lengths)):
            # Stored with its length and id, so a match needs no slicing.
            add_word(encoded, (length, word, word_id))
        self.automaton.make_automaton()

    def match(self, text: str) -> List[Match]:
        encoded = self.pad + text.translate(self.table_letters)
        found = [((end := index >> 1) - value[0], end, value[1]) for index, value in self.automaton.iter(encoded)]
        # iter() reports matches by ascending end, so a stable sort on the
        # start alone yields (start, end) order, and int keys sort fastest.
        found.sort(key=_BY_START)
        return found

    @property
    def table(self) -> WordTable:
        """The word table, built on first use (match() needs none): 0.3 s for
        jieba. Threads racing here build equal tables; either one is kept."""
        table = self._table
        if table is None:
            with gc_paused():
                table = self._table = _word_table(self._ordered, self._freqs, self._types)
        return table

    def match_batch(self, texts: Sequence[str]) -> "BatchMatches":
        counts = numpy.zeros((len(texts),), dtype="int64")
        found: List[Tuple[int, int, int]] = []
        for i, text in enumerate(texts):
            encoded = self.pad + text.translate(self.table_letters)
            matches = [
                ((end := index >> 1) - length, end, word_id)
                for index, (length, _, word_id) in self.automaton.iter(encoded)
            ]
            matches.sort(key=_BY_START)
            counts[i] = len(matches)
            found.extend(matches)
        columns = numpy.array(found, dtype="int64").reshape((len(found), 3))
        return BatchMatches(counts, columns[:, 0], columns[:, 1], columns[:, 2], self.table)


def _word_table(ordered: List[str], freqs: numpy.ndarray, types: List[Optional[str]]) -> WordTable:
    n_words = len(ordered)
    pairs = list(zip(types, map(len, ordered)))
    # A few hundred distinct (type, length) pairs: hash each once.
    pair_keys = {pair: type_key(*pair) for pair in set(pairs)}
    return WordTable(
        words=ordered,
        keys=numpy.fromiter(map(hash_string, ordered), dtype="uint64", count=n_words),
        freqs=freqs,
        type_keys=numpy.fromiter(map(pair_keys.__getitem__, pairs), dtype="uint64", count=n_words),
    )


class _EncodingTable(dict):  # type: ignore[type-arg]
    """str.translate table for _Matcher: unmapped characters get `unknown`."""

    def __init__(self, unknown: str) -> None:
        super().__init__()
        self.unknown = unknown
        self.n_cached = 0

    def __missing__(self, key: int) -> str:
        # Caching the answer halves translate() time on text with digits and
        # punctuation (a Python call per char otherwise). The cap bounds the
        # memory random text could make it use.
        if self.n_cached < _MAX_CACHED_UNKNOWN:
            self.n_cached += 1
            self[key] = self.unknown
        return self.unknown


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if enabled) inside the block.

    Why: match() and soft_lexicon_sets() allocate a container or more per
    match and per character. With spaCy and a 349k-word lexicon in memory,
    that triggers full collections that scanned the whole heap and took most
    of the time (measured: match 0.56 -> 1.3M chars/s, soft_lexicon_sets
    0.10 -> 0.6M chars/s). The blocks create no reference cycles, so nothing
    is left for the collector; its state is restored on exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def jieba_dict_path() -> Path:
    """RETURNS (Path): jieba's bundled dict.txt.

    Found with importlib instead of `import jieba`, which would set up
    jieba's tokenizer; only the file is needed.
    """
    spec = find_spec("jieba")
    if spec is None or spec.origin is None:
        raise ImportError("The jieba lexicon needs the jieba package: pip install jieba")
    path = Path(spec.origin).parent / "dict.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"jieba's dictionary is missing at {path}. Reinstall jieba: pip install --force-reinstall jieba"
        )
    return path


def _read_checked(path: Union[str, Path], default_type: Optional[str], max_length: int) -> List[LexiconEntry]:
    """Read a word list, warning once about the words longer than max_length."""
    entries = list(read_lexicon_file(path, default_type=default_type))
    too_long = [word for word, _, _ in entries if len(word) > max_length]
    if too_long:
        warnings.warn(
            f"{path}: skipped {len(too_long)} word(s) longer than "
            f"max_length={max_length} (e.g. {excerpt(too_long[0])}, longest "
            f"{max(map(len, too_long))} chars). Raise max_length to keep them.",
            stacklevel=3,
        )
    return entries


def _check_freq(what: str, freq: Any) -> float:
    try:
        value = float(freq)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
        value = math.nan
    if isinstance(freq, (str, bytes)) or not 0.0 < value < math.inf:
        raise ValueError(f"{what} must be a finite number > 0, got {excerpt(freq)}.")
    return value


def _is_freq(value: Any) -> bool:
    # bool is an int subclass but no frequency; the upper bound also refuses
    # ints too large for a float. NaN fails every comparison.
    return type(value) in (float, int) and 0.0 < value <= _MAX_FREQ


def _check_serialized_columns(words: List[Any], freqs: List[Any], types: List[Any]) -> None:
    """Raise a ValueError naming the first corrupt entry of loaded data."""
    # Data written by to_bytes passes these whole-column checks, which run
    # in C: 40 ms for jieba's 349k words against 90 ms for the loop below,
    # which only runs to name the bad entry (or to accept int frequencies).
    if (
        set(map(type, words)) <= {str}
        and "" not in words
        and set(map(type, freqs)) <= {float}
        and all(map(math.isfinite, freqs))
        and (not freqs or min(freqs) > 0.0)
        and set(map(type, types)) <= {str, type(None)}
        and "" not in types
    ):
        return
    for i, (word, freq, type_) in enumerate(zip(words, freqs, types)):
        if type(word) is not str or not word:
            problem = f"word {i} is {excerpt(word)}, not a non-empty string"
        elif not _is_freq(freq):
            problem = f"the frequency of word {i} ({excerpt(word)}) is {excerpt(freq)}, not a finite number > 0"
        elif type_ is not None and (type(type_) is not str or not type_):
            problem = f"the type of word {i} ({excerpt(word)}) is {excerpt(type_)}, not a non-empty string or None"
        else:
            continue
        raise ValueError(f"Corrupt lexicon data: {problem}. Serialize the lexicon again.")


def _check_length_limits(min_length: Any, max_length: Any) -> None:
    valid = isinstance(min_length, int) and isinstance(max_length, int)
    if not valid or not 1 <= min_length <= max_length:
        raise ValueError(
            f"Word length limits must be integers with 1 <= min_length <= "
            f"max_length, got min_length={excerpt(min_length)}, max_length={excerpt(max_length)}."
        )
