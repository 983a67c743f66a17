"""spacy-lexner.LexiconTaggerEnsemble.v1: members trained on their own
losses, decoded together over averaged CRF potentials."""

import numpy
import pytest
import spacy
import torch
from spacy.cli.train import train
from thinc.api import fix_random_seed

from spacy_lexner.lexicon import Lattice
from spacy_lexner.models.decoders import crf_gold_loss
from spacy_lexner.models.embed import build_soft_lexicon_embed
from spacy_lexner.models.ensemble import copy_with_refs
from spacy_lexner.models.pretrained import load_pretrained_vectors
from spacy_lexner.models.pytorch.crf import CRFEnsemble, viterbi_decode
from spacy_lexner.util.tags import TagScheme

from .test_configs import write_docbin
from .test_crf import is_valid
from .test_pretrained import write_vectors
from .util import REPO_ROOT, TRAIN_DATA, ents_of, make_examples, pipe_with_spawn, reloaded, small_model, train_nlp

TEXTS = [t for t, _ in TRAIN_DATA] + ["张三在上海。", "", "  ", "😀🇨🇳👨‍👩‍👧", "iPhone12在Apple Store卖3999元"]


def ensemble_model(n_members: int = 2, decoder: str = "crf") -> dict:
    config = small_model(decoder=decoder)
    config["@architectures"] = "spacy-lexner.LexiconTaggerEnsemble.v1"
    config["n_members"] = n_members
    return config


def blank_with_ensemble(**kwargs) -> spacy.language.Language:
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": ensemble_model(**kwargs)})
    return nlp


def members(nlp):
    return nlp.get_pipe("lexner_tagger").model.layers[:-1]


def lattice(nlp, texts):
    return Lattice.build(texts, nlp.get_pipe("lexner_tagger").lexicon)


@pytest.fixture(scope="module", params=["crf", "softmax"])
def trained(request):
    fix_random_seed(0)
    nlp = blank_with_ensemble(decoder=request.param)
    return train_nlp(nlp, make_examples(nlp))


def test_overfit_round_trip(trained, tmp_path):
    for text, ents in TRAIN_DATA:
        assert ents_of(trained(text)) == ents
    expected = [ents_of(trained(t)) for t in TEXTS]
    for other in reloaded(trained, tmp_path / "nlp"):
        assert [ents_of(other(t)) for t in TEXTS] == expected
        for batch_size in (1, 3, 1000):
            assert [ents_of(d) for d in other.pipe(TEXTS, batch_size=batch_size)] == expected


def test_long_doc(trained):
    sentence = "张三在北京大学工作。"
    doc = trained(sentence * 10_000)
    assert len(doc.ents) == 10_000 * len(trained(sentence).ents)


def test_members_have_their_own_weights(trained):
    first, second = members(trained)
    assert first.layers[1] is not second.layers[1]
    weights = [m.layers[0].layers[0].shims[0]._model.char.weight for m in (first, second)]
    assert not torch.equal(*weights)


def test_prediction_averages_the_members(trained):
    model = trained.get_pipe("lexner_tagger").model
    batch = lattice(trained, TEXTS[:4])
    scores = model.predict(batch)
    alone = [member.predict(batch)[0] for member in members(trained)]
    numpy.testing.assert_allclose(scores.emissions, (alone[0] + alone[1]) / 2, rtol=1e-5, atol=1e-6)
    assert list(scores.lengths) == [len(t) for t in TEXTS[:4]]


def test_members_share_one_featurization(trained, monkeypatch):
    """Members built from one embed config read the same features: the
    hashing runs once per batch, in prediction and in training (the lexicon
    matching runs once anyway: the pipe builds one lattice)."""
    from spacy_lexner.models.features import Featurizer

    calls = []
    original = Featurizer.__call__
    monkeypatch.setattr(Featurizer, "__call__", lambda self, *args: calls.append(1) or original(self, *args))
    model = trained.get_pipe("lexner_tagger").model
    docs = lattice(trained, TEXTS[:4])
    model.predict(docs)
    assert len(calls) == 1
    model.begin_update(docs)
    assert len(calls) == 2
    # Members whose featurizers differ each featurize for themselves.
    members(trained)[1].layers[0].attrs["featurizer"].weighting = "log"
    try:
        model.predict(docs)
        assert len(calls) == 4
    finally:
        members(trained)[1].layers[0].attrs["featurizer"].weighting = "frequency"


def test_training_scores_stack_members_and_each_gets_its_own_gradient():
    fix_random_seed(0)
    nlp = blank_with_ensemble()
    nlp.initialize(lambda: make_examples(nlp))
    tagger = nlp.get_pipe("lexner_tagger")
    docs, gold = tagger._training_batch(make_examples(nlp))
    output, _ = tagger.model.begin_update(docs)
    # The loss scores each member's emissions, stacked, with its own CRF.
    scores = numpy.concatenate(output.member_emissions)
    lengths = numpy.concatenate([output.lengths] * 2)
    assert scores.shape[0] == 2 * len(docs) and list(output.lengths) == [len(t) for t in docs.texts]
    loss, d_scores = output.loss(gold)
    assert d_scores.shape == scores.shape
    crf = tagger.model.get_ref("crf").shims[0]._model
    half = len(docs)
    for i, member_crf in enumerate(crf.members):
        # What the member's gradient would be if it were trained alone.
        em = torch.tensor(numpy.asarray(scores[i * half : (i + 1) * half]), requires_grad=True)
        tags = torch.tensor(numpy.stack([numpy.pad(g, (0, em.shape[1] - len(g))) for g in gold]))
        mask = torch.arange(em.shape[1])[None, :] < torch.tensor(list(lengths[:half]))[:, None]
        (member_crf(em, tags, mask) / half).backward()
        numpy.testing.assert_allclose(d_scores[i * half : (i + 1) * half], em.grad.numpy(), rtol=1e-4, atol=1e-6)
    solo_losses, _ = crf_gold_loss(tagger.model.get_ref("crf"), scores, lengths, gold * 2)
    assert loss == pytest.approx(solo_losses * 2)


def test_crf_ensemble_decodes_averaged_potentials():
    scheme = TagScheme(["A", "B"])
    constraints = [
        torch.from_numpy(a) for a in (scheme.allowed_transitions(), scheme.allowed_starts(), scheme.allowed_ends())
    ]
    torch.manual_seed(0)
    crf = CRFEnsemble(3, len(scheme), *constraints)
    with torch.no_grad():
        for param in crf.parameters():
            param.uniform_(-5, 5)
    emissions = torch.randn(4, 7, len(scheme)) * 3
    mask = torch.arange(7)[None, :] < torch.tensor([7, 5, 1, 3])[:, None]
    mean = {
        name: sum(getattr(m, name) for m in crf.members) / 3
        for name in ("start_transitions", "transitions", "end_transitions")
    }
    expected = viterbi_decode(emissions, mask, mean["start_transitions"], mean["transitions"], mean["end_transitions"])
    paths = crf.viterbi(emissions, mask)
    assert torch.equal(paths, expected)
    for path, length in zip(paths.tolist(), (7, 5, 1, 3)):
        assert is_valid(scheme, path[:length])


def test_crf_ensemble_loss_is_the_members_losses_on_their_slices():
    scheme = TagScheme(["A"])
    crf = CRFEnsemble(2, len(scheme))
    emissions = torch.randn(6, 4, len(scheme))
    tags = torch.zeros(6, 4, dtype=torch.long)
    mask = torch.ones(6, 4, dtype=torch.bool)
    expected = crf.members[0](emissions[:3], tags[:3], mask[:3]) + crf.members[1](emissions[3:], tags[3:], mask[3:])
    assert torch.allclose(crf(emissions, tags, mask), expected)
    with pytest.raises(ValueError, match="2-member CRF ensemble got 5 sequences"):
        crf(emissions[:5], tags[:5], mask[:5])


def test_copy_with_refs_points_into_the_copy():
    embed = build_soft_lexicon_embed(char_width=8, bigram_width=8, word_width=8, type_width=4)
    parent = spacy.registry.resolve({"m": ensemble_model()})["m"]
    copied = copy_with_refs(parent)
    copied_nodes = {id(node) for node in copied.walk()}
    assert all(id(copied.get_ref(name)) in copied_nodes for name in copied.ref_names)
    assert copied.get_ref("crf") is not parent.get_ref("crf")
    assert copy_with_refs(embed).layers[0] is not embed.layers[0]


def test_copying_an_initialized_model_is_an_error():
    nlp = blank_with_ensemble()
    nlp.initialize(lambda: make_examples(nlp))
    with pytest.raises(ValueError, match="before initialization"):
        copy_with_refs(members(nlp)[0])


def test_listener_embed_is_a_clear_error():
    config = ensemble_model()
    config["embed"] = {
        "@architectures": "spacy-lexner.TokenVectorSoftLexiconEmbed.v1",
        "tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"},
        "lexicon_embed": small_model()["embed"],
    }
    with pytest.raises(ValueError, match="cannot copy an embed that listens"):
        spacy.registry.resolve({"m": config})


def test_bad_n_members():
    with pytest.raises(ValueError, match="n_members must be at least 1"):
        spacy.registry.resolve({"m": ensemble_model(n_members=0)})


def test_pretrained_vectors_reach_every_member(tmp_path):
    nlp = blank_with_ensemble()
    nlp.initialize(lambda: make_examples(nlp))
    load_pretrained_vectors(nlp.get_pipe("lexner_tagger").model, write_vectors(tmp_path / "v.npz"))
    tables = [m.layers[0].layers[0].shims[0]._model.char.weight.detach() for m in members(nlp)]
    featurizer = members(nlp)[0].layers[0].attrs["featurizer"]
    rows = featurizer(Lattice.build(["张"], None)).char_rows[0]
    assert torch.allclose(tables[0][rows].sum(0), tables[1][rows].sum(0))


def test_spacy_train_with_ensemble_config(tmp_path):
    data = write_docbin(tmp_path / "train.spacy")
    overrides = {
        "paths.train": str(data),
        "paths.dev": str(data),
        "training.max_steps": 4,
        "training.eval_frequency": 2,
        "components.lexner_tagger.model": ensemble_model(),
    }
    train(REPO_ROOT / "configs" / "resume.cfg", tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-best")
    assert nlp.get_pipe("lexner_tagger").model.name == "lexner_tagger_ensemble"
    assert len(members(nlp)) == 2
    nlp("张三在北京大学工作。")


def _member_scorer_grads(model, docs):
    scores, backprop = model.begin_update(docs)
    # The training gradient is the members' stacked (see EnsembleScores.loss).
    stacked = numpy.concatenate(scores.member_emissions)
    backprop(model.ops.alloc3f(*stacked.shape) + 1.0)
    grads = []
    for member in model.layers[:-1]:
        weight = next(member.layers[2].shims[0]._model.parameters())
        grads.append(weight.grad.detach().clone())
        weight.grad = None
    return grads


def test_online_bagging_weighs_each_members_gradient_by_a_poisson_draw():
    config = ensemble_model()
    config["embed"].update(dropout=0.0, word_dropout=0.0)
    config["encoder"]["dropout"] = 0.0
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": config})
    nlp.initialize(lambda: make_examples(nlp))
    model = nlp.get_pipe("lexner_tagger").model
    docs = lattice(nlp, [TRAIN_DATA[0][0]])
    model.attrs["bagging"] = False
    plain = _member_scorer_grads(model, docs)
    model.attrs["bagging"] = True
    numpy.random.seed(0)
    ratios = []
    for _ in range(20):
        for grad, reference in zip(_member_scorer_grads(model, docs), plain):
            ratio = float((grad * reference).sum() / (reference * reference).sum())
            assert ratio == pytest.approx(round(ratio), abs=1e-4) and ratio >= 0
            torch.testing.assert_close(grad, reference * round(ratio), rtol=1e-4, atol=1e-6)
            ratios.append(round(ratio))
    assert 0 in ratios and len(set(ratios)) > 2


def test_spawned_processes_give_the_same_ents(trained, tmp_path):
    """With spawn (macOS, Windows) each child unpickles the ensemble."""
    trained.to_disk(tmp_path / "nlp")
    nlp = spacy.load(tmp_path / "nlp")
    expected = [ents_of(nlp(t)) for t in TEXTS]
    assert [ents_of(d) for d in pipe_with_spawn(nlp, TEXTS)] == expected
