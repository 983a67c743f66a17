import warnings
from pathlib import Path
from typing import List, Set, Tuple

import pytest
import srsly
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.util import registry
from thinc.api import Config

from spacy_lexner.lexicon import Lexicon, LexiconFormatError
from spacy_lexner.lexicon.readers import read_lexicon_file


@pytest.fixture(scope="module")
def jieba_lexicon() -> Lexicon:
    # Loading and building the automaton takes ~2 s: do it once per module.
    return Lexicon.from_jieba()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def brute_force_matches(text: str, words: Set[str], min_length: int, max_length: int) -> List[Tuple[int, int, str]]:
    return [
        (start, end, text[start:end])
        for start in range(len(text))
        for end in range(start + min_length, min(start + max_length, len(text)) + 1)
        if text[start:end] in words
    ]


# A small alphabet so random words really occur in random text; the emoji
# (astral) and NUL check that offsets stay Python str indices.
ALPHABET = "ab南京\x00😀"


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.text(ALPHABET, min_size=1, max_size=5), max_size=12),
    text=st.text(ALPHABET, max_size=40),
    min_length=st.integers(1, 3),
    extra_length=st.integers(0, 3),
)
def test_match_equals_brute_force(words: List[str], text: str, min_length: int, extra_length: int) -> None:
    max_length = min_length + extra_length
    lexicon = Lexicon([(word, None, None) for word in words], min_length=min_length, max_length=max_length)
    stored = {word for word in words if min_length <= len(word) <= max_length}
    assert set(lexicon) == stored
    assert lexicon.match(text) == brute_force_matches(text, stored, min_length, max_length)


def test_match_text_outside_the_lexicon_alphabet() -> None:
    lexicon = Lexicon([("南京", 2.0, None), ("a", 1.0, None)])
    assert lexicon.match("") == []
    assert lexicon.match("\x00𝄞\U0010ffffa\ud7ff") == [(3, 4, "a")]
    assert Lexicon().match("南京") == []


def test_soft_lexicon_sets_nanjing() -> None:
    words = ["南京", "南京市", "市长", "长江", "长江大桥", "大桥", "江大桥"]
    lexicon = Lexicon([(word, None, None) for word in words])
    # (B, M, E, S) per char; lists in match order, i.e. by (start, end).
    expected = [
        (["南京", "南京市"], [], [], []),  # 南
        ([], ["南京市"], ["南京"], []),  # 京
        (["市长"], [], ["南京市"], []),  # 市
        (["长江", "长江大桥"], [], ["市长"], []),  # 长
        (["江大桥"], ["长江大桥"], ["长江"], []),  # 江
        (["大桥"], ["长江大桥", "江大桥"], [], []),  # 大
        ([], [], ["长江大桥", "江大桥", "大桥"], []),  # 桥
    ]
    with pytest.warns(DeprecationWarning, match="soft_lexicon_sets is deprecated"):
        assert lexicon.soft_lexicon_sets("南京市长江大桥") == expected


def test_soft_lexicon_sets_single_chars() -> None:
    lexicon = Lexicon([("南", 1.0, None), ("京", 1.0, None)])
    with pytest.warns(DeprecationWarning):
        assert lexicon.soft_lexicon_sets("南x") == [([], [], [], ["南"]), ([], [], [], [])]
        assert lexicon.soft_lexicon_sets("") == []


def test_jieba_lexicon(jieba_lexicon: Lexicon) -> None:
    assert len(jieba_lexicon) > 340000
    assert "南京市" in jieba_lexicon
    assert jieba_lexicon.type_of("南京市") == "ns"
    assert jieba_lexicon.freq("南京市") == 2046.0
    assert {"nr", "ns", "nt", "nz"} <= set(jieba_lexicon.types)
    # The median of jieba's counts: a "typical word" default.
    assert jieba_lexicon.default_freq == 3.0
    assert (0, 3, "南京市") in jieba_lexicon.match("南京市长江大桥")


def test_default_freq() -> None:
    lexicon = Lexicon([("a", 1.0, None), ("b", 5.0, None), ("c", 100.0, None), ("d", None, None)])
    assert lexicon.default_freq == 5.0
    assert lexicon.freq("d") == 5.0
    assert Lexicon([("a", None, None)]).default_freq == 1.0
    assert Lexicon([("a", 1.0, None)], default_freq=7.0).freq("a") == 1.0
    assert Lexicon([("a", None, None)], default_freq=7.0).freq("a") == 7.0


def test_add_rules() -> None:
    lexicon = Lexicon([("南京", 5.0, "ns")])
    lexicon.add("南京", 2.0)
    assert lexicon.freq("南京") == 5.0 and lexicon.type_of("南京") == "ns"
    lexicon.add("南京", 9.0, "LOC")
    assert lexicon.freq("南京") == 9.0 and lexicon.type_of("南京") == "LOC"
    lexicon.add("x" * 17)  # longer than max_length: never stored
    assert "x" * 17 not in lexicon
    with pytest.raises(KeyError, match="not in the lexicon"):
        lexicon.freq("上海")
    for bad in (0, -1.0, float("nan"), float("inf"), "3"):
        with pytest.raises(ValueError, match="finite number > 0"):
            lexicon.add("上海", bad)
    with pytest.raises(ValueError, match="triples"):
        Lexicon([("a", 1.0)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="min_length"):
        Lexicon(min_length=3, max_length=2)


def test_add_and_update_after_match_rebuild_automaton() -> None:
    lexicon = Lexicon([("南京", 1.0, None)])
    assert lexicon.match("南京市") == [(0, 2, "南京")]
    lexicon.add("南京市")
    assert lexicon.match("南京市") == [(0, 2, "南京"), (0, 3, "南京市")]
    lexicon.update(Lexicon([("京市", 3.0, "X")]))
    assert lexicon.match("南京市") == [(0, 2, "南京"), (0, 3, "南京市"), (1, 3, "京市")]
    assert lexicon.type_of("京市") == "X" and lexicon.freq("京市") == 3.0


def test_bytes_and_disk_round_trip(tmp_path: Path) -> None:
    lexicon = Lexicon([("南京", 5.5, "ns"), ("市长", None, None), ("😀\x00", 0.25, "EMOJI")], max_length=8)
    data = lexicon.to_bytes()
    msg = srsly.msgpack_loads(data)
    assert msg["version"] == 1 and msg["types"] == ["ns", None, "EMOJI"]
    loaded = Lexicon().from_bytes(data)
    assert loaded.to_bytes() == data
    assert (loaded.max_length, loaded.default_freq) == (8, lexicon.default_freq)
    assert [(w, loaded.freq(w), loaded.type_of(w)) for w in loaded] == [
        (w, lexicon.freq(w), lexicon.type_of(w)) for w in lexicon
    ]
    assert loaded.match("南京市长") == lexicon.match("南京市长")
    path = tmp_path / "sub" / "lexicon.msgpack"
    lexicon.to_disk(path)
    assert Lexicon().from_disk(path).to_bytes() == data


def test_from_disk_errors(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.msgpack"
    with pytest.raises(ValueError, match="does not exist"):
        Lexicon().from_disk(path)
    Lexicon([("南京", 1.0, None)]).to_disk(path)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="lexicon.msgpack") as err:
        Lexicon().from_disk(path)
    assert "to_disk" in str(err.value)
    with pytest.raises(ValueError, match="version"):
        Lexicon().from_bytes(srsly.msgpack_dumps({"version": 99}))


def test_reader_formats(tmp_path: Path) -> None:
    path = write(
        tmp_path / "lex.txt",
        "# comment\n南京 10 ns\n\n华为云 ORG\n北京 3\n长江\n  \n",
    )
    assert list(read_lexicon_file(path)) == [
        ("南京", 10.0, "ns"),
        ("华为云", None, "ORG"),
        ("北京", 3.0, None),
        ("长江", None, None),
    ]
    assert list(read_lexicon_file(path, default_freq=2.0, default_type="T"))[1:] == [
        ("华为云", 2.0, "ORG"),
        ("北京", 3.0, "T"),
        ("长江", 2.0, "T"),
    ]


def test_reader_bom_crlf_no_trailing_newline(tmp_path: Path) -> None:
    path = write(tmp_path / "lex.txt", "\ufeff南京 10\r\n北京 3 ns\r\n长江")
    assert list(read_lexicon_file(path)) == [
        ("南京", 10.0, None),
        ("北京", 3.0, "ns"),
        ("长江", None, None),
    ]


def test_reader_tabs_mixed_with_spaces(tmp_path: Path) -> None:
    path = write(tmp_path / "lex.txt", "New York \t 5\tLOC\nSan Francisco\tLOC\t\n")
    assert list(read_lexicon_file(path)) == [
        ("New York", 5.0, "LOC"),
        ("San Francisco", None, "LOC"),
    ]


def test_reader_gbk_file(tmp_path: Path) -> None:
    path = write(tmp_path / "gbk.txt", "ascii 1\n南京 10\n", encoding="gbk")
    with pytest.raises(LexiconFormatError, match=r"gbk\.txt:2: .*iconv -f GBK -t UTF-8"):
        list(read_lexicon_file(path))


@pytest.mark.parametrize("text", ["", "# only a comment\n\n   \n"])
def test_reader_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(LexiconFormatError, match="contains no words"):
        list(read_lexicon_file(path))


@pytest.mark.parametrize(
    "line,problem",
    [
        ("南京 0", "finite number > 0"),
        ("南京 -3 ns", "finite number > 0"),
        ("南京 nan", "finite number > 0"),
        ("南京 inf ns", "finite number > 0"),
        ("南京 ns 10", "second must be a frequency"),
        ("南京 10 ns extra", "found 4 columns"),
        ("南京\t\t10", "empty tab-separated column"),
    ],
)
def test_reader_bad_lines(tmp_path: Path, line: str, problem: str) -> None:
    path = write(tmp_path / "bad.txt", f"北京 3\n{line}\n")
    with pytest.raises(LexiconFormatError, match=problem) as err:
        list(read_lexicon_file(path))
    assert "bad.txt:2:" in str(err.value)
    assert repr(line) in str(err.value)


def test_from_file_warns_about_long_words(tmp_path: Path) -> None:
    text = "南京 10\n中华人民共和国 5\n中华人民共和国国务院\n"
    path = write(tmp_path / "lex.txt", text)
    with pytest.warns(UserWarning, match="skipped 2 word.*max_length=4"):
        lexicon = Lexicon.from_file(path, max_length=4, default_type="LOC")
    assert list(lexicon) == ["南京"] and lexicon.type_of("南京") == "LOC"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(Lexicon.from_file(path)) == 3


def test_add_file_uses_default_freq(tmp_path: Path) -> None:
    path = write(tmp_path / "lex.txt", "华为云\tORG\n")
    lexicon = Lexicon([("a", 1.0, None), ("b", 3.0, None), ("c", 5.0, None)])
    lexicon.add_file(path)
    assert lexicon.freq("华为云") == 3.0 and lexicon.type_of("华为云") == "ORG"


def resolve_loader(config: str) -> Lexicon:
    loader = registry.resolve(Config().from_str(config))["lexicon"]
    assert callable(loader)
    return loader()


def test_registered_file_loaders(tmp_path: Path) -> None:
    path = write(tmp_path / "lex.txt", "华为云 ORG\n南京 10 ns\n")
    lexicon = resolve_loader(
        f"""
        [lexicon]
        @lexicons = "spacy-lexner.file_lexicon.v1"
        paths = ["{path}"]
        default_freq = 2.5
        """
    )
    assert set(lexicon) == {"华为云", "南京"} and lexicon.freq("华为云") == 2.5
    with pytest.warns(UserWarning, match="skipped 1 word"):
        lexicon = resolve_loader(
            f"""
            [lexicon]
            @lexicons = "spacy-lexner.combined_lexicon.v1"
            use_jieba = false
            paths = ["{path}"]
            max_length = 2
            """
        )
    assert set(lexicon) == {"南京"}
    with pytest.raises(ValueError, match="use_jieba"):
        resolve_loader('[lexicon]\n@lexicons = "spacy-lexner.combined_lexicon.v1"\nuse_jieba = false')


def test_registered_jieba_loader(tmp_path: Path) -> None:
    path = write(tmp_path / "lex.txt", "华为云 ORG\n")
    lexicon = resolve_loader(
        f"""
        [lexicon]
        @lexicons = "spacy-lexner.jieba_lexicon.v1"
        extra_paths = ["{path}"]
        min_length = 2
        """
    )
    assert "华为云" in lexicon and "南京市" in lexicon and "南" not in lexicon
    assert lexicon.freq("华为云") == lexicon.default_freq
