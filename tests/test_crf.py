import numpy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_lexner.models.decoders import build_crf_layer, crf_decode, crf_loss, masked_decode, set_crf_labels
from spacy_lexner.models.pytorch.crf import ConstrainedCRF
from spacy_lexner.util.tags import TagScheme


def make_crf(scheme: TagScheme) -> ConstrainedCRF:
    return ConstrainedCRF(
        len(scheme),
        torch.from_numpy(scheme.allowed_transitions()),
        torch.from_numpy(scheme.allowed_starts()),
        torch.from_numpy(scheme.allowed_ends()),
    )


def is_valid(scheme: TagScheme, path) -> bool:
    allowed = scheme.allowed_transitions()
    if not path:
        return True
    if not scheme.allowed_starts()[path[0]] or not scheme.allowed_ends()[path[-1]]:
        return False
    return all(allowed[a, b] for a, b in zip(path, path[1:]))


def test_bioes_transitions():
    scheme = TagScheme(["LOC", "PER"])
    allowed = scheme.allowed_transitions()
    t = scheme.tag_to_id
    assert allowed[t["B-PER"], t["I-PER"]] and allowed[t["B-PER"], t["E-PER"]]
    assert not allowed[t["B-PER"], t["E-LOC"]]
    assert not allowed[t["O"], t["I-PER"]] and not allowed[t["S-PER"], t["E-PER"]]
    assert allowed[t["E-PER"], t["B-LOC"]] and allowed[t["O"], t["S-LOC"]]
    assert not scheme.allowed_starts()[t["I-PER"]] and not scheme.allowed_ends()[t["B-PER"]]


@settings(max_examples=60, deadline=None)
@given(
    scheme_name=st.sampled_from(["BIOES", "BIO"]),
    lengths=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6),
    seed=st.integers(min_value=0, max_value=10_000),
    scale=st.sampled_from([0.1, 3.0, 50.0]),
)
def test_crf_never_emits_invalid_sequence(scheme_name, lengths, seed, scale):
    scheme = TagScheme(["A", "B", "C"], scheme_name)
    torch.manual_seed(seed)
    crf = make_crf(scheme)
    with torch.no_grad():  # random (even adversarial) transition weights
        for param in crf.parameters():
            param.uniform_(-scale, scale)
    emissions = torch.randn(len(lengths), max(lengths), len(scheme)) * scale
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    paths = crf.viterbi(emissions, mask)
    reference = crf.decode(emissions, mask)
    softmax_paths = masked_decode(_layer(scheme), emissions.numpy(), numpy.array(lengths))
    for i, length in enumerate(lengths):
        ours = paths[i, :length].tolist()
        assert is_valid(scheme, ours)
        assert ours == reference[i]
        assert is_valid(scheme, softmax_paths[i, :length].tolist())


def _layer(scheme: TagScheme):
    layer = build_crf_layer(scheme.scheme)
    set_crf_labels(layer, scheme.labels)
    layer.initialize()
    return layer


def test_tag_encode_decode_round_trip():
    scheme = TagScheme(["LOC", "PER"])
    spans = [(0, 3, "LOC"), (3, 4, "PER"), (6, 9, "PER")]
    assert scheme.decode(scheme.encode(10, spans)) == spans


def test_decode_repairs_stitched_sequences():
    scheme = TagScheme(["LOC"])
    t = scheme.tag_to_id
    ids = [t["I-LOC"], t["E-LOC"], t["O"], t["B-LOC"], t["I-LOC"]]
    assert scheme.decode(ids) == [(0, 2, "LOC"), (3, 5, "LOC")]


def test_crf_layer_loss_gradient_and_transitions_are_trained():
    scheme = TagScheme(["X"])
    layer = _layer(scheme)
    emissions = layer.ops.asarray(numpy.random.RandomState(0).randn(2, 5, len(scheme)).astype("float32"))
    gold = numpy.array([[1, 2, 3, 0, 4], [4, 0, 0, 0, 0]], dtype="int64")
    lengths = numpy.array([5, 2], dtype="int64")
    loss, d_emissions = crf_loss(layer, emissions, gold, lengths)
    assert loss > 0
    assert d_emissions.shape == emissions.shape
    assert numpy.abs(d_emissions[1, 2:]).sum() == 0  # padding gets no gradient
    module = layer.shims[0]._model
    assert module._parameters["transitions"].grad is not None
    paths = crf_decode(layer, emissions, lengths)
    assert paths.shape == (2, 5)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=15), min_size=1, max_size=8),
    n_tags=st.integers(min_value=2, max_value=9),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_batched_viterbi_equals_pytorch_crf_decode(lengths, n_tags, seed):
    """Our length-sorted batched Viterbi against pytorch-crf's reference decode."""
    from torchcrf import CRF

    from spacy_lexner.models.pytorch.crf import viterbi_decode

    torch.manual_seed(seed)
    reference = CRF(n_tags, batch_first=True)
    emissions = torch.randn(len(lengths), max(lengths), n_tags)
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    expected = reference.decode(emissions, mask=mask)
    ours = viterbi_decode(
        emissions, mask, reference.start_transitions, reference.transitions, reference.end_transitions
    )
    assert [ours[i, :n].tolist() for i, n in enumerate(lengths)] == expected
