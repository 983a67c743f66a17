"""The CPU inference paths give the outputs of the training paths: the fused
BiLSTM, the emission scorer on real positions only, and int8 quantization."""

import pickle

import numpy
import pytest
import spacy
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from spacy_lexner.models.pytorch.bilstm import BiLSTM
from spacy_lexner.models.pytorch.scorer import EmissionScorer

from .util import TRAIN_DATA, blank_with_tagger, ents_of, make_examples, train_nlp


def packed_reference(module: BiLSTM, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = pack_padded_sequence(X, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
    output, _ = module.lstm(packed)
    return pad_packed_sequence(output, batch_first=True, total_length=X.shape[1])[0]


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("lengths", [[5], [1, 7, 3, 7, 2], [0, 4, 1], [9, 9, 9]])
def test_fused_bilstm_matches_torch_lstm(depth, lengths):
    torch.manual_seed(depth)
    module = BiLSTM(12, 16, depth, dropout=0.3).eval()
    lengths = torch.tensor(lengths)
    X = torch.randn(len(lengths), int(lengths.max().clamp(min=1)), 12)
    with torch.no_grad():
        fused = module(X, lengths)
        expected = packed_reference(module, X, lengths)
    assert fused.shape == expected.shape
    assert torch.allclose(fused, expected, atol=1e-5)


def test_fused_bilstm_follows_weight_updates_and_training_uses_torch():
    module = BiLSTM(6, 8, 1, dropout=0.0).eval()
    X, lengths = torch.randn(3, 4, 6), torch.tensor([4, 2, 3])
    with torch.no_grad():
        before = module(X, lengths)
        module.lstm.weight_hh_l0.add_(0.5)  # an in-place step
        after = module(X, lengths)
        # thinc's optimizer writes through a numpy view: no torch version bump
        module.lstm.weight_ih_l0.data.numpy()[:] += 0.5
        after_numpy_step = module(X, lengths)
    assert not torch.allclose(before, after)
    assert not torch.allclose(after, after_numpy_step)
    assert torch.allclose(after_numpy_step, packed_reference(module, X, lengths).detach(), atol=1e-5)
    module.train()
    Y = module(X, lengths)  # with gradients: torch's LSTM, which can backprop
    Y.sum().backward()
    assert module.lstm.weight_ih_l0.grad is not None


def test_scorer_on_real_positions_matches_dense():
    scorer = EmissionScorer(8, 5)
    X, lengths = torch.randn(3, 6, 8), torch.tensor([6, 1, 3])
    with torch.no_grad():
        sparse = scorer(X, lengths)
    dense = scorer.linear(X).detach()
    real = torch.arange(6)[None, :] < lengths[:, None]
    assert torch.allclose(sparse[real], dense[real], atol=1e-6)
    assert torch.allclose(sparse[~real], scorer.linear.bias.detach().expand(int((~real).sum()), 5))


@pytest.fixture(scope="module")
def trained():
    nlp = blank_with_tagger()
    return train_nlp(nlp, make_examples(nlp), n_iter=60)


def test_quantize_on_load_predicts_like_float(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    quantized = spacy.load(tmp_path / "nlp", config={"components": {"lexner_tagger": {"quantize": True}}})
    texts = [text for text, _ in TRAIN_DATA]
    assert [ents_of(doc) for doc in quantized.pipe(texts, batch_size=3)] == [ents_of(trained(t)) for t in texts]
    assert [ents_of(quantized(t)) for t in texts] == [ents_of(d) for d in quantized.pipe(texts, batch_size=2)]
    shims = [s for node in quantized.get_pipe("lexner_tagger").model.walk() for s in node.shims]
    quantized_types = {type(m).__module__ for s in shims if s._quantized is not None for m in s._quantized.modules()}
    assert any("quantized" in name for name in quantized_types)
    # what is saved is the float model, and the setting travels in the config
    quantized.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")
    assert again.get_pipe("lexner_tagger").quantize is True
    float_again = spacy.load(tmp_path / "again", config={"components": {"lexner_tagger": {"quantize": False}}})
    assert [ents_of(float_again(t)) for t in texts] == [ents_of(trained(t)) for t in texts]
    pickle.loads(pickle.dumps(quantized))


def test_training_a_quantized_pipe_drops_the_int8_copy(trained):
    tagger = trained.get_pipe("lexner_tagger")
    tagger.quantize = True
    try:
        trained("张三在北京大学工作。")
        shims = [s for node in tagger.model.walk() for s in node.shims if s._quantized is not None]
        assert shims
        trained.update(make_examples(trained), sgd=trained.create_optimizer())
        assert all(s._quantized is None for s in shims)
        assert ents_of(trained("张三在北京大学工作。")) == ents_of(trained("张三在北京大学工作。"))
    finally:
        tagger.quantize = False


def test_int8_input_projection_is_close_to_float():
    torch.manual_seed(0)
    module = BiLSTM(24, 32, 1, dropout=0.0).eval()
    X, lengths = torch.randn(4, 7, 24), torch.tensor([7, 3, 5, 1])
    with torch.no_grad():
        expected = module(X, lengths)
        module.quantize_int8_()
        got = module(X, lengths)
    layer = module._fused_layers()[0]
    assert layer.int8 is not None and "quantized" in type(layer.int8[0]).__module__
    assert not torch.equal(got, expected)  # it really ran in int8
    assert torch.allclose(got, expected, atol=0.05)


def test_predictions_between_updates_follow_the_training():
    """As spaCy's training loop evaluates (no averages): predict, update,
    predict. Each prediction is that of the weights of the moment, as a
    freshly loaded copy gives."""
    nlp = blank_with_tagger()
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.02
    texts = [text for text, _ in TRAIN_DATA]
    for _ in range(3):
        for _ in range(3):
            nlp.update(examples, sgd=optimizer)
        fresh = spacy.util.load_model_from_config(nlp.config, auto_fill=False).from_bytes(nlp.to_bytes())
        assert [ents_of(doc) for doc in nlp.pipe(texts)] == [ents_of(doc) for doc in fresh.pipe(texts)]
        tagger, fresh_tagger = nlp.get_pipe("lexner_tagger"), fresh.get_pipe("lexner_tagger")
        lattice = tagger._lattice(texts)
        ours = tagger.model.predict(lattice)
        theirs = fresh_tagger.model.predict(fresh_tagger._lattice(texts))
        tags = ours.decode(None)
        assert numpy.array_equal(tags, theirs.decode(None))
        # scores, not only the best paths: stale weights would change them
        assert numpy.allclose(ours.log_likelihood(tags), theirs.log_likelihood(tags), atol=1e-4)


def test_quantize_off_the_cpu_predicts_in_float_with_one_warning():
    """weibo.cfg ships quantize = true; on a GPU (here torch's meta device,
    which is not the CPU either) the shim keeps the float module and warns once."""
    import warnings

    from spacy_lexner.util.torch_utils import make_shim

    shim = make_shim(torch.nn.Linear(2, 2))
    shim._model = torch.nn.Linear(2, 2, device="meta")  # the shim's device is its parameters'
    assert shim.device.type == "meta"
    with pytest.warns(UserWarning, match="int8 on the CPU only"):
        shim.set_quantized(True)
    assert shim.quantize is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shim.set_quantized(True)  # no second warning
    assert shim._inference_module() is shim._model
