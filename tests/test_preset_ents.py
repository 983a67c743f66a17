"""Entities set earlier in the pipeline (an entity_ruler, user code) are kept,
and the CRF decodes the rest around them, as spaCy's ner does; with
overwrite_ents = true the NER component replaces them."""

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc
from thinc.api import fix_random_seed

from spacy_lexner.models.pytorch.crf import viterbi_decode
from spacy_lexner.util.tags import TagScheme

from .tiny_pipelines import tiny_tok2vec
from .util import blank_with_tagger, ents_of, make_examples, train_nlp

TEXT = "张三在北京大学工作。"  # the trained taggers find PER 张三 and ORG 北京大学


@pytest.fixture(scope="module", params=["crf", "softmax"])
def tagger_nlp(request):
    fix_random_seed(0)
    nlp = blank_with_tagger(decoder=request.param)
    return train_nlp(nlp, make_examples(nlp))


@pytest.fixture(scope="module")
def crf_ner_nlp():
    fix_random_seed(0)
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config={"model": {"tok2vec": tiny_tok2vec()}})
    return train_nlp(nlp, make_examples(nlp), n_iter=40, learn_rate=0.01)


def _with_preset(nlp, text, start, end, label) -> Doc:
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(start, end, label=label)]
    return doc


def _ner(nlp):
    return nlp.get_pipe(nlp.pipe_names[-1])


def test_entity_ruler_entities_survive(tagger_nlp, crf_ner_nlp):
    for trained in (tagger_nlp, crf_ner_nlp):
        nlp = spacy.blank("zh")
        nlp.add_pipe("entity_ruler").add_patterns([{"label": "PRODUCT", "pattern": "微信"}])
        nlp.add_pipe(trained.pipe_names[-1], source=trained)
        doc = nlp("张三在微信工作。")
        assert (3, 5, "PRODUCT") in ents_of(doc), trained.pipe_names
        assert (0, 2, "PER") in ents_of(doc)  # predicted around the preset


def test_unknown_label_preset_moves_the_neighbouring_boundary(tagger_nlp, crf_ner_nlp):
    for nlp in (tagger_nlp, crf_ner_nlp):
        assert (3, 7, "ORG") in ents_of(nlp(TEXT))
        doc = _ner(nlp)(_with_preset(nlp, TEXT, 5, 7, "X"))
        ents = ents_of(doc)
        assert (5, 7, "X") in ents
        # ORG 北京大学 is not dropped: it ends where the preset begins.
        assert (3, 5, "ORG") in ents, ents


def test_known_label_preset_keeps_its_tags(tagger_nlp):
    doc = _ner(tagger_nlp)(_with_preset(tagger_nlp, TEXT, 3, 5, "LOC"))
    ents = ents_of(doc)
    assert (3, 5, "LOC") in ents and (0, 2, "PER") in ents
    assert not any(s < 5 and e > 3 and (s, e) != (3, 5) for s, e, _ in ents)


def test_overwrite_ents(tagger_nlp, crf_ner_nlp):
    for nlp in (tagger_nlp, crf_ner_nlp):
        ner = _ner(nlp)
        ner.overwrite_ents = True
        try:
            doc = ner(_with_preset(nlp, TEXT, 5, 7, "X"))
        finally:
            ner.overwrite_ents = False
        assert ents_of(doc) == ents_of(nlp(TEXT))


def test_overwrite_ents_from_config(tagger_nlp, tmp_path):
    tagger_nlp.to_disk(tmp_path / "nlp")
    nlp = spacy.load(tmp_path / "nlp", config={"components": {"lexner_tagger": {"overwrite_ents": True}}})
    assert nlp.get_pipe("lexner_tagger").overwrite_ents
    assert ents_of(nlp.get_pipe("lexner_tagger")(_with_preset(nlp, TEXT, 5, 7, "X"))) == ents_of(nlp(TEXT))
    assert not spacy.load(tmp_path / "nlp").get_pipe("lexner_tagger").overwrite_ents


def test_preset_across_window_borders(tagger_nlp):
    """A preset that spans a sentence end and a hard window border stays whole."""
    tagger = _ner(tagger_nlp)
    sentence = "张三在北京大学工作李四去了上海"
    text = sentence * 40  # 600 chars, no sentence end: hard windows
    windows = tagger._windows(text)
    border = windows[0].own_end
    start, end = border - 3, border + 4
    doc = tagger(_with_preset(tagger_nlp, text, start, end, "CROSS"))
    ents = ents_of(doc)
    assert (start, end, "CROSS") in ents
    assert not any(s < end and e > start and label != "CROSS" for s, e, label in ents)
    assert len(ents) > 40  # the rest of the doc is still tagged
    joined = "张三在北京大学工作。李四去了上海。"
    doc = tagger(_with_preset(tagger_nlp, joined, 7, 12, "CROSS"))  # 工作。李四
    assert (7, 12, "CROSS") in ents_of(doc)


def test_constrained_viterbi_moves_a_boundary():
    """The decoder, not a filter: with 3-4 fixed as O, the best path ends the
    entity at 2 (B E) instead of dropping it."""
    from spacy_lexner.models.decoders import fixed_tag_scores

    scheme = TagScheme(["ORG"], "BIOES")
    ids = scheme.tag_to_id
    emissions = torch.zeros((1, 4, len(scheme)))
    for t, tag, score in [(0, "B-ORG", 5), (1, "I-ORG", 5), (1, "E-ORG", 3), (2, "I-ORG", 5), (3, "E-ORG", 5)]:
        emissions[0, t, ids[tag]] = score
    mask = torch.ones((1, 4), dtype=torch.bool)
    allowed = torch.from_numpy(scheme.allowed_transitions())
    trans = torch.zeros(allowed.shape).masked_fill(~allowed, -10000.0)
    start = torch.zeros(len(scheme)).masked_fill(~torch.from_numpy(scheme.allowed_starts()), -10000.0)
    end = torch.zeros(len(scheme)).masked_fill(~torch.from_numpy(scheme.allowed_ends()), -10000.0)
    free = viterbi_decode(emissions, mask, start, trans, end)[0].numpy()
    assert scheme.decode(free) == [(0, 4, "ORG")]
    forced = emissions + torch.from_numpy(fixed_tag_scores(scheme, [[(2, 4, "X")]], (1, 4)))
    path = viterbi_decode(forced, mask, start, trans, end)[0].numpy()
    assert scheme.decode(path) == [(0, 2, "ORG")]
    known = emissions + torch.from_numpy(fixed_tag_scores(scheme, [[(3, 4, "ORG")]], (1, 4)))
    # S-ORG fixed at 3: the open entity must close at 2 (B I E), not run on.
    assert scheme.decode(viterbi_decode(known, mask, start, trans, end)[0].numpy()) == [(0, 3, "ORG"), (3, 4, "ORG")]
    assert fixed_tag_scores(scheme, [[], []], (2, 4)) is None
    assert numpy.all(fixed_tag_scores(scheme, [[(0, 1, "ORG")]], (1, 2))[0, 1] == 0)


def test_spans_key_presets(tmp_path):
    fix_random_seed(0)
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config={"model": {"tok2vec": tiny_tok2vec()}, "spans_key": "sc"})
    examples = make_examples(nlp)
    for eg in examples:
        eg.reference.spans["sc"] = list(eg.reference.ents)
    train_nlp(nlp, examples, n_iter=40, learn_rate=0.01)
    doc = nlp.make_doc(TEXT)
    doc.spans["sc"] = [doc.char_span(5, 7, label="X"), doc.char_span(4, 7, label="Y")]  # overlapping group
    spans = [(s.start_char, s.end_char, s.label_) for s in nlp.get_pipe("crf_ner")(doc).spans["sc"]]
    assert (4, 7, "Y") in spans and (5, 7, "X") not in spans
    assert all(not (s < 7 and e > 4) for s, e, label in spans if label != "Y")
