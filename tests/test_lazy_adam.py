"""Lazy (row-sparse) Adam for the hashed embedding tables: the same update as
thinc's Adam on the rows a batch touches, nothing on the others."""

import numpy
import pytest
import spacy
import torch
from thinc.api import SGD, Adam, RAdam

from spacy_lexner.models.pytorch.soft_lexicon import SoftLexiconEmbedding
from spacy_lexner.util.lazy_adam import sparse_adam_step
from spacy_lexner.util.torch_utils import make_shim

from .util import TRAIN_DATA, ents_of, make_examples, small_model, train_nlp

KEY = (1, "weight")


def _sparse_grad(table: torch.Tensor, rows, scale: float = 1.0) -> torch.Tensor:
    weight = table.clone().requires_grad_(True)
    embedding = torch.nn.functional.embedding(torch.tensor(rows), weight, sparse=True)
    (embedding * scale * torch.arange(1, embedding.shape[1] + 1)).sum().backward()
    return weight.grad


@pytest.mark.parametrize("grad_clip", [0.0, 1.0])
def test_first_step_equals_thinc_dense_adam(grad_clip):
    """With zero moments, dense Adam leaves untouched rows where they are,
    so one lazy step must equal one dense step everywhere (clipping included:
    the norm of the touched rows is the norm of the dense gradient)."""
    table = torch.randn(10, 4)
    grad = _sparse_grad(table, [1, 3, 3, 7], scale=5.0)
    dense_optimizer = Adam(0.01, grad_clip=grad_clip, use_averages=False)
    dense = table.numpy().copy()
    dense, _ = dense_optimizer(KEY, dense, grad.to_dense().numpy().copy())
    lazy = table.clone()
    sparse_adam_step(Adam(0.01, grad_clip=grad_clip, use_averages=False), KEY, lazy, grad)
    numpy.testing.assert_allclose(lazy.numpy(), dense, rtol=1e-5, atol=1e-7)
    untouched = [0, 2, 4, 5, 6, 8, 9]
    assert torch.equal(lazy[untouched], table[untouched])


def test_later_steps_follow_adam_on_touched_rows_only():
    """A numpy reference of lazy Adam over three steps with different rows."""
    table = torch.randn(6, 3)
    optimizer = Adam(0.05, grad_clip=0.0, use_averages=False, beta1=0.9, beta2=0.999, eps=1e-8)
    param = table.clone()
    ref, m, v = table.numpy().astype("float64"), numpy.zeros((6, 3)), numpy.zeros((6, 3))
    for step, rows in enumerate([[0, 1], [1, 2], [0, 5]], start=1):
        grad = _sparse_grad(param, rows)
        sparse_adam_step(optimizer, KEY, param, grad)
        g = grad.to_dense().numpy()
        touched = sorted(set(rows))
        m[touched] = 0.9 * m[touched] + 0.1 * g[touched]
        v[touched] = 0.999 * v[touched] + 0.001 * g[touched] ** 2
        rate = 0.05 * numpy.sqrt(1 - 0.999**step) / (1 - 0.9**step)
        ref[touched] -= rate * m[touched] / (numpy.sqrt(v[touched]) + 1e-8)
    numpy.testing.assert_allclose(param.numpy(), ref, rtol=1e-5)
    assert torch.equal(param[[3, 4]], table[[3, 4]])


def test_averages_start_from_the_weights_and_share_memory():
    table = torch.randn(8, 2)
    optimizer = Adam(0.01, use_averages=True)
    param = table.clone()
    sparse_adam_step(optimizer, KEY, param, _sparse_grad(param, [2]))
    averages = optimizer.averages[KEY]
    # Untouched rows average to their (unchanged) weights, not to zero.
    numpy.testing.assert_array_equal(averages[[0, 1, 3]], table.numpy()[[0, 1, 3]])
    decay = 2.0 / 11.0
    expected = table.numpy()[2] - (1 - decay) * (table.numpy()[2] - param.numpy()[2])
    numpy.testing.assert_allclose(averages[2], expected, rtol=1e-6)
    sparse_adam_step(optimizer, KEY, param, _sparse_grad(param, [2]))
    assert optimizer.averages[KEY] is averages  # updated in place, where use_params reads it
    assert not numpy.allclose(averages[2], expected)


def test_embedding_tables_get_sparse_gradients_only_when_asked():
    for sparse in (False, True):
        module = SoftLexiconEmbedding(
            n_char_rows=16,
            char_width=4,
            n_bigram_rows=16,
            bigram_width=4,
            n_word_rows=16,
            word_width=4,
            n_type_rows=8,
            type_width=2,
            dropout=0.0,
            sparse_updates=sparse,
        )
        assert {module.char.sparse, module.bigram.sparse, module.word.sparse, module.word_type.sparse} == {sparse}


def test_shim_steps_only_touched_rows():
    module = torch.nn.Embedding(20, 3, sparse=True)
    shim = make_shim(module)
    before = module.weight.detach().clone()
    module(torch.tensor([4, 9])).sum().backward()
    shim.finish_update(Adam(0.1))
    changed = (module.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [4, 9]
    assert module.weight.grad is None


@pytest.mark.parametrize("embed", ["spacy-lexner.SoftLexiconEmbed.v1", "spacy-lexner.SoftLexiconEmbed.v2"])
def test_dense_v1_and_sparse_v2_both_overfit(embed):
    config = small_model()
    config["embed"]["@architectures"] = embed
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": config})
    train_nlp(nlp, make_examples(nlp), n_iter=60)
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    shim_grads = [
        param.grad
        for node in nlp.get_pipe("lexner_tagger").model.walk()
        for shim in node.shims
        for param in shim._model.parameters()
        if param.grad is not None and param.grad.is_sparse
    ]
    assert shim_grads == []  # sparse grads are cleared after each step


@pytest.mark.parametrize("make_optimizer", [lambda: SGD(0.01), lambda: RAdam(0.01)], ids=["sgd", "radam"])
def test_optimizers_it_does_not_implement_are_refused(make_optimizer):
    """An SGD or RAdam config must not silently get an Adam step on the
    embedding rows: the step refuses, naming the fix, and leaves the table."""
    table = torch.randn(10, 4)
    before = table.clone()
    grad = _sparse_grad(table, [1, 3])
    with pytest.raises(ValueError, match="sparse_updates = false"):
        sparse_adam_step(make_optimizer(), KEY, table, grad)
    assert torch.equal(table, before)


def test_sgd_config_with_sparse_updates_fails_on_first_update():
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": small_model()})
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match="implement Adam only"):
        nlp.update(examples, sgd=SGD(0.01))


@pytest.mark.parametrize("first_step", [0, 89985])
def test_averages_equal_dense_averaging_of_the_same_weights(first_step):
    """Dense averaging pulls every row towards its weights at every step; the
    lazy average of a row untouched for a while must have been pulled as far
    once flushed, also across thinc's decay cap (step 89,990)."""
    from spacy_lexner.util.lazy_adam import flush_averages

    table = torch.randn(7, 3)
    optimizer = Adam(0.05, use_averages=True)
    optimizer.nr_update[KEY] = first_step
    param = table.clone()
    reference = table.numpy().astype("float64")
    for rows in ([0, 1], [1], [2, 3], [1], [4], [0], [1], [5], [1, 2], [1]):
        sparse_adam_step(optimizer, KEY, param, _sparse_grad(param, rows))
        step = optimizer.nr_update[KEY]
        decay = min((1.0 + step) / (10.0 + step), 0.9999)
        reference -= (1.0 - decay) * (reference - param.numpy())
    touched_once = optimizer.averages[KEY][[3, 4]].copy()
    flush_averages(optimizer.averages, KEY, param)
    numpy.testing.assert_allclose(optimizer.averages[KEY], reference, rtol=1e-5, atol=1e-6)
    if first_step == 0:
        # Before the flush those rows still owed several decays.
        assert not numpy.allclose(touched_once, reference[[3, 4]], atol=1e-4)
    flush_averages(optimizer.averages, KEY, param)  # nothing more is owed
    numpy.testing.assert_allclose(optimizer.averages[KEY], reference, rtol=1e-5, atol=1e-6)


def test_use_params_evaluates_with_the_flushed_averages():
    module = torch.nn.Embedding(6, 2, sparse=True)
    shim = make_shim(module)
    optimizer = Adam(0.1, use_averages=True)
    for rows in ([0, 1], [1], [1], [1]):
        module(torch.tensor(rows)).sum().backward()
        shim.finish_update(optimizer)
    weights = module.weight.detach().clone()
    key = next(k for k in optimizer.averages if len(k) == 2)
    unflushed_gap = numpy.abs(optimizer.averages[key][0] - weights[0].numpy()).sum()
    with shim.use_params(optimizer.averages):
        averaged = module.weight.detach().clone()
    assert torch.equal(module.weight.detach(), weights)  # restored afterwards
    numpy.testing.assert_allclose(averaged.numpy(), optimizer.averages[key], rtol=1e-6)
    # Row 0, touched at step 1 only, has been pulled towards its weights since.
    assert float((averaged[0] - weights[0]).abs().sum()) < 0.5 * unflushed_gap
