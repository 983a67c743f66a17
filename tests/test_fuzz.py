"""Property-based fuzzing of trained pipelines over arbitrary unicode text.

Invariants (tests/tiny_pipelines.check_doc): no exception, doc.text equals the
input, every entity is a valid non-overlapping span whose char offsets index
the input exactly. Inputs that once failed are kept as @example / explicit
cases. Run more examples locally with HYPOTHESIS_PROFILE=long.
"""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from spacy_lexner.util.image_context import set_image_context

from .tiny_pipelines import check_doc, crf_pipeline, lexner_pipeline, write_lexicon

EMOJI = ["😀", "👨\u200d👩\u200d👧", "🇨🇳", "👍🏽", "❤\ufe0f", "🏳\ufe0f\u200d🌈"]
COMBINING = ["e\u0301", "a\u0308\u0323", "\u0300", "张\u0301", "\u20dd"]
CONTROL = ["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85", "\u200b", "\u200e", "\u200f", "\u2028", "\u2029", "\ufeff"]
RTL = ["שלום", "مرحبا بالعالم", "\u202e张三\u202c", "עברית 123"]
FULL_WIDTH = ["ＡＢＣ", "１２３", "，。！？", "\u3000", "ｈｔｔｐ：／／"]
WHITESPACE = [" ", "\t", "\n", "\r\n", "\u3000", "\xa0", "\u2003", "\x0b", "\x0c"]
CHINESE = ["张三", "在北京大学工作", "腾讯公司", "南京市长江大桥", "。", "Apple Store", "旺财", "3999"]

pieces = st.one_of(
    st.sampled_from(EMOJI + COMBINING + CONTROL + RTL + FULL_WIDTH + WHITESPACE + CHINESE),
    st.text(min_size=1, max_size=8),  # any code point except surrogates
    st.characters(),
)
texts = st.one_of(
    st.lists(pieces, max_size=12).map("".join),
    st.lists(st.sampled_from(WHITESPACE), min_size=1, max_size=20).map("".join),
    # Long runs of one character cross the 256-char window size.
    st.tuples(st.sampled_from(["张", "。", " ", "\n", "\x00", "😀", "a", "\u0301"]), st.integers(1, 700)).map(
        lambda t: t[0] * t[1]
    ),
)

# Regression inputs (also run explicitly below, not only as @example).
REGRESSIONS = [
    "",
    "\x00",
    " \u0301",
    "\u0301张三",
    "张三\n\n\n李四",
    "\u3000张三\u3000",
    "\r\n",
    "😀" * 300,
    "。" * 600,
    "张" * 700,
]


@pytest.fixture(scope="module")
def lexner_nlp(tmp_path_factory):
    return lexner_pipeline(write_lexicon(tmp_path_factory.mktemp("lex") / "lex.txt"))


@pytest.fixture(scope="module")
def crf_nlp():
    return crf_pipeline()


@given(text=texts)
@example(text="张三\x00在腾讯")
@example(text="\u202e张三\u202c")
def test_fuzz_lexner_tagger_and_ruler(lexner_nlp, text):
    check_doc(lexner_nlp(text), text)


@given(text=texts)
@example(text="张三\x00在腾讯")
def test_fuzz_crf_ner_and_ruler(crf_nlp, text):
    check_doc(crf_nlp(text), text)


@given(text=texts)
def test_fuzz_with_image_context(lexner_nlp, text):
    doc = lexner_nlp.make_doc(text)
    set_image_context(doc, tags=[("dog", 0.9)])
    for _, proc in lexner_nlp.pipeline:
        doc = proc(doc)
    check_doc(doc, text)


@pytest.mark.parametrize("text", REGRESSIONS, ids=lambda t: ascii(t[:12]) + f"x{len(t)}")
def test_regressions(lexner_nlp, crf_nlp, text):
    check_doc(lexner_nlp(text), text)
    check_doc(crf_nlp(text), text)
    assert [d.text for d in lexner_nlp.pipe([text, text], batch_size=1)] == [text, text]
