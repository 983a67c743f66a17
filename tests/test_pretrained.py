"""Initialising lexner_tagger's hashed embedding tables from pretrained vectors."""

import numpy
import pytest
from thinc.api import fix_random_seed

from spacy_lexner.lexicon import Lattice
from spacy_lexner.models.pretrained import assign_rows, load_pretrained_vectors, read_vectors

from .util import blank_with_tagger, make_examples

WIDTH = 16  # small_model's char, bigram and word width


def write_vectors(path, width=WIDTH):
    rng = numpy.random.default_rng(0)
    tables = {"chars": ["张", "三"], "bigrams": ["张三", "三"], "words": ["北京", "北京大学"]}
    arrays = {}
    for table, keys in tables.items():
        arrays[f"{table}_keys"] = numpy.array(keys, dtype="U")
        arrays[f"{table}_vectors"] = rng.normal(size=(len(keys), width)).astype("float32")
    numpy.savez(path, **arrays)
    return path


def initialized(**settings):
    fix_random_seed(0)
    nlp = blank_with_tagger()
    if settings:
        nlp.config["initialize"]["components"]["lexner_tagger"] = settings
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    return nlp


def parts(nlp):
    embed = nlp.get_pipe("lexner_tagger").model.get_ref("embed")
    return embed.attrs["featurizer"], embed.layers[0].shims[0]._model


def table(module, name):
    return getattr(module, name).weight.detach().numpy().copy()


def test_loader_writes_each_key_into_the_rows_the_featurizer_reads(tmp_path):
    path = write_vectors(tmp_path / "vectors.npz")
    vectors = read_vectors(path)
    nlp = initialized()
    featurizer, module = parts(nlp)
    stats = load_pretrained_vectors(nlp.get_pipe("lexner_tagger").model, path)
    assert stats["chars"] == {"keys": 2, "exact": 2, "collided": 0}
    # What the tagger computes for "张三" is the pretrained vector of each key:
    # a char vector is the sum of its hashed rows.
    features = featurizer(Lattice.build(["张三"], None))
    chars = table(module, "char")[features.char_rows].sum(axis=1)
    numpy.testing.assert_allclose(chars, vectors["chars"][1], rtol=1e-5, atol=1e-6)
    bigrams = table(module, "bigram")[features.bigram_rows].sum(axis=1)
    numpy.testing.assert_allclose(bigrams, vectors["bigrams"][1], rtol=1e-5, atol=1e-6)  # 张三, 三+end
    words = table(module, "word")[featurizer.word_rows(["北京", "北京大学"])].sum(axis=1)
    numpy.testing.assert_allclose(words, vectors["words"][1], rtol=1e-5, atol=1e-6)


def test_config_setting_loads_vectors_and_leaves_other_rows_alone(tmp_path):
    path = write_vectors(tmp_path / "vectors.npz")
    base_featurizer, base = parts(initialized())
    featurizer, loaded = parts(initialized(pretrained_vectors=str(path)))
    keys = read_vectors(path)
    touched = {
        "char": set(featurizer(Lattice.build(keys["chars"][0], None)).char_rows.ravel()),
        "word": set(featurizer.word_rows(keys["words"][0]).ravel()),
    }
    for name, rows in touched.items():
        before, after = table(base, name), table(loaded, name)
        changed = set(numpy.flatnonzero((before != after).any(axis=1)))
        assert changed == rows
    char = table(loaded, "char")[featurizer(Lattice.build(["张"], None)).char_rows[0]].sum(axis=0)
    numpy.testing.assert_allclose(char, keys["chars"][1][0], rtol=1e-5, atol=1e-6)


def test_without_vectors_initialize_is_unchanged():
    # The setting defaults to null: the same seed gives the same weights
    # with no setting as with an explicit null.
    _, default = parts(initialized())
    _, again = parts(initialized(pretrained_vectors=None))
    for name in ("char", "bigram", "word", "word_type"):
        numpy.testing.assert_array_equal(table(default, name), table(again, name))


def test_assign_rows_keeps_sums_exact_under_collisions():
    weights = numpy.zeros((4, 2), dtype="float32")
    rows = numpy.array([[0, 1], [1, 2], [0, 2], [3, 3]])
    vectors = numpy.array([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0], [6.0, 6.0]], dtype="float32")
    stats = assign_rows(weights, rows, vectors)
    # Key 2's rows were both taken by keys 0 and 1: a counted collision.
    assert stats == {"exact": 3, "collided": 1}
    sums = weights[rows].sum(axis=1)
    numpy.testing.assert_allclose(sums[[0, 1, 3]], vectors[[0, 1, 3]])


def test_bad_vectors_files(tmp_path):
    nlp = initialized()
    model = nlp.get_pipe("lexner_tagger").model
    with pytest.raises(ValueError, match="width 8"):
        load_pretrained_vectors(model, write_vectors(tmp_path / "narrow.npz", width=8))
    with pytest.raises(ValueError, match="not found"):
        load_pretrained_vectors(model, tmp_path / "missing.npz")
    numpy.savez(
        tmp_path / "objects.npz",
        chars_keys=numpy.array([{"a": 1}], dtype=object),
        chars_vectors=numpy.zeros((1, WIDTH)),
    )
    with pytest.raises(ValueError, match="Cannot read"):
        load_pretrained_vectors(model, tmp_path / "objects.npz")


def test_config_rescale_keeps_direction_and_matches_init_spread(tmp_path):
    """Deprecated (it did worse than unscaled vectors): it still works, and warns."""
    path = write_vectors(tmp_path / "vectors.npz")
    _, base = parts(initialized())
    with pytest.warns(DeprecationWarning, match="pretrained_rescale"):
        featurizer, module = parts(initialized(pretrained_vectors=str(path), pretrained_rescale=True))
    vectors = read_vectors(path)["words"][1]
    words = table(module, "word")[featurizer.word_rows(["北京", "北京大学"])].sum(axis=1)
    # One factor for the whole table: the init's spread of a 2-row sum.
    scale = table(base, "word").std() * numpy.sqrt(2) / vectors.std()
    numpy.testing.assert_allclose(words, vectors * scale, rtol=1e-4, atol=1e-5)
