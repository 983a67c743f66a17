"""Training char, bigram and word vectors on raw text (spacy_lexner.corpora.word2vec and its CLI)."""

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_lexner.cli.app import app
from spacy_lexner.corpora.word2vec import Word2VecSettings, pretrain_vectors, read_texts
from spacy_lexner.lexicon import Lattice, Lexicon
from spacy_lexner.models.pretrained import load_pretrained_vectors, read_vectors

from .util import blank_with_tagger, make_examples

pytest.importorskip("gensim")

TEXTS = ["南京市长江大桥于1968年建成。", "张三在北京大学工作。", "北京大学在北京。", "长江大桥很长。"] * 5
TINY = Word2VecSettings(char_width=16, bigram_width=16, word_width=16, epochs=2, min_count=1)


@pytest.fixture(scope="module")
def arrays():
    return pretrain_vectors(TEXTS, settings=TINY)


def test_vocabularies_hold_the_keys_the_featurizer_looks_up(arrays):
    chars = set(arrays["chars_keys"])
    assert chars == set("".join(TEXTS))
    bigrams = set(arrays["bigrams_keys"])
    assert {"南京", "。"} <= bigrams  # "。" ends every text: char + end-of-text
    assert all(len(key) in (1, 2) for key in bigrams)
    lexicon = Lexicon.from_jieba()
    words = list(arrays["words_keys"])
    assert "北京大学" in words and all(word in lexicon for word in words)
    for name in ("chars", "bigrams", "words"):
        counts = arrays[f"{name}_counts"]
        assert list(counts) == sorted(counts, reverse=True)
        assert arrays[f"{name}_vectors"].shape == (len(arrays[f"{name}_keys"]), 16)
        assert arrays[f"{name}_vectors"].dtype == numpy.float32


def test_same_seed_gives_the_same_vectors(arrays):
    again = pretrain_vectors(TEXTS, settings=TINY)
    for name, array in arrays.items():
        numpy.testing.assert_array_equal(array, again[name])


def test_extra_lexicon_words_get_vectors(tmp_path):
    domain = tmp_path / "domain.txt"
    domain.write_text("氪星石\n", encoding="utf8")
    texts = TEXTS + ["氪星石很重。"] * 3
    assert "氪星石" not in set(pretrain_vectors(texts, settings=TINY)["words_keys"])
    arrays = pretrain_vectors(texts, extra_lexicons=[domain], settings=TINY)
    assert "氪星石" in set(arrays["words_keys"])


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        pretrain_vectors([], settings=TINY)


def test_read_texts_from_docbin_jsonl_and_text(tmp_path):
    nlp = blank_with_tagger()
    docbin = DocBin(docs=[nlp.make_doc("张三在北京。"), nlp.make_doc("")])
    docbin.to_disk(tmp_path / "a.spacy")
    srsly.write_jsonl(tmp_path / "b.jsonl", [{"text": "长江大桥"}, {"text": "南京"}])
    (tmp_path / "c.txt").write_text("第一行\n\n  第二行  \n", encoding="utf8")
    texts = read_texts([tmp_path / "a.spacy", tmp_path / "b.jsonl", tmp_path / "c.txt"])
    assert texts == ["张三在北京。", "长江大桥", "南京", "第一行", "第二行"]


def test_bad_text_files_name_the_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("好\n好\n".encode("utf8") + b"\xff\xfe\n")
    with pytest.raises(ValueError, match=r"bad\.txt:3: not valid UTF-8"):
        read_texts([bad])
    records = tmp_path / "bad.jsonl"
    srsly.write_jsonl(records, [{"text": "好"}, {"title": "no text"}])
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: .*\"text\""):
        read_texts([records])
    with pytest.raises(ValueError, match="not found"):
        read_texts([tmp_path / "missing.txt"])


def test_cli_writes_vectors_the_tagger_loads(tmp_path):
    corpus = tmp_path / "raw.txt"
    corpus.write_text("\n".join(TEXTS), encoding="utf8")
    output = tmp_path / "vectors.npz"
    result = CliRunner().invoke(
        app,
        [
            "pretrain-vectors",
            str(output),
            str(corpus),
            "--char-width",
            "16",
            "--bigram-width",
            "16",
            "--word-width",
            "16",
            "--epochs",
            "1",
            "--min-count",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert srsly.read_json(output.with_suffix(".json"))["char_width"] == 16
    nlp = blank_with_tagger()  # widths 16, as in the test pipelines
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    stats = load_pretrained_vectors(nlp.get_pipe("lexner_tagger").model, output)
    assert stats["chars"]["keys"] == len(read_vectors(output)["chars"][0]) > 0
    assert stats["words"]["exact"] > 0


def test_cli_rejects_an_output_that_is_not_npz(tmp_path):
    corpus = tmp_path / "raw.txt"
    corpus.write_text("张三\n", encoding="utf8")
    result = CliRunner().invoke(app, ["pretrain-vectors", str(tmp_path / "vectors.bin"), str(corpus)])
    assert result.exit_code == 1
    assert ".npz" in result.output


def test_resume_config_initialises_from_paths_pretrained_vectors(tmp_path):
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config

    from .test_configs import write_docbin
    from .util import REPO_ROOT

    data = write_docbin(tmp_path / "train.spacy")
    output = tmp_path / "vectors.npz"
    result = CliRunner().invoke(app, ["pretrain-vectors", str(output), str(data), "--epochs", "1", "--min-count", "1"])
    assert result.exit_code == 0, result.output
    overrides = {"paths.train": str(data), "paths.dev": str(data), "paths.pretrained_vectors": str(output)}
    nlp = init_nlp(load_config(REPO_ROOT / "configs" / "resume.cfg", overrides=overrides))
    embed = nlp.get_pipe("lexner_tagger").model.get_ref("embed")
    featurizer, module = embed.attrs["featurizer"], embed.layers[0].shims[0]._model
    keys, vectors = read_vectors(output)["chars"]
    rows = featurizer(Lattice.build([keys[0]], None)).char_rows[0]
    char_vector = module.char.weight.detach().numpy()[rows].sum(axis=0)
    numpy.testing.assert_allclose(char_vector, vectors[0], rtol=1e-5, atol=1e-6)
    # The vectors only initialise: a saved pipeline loads without the file.
    nlp.to_disk(tmp_path / "pipeline")
    output.unlink()
    reloaded = spacy.load(tmp_path / "pipeline").get_pipe("lexner_tagger").model.get_ref("embed")
    reloaded_chars = reloaded.layers[0].shims[0]._model.char.weight.detach().numpy()
    numpy.testing.assert_array_equal(reloaded_chars, module.char.weight.detach().numpy())
