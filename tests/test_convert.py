import json
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_lexner.cli.app import app
from spacy_lexner.corpora.convert import (
    ConversionError,
    ConversionStats,
    blank_vocab,
    convert_file,
    detect_format,
    docs_from_file,
    output_file,
    parse_tag,
    read_cluener,
    read_tagged_file,
    spans_to_tags,
    tags_to_spans,
    write_tagged_file,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("LEXNER_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
RESUME = DATA_DIR / "resume"
WEIBO = DATA_DIR / "weibo"
CLUENER = DATA_DIR / "cluener"


def data_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found (set LEXNER_DATA_DIR)")
    return path


def write(tmp_path: Path, name: str, content: str, encoding: str = "utf8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding))
    return path


@pytest.fixture(scope="module")
def vocab():
    return blank_vocab("zh")


# --- tags <-> spans ---------------------------------------------------------


@pytest.mark.parametrize(
    "tag,expected",
    [("O", ("O", "")), ("B-PER", ("B", "PER")), ("M-ORG", ("I", "ORG")), ("E-PER.NAM", ("E", "PER.NAM"))],
)
def test_parse_tag(tag, expected):
    assert parse_tag(tag) == expected


@pytest.mark.parametrize("tag", ["X-PER", "B-", "PER", "o", "B_PER", "b-PER", ""])
def test_parse_tag_unknown(tag):
    with pytest.raises(ValueError, match="unknown tag"):
        parse_tag(tag)


@pytest.mark.parametrize(
    "tags,spans,n_repaired",
    [
        (["B-X", "M-X", "E-X", "S-Y"], [(0, 3, "X"), (3, 4, "Y")], 0),
        (["B-X", "I-X", "O", "B-X"], [(0, 2, "X"), (3, 4, "X")], 0),  # BIO
        (["B-X", "B-X"], [(0, 1, "X"), (1, 2, "X")], 0),
        (["B-X"], [(0, 1, "X")], 0),
        (["M-X", "E-X"], [(0, 2, "X")], 1),  # sentence start
        (["O", "I-X", "I-X"], [(1, 3, "X")], 1),  # after O
        (["O", "E-X"], [(1, 2, "X")], 1),  # stray E- read as S-
        (["B-X", "E-X", "I-X"], [(0, 2, "X"), (2, 3, "X")], 1),  # after a closed entity
        (["S-X", "E-X"], [(0, 1, "X"), (1, 2, "X")], 1),
        (["B-X", "I-Y", "E-Y"], [(0, 1, "X"), (1, 3, "Y")], 1),  # different type
        ([], [], 0),
    ],
)
def test_tags_to_spans(tags, spans, n_repaired):
    assert tags_to_spans(tags) == (spans, n_repaired)
    if n_repaired:
        with pytest.raises(ConversionError, match="ill-formed tag"):
            tags_to_spans(tags, strict=True)


@pytest.mark.parametrize(
    "scheme,expected",
    [
        ("BIOES", ["B-X", "I-X", "E-X", "O", "S-Y"]),
        ("BMES", ["B-X", "M-X", "E-X", "O", "S-Y"]),
        ("BIO", ["B-X", "I-X", "I-X", "O", "B-Y"]),
    ],
)
def test_spans_to_tags(scheme, expected):
    assert spans_to_tags(5, [(4, 5, "Y"), (0, 3, "X")], scheme) == expected


@pytest.mark.parametrize("spans", [[(0, 2, "X"), (1, 3, "Y")], [(0, 0, "X")], [(2, 6, "X")], [(0, 1, "")]])
def test_spans_to_tags_rejects_bad_spans(spans):
    with pytest.raises(ValueError):
        spans_to_tags(5, spans)


@st.composite
def span_sets(draw):
    """A length and a set of non-overlapping labelled spans."""
    n = draw(st.integers(0, 40))
    cuts = sorted(draw(st.sets(st.integers(0, n), max_size=12)))
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        if draw(st.booleans()):
            spans.append((start, end, draw(st.sampled_from(["PER", "ORG", "PER.NAM", "x"]))))
    return n, spans


@settings(max_examples=200, deadline=None)
@given(span_sets(), st.sampled_from(["BIOES", "BMES", "BIO"]))
def test_spans_tags_round_trip(n_spans, scheme):
    n, spans = n_spans
    tags = spans_to_tags(n, spans, scheme)
    assert len(tags) == n
    assert tags_to_spans(tags, strict=True) == (spans, 0)


# --- tagged files -------------------------------------------------------------


def test_read_bmes(tmp_path):
    path = write(
        tmp_path, "a.char.bmes", "高 B-NAME\n勇 E-NAME\n， O\n\n\n中 B-ORG\n国 M-ORG\n银 M-ORG\n行 E-ORG\n男 S-X\n\n"
    )
    stats = ConversionStats()
    assert list(read_tagged_file(path, "bmes", stats=stats)) == [
        (["高", "勇", "，"], [(0, 2, "NAME")]),
        (["中", "国", "银", "行", "男"], [(0, 4, "ORG"), (4, 5, "X")]),
    ]
    assert (stats.n_docs, stats.n_chars, stats.n_ents, stats.n_repaired) == (2, 8, 3, 0)
    assert stats.labels == {"NAME": 1, "ORG": 1, "X": 1}


def test_read_bio(tmp_path):
    path = write(tmp_path, "msra_bio", "我\tO\n在\tO\n北\tB-LOC\n京\tI-LOC\n\n张\tB-PER\n")
    assert list(read_tagged_file(path, "bio")) == [
        (["我", "在", "北", "京"], [(2, 4, "LOC")]),
        (["张"], [(0, 1, "PER")]),
    ]


def test_read_weibo(tmp_path):
    # Position digits are dropped, including two-digit ones (p10), and
    # Weibo's two U+FFFD for a lost emoji become one character.
    content = "李0\tB-PER.NAM\n娜1\tI-PER.NAM\np10\tO\n\ufffd\ufffd0\tO\n10\tI-LOC.NOM\n"
    path = write(tmp_path, "weiboNER.train", content)
    stats = ConversionStats()
    assert list(read_tagged_file(path, "weibo", stats=stats)) == [
        (["李", "娜", "p", "\ufffd", "1"], [(0, 2, "PER.NAM"), (4, 5, "LOC.NOM")])
    ]
    assert stats.n_repaired == 1


def test_weibo_token_without_digit(tmp_path):
    path = write(tmp_path, "w", "李0\tO\n娜\tO\n")
    with pytest.raises(ConversionError, match=r"w:2: weibo token '娜'"):
        list(read_tagged_file(path, "weibo"))


def test_strict_names_file_and_line(tmp_path):
    path = write(tmp_path, "a.bmes", "高 B-NAME\n勇 E-NAME\n\n中 O\n国 M-ORG\n")
    assert sum(1 for _ in read_tagged_file(path, "bmes")) == 2
    with pytest.raises(ConversionError, match=r"a\.bmes:5: ill-formed tag 'M-ORG' after 'O'"):
        list(read_tagged_file(path, "bmes", strict=True))


def test_bom_crlf_no_trailing_newline_mixed_separators(tmp_path):
    path = tmp_path / "a.bmes"
    path.write_bytes("\ufeff高 \tB-NAME\r\n勇\t \tE-NAME  \r\n\r\n中\tS-LOC".encode("utf8"))
    assert list(read_tagged_file(path, "bmes")) == [
        (["高", "勇"], [(0, 2, "NAME")]),
        (["中"], [(0, 1, "LOC")]),
    ]


def test_whitespace_character_lines(tmp_path):
    # A line starting with whitespace is <char><sep><tag>: the char is kept.
    path = write(tmp_path, "a.bmes", "A B-X\n\u3000 E-X\n  O\n\u3000\tO\nB O\n")
    assert list(read_tagged_file(path, "bmes")) == [(["A", "\u3000", " ", "\u3000", "B"], [(0, 2, "X")])]


def test_gbk_file_is_an_error(tmp_path):
    path = write(tmp_path, "gbk.bio", "我 O\n北 B-LOC\n", encoding="gbk")
    with pytest.raises(ConversionError, match=r"gbk\.bio:1: not valid UTF-8.*iconv -f GBK"):
        list(read_tagged_file(path, "bio"))


def test_utf16_file_is_an_error(tmp_path):
    path = write(tmp_path, "u16.bio", "\ufeff我 O\n", encoding="utf-16-le")
    with pytest.raises(ConversionError, match="UTF-16"):
        list(read_tagged_file(path, "bio"))


@pytest.mark.parametrize(
    "content,line,match",
    [
        ("高 B-NAME\n勇 X-NAME\n", 2, "unknown tag 'X-NAME'"),
        ("高 B-NAME\n\n勇 NAME\n", 3, "unknown tag 'NAME'"),
        ("高 B-NAME\n勇 E-NAME extra\n", 2, "expected 2 columns"),
        ("高\n", 1, "expected 2 columns"),
        ("高勇 O\n", 1, "expected one character"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, content, line, match):
    path = write(tmp_path, "bad.bmes", content)
    with pytest.raises(ConversionError, match=rf"bad\.bmes:{line}: {match}"):
        list(read_tagged_file(path, "bmes"))


@pytest.mark.parametrize("content", ["", "\n\n", " \r\n"])
def test_empty_file(tmp_path, content):
    path = write(tmp_path, "empty.bmes", content)
    with pytest.raises(ConversionError, match="no sentences"):
        list(read_tagged_file(path, "bmes"))
    with pytest.raises(ConversionError, match="no sentences"):
        list(read_cluener(path))


# --- CLUENER ----------------------------------------------------------------


def jsonl(tmp_path: Path, records: List[object], name: str = "c.json") -> Path:
    return write(tmp_path, name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def test_read_cluener(tmp_path):
    path = jsonl(
        tmp_path,
        [
            {"text": "彭小军在台湾", "label": {"name": {"彭小军": [[0, 2]]}, "address": {"台湾": [[4, 5]]}}},
            {"id": 0, "text": "无标签"},
        ],
    )
    stats = ConversionStats()
    assert list(read_cluener(path, stats=stats)) == [
        (list("彭小军在台湾"), [(0, 3, "name"), (4, 6, "address")]),
        (list("无标签"), []),
    ]
    assert (stats.n_docs, stats.n_ents, stats.n_dropped_overlaps) == (2, 2, 0)


def test_cluener_mismatch_is_an_error(tmp_path):
    path = jsonl(tmp_path, [{"text": "ab", "label": {}}, {"text": "彭小军", "label": {"name": {"彭小军": [[0, 3]]}}}])
    with pytest.raises(ConversionError, match=r"c\.json:2: bad offsets"):
        list(read_cluener(path))
    path = jsonl(tmp_path, [{"text": "彭小军", "label": {"name": {"彭小": [[1, 2]]}}}])
    with pytest.raises(ConversionError, match=r"c\.json:1: name span \[1, 2\] is '小军'"):
        list(read_cluener(path))


def test_cluener_bad_json(tmp_path):
    path = write(tmp_path, "c.jsonl", '{"text": "a"}\n{"text": \n')
    with pytest.raises(ConversionError, match=r"c\.jsonl:2: invalid JSON"):
        list(read_cluener(path))


def test_cluener_overlaps_keep_longer_and_warn(tmp_path):
    label = {"book": {"招商银行报告": [[0, 5]]}, "company": {"招商银行": [[0, 3]]}}
    path = jsonl(tmp_path, [{"text": "招商银行报告", "label": label}])
    stats = ConversionStats()
    with pytest.warns(UserWarning, match=r"dropped 1 CLUENER span.*c\.json:1"):
        result = list(read_cluener(path, stats=stats))
    assert result == [(list("招商银行报告"), [(0, 6, "book")])]
    assert stats.n_dropped_overlaps == 1


# --- format detection, docs, DocBin -------------------------------------------


@pytest.mark.parametrize(
    "name,content,fmt",
    [
        ("x.json", "", "cluener"),
        ("x", '{"text": "a"}\n', "cluener"),
        ("x", "李0\tO\n娜1\tB-PER.NAM\n", "weibo"),
        ("x", "李 O\n娜 B-PER\n娜 E-PER\n", "bmes"),
        ("x", "李\tO\n娜\tB-PER\n娜\tI-PER\n", "bio"),
    ],
)
def test_detect_format(tmp_path, name, content, fmt):
    assert detect_format(write(tmp_path, name, content)) == fmt


def test_docs_from_file(tmp_path, vocab):
    path = write(tmp_path, "a.bmes", "高 B-NAME\n勇 E-NAME\n说 O\n")
    docs, stats = docs_from_file(path, vocab=vocab)
    (doc,) = docs
    assert doc.text == "高勇说" and len(doc) == 3
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "NAME")]
    assert [t.ent_iob_ for t in doc] == ["B", "I", "O"]
    assert stats.n_ents == 1


def test_convert_file_and_output_naming(tmp_path):
    path = write(tmp_path, "train.char.bmes", "高 B-NAME\n勇 E-NAME\n\n说 O\n")
    stats = convert_file(path, tmp_path / "out", "bmes")
    target = tmp_path / "out" / "train.char.spacy"
    docs = list(DocBin().from_disk(target).get_docs(blank_vocab()))
    assert [d.text for d in docs] == ["高勇", "说"] and stats.n_docs == 2
    assert output_file("weiboNER_2nd_conll.train", tmp_path) == tmp_path / "weiboNER_2nd_conll.train.spacy"
    assert output_file("x.bmes", tmp_path / "y.spacy") == tmp_path / "y.spacy"
    with pytest.raises(ConversionError, match="must be a file ending in .spacy"):
        output_file("x.bmes", tmp_path / "y.txt")


def test_write_tagged_file_round_trip(tmp_path, vocab):
    path = write(tmp_path, "a.bmes", "高 B-NAME\n勇 E-NAME\n\u3000 O\n男 S-X\n\n中 B-ORG\n国 I-ORG\n")
    docs, _ = docs_from_file(path, vocab=vocab)
    for scheme, fmt in [("BIOES", "bmes"), ("BMES", "bmes"), ("BIO", "bio")]:
        out = tmp_path / f"out.{scheme}"
        write_tagged_file(docs, out, scheme)
        assert list(read_tagged_file(out, fmt)) == list(read_tagged_file(path, "bmes"))


# --- CLI ----------------------------------------------------------------------


def test_cli_convert(tmp_path):
    path = write(tmp_path, "a.bmes", "高 B-NAME\n勇 E-NAME\n\n中 O\n国 M-ORG\n")
    out = tmp_path / "a.spacy"
    result = CliRunner().invoke(app, ["convert", str(path), str(out), "--format", "bmes"])
    assert result.exit_code == 0, result.output
    assert "2 docs" in result.output and "Repaired 1" in result.output and "NAME" in result.output
    assert len(DocBin().from_disk(out)) == 2
    result = CliRunner().invoke(app, ["convert", str(path), str(out), "--strict"])
    assert result.exit_code == 1
    # wasabi wraps messages at 80 columns, so a long tmp path moves the break.
    assert "a.bmes:5: ill-formed tag 'M-ORG'" in " ".join(result.output.split())


def test_cli_bad_input_exit_code(tmp_path):
    path = write(tmp_path, "a.bio", "高 X-NAME\n")
    result = CliRunner().invoke(app, ["convert", str(path), str(tmp_path), "-f", "bio"])
    assert result.exit_code == 1 and "a.bio:1: unknown tag" in " ".join(result.output.split())


def test_python_m_convert(tmp_path):
    path = write(tmp_path, "c.json", json.dumps({"text": "彭小军", "label": {"name": {"彭小军": [[0, 2]]}}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "spacy_lexner", "convert", str(path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Detected format: cluener" in result.stdout
    assert len(DocBin().from_disk(tmp_path / "out" / "c.spacy")) == 1


# --- the real corpora (skipped when the data is not there) -------------------


def test_resume_train_counts(vocab):
    docs, stats = docs_from_file(data_file(RESUME / "train.char.bmes"), vocab=vocab)
    assert (stats.n_docs, stats.n_chars, stats.n_ents, stats.n_repaired) == (3821, 124099, 13440, 2)
    assert stats.labels == {"CONT": 260, "EDU": 858, "LOC": 47, "NAME": 952, "ORG": 4613,
                            "PRO": 287, "RACE": 115, "TITLE": 6308}  # fmt: skip
    assert sum(len(d.ents) for d in docs) == 13440


@pytest.mark.parametrize(
    "split,counts",
    [("train", (1350, 73778, 1895, 10)), ("dev", (270, 14509, 389, 0)), ("test", (270, 14842, 418, 4))],
)
def test_weibo_counts(split, counts):
    stats = ConversionStats()
    path = data_file(WEIBO / f"weiboNER_2nd_conll.{split}")
    assert detect_format(path) == "weibo"
    for _ in read_tagged_file(path, "weibo", stats=stats):
        pass
    assert (stats.n_docs, stats.n_chars, stats.n_ents, stats.n_repaired) == counts
    with pytest.raises(ConversionError, match=r"ill-formed") if counts[3] else nullcontext():
        list(read_tagged_file(path, "weibo", strict=True))


def test_cluener_dev_counts():
    stats = ConversionStats()
    for _ in read_cluener(data_file(CLUENER / "dev.json"), stats=stats):
        pass
    assert (stats.n_docs, stats.n_chars, stats.n_ents, stats.n_dropped_overlaps) == (1343, 50260, 3072, 0)


def test_cluener_train_overlaps():
    stats = ConversionStats()
    with pytest.warns(UserWarning, match=r"dropped 2 CLUENER span.*train\.json:1507"):
        for _ in read_cluener(data_file(CLUENER / "train.json"), stats=stats):
            pass
    # The README counts 23971 spans; two company spans inside a book title are dropped.
    assert (stats.n_docs, stats.n_ents, stats.n_dropped_overlaps) == (10748, 23969, 2)


@pytest.mark.parametrize(
    "path,fmt,limit",
    [(RESUME / "dev.char.bmes", "bmes", None), (WEIBO / "weiboNER_2nd_conll.dev", "weibo", 60)],
)
def test_real_data_round_trip(tmp_path, vocab, path, fmt, limit):
    expected = list(read_tagged_file(data_file(path), fmt))[:limit]
    docs, _ = docs_from_file(path, fmt, vocab=vocab)
    docbin_path = tmp_path / "x.spacy"
    DocBin(docs=docs[:limit], store_user_data=False).to_disk(docbin_path)
    restored = list(DocBin().from_disk(docbin_path).get_docs(vocab))
    out = tmp_path / "back.bmes"
    write_tagged_file(restored, out, "BIOES")
    assert list(read_tagged_file(out, "bmes")) == expected
