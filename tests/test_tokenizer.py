"""The linear-time char tokenizer gives exactly the tokens of spaCy's char segmenter."""

import random
import re

import pytest
import spacy
from spacy.util import get_words_and_spaces, load_config

from spacy_lexner.pipeline.tokenizer import ChineseCharTokenizer, char_words_and_spaces

from .util import REPO_ROOT

EVERY_CHAR = "".join(map(chr, range(0x110000)))
ALL_SPACES = [c for c in EVERY_CHAR if c.isspace()]

EDGE_TEXTS = [
    "",
    " ",
    "   ",
    "\n",
    " \n ",
    "中",
    " 中",
    "中 ",
    "中  ",
    "中 \n文",
    "张三在北京工作。",
    "iPhone 14在2022年9月发布\n",
    "😀 emoji 👍🏽文字",
    "\u3000全角空格\u3000 之后",
    "a\u00a0b\tc\r\nd",
    "  leading and trailing  ",
]


@pytest.fixture(scope="module")
def blank_zh():
    nlp = spacy.blank("zh")
    assert nlp.tokenizer.segmenter == "char"
    return nlp


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_same_tokens_as_spacy_char_segmenter(blank_zh, text):
    ours = ChineseCharTokenizer(blank_zh.vocab)(text)
    assert [(t.text, t.whitespace_) for t in ours] == [(t.text, t.whitespace_) for t in blank_zh(text)]


def test_same_words_and_spaces_on_random_texts():
    rng = random.Random(0)
    alphabet = list("中文ab1😀 .。") + ALL_SPACES
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert char_words_and_spaces(text) == get_words_and_spaces(list(text), text), repr(text)


def test_whitespace_is_str_isspace():
    # the tokenizer finds characters with the regex \S: it must agree with
    # str.isspace, which spaCy's alignment uses, on every code point
    assert len(ALL_SPACES) > 20
    assert re.findall(r"\s", EVERY_CHAR) == ALL_SPACES


def test_text_round_trips():
    text = "南京市长江大桥  于1968年\n\n建成 。 "
    words, spaces = char_words_and_spaces(text)
    assert "".join(w + (" " if s else "") for w, s in zip(words, spaces)) == text


def test_shipped_configs_use_it_and_it_round_trips(tmp_path):
    config = load_config(REPO_ROOT / "configs" / "resume.cfg")
    assert config["nlp"]["tokenizer"]["@tokenizers"] == "spacy-lexner.ChineseCharTokenizer.v1"
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"@tokenizers": "spacy-lexner.ChineseCharTokenizer.v1"}}})
    assert isinstance(nlp.tokenizer, ChineseCharTokenizer)
    nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert isinstance(loaded.tokenizer, ChineseCharTokenizer)
    assert [t.text for t in loaded("中 文")] == ["中", "文"]
    fresh = spacy.blank("zh", config={"nlp": {"tokenizer": {"@tokenizers": "spacy-lexner.ChineseCharTokenizer.v1"}}})
    assert [t.text for t in fresh.from_bytes(nlp.to_bytes())("中文")] == ["中", "文"]
    assert [d.text for d in nlp.tokenizer.pipe(["中", "文 "])] == ["中", "文 "]
