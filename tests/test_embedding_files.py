"""Streaming word2vec readers (spacy_lexner.lexicon.embedding_files) and
the lexicon built from an embedding file's vocabulary."""

import gzip
import struct

import numpy
import pytest
import spacy
from spacy.util import registry
from thinc.api import Config

from spacy_lexner.lexicon.embedding_files import EmbeddingFileError, read_embedding_vocabulary, read_embeddings
from spacy_lexner.lexicon.lexicon import jieba_dict_path
from spacy_lexner.lexicon.readers import read_lexicon_file

from .util import make_examples, small_model

KEYS = ["的", "张", "张三", "北京", "北京大学", "</s>"]
WIDTH = 4


def vectors(n=len(KEYS), width=WIDTH, seed=0):
    return numpy.random.default_rng(seed).normal(size=(n, width)).astype("float32")


def write_text(path, keys=KEYS, vecs=None, *, header=False, sep=" ", end="\n", prefix=""):
    vecs = vectors(len(keys)) if vecs is None else vecs
    lines = [f"{len(keys)} {vecs.shape[1]}"] if header else []
    lines += [k + sep + sep.join(repr(float(x)) for x in v) for k, v in zip(keys, vecs)]
    data = (prefix + end.join(lines) + end).encode("utf-8")
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as file_:
        file_.write(data)
    return path


def write_binary(path, keys=KEYS, vecs=None, *, newline=True, count=None):
    """word2vec's C format (newline=True) or gensim's (no newline)."""
    vecs = vectors(len(keys)) if vecs is None else vecs
    data = f"{len(keys) if count is None else count} {vecs.shape[1]}\n".encode()
    for key, vec in zip(keys, vecs):
        data += key.encode("utf-8") + b" " + struct.pack(f"<{len(vec)}f", *vec.tolist()) + (b"\n" if newline else b"")
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as file_:
        file_.write(data)
    return path


def check(found, keys=KEYS, vecs=None):
    vecs = vectors(len(keys)) if vecs is None else vecs
    assert found.keys == keys
    assert found.vectors.dtype == numpy.float32
    numpy.testing.assert_allclose(found.vectors, vecs, rtol=1e-6)


# -- formats -------------------------------------------------------------------


def test_text_without_header_like_the_gigaword_files(tmp_path):
    found = read_embeddings(write_text(tmp_path / "giga.vec"))
    check(found)
    assert (found.width, found.binary, found.n_read) == (WIDTH, False, len(KEYS))


def test_text_with_header_bom_crlf_tabs_trailing_spaces_and_blank_lines(tmp_path):
    path = write_text(tmp_path / "sgns.word", header=True, sep="\t", end=" \r\n\r\n", prefix="\ufeff")
    found = read_embeddings(path)
    check(found)
    assert not found.binary and found.n_read == len(KEYS)


@pytest.mark.parametrize("newline", [True, False], ids=["word2vec-c", "gensim"])
@pytest.mark.parametrize("name", ["vecs.bin", "vecs.vec", "vecs.bin.gz"])
def test_binary_is_read_and_detected(tmp_path, name, newline):
    # .vec: no .bin in the name, so it is told from text by its bytes.
    found = read_embeddings(write_binary(tmp_path / name, newline=newline))
    check(found)
    assert found.binary


def test_binary_matches_gensim(tmp_path):
    gensim = pytest.importorskip("gensim")
    kv = gensim.models.KeyedVectors(WIDTH)
    kv.add_vectors(KEYS, vectors())
    kv.save_word2vec_format(str(tmp_path / "g.bin"), binary=True)
    kv.save_word2vec_format(str(tmp_path / "g.txt"), binary=False)
    for name, binary in (("g.bin", True), ("g.txt", False)):
        found = read_embeddings(tmp_path / name)
        check(found)
        assert found.binary is binary


def test_gzipped_text(tmp_path):
    check(read_embeddings(write_text(tmp_path / "ctb.50d.vec.gz")))
    check(read_embeddings(write_text(tmp_path / "h.txt.gz", header=True)))


def test_format_can_be_forced(tmp_path):
    # A text file with a header is text unless told otherwise: forced to
    # binary, its first "key" runs to a space and its "vector" is text bytes.
    path = write_text(tmp_path / "h.txt", header=True)
    check(read_embeddings(path, binary=False))
    assert read_embeddings(path, binary=True).keys != KEYS
    # A .bin name says binary; binary = false reads it as the text it is.
    named = write_text(tmp_path / "text.bin", header=True)
    assert read_embeddings(named, keep=lambda key: False).binary
    check(read_embeddings(named, binary=False))
    with pytest.raises(EmbeddingFileError, match=r"giga\.vec:1: binary word2vec files start with a 'count dim'"):
        read_embeddings(write_text(tmp_path / "giga.vec"), binary=True)


# -- filtering -----------------------------------------------------------------


def test_keep_and_limit(tmp_path):
    path = write_text(tmp_path / "v.vec")
    vecs = vectors()
    found = read_embeddings(path, keep=lambda key: len(key) == 2)
    check(found, ["张三", "北京"], vecs[[2, 3]])
    assert found.n_read == len(KEYS)
    found = read_embeddings(path, limit=3)
    check(found, KEYS[:3], vecs[:3])
    assert found.n_read == 3
    # limit counts entries read, kept or not.
    check(read_embeddings(path, keep=lambda key: len(key) == 2, limit=3), ["张三"], vecs[[2]])
    binary = write_binary(tmp_path / "v.bin")
    check(read_embeddings(binary, keep=lambda key: len(key) == 2, limit=4), ["张三", "北京"], vecs[[2, 3]])


def test_lines_not_kept_are_not_parsed(tmp_path):
    path = tmp_path / "v.vec"
    path.write_text("张 1 2\n坏 1 x\n三 3 4\n", encoding="utf-8")
    found = read_embeddings(path, keep=lambda key: key != "坏")
    assert found.keys == ["张", "三"]
    with pytest.raises(EmbeddingFileError, match="v.vec:2"):
        read_embeddings(path)


def test_duplicates_first_wins_and_are_counted(tmp_path):
    vecs = vectors(4)
    path = write_text(tmp_path / "d.vec", ["张", "三", "张", "张"], vecs)
    found = read_embeddings(path)
    check(found, ["张", "三"], vecs[[0, 1]])
    assert (found.n_read, found.n_duplicates) == (4, 2)
    binary = read_embeddings(write_binary(tmp_path / "d.bin", ["张", "三", "张", "张"], vecs))
    check(binary, ["张", "三"], vecs[[0, 1]])
    assert binary.n_duplicates == 2


def test_whitespace_keys_are_skipped_and_counted(tmp_path):
    path = tmp_path / "w.vec"
    path.write_text("张 1 2\n  3 4\n三 5 6\n", encoding="utf-8")
    found = read_embeddings(path)
    assert found.keys == ["张", "三"] and found.n_whitespace == 1


def test_vocabulary_reads_only_keys(tmp_path):
    path = tmp_path / "v.vec"
    # Values are not parsed: a bad value does not stop a vocabulary read.
    path.write_text("3 2\n北京 1 2\n张三 x y\n北京 5 6\n", encoding="utf-8")
    assert read_embedding_vocabulary(path) == ["北京", "张三"]
    assert read_embedding_vocabulary(path, limit=1) == ["北京"]
    assert read_embedding_vocabulary(write_binary(tmp_path / "v.bin")) == KEYS


def test_no_progress_bar_when_not_a_tty(tmp_path, capsys):
    read_embeddings(write_text(tmp_path / "v.vec"), progress=True)
    assert capsys.readouterr().err == ""


# -- errors ----------------------------------------------------------------------


def write_bytes(path, data):
    path.write_bytes(data)
    return path


ERRORS = [
    (
        "width-header",
        b"3 2\n\xe5\xbc\xa0 1 2\n\xe4\xb8\x89 1 2 3\n",
        r"bad:3: 3 values after the key '三', but the header \(line 1\) says 2",
    ),
    (
        "width-first",
        b"\xe5\xbc\xa0 1 2\n\xe4\xb8\x89 1\n",
        r"bad:2: 1 values .* the first entry \(line 1\) has 2.*truncated",
    ),
    ("not-number", b"\xe5\xbc\xa0 1 2\n\xe4\xb8\x89 1 abc\n", r"bad:2: value 2 of '三' is 'abc', not a number"),
    ("nan", b"\xe5\xbc\xa0 1 nan\n", r"bad:1: the vector of '张' has NaN"),
    ("bad-utf8", b"\xe5\xbc\xa0 1 2\n\xd5\xc5 1 2\n", r"bad:2: not valid UTF-8 .*GBK"),
    ("no-values", b"\xe5\xbc\xa0\n", r"bad:1: '张' has no values"),
    ("empty", b"", r"bad: the file is empty"),
    ("blank", b"\n\n", r"bad: no entries"),
    ("header-only", b"3 2\n", r"bad: no entries"),
]


@pytest.mark.parametrize("data,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_text_errors_name_file_and_line(tmp_path, data, message):
    with pytest.raises(EmbeddingFileError, match=message):
        read_embeddings(write_bytes(tmp_path / "bad", data))


def test_binary_errors_name_entry_and_offset(tmp_path):
    good = write_binary(tmp_path / "good.bin").read_bytes()
    with pytest.raises(
        EmbeddingFileError, match=r"cut.bin: entry 6 of 6 \(byte \d[\d,]*\): the file ends inside its vector"
    ):
        read_embeddings(write_bytes(tmp_path / "cut.bin", good[:-5]))
    with pytest.raises(EmbeddingFileError, match=r"more.bin: entry 7 of 9 .*ends inside its key.*truncated"):
        read_embeddings(write_binary(tmp_path / "more.bin", count=9))
    bad_key = good.replace("张三".encode("utf-8"), "张三".encode("gbk") + b"\xff\xfe")
    with pytest.raises(EmbeddingFileError, match=r"key.bin: entry 3 \(byte \d+\): the key .* is not valid UTF-8"):
        read_embeddings(write_bytes(tmp_path / "key.bin", bad_key))


def test_file_errors(tmp_path):
    with pytest.raises(EmbeddingFileError, match=r"missing.vec: no such embedding file"):
        read_embeddings(tmp_path / "missing.vec")
    with pytest.raises(EmbeddingFileError, match=r"is a directory.*spacy-lexner.vocab_vectors.v1"):
        read_embeddings(tmp_path)
    data = gzip.compress(write_text(tmp_path / "v.vec").read_bytes() * 50)
    with pytest.raises(EmbeddingFileError, match=r"cut.vec.gz: cannot decompress the gzip file.*truncated"):
        read_embeddings(write_bytes(tmp_path / "cut.vec.gz", data[: len(data) // 2]))
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        read_embeddings(tmp_path / "v.vec", limit=0)


def test_header_count_mismatch_warns(tmp_path):
    path = write_bytes(tmp_path / "h.vec", "5 2\n张 1 2\n".encode("utf-8"))
    with pytest.warns(UserWarning, match=r"h.vec: the header says 5 entries but the file has 1; it may be truncated"):
        assert read_embeddings(path).keys == ["张"]


# -- the lexicon from an embedding vocabulary --------------------------------------


def embedding_lexicon(**settings):
    return registry.lexicons.get("spacy-lexner.embedding_lexicon.v1")(**settings)()


def test_embedding_lexicon_uniform_and_rank(tmp_path):
    path = write_text(tmp_path / "ctb.50d.vec", ["的", "北京", "北京大学", "的", "张三"])
    uniform = embedding_lexicon(path=str(path))
    assert sorted(uniform) == sorted(["的", "北京", "北京大学", "张三"])
    assert {uniform.freq(w) for w in uniform} == {1.0}
    # Rank r of n unique keys gets n / r: the file is sorted by count.
    rank = embedding_lexicon(path=str(path), frequency="rank", min_length=2)
    assert [rank.freq(w) for w in ("北京", "北京大学", "张三")] == [4 / 2, 4 / 3, 4 / 4]
    assert "的" not in rank
    assert list(embedding_lexicon(path=str(path), limit=2, max_length=2)) == ["的", "北京"]


def test_embedding_lexicon_with_jieba_and_extra_paths(tmp_path):
    path = write_text(tmp_path / "w.vec", ["北京", "新词甲"])
    extra = tmp_path / "extra.txt"
    extra.write_text("新词乙 7\n", encoding="utf-8")
    lexicon = embedding_lexicon(path=str(path), use_jieba=True, extra_paths=[str(extra)], frequency="rank")
    jieba = {word: freq for word, freq, _ in read_lexicon_file(jieba_dict_path())}
    # Words jieba lists keep jieba's frequency; new ones get the rank's.
    assert lexicon.freq("北京") == jieba["北京"]
    assert lexicon.freq("新词甲") == 2 / 2 and lexicon.freq("新词乙") == 7
    assert len(lexicon) >= len(jieba)


def test_embedding_lexicon_settings_are_checked_when_resolved():
    config = {"lexicon": {"@lexicons": "spacy-lexner.embedding_lexicon.v1", "path": "x.vec", "frequency": "zipf"}}
    with pytest.raises(ValueError, match=r"frequency must be one of \('uniform', 'rank'\), got 'zipf'"):
        registry.resolve(Config(config))
    config["lexicon"].update(frequency="rank", limit=0)
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        registry.resolve(Config(config))


def test_embedding_lexicon_from_a_config(tmp_path):
    path = write_text(tmp_path / "w.vec", ["北京", "北京大学", "腾讯公司"])
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": small_model()})
    nlp.config["initialize"]["components"]["lexner_tagger"] = {
        "lexicon": {"@lexicons": "spacy-lexner.embedding_lexicon.v1", "path": str(path), "frequency": "rank"}
    }
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    lexicon = nlp.get_pipe("lexner_tagger").lexicon
    assert sorted(lexicon) == sorted(["北京", "北京大学", "腾讯公司"])
    assert lexicon.freq("北京") == 3.0
    assert lexicon.match("我在北京大学") == [(2, 4, "北京"), (2, 6, "北京大学")]
