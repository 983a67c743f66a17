"""spacy-lexner.LexiconTaggerEnsemble.v2: members trained together that also
learn from each other (codistillation), and prediction by the first member."""

import numpy
import pytest
import spacy
from thinc.api import fix_random_seed

from spacy_lexner.lexicon import Lattice
from spacy_lexner.models.ensemble import EnsembleScores, MemberScores

from .util import TRAIN_DATA, ents_of, make_examples, reloaded, small_model, train_nlp

TEXTS = [t for t, _ in TRAIN_DATA] + [
    "张三在上海。",
    "",
    "  ",
    "😀🇨🇳👨‍👩‍👧",
    "iPhone12在Apple Store卖3999元",
    "北京" * 300,
]


def codistilled(n_members: int = 2, distill_weight: float = 1.0, predict_with: str = "first", **kwargs):
    config = small_model(**kwargs)
    config.update(
        {
            "@architectures": "spacy-lexner.LexiconTaggerEnsemble.v2",
            "n_members": n_members,
            "distill_weight": distill_weight,
            "predict_with": predict_with,
        }
    )
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": config})
    return nlp


def _lattice(nlp, texts):
    return Lattice.build(texts, nlp.get_pipe("lexner_tagger").lexicon)


@pytest.fixture(scope="module")
def trained():
    fix_random_seed(0)
    nlp = codistilled()
    return train_nlp(nlp, make_examples(nlp))


def test_overfit_round_trip(trained, tmp_path):
    for text, ents in TRAIN_DATA:
        assert ents_of(trained(text)) == ents
    expected = [ents_of(trained(t)) for t in TEXTS]
    assert [ents_of(d) for d in trained.pipe(TEXTS, batch_size=2)] == expected
    for other in reloaded(trained, tmp_path / "nlp"):
        assert [ents_of(other(t)) for t in TEXTS] == expected


def test_first_member_predicts_alone(trained):
    model = trained.get_pipe("lexner_tagger").model
    lattice = _lattice(trained, [t for t, _ in TRAIN_DATA])
    scores = model.predict(lattice)
    assert isinstance(scores, MemberScores)
    (first_emissions, _), _ = model.layers[0](lattice, is_train=False)
    numpy.testing.assert_allclose(scores.emissions, first_emissions)
    model.attrs["predict_with"] = "mean"
    try:
        mean_scores = model.predict(lattice)
    finally:
        model.attrs["predict_with"] = "first"
    assert isinstance(mean_scores, EnsembleScores)
    assert not numpy.allclose(mean_scores.emissions, first_emissions)


def _reference_distill(member_emissions, lengths):
    """A loop over members, sequences and positions of sum KL(q || p)."""
    n = len(member_emissions)
    total_kl, grads = 0.0, []
    for i, em in enumerate(member_emissions):
        others = sum(member_emissions[j] for j in range(n) if j != i) / (n - 1)
        grad = numpy.zeros_like(em)
        for s, length in enumerate(lengths):
            for t in range(length):
                p = numpy.exp(em[s, t] - em[s, t].max())
                p /= p.sum()
                q = numpy.exp(others[s, t] - others[s, t].max())
                q /= q.sum()
                total_kl += float((q * (numpy.log(q) - numpy.log(p))).sum())
                grad[s, t] = p - q
        grads.append(grad / len(lengths))
    return total_kl / (len(lengths) * n), numpy.concatenate(grads, axis=0)


def test_distillation_loss_and_gradient_match_a_reference(trained):
    model = trained.get_pipe("lexner_tagger").model
    rng = numpy.random.default_rng(0)
    lengths = numpy.array([4, 0, 2], dtype="int32")
    member_emissions = [rng.normal(size=(3, 4, 5)).astype("float32") for _ in range(3)]
    scores = EnsembleScores(model, member_emissions, lengths)
    kl, grad = scores._distill_loss(numpy.concatenate(member_emissions, axis=0), numpy.concatenate([lengths] * 3))
    ref_kl, ref_grad = _reference_distill(member_emissions, lengths)
    assert kl > 0
    numpy.testing.assert_allclose(kl, ref_kl, rtol=1e-4)
    numpy.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)
    # Members that agree owe nothing.
    same = [member_emissions[0]] * 3
    kl, grad = EnsembleScores(model, same, lengths)._distill_loss(
        numpy.concatenate(same, axis=0), numpy.concatenate([lengths] * 3)
    )
    assert abs(kl) < 1e-6 and numpy.abs(grad).max() < 1e-6


def _members_disagreement(nlp) -> float:
    model = nlp.get_pipe("lexner_tagger").model
    lattice = _lattice(nlp, [t for t, _ in TRAIN_DATA])
    probs = []
    for member in model.layers[:-1]:
        (emissions, _), _ = member(lattice, is_train=False)
        e = numpy.exp(emissions - emissions.max(axis=-1, keepdims=True))
        probs.append(e / e.sum(axis=-1, keepdims=True))
    return float(numpy.abs(probs[0] - probs[1]).sum())


def test_distillation_makes_members_agree():
    results = {}
    for weight in (0.0, 2.0):
        fix_random_seed(0)
        nlp = codistilled(distill_weight=weight, predict_with="mean")
        train_nlp(nlp, make_examples(nlp), n_iter=25)
        results[weight] = _members_disagreement(nlp)
    assert results[2.0] < 0.7 * results[0.0]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"predict_with": "last"}, "predict_with must be one of"),
        ({"distill_weight": -1.0}, "distill_weight must be 0 or more"),
        ({"n_members": 1}, "needs n_members of 2 or more"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        codistilled(**kwargs)


def test_first_member_scores_refuse_training(trained):
    model = trained.get_pipe("lexner_tagger").model
    scores = model.predict(_lattice(trained, ["张三在上海。"]))
    with pytest.raises(ValueError, match="for prediction"):
        scores.loss([numpy.zeros(6, dtype="int64")])
