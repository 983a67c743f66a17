"""Input validation regressions: convert never overwrites its input, corrupt
lexicon frequencies and words are refused at load, and messages quote at
most an excerpt of the input however large it is.

spacy_lexner.util.excerpt is imported inside the tests that use it, so the other
tests still run (and fail one by one) against code without the module.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import srsly
from typer.testing import CliRunner

from spacy_lexner.cli.app import app
from spacy_lexner.corpora.convert import convert_file, read_cluener, read_tagged_file
from spacy_lexner.lexicon import Lexicon, LexiconFormatError, read_lexicon_file

REPO_ROOT = Path(__file__).resolve().parent.parent
BMES = "高 B-NAME\n勇 E-NAME\n\n中 S-LOC\n"
HUGE = 10**6
# Generous: the path of a pytest tmp dir alone can be ~100 chars.
MAX_MESSAGE = 500


def write(path: Path, content: str) -> Path:
    path.write_bytes(content.encode("utf8"))
    return path


def one_line(output: str) -> str:
    # wasabi wraps messages at 80 columns.
    return " ".join(output.split())


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """python -m spacy_lexner in a subprocess that imports this checkout."""
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "spacy_lexner", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


# --- A: convert refuses an OUTPUT that would overwrite the input -------------


def _same_path(tmp: Path) -> tuple:
    return write(tmp / "data.spacy", BMES), tmp / "data.spacy"


def _dot_spelling(tmp: Path) -> tuple:
    return write(tmp / "data.spacy", BMES), Path(".") / "sub" / ".." / "data.spacy"


def _symlink(tmp: Path) -> tuple:
    path = write(tmp / "data.spacy", BMES)
    (tmp / "link.spacy").symlink_to(path)
    return path, tmp / "link.spacy"


def _hard_link(tmp: Path) -> tuple:
    path = write(tmp / "train.bmes", BMES)
    os.link(path, tmp / "train.spacy")
    return path, tmp / "train.spacy"


def _input_as_directory(tmp: Path) -> tuple:
    # `convert train train`: OUTPUT has no suffix, so it is read as a
    # directory, which would have to replace the input file.
    return write(tmp / "train", BMES), Path("train")


def _directory_holding_a_link(tmp: Path) -> tuple:
    # The output directory's <name>.spacy is a link to the input.
    path = write(tmp / "train.bmes", BMES)
    (tmp / "out").mkdir()
    (tmp / "out" / "train.spacy").symlink_to(path)
    return path, tmp / "out"


OVERWRITE_CASES = [_same_path, _dot_spelling, _symlink, _hard_link, _input_as_directory, _directory_holding_a_link]


@pytest.mark.parametrize("make", OVERWRITE_CASES, ids=lambda f: f.__name__.lstrip("_"))
def test_convert_file_refuses_to_overwrite_input(tmp_path, monkeypatch, make):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    input_path, output_path = make(tmp_path)
    before = input_path.read_bytes()
    with pytest.raises(ValueError, match="overwrite") as err:
        convert_file(input_path, output_path, "bmes")
    assert "input file" in str(err.value) and "OUTPUT" in str(err.value)
    assert input_path.read_bytes() == before
    assert not input_path.is_symlink() and input_path.is_file()


@pytest.mark.parametrize(
    "args",
    [["data.spacy", "data.spacy"], ["data.spacy", "./data.spacy"], ["train", "train"], ["train", "train/"]],
)
def test_cli_convert_refuses_to_overwrite_input(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "data.spacy", BMES)
    write(tmp_path / "train", BMES)
    before = {name: (tmp_path / name).read_bytes() for name in ("data.spacy", "train")}
    result = CliRunner().invoke(app, ["convert", *args, "--format", "bmes"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # msg.fail, not a traceback
    output = one_line(result.output)
    assert "Conversion failed" in output and "OUTPUT is the input file" in output
    assert "would overwrite" in output and "Give a new file name ending in .spacy" in output
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_python_m_convert_train_train_has_no_traceback(tmp_path):
    write(tmp_path / "train", BMES)
    result = run_module("convert", "train", "train", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "FileExistsError" not in result.stderr
    assert "OUTPUT is the input file" in one_line(result.stdout)
    assert (tmp_path / "train").read_bytes() == BMES.encode("utf8")


@pytest.mark.parametrize("output", ["notes", "notes/sub", "notes/x.spacy"])
def test_output_directory_through_a_file_is_an_error(tmp_path, output):
    """A file where OUTPUT needs a directory: a message, not FileExistsError
    or NotADirectoryError from mkdir."""
    path = write(tmp_path / "a.bmes", BMES)
    write(tmp_path / "notes", "keep me\n")
    with pytest.raises(ValueError, match="is an existing file"):
        convert_file(path, tmp_path / output, "bmes")
    result = CliRunner().invoke(app, ["convert", str(path), str(tmp_path / output)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "is an existing file" in one_line(result.output)
    assert (tmp_path / "notes").read_text() == "keep me\n"


def test_convert_still_writes_next_to_input(tmp_path):
    """Refusing the input as OUTPUT must not refuse its neighbours."""
    path = write(tmp_path / "train", BMES)
    assert convert_file(path, tmp_path / "train.spacy", "bmes").n_docs == 2
    assert convert_file(path, tmp_path, "bmes").n_docs == 2  # -> train.spacy again
    assert convert_file(path, tmp_path / "out", "bmes").n_docs == 2
    assert (tmp_path / "out" / "train.spacy").is_file() and path.read_text("utf8") == BMES


# --- B: corrupt frequencies and words are refused at load --------------------


@pytest.mark.parametrize("freq", ["nan", "NaN", "inf", "-inf", "infinity", "1e999", "-3", "0", "-0", "0.0"])
def test_lexicon_file_bad_frequency_names_file_and_line(tmp_path, freq):
    path = write(tmp_path / "lex.txt", f"北京 3\n南京 {freq} ns\n")
    with pytest.raises(LexiconFormatError, match=r"lex\.txt:2: the frequency must be a finite number > 0") as err:
        list(read_lexicon_file(path))
    assert repr(f"南京 {freq} ns") in str(err.value)
    with pytest.raises(ValueError, match=r"lex\.txt:2:"):
        Lexicon.from_file(path)


def _lexicon_msg(**changes: Any) -> Dict[str, Any]:
    msg = srsly.msgpack_loads(Lexicon([("南京", 5.0, "ns"), ("北京", 2.0, None)]).to_bytes())
    msg.update(changes)
    return msg


BAD_FREQS = [math.nan, -1.0, 0.0, math.inf, -math.inf, "3", None, True, [1.0], b"1"]
BAD_WORDS = ["", 3, None, b"\xe5\x8d\x97", ["南京"]]
BAD_SERIALIZED = (
    [(f"freq={f!r}", {"freqs": [5.0, f]}, "frequency of word 1") for f in BAD_FREQS]
    + [(f"word={w!r}", {"words": ["南京", w]}, "word 1 is") for w in BAD_WORDS]
    + [(f"type={t!r}", {"types": ["ns", t]}, "type of word 1") for t in ["", 5]]
    + [(f"default_freq={f!r}", {"default_freq": f}, "default_freq") for f in [math.nan, -2.0, math.inf, "1", None]]
)


@pytest.mark.parametrize("case", BAD_SERIALIZED, ids=lambda c: c[0])
def test_serialized_lexicon_with_bad_values_is_refused(tmp_path, case):
    _, changes, problem = case
    data = srsly.msgpack_dumps(_lexicon_msg(**changes))
    lexicon = Lexicon([("上海", 1.0, None)])
    with pytest.raises(ValueError, match=problem) as err:
        lexicon.from_bytes(data)
    assert "Serialize the lexicon again" in str(err.value)
    # Nothing was half loaded.
    assert list(lexicon) == ["上海"] and lexicon.match("上海") == [(0, 2, "上海")]
    path = tmp_path / "lexicon.msgpack"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=problem) as err:
        Lexicon().from_disk(path)
    assert str(path) in str(err.value) and "Re-create the file" in str(err.value)


def test_serialized_lexicon_good_values_still_load():
    lexicon = Lexicon([("南京", 5.0, "ns"), ("北京", 2.0, None)])
    assert Lexicon().from_bytes(lexicon.to_bytes()).to_bytes() == lexicon.to_bytes()
    # Integer frequencies (e.g. written by another tool) are numbers too.
    loaded = Lexicon().from_bytes(srsly.msgpack_dumps(_lexicon_msg(freqs=[7, 2.5], default_freq=3)))
    assert (loaded.freq("南京"), loaded.freq("北京"), loaded.default_freq) == (7.0, 2.5, 3.0)
    assert Lexicon().from_bytes(srsly.msgpack_dumps(_lexicon_msg(words=[], freqs=[], types=[]))).match("南京") == []


# --- C: messages quote an excerpt, not the whole input -----------------------


def _error(read: Callable[[], Any], error_type: type = ValueError) -> str:
    with pytest.raises(error_type) as err:
        read()
    return str(err.value)


TAGGED_HUGE = [
    ("long_token", "bmes", "高 B-NAME\n" + "高" * HUGE + " E-NAME\n", 2, "expected one character"),
    ("many_columns", "bmes", "高 O\n勇 O " + "x " * HUGE + "\n", 2, "expected 2 columns"),
    ("one_column", "bmes", "高 O\n" + "x" * HUGE + "\n", 2, "expected 2 columns"),
    ("bad_tag", "bmes", "高 O\n勇 Q-" + "X" * HUGE + "\n", 2, "unknown tag 'Q-XXX"),
    ("bad_plain_tag", "bio", "高 O\n\n勇 " + "X" * HUGE + "\n", 3, "unknown tag 'XXX"),
    ("weibo_token", "weibo", "李0\tO\n" + "李" * HUGE + "\tO\n", 2, "weibo token"),
]


@pytest.mark.parametrize("case", TAGGED_HUGE, ids=lambda c: c[0])
def test_tagged_file_huge_line_gives_short_error(tmp_path, case):
    _, fmt, content, line, problem = case
    path = write(tmp_path / "bad.txt", content)
    message = _error(lambda: list(read_tagged_file(path, fmt)))
    assert len(message) < MAX_MESSAGE, message[:1000]
    assert message.startswith(f"{path}:{line}: ") and problem in message
    assert "chars)" in message  # the excerpt says how long the value was


@pytest.mark.parametrize(
    "content,line",
    [("高 I-" + "X" * HUGE + "\n", 1), ("高 B-" + "X" * HUGE + "\n勇 I-" + "Y" * HUGE + "\n", 2)],
    ids=["at_start", "after_tag"],
)
def test_strict_ill_formed_huge_tag_gives_short_error(tmp_path, content, line):
    path = write(tmp_path / "bad.bmes", content)
    message = _error(lambda: list(read_tagged_file(path, "bmes", strict=True)))
    assert len(message) < MAX_MESSAGE, message[:1000]
    assert message.startswith(f"{path}:{line}: ill-formed tag")


def test_cli_huge_line_gives_short_error(tmp_path):
    path = write(tmp_path / "bad.bmes", "高 O\n" + "高" * HUGE + " O\n")
    result = CliRunner().invoke(app, ["convert", str(path), str(tmp_path / "out.spacy"), "-f", "bmes"])
    assert result.exit_code == 1 and len(result.output) < 2 * MAX_MESSAGE, result.output[:1000]
    assert "bad.bmes:2: expected one character" in one_line(result.output)


@pytest.mark.parametrize(
    "record,problem",
    [
        ({"text": "a" * HUGE, "label": {"T" * HUGE: {"b" * HUGE: [[0, HUGE - 1]]}}}, "in the text but the mention is"),
        ({"text": "ab", "label": {"T" * HUGE: {"b" * HUGE: [[0, HUGE]]}}}, "bad offsets"),
        ({"text": "ab", "label": {"T" * HUGE: ["x"] * HUGE}}, "should map mentions"),
    ],
    ids=["mention_mismatch", "bad_offsets", "label_shape"],
)
def test_cluener_huge_values_give_short_error(tmp_path, record, problem):
    path = write(tmp_path / "c.json", json.dumps(record) + "\n")
    message = _error(lambda: list(read_cluener(path)))
    assert len(message) < MAX_MESSAGE, message[:1000]
    assert message.startswith(f"{path}:1: ") and problem in message


def test_cluener_overlap_warning_with_huge_labels_is_short(tmp_path):
    label = "T" * HUGE
    record = {"text": "张三丰", "label": {label: {"张三丰": [[0, 2]]}, label + "2": {"张三": [[0, 1]]}}}
    path = write(tmp_path / "c.json", json.dumps(record, ensure_ascii=False) + "\n")
    with pytest.warns(UserWarning, match="dropped 1 CLUENER span") as record_:
        list(read_cluener(path))
    (warning,) = [w for w in record_ if "CLUENER" in str(w.message)]
    assert len(str(warning.message)) < MAX_MESSAGE


def test_lexicon_file_long_word_warning_is_short(tmp_path):
    path = write(tmp_path / "lex.txt", "北京 3\n" + "长" * 10_000 + " 5\n")
    with pytest.warns(UserWarning, match=r"skipped 1 word.*longest 10000 chars") as record:
        lexicon = Lexicon.from_file(path)
    (warning,) = [w for w in record if "skipped" in str(w.message)]
    assert len(str(warning.message)) < MAX_MESSAGE, len(str(warning.message))
    assert list(lexicon) == ["北京"]


@pytest.mark.parametrize(
    "line,problem",
    [
        ("南京 " + "9" * HUGE, "the frequency must be a finite number > 0"),  # parses as inf
        ("南京 " + "1" * HUGE + " ns", "the frequency must be a finite number > 0"),
        ("南京 nan " + "t" * HUGE, "the frequency must be a finite number > 0"),
        ("南京 ns " + "x" * HUGE, "the second must be a frequency"),
        ("南京 1 ns " + "x " * HUGE, "found 1000003 columns"),
        ("南京\t\t" + "x" * HUGE, "empty tab-separated column"),
        ("南" * HUGE + " nan", "the frequency must be"),
    ],
    ids=["inf_digits", "inf_digits_typed", "huge_type", "huge_freq_column", "many_columns", "empty_tab", "huge_word"],
)
def test_lexicon_file_huge_bad_line_gives_short_error(tmp_path, line, problem):
    path = write(tmp_path / "lex.txt", f"北京 3\n{line}\n")
    message = _error(lambda: list(read_lexicon_file(path)), LexiconFormatError)
    assert len(message) < MAX_MESSAGE, message[:1000]
    assert message.startswith(f"{path}:2: ") and problem in message


@pytest.mark.parametrize(
    "make,problem",
    [
        (lambda: Lexicon([("南京", "9" * HUGE, None)]), "finite number > 0"),
        (lambda: Lexicon([("南京", 1.0, "t" * HUGE, "extra")]), "triples"),
        (lambda: Lexicon([["x" * HUGE]]), "triples"),
        (lambda: Lexicon([(["x"] * HUGE, 1.0, None)]), "non-empty strings"),
        (lambda: Lexicon([("南京", 1.0, ["t"] * HUGE)]), "non-empty string or None"),
        (lambda: Lexicon([("南京", ["1"] * HUGE, None)]), "finite number > 0"),
        (lambda: Lexicon(min_length="1" * HUGE), "min_length"),
        (lambda: Lexicon([("南京", 1.0, None)]).add("上海", "1" * HUGE), "finite number > 0"),
        (lambda: Lexicon([("南京", 1.0, None)]).add("上海", 10**400), "finite number > 0"),
    ],
    ids=["str_freq", "four_items", "one_item", "list_word", "list_type", "list_freq", "min_length", "add", "big_int"],
)
def test_lexicon_entry_huge_bad_value_gives_short_error(make, problem):
    message = _error(make)
    assert len(message) < MAX_MESSAGE, message[:1000]
    assert problem in message


def test_lexicon_lookup_of_huge_word_gives_short_error():
    lexicon = Lexicon([("南京", 1.0, None)])
    for lookup in (lexicon.freq, lexicon.type_of):
        message = _error(lambda: lookup("南" * HUGE), KeyError)
        assert len(message) < MAX_MESSAGE and "is not in the lexicon" in message


@pytest.mark.parametrize(
    "changes",
    [
        {"words": ["南京", ["x" * HUGE]]},
        {"freqs": [5.0, "1" * HUGE]},
        {"words": ["南京", "京" * HUGE], "freqs": [5.0, -1.0]},
        {"types": ["ns", "t" * HUGE, "extra"]},
        {"version": "v" * HUGE},
        {"default_freq": "d" * HUGE},
        {"max_length": "9" * HUGE},
    ],
    ids=["word", "freq", "long_word_bad_freq", "types_length", "version", "default_freq", "max_length"],
)
def test_serialized_lexicon_huge_bad_value_gives_short_error(tmp_path, changes):
    path = tmp_path / "lexicon.msgpack"
    path.write_bytes(srsly.msgpack_dumps(_lexicon_msg(**changes)))
    message = _error(lambda: Lexicon().from_disk(path))
    assert len(message) < MAX_MESSAGE, message[:1000]
    assert str(path) in message


# --- the excerpt helper itself -----------------------------------------------


def test_excerpt_short_values_are_their_repr():
    from spacy_lexner.util.excerpt import excerpt

    for value in ["", "南京 10 ns", "x" * 80, "it's", b"\xff", 1.5, None, ("南京", 1.0, None), [1, 2]]:
        assert excerpt(value) == repr(value)


@pytest.mark.parametrize(
    "value,unit",
    [
        ("高" * HUGE, "1,000,000 chars"),
        ("\x00" * 300, "300 chars"),
        ("\U000e0001" * 100, "100 chars"),
        ("a'" * 100, "200 chars"),
        (b"\xff" * 500, "500 bytes"),
    ],
    ids=["cjk", "escapes", "long_escapes", "quotes", "bytes"],
)
def test_excerpt_cuts_long_text(value, unit):
    from spacy_lexner.util.excerpt import excerpt

    shown = excerpt(value)
    assert len(shown) <= 110 and shown.endswith(f" ({unit})")
    quoted = shown[: shown.rindex(" (")]
    assert "…" in quoted and quoted[-1] in "'\""
    # The quoted part is the value's start, written as repr writes it.
    assert repr(value[:1])[1:-1] in quoted


def test_excerpt_other_values_are_bounded_and_never_raise():
    from spacy_lexner.util.excerpt import excerpt, shorten

    class BrokenRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    for value in [["x"] * HUGE, {"k" * HUGE: "v" * HUGE}, ("a" * HUGE, 1.0, None), 10**5000, BrokenRepr()]:
        assert len(excerpt(value)) <= 80
    assert excerpt(10**5000) == "<int>"
    assert shorten("PER") == "PER"
    assert shorten("T" * HUGE) == "T" * 80 + "… (1,000,000 chars)"
