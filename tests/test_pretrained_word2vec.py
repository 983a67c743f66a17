"""lexner_tagger's tables initialised from word2vec files (the papers'
embeddings) and from the vectors spaCy loads into nlp.vocab."""

import importlib.metadata
import subprocess
import sys

import numpy
import pytest
from spacy.util import registry
from thinc.api import Config, fix_random_seed

from spacy_lexner.lexicon import Lattice, Lexicon
from spacy_lexner.models.pretrained import VocabVectors, Word2VecVectors, load_pretrained_vectors

from .test_embedding_files import write_binary, write_text
from .test_pretrained import WIDTH, initialized, parts, table
from .util import blank_with_tagger, make_examples

LEXICON_WORDS = ["北京", "北京大学", "张三"]
# Keys in frequency order, as the papers' files list them. "不在词典" is in
# no lexicon, so it takes no word rows.
KEYS = ["张", "三", "张三", "北京", "北京大学", "不在词典"]


def file_vectors(seed=0, keys=KEYS, width=WIDTH):
    return dict(zip(keys, numpy.random.default_rng(seed).normal(size=(len(keys), width)).astype("float32")))


def write_vec(path, vecs, **kwargs):
    keys = list(vecs)
    writer = write_binary if path.suffix == ".bin" else write_text
    return writer(path, keys, numpy.stack([vecs[k] for k in keys]), **kwargs)


def lexicon_settings(tmp_path):
    path = tmp_path / "lexicon.txt"
    path.write_text("\n".join(LEXICON_WORDS) + "\n", encoding="utf-8")
    return {"@lexicons": "spacy-lexner.file_lexicon.v1", "paths": [str(path)]}


def char_vector(featurizer, module, char):
    return table(module, "char")[featurizer(Lattice.build([char], None)).char_rows[0]].sum(axis=0)


def bigram_vector(featurizer, module, bigram):
    return table(module, "bigram")[featurizer(Lattice.build([bigram], None)).bigram_rows[0]].sum(axis=0)


def word_vector(featurizer, module, word):
    return table(module, "word")[featurizer.word_rows([word])[0]].sum(axis=0)


def assert_close(a, b):
    numpy.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_config_block_loads_the_papers_three_files(tmp_path):
    chars, bigrams, words = file_vectors(1), file_vectors(2), file_vectors(3)
    settings = {
        "lexicon": lexicon_settings(tmp_path),
        "pretrained_vectors": {
            "@misc": "spacy-lexner.word2vec_vectors.v1",
            "chars": str(write_vec(tmp_path / "gigaword_chn.all.a2b.uni.ite50.vec", chars)),
            "bigrams": str(write_vec(tmp_path / "gigaword_chn.all.a2b.bi.ite50.bin", bigrams)),
            "words": str(write_vec(tmp_path / "ctb.50d.vec.gz", words, header=True)),
        },
    }
    featurizer, module = parts(initialized(**settings))
    # A char's two hashed rows sum to its vector from the chars file; likewise
    # for a bigram and a lexicon word, each from its own file.
    assert_close(char_vector(featurizer, module, "张"), chars["张"])
    assert_close(bigram_vector(featurizer, module, "张三"), bigrams["张三"])
    assert_close(word_vector(featurizer, module, "北京大学"), words["北京大学"])
    assert_close(word_vector(featurizer, module, "张三"), words["张三"])
    # Only lexicon words are kept for the word table.
    nlp = initialized(lexicon=settings["lexicon"])
    loader = registry.resolve(Config({"v": settings["pretrained_vectors"]}))["v"]
    tables = loader(nlp.vocab, nlp.get_pipe("lexner_tagger").lexicon)
    assert tables["words"][0] == ["张三", "北京", "北京大学"]
    assert tables["chars"][0] == ["张", "三"] and tables["bigrams"][0] == ["张三", "北京"]


def test_one_file_path_is_split_by_key_length_and_lexicon(tmp_path):
    vecs = file_vectors(4)
    path = write_vec(tmp_path / "sgns.merge.word", vecs, header=True)
    nlp = initialized(lexicon=lexicon_settings(tmp_path))
    pipe = nlp.get_pipe("lexner_tagger")
    stats = load_pretrained_vectors(pipe.model, path, lexicon=pipe.lexicon)
    assert {table: n["keys"] for table, n in stats.items()} == {"chars": 2, "bigrams": 2, "words": 3}
    featurizer, module = parts(nlp)
    assert_close(char_vector(featurizer, module, "三"), vecs["三"])
    assert_close(bigram_vector(featurizer, module, "北京"), vecs["北京"])
    assert_close(word_vector(featurizer, module, "北京"), vecs["北京"])
    # Without a lexicon, a file fills no word table.
    assert "words" not in load_pretrained_vectors(pipe.model, path)
    # The same path in the config, as `pretrained_vectors = "sgns.merge.word"`.
    featurizer, module = parts(initialized(lexicon=lexicon_settings(tmp_path), pretrained_vectors=str(path)))
    assert_close(word_vector(featurizer, module, "北京大学"), vecs["北京大学"])


def test_loader_protocol_gets_the_vocab_and_the_lexicon(tmp_path):
    seen = {}
    vecs = file_vectors(5)

    def loader(vocab, lexicon):
        seen.update(vocab=vocab, lexicon=lexicon)
        return {"chars": (["张"], vecs["张"][None, :])}

    nlp = initialized(lexicon=lexicon_settings(tmp_path))
    pipe = nlp.get_pipe("lexner_tagger")
    # Called directly (nlp=None), the pipe passes its own vocab.
    examples = make_examples(nlp)
    small = Lexicon([(word, None, None) for word in LEXICON_WORDS])
    pipe.initialize(lambda: examples, lexicon=lambda: small, pretrained_vectors=loader)
    assert seen["vocab"] is pipe.vocab
    assert seen["lexicon"] is pipe.lexicon is small
    featurizer, module = parts(nlp)
    assert_close(char_vector(featurizer, module, "张"), vecs["张"])


def test_width_mismatch_names_the_setting(tmp_path):
    path = write_vec(tmp_path / "tencent.txt", file_vectors(width=WIDTH + 2), header=True)
    with pytest.raises(ValueError, match=rf"width {WIDTH + 2} .*char_width = {WIDTH + 2} in the embed block"):
        initialized(lexicon=lexicon_settings(tmp_path), pretrained_vectors=str(path))


def test_rescale_still_works_with_a_word2vec_file(tmp_path):
    path = write_vec(tmp_path / "v.vec", file_vectors(6))
    with pytest.warns(DeprecationWarning, match="pretrained_rescale"):
        initialized(lexicon=lexicon_settings(tmp_path), pretrained_vectors=str(path), pretrained_rescale=True)


def test_loaders_need_what_they_read(tmp_path):
    with pytest.raises(ValueError, match="needs at least one of chars, bigrams or words"):
        registry.misc.get("spacy-lexner.word2vec_vectors.v1")()
    with pytest.raises(ValueError, match="needs the pipe's lexicon for `words`"):
        Word2VecVectors(words=str(write_vec(tmp_path / "w.vec", file_vectors())))(None, None)
    nlp = initialized(lexicon=lexicon_settings(tmp_path))
    with pytest.raises(ValueError, match=r"nlp.vocab has no vectors.*spacy init vectors zh"):
        VocabVectors()(nlp.vocab, None)


def test_spacy_init_vectors_end_to_end(tmp_path):
    vecs = file_vectors(7, keys=KEYS + [f"词{i}" for i in range(14)])  # 20 lines
    write_vec(tmp_path / "vecs.txt", vecs, header=True)
    vectors_dir = tmp_path / "vectors"
    subprocess.run(
        [sys.executable, "-m", "spacy", "init", "vectors", "zh", str(tmp_path / "vecs.txt"), str(vectors_dir)],
        check=True,
        capture_output=True,
    )
    fix_random_seed(0)
    nlp = blank_with_tagger()
    nlp.config["initialize"]["vectors"] = str(vectors_dir)
    nlp.config["initialize"]["components"]["lexner_tagger"] = {
        "lexicon": lexicon_settings(tmp_path),
        "pretrained_vectors": {"@misc": "spacy-lexner.vocab_vectors.v1"},
    }
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    assert nlp.vocab.vectors.shape == (20, WIDTH)
    featurizer, module = parts(nlp)
    assert_close(char_vector(featurizer, module, "张"), vecs["张"])
    assert_close(bigram_vector(featurizer, module, "张三"), vecs["张三"])
    assert_close(word_vector(featurizer, module, "北京大学"), vecs["北京大学"])


def test_new_names_resolve_from_a_config_and_are_entry_points(tmp_path):
    config = Config().from_str(
        """
        [vectors]
        @misc = "spacy-lexner.word2vec_vectors.v1"
        chars = "gigaword_chn.all.a2b.uni.ite50.vec"
        bigrams = "gigaword_chn.all.a2b.bi.ite50.vec"
        words = "ctb.50d.vec"

        [vocab]
        @misc = "spacy-lexner.vocab_vectors.v1"

        [lexicon]
        @lexicons = "spacy-lexner.embedding_lexicon.v1"
        path = "ctb.50d.vec"
        frequency = "rank"
        """
    )
    resolved = registry.resolve(config)
    assert isinstance(resolved["vectors"], Word2VecVectors)
    assert resolved["vectors"].paths == {
        "chars": "gigaword_chn.all.a2b.uni.ite50.vec",
        "bigrams": "gigaword_chn.all.a2b.bi.ite50.vec",
        "words": "ctb.50d.vec",
    }
    assert isinstance(resolved["vocab"], VocabVectors)
    assert callable(resolved["lexicon"])
    # Entry points, so configs resolve without importing spacy_lexner first.
    entry_points = importlib.metadata.distribution("spacy-lexner").entry_points
    misc = {ep.name for ep in entry_points if ep.group == "spacy_misc"}
    lexicons = {ep.name for ep in entry_points if ep.group == "spacy_lexicons"}
    assert {"spacy-lexner.word2vec_vectors.v1", "spacy-lexner.vocab_vectors.v1"} <= misc
    assert "spacy-lexner.embedding_lexicon.v1" in lexicons
