"""A linear-time character tokenizer for Chinese: the tokens of spaCy's
``char`` segmenter, without its quadratic alignment.

spaCy's ``spacy.zh.ChineseTokenizer`` with ``segmenter = "char"`` splits the
text into characters and aligns them back onto the text with
``spacy.util.get_words_and_spaces``, which searches ``text[pos:]`` (a copy of
the rest of the text) for every character: 100k / 200k / 400k characters took
0.3 / 1.0 / 3.8 s, and 77 s of a 1,000,000-character ``nlp()`` call
(``benchmarks/long_doc.py``). The rule it implements is simple, and one pass
gives the same tokens (``tests/test_tokenizer.py`` compares the two):

* every non-whitespace character is a token;
* a run of whitespace between them is one token, except that a single
  ``" "`` right after a character becomes that token's trailing space
  (``Token.whitespace_``) and the rest of the run, if any, is the token;
* whitespace is what ``str.isspace`` says it is, as in spaCy.

Use it in a config::

    [nlp.tokenizer]
    @tokenizers = "spacy-lexner.ChineseCharTokenizer.v1"

or on a blank pipeline: ``nlp.tokenizer = ChineseCharTokenizer(nlp.vocab)``.
"""

import re
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import registry
from spacy.vocab import Vocab

# `\s` in a str pattern is the same predicate as str.isspace (both are
# CPython's Py_UNICODE_ISSPACE); tests check every code point.
_NON_SPACE = re.compile(r"\S")


def char_words_and_spaces(text: str) -> Tuple[List[str], List[bool]]:
    """The words and spaces of spaCy's ``char`` segmenter, in one pass.

    text (str): The text.
    RETURNS (Tuple[List[str], List[bool]]): Arguments for ``Doc(vocab, words, spaces)``.
    """
    words: List[str] = []
    spaces: List[bool] = []
    pos = 0
    n_chars = len(text)
    for match in _NON_SPACE.finditer(text):
        start = match.start()
        if start > pos:
            words.append(text[pos:start])
            spaces.append(False)
        words.append(text[start])
        pos = start + 1
        if pos < n_chars and text[pos] == " ":
            spaces.append(True)
            pos += 1
        else:
            spaces.append(False)
    if pos < n_chars:
        words.append(text[pos:])
        spaces.append(False)
    return words, spaces


class ChineseCharTokenizer:
    """One token per character, as ``spacy.zh.ChineseTokenizer`` with
    ``segmenter = "char"``, in time linear in the text length."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        words, spaces = char_words_and_spaces(text)
        return Doc(self.vocab, words=words, spaces=spaces)

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        for text in texts:
            yield self(text)

    # Nothing to save: the tokenizer has no settings or data. These exist
    # because nlp.to_disk / from_disk / to_bytes call them.
    def to_bytes(self, **kwargs: Any) -> bytes:
        return b""

    def from_bytes(self, data: bytes, **kwargs: Any) -> "ChineseCharTokenizer":
        return self

    def to_disk(self, path: Union[str, Path], **kwargs: Any) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)

    def from_disk(self, path: Union[str, Path], **kwargs: Any) -> "ChineseCharTokenizer":
        return self


@registry.tokenizers("spacy-lexner.ChineseCharTokenizer.v1")
def create_chinese_char_tokenizer() -> Callable[[Language], ChineseCharTokenizer]:
    """A linear-time tokenizer with the tokens of spaCy's Chinese ``char`` segmenter.

    RETURNS (Callable[[Language], ChineseCharTokenizer]): Builds the tokenizer for an nlp.
    """

    def make_tokenizer(nlp: Language) -> ChineseCharTokenizer:
        return ChineseCharTokenizer(nlp.vocab)

    return make_tokenizer
