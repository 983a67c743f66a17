"""The Lattice LSTM encoder: the batched steps against a one-text, one-word-
at-a-time reading of the paper's equations, the word cap, the lattice
switch, and the pipeline tests every encoder gets."""

import numpy
import pytest
import torch
from thinc.api import fix_random_seed

from spacy_lexner.lexicon import Lattice
from spacy_lexner.lexicon.lexicon import Lexicon
from spacy_lexner.models.encoders.lattice_lstm import lattice_lstm_words
from spacy_lexner.models.pytorch.lattice_lstm import LatticeLSTM

from .util import TRAIN_DATA, blank_with_tagger, ents_of, make_examples, reloaded, train_nlp

ENCODER = {"@architectures": "spacy-lexner.LatticeLSTMEncoder.v1", "hidden_width": 32, "dropout": 0.1}
TEXTS = [t for t, _ in TRAIN_DATA] + ["张三在上海。", "", "  ", "iPhone12在Apple Store卖3999元😀", "长" * 300]


def reference_direction(direction, x, words, vectors):
    """One direction for one text, straight from the equations: words are
    (first, last) positions in this direction's order."""
    H = direction.hidden
    h, c = x.new_zeros(H), x.new_zeros(H)
    cells, outputs = {}, []
    for t in range(x.shape[0]):
        i, o, f, g = (direction.char_input(x[t]) + direction.char_hidden(h)).split(H)
        i, o, f, g = torch.sigmoid(i), torch.sigmoid(o), torch.sigmoid(f), torch.tanh(g)
        ending = [k for k, (first, last) in enumerate(words) if last == t]
        if ending:
            link = direction.link_input(x[t])
            gates = [torch.exp(i)] + [torch.exp(torch.sigmoid(link + direction.link_cell(cells[k]))) for k in ending]
            total = sum(gates)
            c = gates[0] / total * g + sum(gate / total * cells[k] for gate, k in zip(gates[1:], ending))
        else:
            c = f * c + i * g
        h = o * torch.tanh(c)
        outputs.append(h)
        for k, (first, _) in enumerate(words):
            if first == t:
                f_w, i_w, g_w = (direction.word_input(vectors[k]) + direction.word_hidden(h)).split(H)
                cells[k] = torch.sigmoid(f_w) * c + torch.sigmoid(i_w) * torch.tanh(g_w)
    return torch.stack(outputs) if outputs else x.new_zeros((0, H))


def test_batched_steps_match_the_equations():
    torch.manual_seed(0)
    module = LatticeLSTM(6, hidden_width=8, word_width=4, word_rows=50, dropout=0.0, use_lattice=True).eval()
    lengths = [7, 0, 4, 7]
    # (text, start, end): overlapping, nested, two ending at one char, two starting at one.
    words = [(0, 0, 2), (0, 0, 3), (0, 1, 3), (0, 2, 7), (0, 5, 7), (2, 0, 4), (2, 1, 3), (3, 3, 5)]
    X = torch.randn(4, 7, 6) * (torch.arange(7)[None, :, None] < torch.tensor(lengths)[:, None, None])
    rows = torch.randint(0, 50, (len(words), 2))
    text, start, end = (torch.tensor(column) for column in zip(*words))
    with torch.no_grad():
        Y = module(X, torch.tensor(lengths), rows, text, start, end)
        vectors = module.word_embed(rows).sum(dim=1)
        for i, n in enumerate(lengths):
            mine = [(k, s, e - 1) for k, (ti, s, e) in enumerate(words) if ti == i]
            own_vectors = vectors[[k for k, _, _ in mine]]
            spans = [(s, last) for _, s, last in mine]
            forward = reference_direction(module.directions[0], X[i, :n], spans, own_vectors)
            flipped = [(n - 1 - last, n - 1 - s) for s, last in spans]
            backward = reference_direction(module.directions[1], X[i, :n].flip(0), flipped, own_vectors).flip(0)
            expected = torch.cat([forward, backward], dim=-1)
            torch.testing.assert_close(Y[i, :n], expected, rtol=1e-5, atol=1e-6)
            assert not Y[i, n:].any()


def test_words_reach_the_output_only_with_the_lattice_on():
    torch.manual_seed(0)
    X = torch.randn(1, 5, 6)
    args = (torch.tensor([5]), torch.tensor([[3, 4]]), torch.tensor([0]), torch.tensor([1]), torch.tensor([4]))
    no_words = (torch.tensor([5]), torch.zeros((0, 2), dtype=torch.long), *(torch.zeros(0, dtype=torch.long),) * 3)
    for use_lattice in (True, False):
        torch.manual_seed(1)
        module = LatticeLSTM(6, hidden_width=8, word_width=4, word_rows=50, dropout=0.0, use_lattice=use_lattice)
        with torch.no_grad():
            with_word, without = module(X, *args), module(X, *no_words)
        changed = (with_word - without).abs().amax(dim=-1)[0] > 1e-7
        if use_lattice:
            # Forward: from the word's last char (3) on; backward: from its first char (1) back.
            assert changed.tolist() == [True, True, False, True, True]
        else:
            assert not changed.any()


def test_gradients_reach_the_words_and_the_chars():
    module = LatticeLSTM(6, hidden_width=8, word_width=4, word_rows=50, dropout=0.0, use_lattice=True)
    X = torch.randn(2, 5, 6, requires_grad=True)
    words = (torch.tensor([[3, 4], [5, 6]]), torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([4, 2]))
    module(X, torch.tensor([5, 3]), *words).sum().backward()
    assert X.grad[0].abs().sum() > 0 and X.grad[1, :3].abs().sum() > 0 and not X.grad[1, 3:].any()
    assert module.word_embed.weight.grad[[3, 4, 5, 6]].abs().sum(dim=1).min() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_matches_cpu():
    torch.manual_seed(0)
    module = LatticeLSTM(6, hidden_width=8, word_width=4, word_rows=50, dropout=0.0, use_lattice=True).eval()
    X, lengths = torch.randn(3, 7, 6), torch.tensor([7, 4, 0])
    words = (
        torch.randint(0, 50, (4, 2)),
        torch.tensor([0, 0, 1, 1]),
        torch.tensor([0, 2, 0, 1]),
        torch.tensor([3, 7, 2, 4]),
    )
    with torch.no_grad():
        on_cpu = module(X, lengths, *words)
        on_gpu = module.cuda()(X.cuda(), lengths.cuda(), *(w.cuda() for w in words))
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-5)


def test_words_per_char_are_capped_longest_first():
    lexicon = Lexicon(
        [(w, None, None) for w in ["南京", "南京市", "南京市长", "市长", "长江", "长江大桥", "大桥", "江"]]
    )
    lattice = Lattice.build(["南京市长江大桥"], lexicon)
    spans = lambda index: [(int(lattice.word_start[k]), int(lattice.word_end[k])) for k in index]  # noqa: E731
    # One-char words never enter; with no cap every longer word does, in (start, end) order.
    assert spans(lattice_lstm_words(lattice, 8)) == [(0, 2), (0, 3), (0, 4), (2, 4), (3, 5), (3, 7), (5, 7)]
    # One per char: ends first (南京市长 beats 市长 at 4, 长江大桥 beats 大桥 at 7),
    # then starts (南京市长 beats 南京 and 南京市 at 0).
    assert spans(lattice_lstm_words(lattice, 1)) == [(0, 4), (3, 7)]
    empty = Lattice.build(["", "张"], None)
    assert len(lattice_lstm_words(empty, 1)) == 0


@pytest.mark.parametrize("use_lexicon,use_lattice", [(True, True), (False, False)], ids=["full", "no_lexicon"])
def test_overfit_round_trip(use_lexicon, use_lattice, tmp_path):
    fix_random_seed(0)
    nlp = blank_with_tagger(encoder={**ENCODER, "use_lattice": use_lattice}, use_lexicon=use_lexicon)
    train_nlp(nlp, make_examples(nlp), n_iter=60)
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    expected = [ents_of(nlp(t)) for t in TEXTS]
    for other in reloaded(nlp, tmp_path / "nlp"):
        assert [ents_of(other(t)) for t in TEXTS] == expected
        assert [ents_of(d) for d in other.pipe(TEXTS, batch_size=3)] == expected


def test_padding_and_empty_batches():
    nlp = blank_with_tagger(encoder=ENCODER)
    nlp.initialize(lambda: make_examples(nlp))
    tagger = nlp.get_pipe("lexner_tagger")
    short, long = "张三在南京市长江大桥。", "南京市长江大桥很长，李四去了上海。" * 3
    alone = tagger.model.predict(Lattice.build([short], tagger.lexicon)).emissions
    batched = tagger.model.predict(Lattice.build([long, "", short], tagger.lexicon)).emissions
    numpy.testing.assert_allclose(batched[2, : len(short)], alone[0], rtol=1e-4, atol=1e-5)
    empty = tagger.model.predict(Lattice.build(["", ""], tagger.lexicon))
    assert empty.decode().shape[0] == 2
    no_words = tagger.model.predict(Lattice.build(["张三", "李"], None))
    assert numpy.isfinite(no_words.emissions).all()
