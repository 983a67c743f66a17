"""The learned visual gate: only the image tells ANIMAL from PER."""

import random

import pytest
import spacy
from spacy.util import minibatch

from spacy_lexner.corpora.synthetic import blank_pipeline, label_accuracy, make_examples
from spacy_lexner.util.image_context import set_image_context


def train(visual: bool, n_train: int = 120, epochs: int = 6):
    nlp, _ = blank_pipeline(16, visual)
    examples = make_examples(nlp, n_train, image_width=16, seed=0)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    for epoch in range(epochs):
        random.Random(epoch).shuffle(examples)
        for batch in minibatch(examples, 16):
            nlp.update(batch, sgd=optimizer)
    return nlp


@pytest.fixture(scope="module")
def fused():
    return train(visual=True)


def test_gate_separates_what_text_cannot(fused):
    text_only = train(visual=False)
    test = make_examples(text_only, 60, image_width=16, seed=1)
    assert label_accuracy(text_only, test) <= 0.5
    assert label_accuracy(fused, test) >= 0.95


def test_round_trip_keeps_visual_predictions(fused, tmp_path):
    test = make_examples(fused, 10, image_width=16, seed=2)
    docs = lambda: [eg.predicted.copy() for eg in test]  # noqa: E731
    expected = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in fused.pipe(docs())]
    fused.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    from_bytes = spacy.util.load_model_from_config(fused.config, auto_fill=False)
    from_bytes.from_bytes(fused.to_bytes())
    for other in (loaded, from_bytes):
        assert [
            [(e.start_char, e.end_char, e.label_) for e in d.ents] for d in other.pipe(docs(), batch_size=3)
        ] == expected
        assert [[(e.start_char, e.end_char, e.label_) for e in other(d).ents] for d in docs()] == expected


def test_docs_without_image_and_wrong_width(fused):
    assert fused("旺财今天很可爱。").text  # no image: runs, no visual signal
    fused("")
    doc = set_image_context(fused.make_doc("旺财今天很可爱。"), embedding=[0.0] * 7)
    with pytest.raises(ValueError, match="image_width"):
        fused(doc)
