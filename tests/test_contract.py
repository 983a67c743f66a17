"""The model contract (spacy_lexner/models/types.py): one lattice per batch,
models that return TagScores, decoders as architectures, and pipes that use
nothing else."""

import re
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from thinc.api import fix_random_seed
from torchcrf import CRF

from spacy_lexner.lexicon import Lattice, Lexicon
from spacy_lexner.models.decoders import CRFScores, SoftmaxScores, _potentials_log_likelihood
from spacy_lexner.models.pytorch.crf import ConstrainedCRF
from spacy_lexner.models.types import TagScores
from spacy_lexner.util.tags import TagScheme

from .util import TRAIN_DATA, ents_of, make_examples, reloaded, small_model, train_nlp

PIPELINE = Path(__file__).resolve().parent.parent / "spacy_lexner" / "pipeline"
TEXTS = [t for t, _ in TRAIN_DATA] + ["", "  ", "😀 iPhone12在Apple Store卖3999元", "张三在北京大学工作。" * 40]


def v2_model(decoder: str = "spacy-lexner.CRFDecoder.v1", scheme: str = "BIOES") -> dict:
    legacy = small_model()
    return {
        "@architectures": "spacy-lexner.LexiconTagger.v2",
        "embed": legacy["embed"],
        "encoder": legacy["encoder"],
        "decoder": {"@architectures": decoder, "scheme": scheme},
    }


def test_pipes_use_only_the_contract():
    """The pipes never reach into a model's layers: no refs, shims or attrs."""
    found = []
    for path in sorted(PIPELINE.glob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf8").splitlines(), 1):
            if re.search(r"get_ref\(|\.shims\b|attrs\[", line):
                found.append(f"{path.name}:{lineno}: {line.strip()}")
    assert not found, "\n".join(found)


def test_lattice_holds_each_match_once_with_its_source():
    lexicon = Lexicon([("南京", 5.0, "ns"), ("南京市", 2.0, None), ("长江大桥", 3.0, "ns")])
    lattice = Lattice.build(["南京市长江大桥", "", "长江"], lexicon, doc_index=[0, 0, 1], window_start=[0, 7, 0])
    assert list(lattice.lengths) == [7, 0, 2]
    assert list(lattice.doc_index) == [0, 0, 1] and list(lattice.window_start) == [0, 7, 0]
    triples = list(
        zip(lattice.word_text.tolist(), lattice.word_start.tolist(), lattice.word_end.tolist(), lattice.words)
    )
    assert triples == [(0, 0, 2, "南京"), (0, 0, 3, "南京市"), (0, 3, 7, "长江大桥")]
    assert list(lattice.n_words) == [3, 0, 0]
    assert lattice.word_freqs.tolist() == [5.0, 2.0, 3.0]
    # Same type and length, same type key; the key is the word's hash.
    other = Lattice.build(["上海路"], Lexicon([("上海", 1.0, "ns")]))
    assert other.word_type_keys[0] == lattice.word_type_keys[0]
    assert lattice.word_keys[0] == spacy.strings.hash_string("南京")
    # Each text's matches are the lexicon's own.
    assert [lexicon.match(t) for t in ["南京市长江大桥"]] == [[(s, e, w) for _, s, e, w in triples]]


def test_lattice_without_lexicon_and_bad_sources():
    lattice = Lattice.build(["abc"], None)
    assert len(lattice.word_start) == 0 and lattice.words == [] and list(lattice.lengths) == [3]
    with pytest.raises(ValueError, match="doc_index must have one value per text"):
        Lattice.build(["a", "b"], None, doc_index=[0])


def test_a_changed_lexicon_gives_a_new_word_table():
    """Lattices read the automaton of the lexicon's current words: there is no
    cache that could outlive a change (or be shared by another lexicon)."""
    lexicon = Lexicon([("北京", 1.0, None)])
    first = Lattice.build(["北京大学"], lexicon)
    lexicon.add("北京大学", 9.0, "nt")
    second = Lattice.build(["北京大学"], lexicon)
    assert first.words == ["北京"] and second.words == ["北京", "北京大学"]
    assert second.word_freqs.tolist() == [1.0, 9.0]
    assert first.word_table is not second.word_table


@pytest.mark.parametrize("decoder", ["spacy-lexner.CRFDecoder.v1", "spacy-lexner.SoftmaxDecoder.v1"])
def test_v2_tagger_overfits_and_round_trips(decoder, tmp_path):
    fix_random_seed(0)
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": v2_model(decoder)})
    train_nlp(nlp, make_examples(nlp), n_iter=40)
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    expected = [ents_of(nlp(t)) for t in TEXTS]
    for other in reloaded(nlp, tmp_path / "nlp"):
        assert [ents_of(other(t)) for t in TEXTS] == expected
        assert [ents_of(d) for d in other.pipe(TEXTS, batch_size=2)] == expected


def test_v1_and_v2_train_and_predict_alike():
    """The same embed and encoder with LexiconTagger.v1 (decoder "crf") and
    LexiconTagger.v2 (CRFDecoder.v1): same initialisation, same losses."""
    results = []
    for model in (small_model(), v2_model()):
        fix_random_seed(0)
        nlp = spacy.blank("zh")
        nlp.add_pipe("lexner_tagger", config={"model": model})
        examples = make_examples(nlp)
        optimizer = nlp.initialize(lambda: examples)
        losses = [nlp.update(examples, sgd=optimizer, losses={})["lexner_tagger"] for _ in range(3)]
        results.append((losses, [ents_of(nlp(t)) for t in TEXTS]))
    assert results[0] == results[1]


def test_default_factory_model_is_v2_with_a_crf_decoder():
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger")
    model_config = nlp.config["components"]["lexner_tagger"]["model"]
    assert model_config["@architectures"] == "spacy-lexner.LexiconTagger.v2"
    assert model_config["decoder"]["@architectures"] == "spacy-lexner.CRFDecoder.v1"


def test_decoder_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="Unknown tag scheme"):
        spacy.registry.resolve({"d": {"@architectures": "spacy-lexner.CRFDecoder.v1", "scheme": "BILOU"}})


@pytest.fixture(scope="module")
def trained_v2():
    fix_random_seed(0)
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": v2_model()})
    return train_nlp(nlp, make_examples(nlp), n_iter=20)


def test_tag_scores_decode_keeps_fixed_spans(trained_v2):
    tagger = trained_v2.get_pipe("lexner_tagger")
    scores = tagger.model.predict(Lattice.build(["张三在北京大学工作。"], tagger.lexicon))
    assert isinstance(scores, TagScores) and scores.is_finite()
    fixed = [[(3, 5, "LOC")]]
    path = scores.decode(fixed)[0]
    assert (3, 5, "LOC") in tagger.tag_scheme.decode(path[:10])


def test_crf_log_likelihood_is_minus_the_loss_per_sequence(trained_v2):
    tagger = trained_v2.get_pipe("lexner_tagger")
    lattice = Lattice.build(["张三在北京大学工作。", "李四", ""], tagger.lexicon)
    scores = tagger.model.predict(lattice)
    assert isinstance(scores, CRFScores)
    gold = [tagger.tag_scheme.encode(n, []) for n in lattice.lengths]
    log_likelihood = scores.log_likelihood(gold)
    assert log_likelihood[2] == 0.0 and (log_likelihood[:2] < 0).all()
    loss, _ = scores.loss(gold)
    # loss is the mean NLL over the 3 sequences (the empty one adds nothing).
    assert float(-log_likelihood.sum() / 3) == pytest.approx(loss, rel=1e-4)


def test_forward_algorithm_matches_pytorch_crf():
    """The averaged-potentials log-likelihood (ensembles) equals pytorch-crf's
    for a single CRF."""
    scheme = TagScheme(["A", "B"])
    constraints = [
        torch.from_numpy(a) for a in (scheme.allowed_transitions(), scheme.allowed_starts(), scheme.allowed_ends())
    ]
    torch.manual_seed(0)
    crf = ConstrainedCRF(len(scheme), *constraints)
    emissions = torch.randn(3, 6, len(scheme))
    mask = torch.arange(6)[None, :] < torch.tensor([6, 4, 1])[:, None]
    tags = torch.from_numpy(
        numpy.stack([scheme.encode(6, [(0, 2, "A")]), scheme.encode(6, [(1, 4, "B")]), scheme.encode(6, [])])
    )
    expected = CRF.forward(crf, emissions, tags, mask=mask, reduction="none")
    with torch.no_grad():
        torch.testing.assert_close(
            _potentials_log_likelihood(crf, emissions, tags, mask), expected, rtol=1e-4, atol=1e-4
        )


def test_softmax_scores_log_likelihood():
    emissions = numpy.log(numpy.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]], dtype="float32"))
    scores = SoftmaxScores(
        emissions,
        numpy.array([2]),
        crf=spacy.registry.resolve({"d": {"@architectures": "spacy-lexner.SoftmaxDecoder.v1"}})["d"].get_ref("crf"),
    )
    assert scores.log_likelihood([numpy.array([0, 1])])[0] == pytest.approx(numpy.log(0.5 * 0.8), rel=1e-5)


def test_deprecated_alias_warns():
    crf = ConstrainedCRF(3)
    emissions, tags, mask = (
        torch.randn(1, 2, 3),
        torch.zeros(1, 2, dtype=torch.long),
        torch.ones(1, 2, dtype=torch.bool),
    )
    with pytest.warns(DeprecationWarning, match="neg_log_likelihood is deprecated"):
        assert torch.equal(crf.neg_log_likelihood(emissions, tags, mask), crf(emissions, tags, mask))
