"""Every context encoder: overfit then round-trip, padding invariance, with
and without the lexicon, and `spacy train` from a config."""

import pytest
import spacy
import torch
from spacy.cli.train import train
from thinc.api import fix_random_seed

from spacy_lexner.lexicon import Lattice

from .test_configs import write_docbin
from .test_lattice_lstm import ENCODER as LATTICE_LSTM
from .test_lrcnn import ENCODER as LRCNN
from .util import REPO_ROOT, TRAIN_DATA, blank_with_tagger, ents_of, make_examples, reloaded, train_nlp

ENCODERS = {
    "bilstm": {"@architectures": "spacy-lexner.BiLSTMEncoder.v1", "hidden_width": 32, "dropout": 0.1},
    "idcnn": {"@architectures": "spacy-lexner.IDCNNEncoder.v1", "width": 32, "n_blocks": 2, "dropout": 0.1},
    "tener": {
        "@architectures": "spacy-lexner.TENEREncoder.v1",
        "width": 32,
        "depth": 1,
        "n_heads": 2,
        "ff_width": 64,
        "dropout": 0.1,
    },
    "flat": {
        "@architectures": "spacy-lexner.FLATEncoder.v1",
        "width": 32,
        "depth": 1,
        "n_heads": 2,
        "ff_width": 64,
        "dropout": 0.1,
        "word_rows": 1024,
    },
}
# The encoders that read the lattice have their own test files
# (test_lattice_lstm.py, test_lrcnn.py); here they only train from a config.
TRAINABLE = {**ENCODERS, "lattice_lstm": LATTICE_LSTM, "lrcnn": LRCNN}
TEXTS = [t for t, _ in TRAIN_DATA] + ["张三在上海。", "", "  ", "iPhone12在Apple Store卖3999元😀"]


@pytest.mark.parametrize("use_lexicon", [True, False], ids=["lexicon", "no_lexicon"])
@pytest.mark.parametrize("name", list(ENCODERS))
def test_overfit_round_trip(name, use_lexicon, tmp_path):
    # Seeded: whether 60 updates overfit must not depend on the tests before.
    fix_random_seed(0)
    nlp = blank_with_tagger(encoder=ENCODERS[name], use_lexicon=use_lexicon)
    train_nlp(nlp, make_examples(nlp), n_iter=60)
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    expected = [ents_of(nlp(t)) for t in TEXTS]
    for other in reloaded(nlp, tmp_path / "nlp"):
        assert [ents_of(other(t)) for t in TEXTS] == expected
        assert [ents_of(d) for d in other.pipe(TEXTS, batch_size=3)] == expected


@pytest.mark.parametrize("name", list(ENCODERS))
def test_padding_does_not_change_outputs(name):
    nlp = blank_with_tagger(encoder=ENCODERS[name])
    nlp.initialize(lambda: make_examples(nlp))
    tagger = nlp.get_pipe("lexner_tagger")
    short, long = "张三在上海。", "南京市长江大桥很长，李四去了上海。" * 3
    alone = tagger.model.predict(Lattice.build([short], tagger.lexicon)).emissions
    batched = tagger.model.predict(Lattice.build([short, long], tagger.lexicon)).emissions
    torch.testing.assert_close(
        torch.as_tensor(batched[0, : len(short)]), torch.as_tensor(alone[0]), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("name", ["idcnn", "tener", "flat", "lattice_lstm", "lrcnn"])
def test_spacy_train_with_encoder(name, tmp_path):
    data = write_docbin(tmp_path / "train.spacy")
    encoder = {k: v for k, v in TRAINABLE[name].items()}
    overrides = {
        "paths.train": str(data),
        "paths.dev": str(data),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "components.lexner_tagger.model.encoder": encoder,
    }
    train(REPO_ROOT / "configs" / "resume.cfg", tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert nlp.get_pipe("lexner_tagger").model.get_ref("encoder").name == f"{name}_encoder"
    nlp("张三在北京大学工作。")


def test_flat_lattice_words_and_cap():
    from spacy_lexner import Lexicon
    from spacy_lexner.models.encoders.flat import lattice_words

    lexicon = Lexicon()
    for word in ["南京", "南京市", "市长", "长江", "长江大桥", "大桥", "江大桥", "桥"]:
        lexicon.add(word, 10.0)
    lattice = Lattice.build(["南京市长江大桥"], lexicon)

    def words(index):
        return [(int(lattice.word_start[i]), int(lattice.word_end[i]), lattice.words[i]) for i in index]

    (index,) = lattice_words(lattice, max_words=100)
    assert words(index) == [
        (0, 2, "南京"),
        (0, 3, "南京市"),
        (2, 4, "市长"),
        (3, 5, "长江"),
        (3, 7, "长江大桥"),
        (4, 7, "江大桥"),
        (5, 7, "大桥"),
    ]
    (capped,) = lattice_words(lattice, max_words=2)
    assert words(capped) == [(0, 3, "南京市"), (3, 7, "长江大桥")]  # the longest are kept


def test_flat_words_change_the_char_outputs():
    """The lattice words reach the characters through attention."""
    nlp = blank_with_tagger(encoder=ENCODERS["flat"], use_lexicon=False)
    nlp.initialize(lambda: make_examples(nlp))
    tagger = nlp.get_pipe("lexner_tagger")
    with_words = tagger.model.predict(Lattice.build(["南京市长江大桥"], tagger.lexicon)).emissions
    without_words = tagger.model.predict(Lattice.build(["南京市长江大桥"], None)).emissions
    assert not torch.allclose(torch.as_tensor(with_words), torch.as_tensor(without_words))


def test_flat_pair_chunks_bound_the_padded_pairs():
    from spacy_lexner.models.pytorch import flat

    lengths, n_words = [40, 30, 30, 10, 5, 0], [20, 10, 0, 4, 0, 0]
    chunks = flat._pair_chunks(lengths, n_words)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    for start, end in chunks:
        longest = max(c + w for c, w in zip(lengths[start:end], n_words[start:end]))
        assert end - start == 1 or longest * longest * (end - start) <= flat.MAX_PAIRS
    assert flat._pair_chunks([500], [128]) == [(0, 1)]  # one row over the bound still runs


def test_flat_chunking_does_not_change_outputs_or_gradients(monkeypatch):
    """Chunks are trimmed to their own longest text and word list: outputs
    and input gradients equal those of one padded chunk."""
    from spacy_lexner.models.pytorch import flat

    torch.manual_seed(0)
    module = flat.FLAT(12, width=16, depth=1, n_heads=2, ff_width=32, dropout=0.0, word_rows=64, scaled=False)
    lengths, n_words = torch.tensor([9, 6, 0, 3]), torch.tensor([3, 0, 0, 1])
    word_rows = torch.randint(0, 64, (4, 3, 2))
    heads, tails = (
        torch.tensor([[0, 2, 4], [0, 0, 0], [0, 0, 0], [1, 0, 0]]),
        torch.tensor([[1, 4, 8], [0, 0, 0], [0, 0, 0], [2, 0, 0]]),
    )

    def run():
        X = torch.randn(4, 9, 12, generator=torch.Generator().manual_seed(1), requires_grad=True)
        Y = module(X, lengths, word_rows, heads, tails, n_words)
        (Y * torch.arange(Y.numel()).view_as(Y).sin()).sum().backward()
        return Y.detach(), X.grad

    one_chunk = run()
    monkeypatch.setattr(flat, "MAX_PAIRS", 1)  # every row its own chunk
    assert flat._pair_chunks(lengths.tolist(), n_words.tolist()) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    for chunked, whole in zip(run(), one_chunk):
        torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-5)
