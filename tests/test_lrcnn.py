"""The LR-CNN encoder: overfit then round-trip, padding invariance, which
layer and position each lexicon word reaches, the use_lattice switch, and
`spacy train` from a config."""

import numpy
import pytest
import torch
from thinc.api import fix_random_seed

from spacy_lexner import Lexicon
from spacy_lexner.lexicon import Lattice
from spacy_lexner.models.encoders.lrcnn import WORD_SEEDS, layer_words
from spacy_lexner.models.pytorch.lrcnn import LRCNN

from .util import TRAIN_DATA, blank_with_tagger, ents_of, make_examples, reloaded, train_nlp

ENCODER = {
    "@architectures": "spacy-lexner.LRCNNEncoder.v1",
    "hidden_width": 32,
    "depth": 3,
    "rethink": 2,
    "dropout": 0.1,
    "word_rows": 1024,
    "word_width": 16,
}
TEXTS = [t for t, _ in TRAIN_DATA] + ["张三在上海。", "", "  ", "iPhone12在Apple Store卖3999元😀"]
WORDS = ["南京", "南京市", "市长", "长江", "长江大桥", "江大桥", "大桥", "桥", "南京市长江"]


def encoder(use_lattice: bool = True) -> dict:
    return {**ENCODER, "use_lattice": use_lattice}


def small_lexicon() -> Lexicon:
    lexicon = Lexicon()
    for word in WORDS:
        lexicon.add(word, 10.0)
    return lexicon


@pytest.mark.parametrize(
    "use_lexicon,use_lattice", [(True, True), (False, False)], ids=["lexicon_lattice", "no_lexicon_no_lattice"]
)
def test_overfit_round_trip(use_lexicon, use_lattice, tmp_path):
    fix_random_seed(0)
    nlp = blank_with_tagger(encoder=encoder(use_lattice), use_lexicon=use_lexicon)
    train_nlp(nlp, make_examples(nlp), n_iter=40)
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    expected = [ents_of(nlp(t)) for t in TEXTS]
    for other in reloaded(nlp, tmp_path / "nlp"):
        assert [ents_of(other(t)) for t in TEXTS] == expected
        assert [ents_of(d) for d in other.pipe(TEXTS, batch_size=3)] == expected


@pytest.fixture(scope="module")
def tagger():
    """An initialized (untrained) lexner_tagger with LR-CNN, no SoftLexicon
    word features: the lattice reaches the model only through the encoder."""
    fix_random_seed(0)
    nlp = blank_with_tagger(encoder=encoder(True), use_lexicon=False)
    nlp.initialize(lambda: make_examples(nlp))
    tagger = nlp.get_pipe("lexner_tagger")
    tagger.set_lexicon(small_lexicon())
    return tagger


def emissions(tagger, texts, lexicon) -> torch.Tensor:
    return torch.as_tensor(tagger.model.predict(Lattice.build(texts, lexicon)).emissions)


def test_padding_does_not_change_outputs(tagger):
    short, long = "南京市长江大桥", "南京市长江大桥很长，李四去了上海。" * 3
    alone = emissions(tagger, [short], tagger.lexicon)
    batched = emissions(tagger, [long, short, ""], tagger.lexicon)
    torch.testing.assert_close(batched[1, : len(short)], alone[0], rtol=1e-4, atol=1e-5)
    assert emissions(tagger, ["", ""], tagger.lexicon).shape[:2] == (2, 0)  # only empty texts
    assert torch.isfinite(emissions(tagger, ["南京市", ""], None)).all()  # no words at all


def test_words_change_outputs_only_with_use_lattice(tagger):
    text = "南京市长江大桥"
    with_words = emissions(tagger, [text], tagger.lexicon)
    without_words = emissions(tagger, [text], None)
    assert not torch.allclose(with_words, without_words)

    fix_random_seed(0)
    nlp = blank_with_tagger(encoder=encoder(False), use_lexicon=False)
    nlp.initialize(lambda: make_examples(nlp))
    plain = nlp.get_pipe("lexner_tagger")
    assert torch.equal(emissions(plain, [text], small_lexicon()), emissions(plain, [text], None))


def test_layer_words_slots():
    """A word of length m + 1 starting at t is in layer m's slot (m - 1) at
    t; one-char words and words longer than depth + 1 are left out."""
    lattice = Lattice.build(["南京市长江大桥", "", "长江"], small_lexicon())
    rows, has_word = layer_words(lattice, 7, depth=3, word_rows=1024)
    assert rows.shape == (3, 7, 3, len(WORD_SEEDS)) and has_word.shape == (3, 7, 3)
    found = {(int(i), int(t), int(s)) for i, t, s in zip(*numpy.nonzero(has_word))}
    # 南京 (0, 2), 市长 (2, 2), 长江 (3, 2), 大桥 (5, 2); 南京市 (0, 3), 江大桥 (4, 3); 长江大桥 (3, 4).
    assert found == {(0, 0, 0), (0, 2, 0), (0, 3, 0), (0, 5, 0), (0, 0, 1), (0, 4, 1), (0, 3, 2), (2, 0, 0)}
    # The same word has the same rows wherever it is.
    assert (rows[0, 3, 0] == rows[2, 0, 0]).all() and (rows[0, 3, 0] != rows[0, 0, 0]).any()
    assert not rows[~has_word].any()
    empty = layer_words(Lattice.build(["南京"], None), 2, depth=3, word_rows=1024)
    assert not empty[0].any() and not empty[1].any()


@pytest.mark.parametrize("start,length", [(1, 2), (2, 3), (0, 4)])
def test_a_word_reaches_its_layer_at_its_ends(start, length):
    """Without rethinking, a word of length m + 1 at [start, start + m]
    leaves layers 0..m-1 unchanged and changes layer m only where the
    n-gram starts (forward streams) and ends (backward streams)."""
    torch.manual_seed(0)
    depth, n_chars = 3, 7
    module = LRCNN(
        12, hidden_width=16, depth=depth, rethink=1, dropout=0.0, word_rows=64, word_width=8, use_lattice=True
    ).eval()
    X = torch.randn(1, n_chars, 12)
    rows = torch.randint(0, 64, (1, n_chars, depth, len(WORD_SEEDS)))
    no_word = torch.zeros(1, n_chars, depth, dtype=torch.bool)
    one_word = no_word.clone()
    m = length - 1
    one_word[0, start, m - 1] = True

    def layers(has_word):
        with torch.no_grad():
            chars = torch.tanh(module.project(X))
            words = module.word_embed(rows).sum(dim=-2) * has_word.unsqueeze(-1)
            mask, key_mask = torch.ones(1, n_chars, 1), torch.ones(1, n_chars, dtype=torch.bool)
            return module._one_pass(chars, words, module.context.first(chars, key_mask), None, mask, key_mask)

    before, after = layers(no_word), layers(one_word)
    for lower in range(m):
        torch.testing.assert_close(after[lower], before[lower], rtol=0, atol=0)
    changed = (after[m] - before[m]).abs().amax(dim=-1)[0] > 1e-6
    assert changed.nonzero().flatten().tolist() == [start, start + m]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_matches_cpu():
    torch.manual_seed(0)
    module = LRCNN(12, hidden_width=16, depth=3, rethink=2, dropout=0.0, word_rows=64, word_width=8, use_lattice=True)
    X, lengths = torch.randn(3, 9, 12), torch.tensor([9, 4, 0])
    rows, has_word = torch.randint(0, 64, (3, 9, 3, 2)), torch.rand(3, 9, 3) < 0.3
    with torch.no_grad():
        on_cpu = module.eval()(X, lengths, rows, has_word)
        on_gpu = module.cuda()(X.cuda(), lengths.cuda(), rows.cuda(), has_word.cuda())
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-4)
