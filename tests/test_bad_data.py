"""Bad input files for every reader, one table per reader: each case is
either read (a documented repair, with its count where there is one) or an
error naming file:line. Nothing crashes with anything but the reader's own
error type. tests/test_convert.py and tests/test_lexicon.py test several of
these cases in more detail; this table makes the coverage complete."""

import json

import pytest

from spacy_lexner.corpora.convert import ConversionError, ConversionStats, read_cluener, read_tagged_file
from spacy_lexner.lexicon.readers import LexiconFormatError, read_lexicon_file

GOOD_BMES = "高 B-NAME\n勇 E-NAME\n\n中 S-LOC\n"
GOOD_LEXICON = "张三\t100\tnr\n北京 200\n"

# (id, bytes, expected): expected is ("ok", value) or ("error", regex naming file:line)
TAGGED_CASES = [
    ("gbk", GOOD_BMES.encode("gbk"), ("error", r"bad:1: not valid UTF-8")),
    ("bom", b"\xef\xbb\xbf" + GOOD_BMES.encode(), ("ok", 2)),
    ("crlf", GOOD_BMES.replace("\n", "\r\n").encode(), ("ok", 2)),
    ("tabs_and_spaces", "高\t B-NAME\n勇 \tE-NAME\n\n中\tS-LOC\n".encode(), ("ok", 2)),
    ("unknown_prefix", "高 B-NAME\n勇 Q-NAME\n".encode(), ("error", r"bad:2: unknown tag 'Q-NAME'")),
    ("empty", b"", ("error", r"bad.*no sentences")),
    ("no_trailing_newline", GOOD_BMES.rstrip("\n").encode(), ("ok", 2)),
]
CLUENER_RECORD = {"text": "张三在北京", "label": {"name": {"张三": [[0, 1]]}}}
CLUENER_CASES = [
    ("gbk", json.dumps(CLUENER_RECORD, ensure_ascii=False).encode("gbk") + b"\n", ("error", r"bad:1:.*UTF-8")),
    ("bom", b"\xef\xbb\xbf" + json.dumps(CLUENER_RECORD).encode() + b"\n", ("ok", 1)),
    ("crlf", (json.dumps(CLUENER_RECORD) + "\r\n").encode() * 2, ("ok", 2)),
    (
        "unknown_label_shape",
        json.dumps({"text": "张三", "label": {"name": {"张三": [[0, 5]]}}}).encode(),
        ("error", r"bad:1:"),
    ),
    ("empty", b"", ("error", r"bad.*no sentences")),
    ("no_trailing_newline", json.dumps(CLUENER_RECORD).encode(), ("ok", 1)),
]
LEXICON_CASES = [
    ("gbk", GOOD_LEXICON.encode("gbk"), ("error", r"bad:1: not valid UTF-8")),
    ("bom", b"\xef\xbb\xbf" + GOOD_LEXICON.encode(), ("ok", [("张三", 100.0, "nr"), ("北京", 200.0, None)])),
    ("crlf", GOOD_LEXICON.replace("\n", "\r\n").encode(), ("ok", [("张三", 100.0, "nr"), ("北京", 200.0, None)])),
    (
        "tabs_and_spaces",
        "New York\t 100 \tns\n北京 200\n".encode(),
        ("ok", [("New York", 100.0, "ns"), ("北京", 200.0, None)]),
    ),
    ("bad_frequency", "张三\t-3\tnr\n".encode(), ("error", r"bad:1: the frequency must be")),
    ("too_many_columns", "张三 100 nr extra\n".encode(), ("error", r"bad:1: expected")),
    ("empty", b"", ("error", r"bad contains no words")),
    ("no_trailing_newline", GOOD_LEXICON.rstrip("\n").encode(), ("ok", [("张三", 100.0, "nr"), ("北京", 200.0, None)])),
]


def _run(tmp_path, data, read, error_type, expected):
    path = tmp_path / "bad"
    path.write_bytes(data)
    kind, value = expected
    if kind == "error":
        with pytest.raises(error_type, match=value):
            read(path)
    else:
        assert read(path) == value


@pytest.mark.parametrize("case", TAGGED_CASES, ids=lambda c: c[0])
def test_tagged_file_reader(tmp_path, case):
    _, data, expected = case
    _run(tmp_path, data, lambda p: len(list(read_tagged_file(p, "bmes"))), ConversionError, expected)


@pytest.mark.parametrize("case", CLUENER_CASES, ids=lambda c: c[0])
def test_cluener_reader(tmp_path, case):
    _, data, expected = case
    _run(tmp_path, data, lambda p: len(list(read_cluener(p))), ConversionError, expected)


@pytest.mark.parametrize("case", LEXICON_CASES, ids=lambda c: c[0])
def test_lexicon_reader(tmp_path, case):
    _, data, expected = case
    _run(tmp_path, data, lambda p: list(read_lexicon_file(p)), LexiconFormatError, expected)


def test_repairs_are_counted(tmp_path):
    """The documented repair (a dangling I-/E- opens an entity) is counted."""
    path = tmp_path / "repair.bio"
    path.write_text("中 O\n国 I-LOC\n\n北 B-LOC\n京 I-LOC", encoding="utf8")
    stats = ConversionStats()
    sentences = list(read_tagged_file(path, "bio", stats=stats))
    assert sentences[0][1] == [(1, 2, "LOC")]
    assert stats.n_repaired == 1
