import subprocess
import sys

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc

from spacy_lexner import Lexicon
from spacy_lexner.lexicon import Lattice
from spacy_lexner.pipeline.lexner_tagger import LexiconTagger

from .util import TRAIN_DATA, blank_with_tagger, ents_of, make_examples, train_nlp


@pytest.fixture(scope="module", params=["crf", "softmax"])
def trained(request):
    nlp = blank_with_tagger(decoder=request.param)
    train_nlp(nlp, make_examples(nlp))
    return nlp


def test_add_pipe_zero_config():
    nlp = spacy.blank("zh")
    tagger = nlp.add_pipe("lexner_tagger")
    assert isinstance(tagger, LexiconTagger)
    assert nlp.get_pipe_meta("lexner_tagger").assigns[0] == "doc.ents"


def test_not_initialized_error():
    nlp = blank_with_tagger()
    with pytest.raises(ValueError, match="E109"):
        nlp("张三")


def test_no_labels_error():
    nlp = blank_with_tagger()
    examples = make_examples(nlp, [("没有实体。", [])])
    with pytest.raises(ValueError, match="no entity labels"):
        nlp.initialize(lambda: examples)


def test_overfitting_io(trained, tmp_path):
    nlp = trained
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    texts = [text for text, _ in TRAIN_DATA] + ["张三在上海。", "", "  "]
    expected = [ents_of(nlp(t)) for t in texts]
    nlp.to_disk(tmp_path / "nlp")
    from_disk = spacy.load(tmp_path / "nlp")
    from_bytes = spacy.blank("zh")
    from_bytes.add_pipe("lexner_tagger", config={"model": nlp.config["components"]["lexner_tagger"]["model"]})
    from_bytes.from_bytes(nlp.to_bytes())
    for other in (from_disk, from_bytes):
        assert [ents_of(other(t)) for t in texts] == expected
        for batch_size in (1, 3, 1000):
            assert [ents_of(d) for d in other.pipe(texts, batch_size=batch_size)] == expected
    assert len(from_disk.get_pipe("lexner_tagger").lexicon) == len(nlp.get_pipe("lexner_tagger").lexicon)


def test_scores_use_ner_scorer(trained):
    scores = trained.evaluate(make_examples(trained))
    assert scores["ents_f"] == 1.0
    assert set(scores["ents_per_type"]) == {"PER", "ORG", "LOC"}


@pytest.mark.parametrize(
    "text",
    ["", " ", "\n\n\t ", "😀🇨🇳👨‍👩‍👧", "iPhone 14在2022年9月发布", "张三\u0000李四", "ＡＢＣ１２３，张三"],
)
def test_edge_cases(trained, text):
    doc = trained(text)
    assert doc.text == text
    for ent in doc.ents:
        assert doc.text[ent.start_char : ent.end_char] == ent.text
        assert ent.text.strip()


def test_long_doc_is_windowed(trained):
    sentence = "张三在北京大学工作。"
    text = sentence * 10_000  # 100k characters
    doc = trained(text)
    assert doc.text == text
    per_sentence = ents_of(trained(sentence))
    expected = [
        (s + i * len(sentence), e + i * len(sentence), label) for i in range(10_000) for s, e, label in per_sentence
    ]
    assert ents_of(doc) == expected


def test_long_sentence_windows_overlap(trained):
    tagger = trained.get_pipe("lexner_tagger")
    text = "张三在北京大学工作" * 80  # 720 chars, no sentence end
    doc = trained(text)
    assert doc.text == text
    assert len(doc.ents) > 0
    for ent in doc.ents:
        assert ent.text.strip()
    assert len(tagger._windows(text)) > 1


def test_jieba_segmented_pipeline_aligns(trained):
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    nlp.add_pipe("lexner_tagger", source=trained)
    doc = nlp("张三在北京大学工作。")
    assert len(doc) < len(doc.text)  # word tokens
    for ent in doc.ents:
        assert ent.start_char < ent.end_char


def test_unaligned_entities_are_counted():
    vocab = spacy.blank("zh").vocab
    nlp = blank_with_tagger()
    tagger = nlp.get_pipe("lexner_tagger")
    tagger.alignment_mode = "strict"
    doc = Doc(vocab, words=["南京市长", "江大桥"], spaces=[False, False])
    with pytest.warns(UserWarning, match="did not fall on token boundaries.*set alignment_mode='expand'"):
        tagger.set_annotations([doc], [[(0, 3, "LOC"), (4, 7, "LOC")]])
    assert [e.text for e in doc.ents] == ["江大桥"]
    assert tagger.alignment_stats["unaligned"] == 1


def test_expand_mode_warning_says_what_happened():
    """In expand mode (the default) the warning must not suggest expand."""
    vocab = spacy.blank("zh").vocab
    tagger = blank_with_tagger().get_pipe("lexner_tagger")
    assert tagger.alignment_mode == "expand"
    doc = Doc(vocab, words=["南京市长", "江大桥", " "], spaces=[False, False, False])
    with pytest.warns(UserWarning) as record:
        tagger.set_annotations([doc], [[(0, 3, "LOC"), (3, 7, "LOC"), (7, 8, "LOC")]])
    message = str(record[0].message)
    assert "alignment_mode" not in message  # nothing to change there
    assert "1 covered only whitespace" in message
    assert "1 overlapped another entity once widened to token boundaries" in message
    assert "spacy.blank('zh')" in message
    assert [e.text for e in doc.ents] == ["南京市长江大桥"]  # the longer of the two


def test_entry_point_in_fresh_interpreter():
    code = (
        "import sys, spacy\n"
        "nlp = spacy.blank('zh')\n"
        "nlp.add_pipe('lexner_tagger')  # no import of spacy_lexner: entry points\n"
        "print(nlp.pipe_names)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "lexner_tagger" in result.stdout


def test_lexicon_added_at_load_changes_features(trained, tmp_path):
    word = "魑魅魍魉集团"
    tagger = trained.get_pipe("lexner_tagger")
    assert word not in tagger.lexicon
    trained.to_disk(tmp_path / "nlp")
    lexicon_file = tmp_path / "domain.txt"
    lexicon_file.write_text(f"{word}\t100\tORG\n", encoding="utf8")
    plain = spacy.load(tmp_path / "nlp")
    extended = spacy.load(
        tmp_path / "nlp",
        config={"components": {"lexner_tagger": {"extra_lexicons": [str(lexicon_file)]}}},
    )
    assert word in extended.get_pipe("lexner_tagger").lexicon
    assert word not in plain.get_pipe("lexner_tagger").lexicon
    text = f"他在{word}工作"
    doc = extended.make_doc(text)
    X_plain = _embedding(plain, doc)
    X_extended = _embedding(extended, doc)
    start = text.index(word)
    changed = numpy.abs(X_plain - X_extended).sum(axis=-1) > 1e-6
    assert changed[start : start + len(word)].all()
    assert not changed[:start].any()


def _embedding(nlp, doc):
    tagger = nlp.get_pipe("lexner_tagger")
    embed = tagger.model.get_ref("embed")
    (X, lengths, _), _ = embed(Lattice.build([doc.text], tagger.lexicon), is_train=False)
    return embed.ops.to_numpy(X)[0]


def test_extend_and_set_lexicon_api(trained):
    tagger = trained.get_pipe("lexner_tagger")
    old = tagger.lexicon
    try:
        tagger.set_lexicon(Lexicon([("张三", 5.0, "nr")]))
        assert len(tagger.lexicon) == 1
        tagger.extend_lexicon(Lexicon([("北京大学", 5.0, "nt")]))
        assert "北京大学" in tagger.lexicon
        trained("张三在北京大学工作。")
    finally:
        tagger.set_lexicon(old)


def test_missing_lexicon_file_named(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    (tmp_path / "nlp" / "lexner_tagger" / "lexicon").unlink()
    with pytest.raises(ValueError, match="lexicon"):
        spacy.load(tmp_path / "nlp")


def test_corrupted_model_file_named(trained, tmp_path):
    trained.to_disk(tmp_path / "nlp")
    model_file = tmp_path / "nlp" / "lexner_tagger" / "model"
    model_file.write_bytes(model_file.read_bytes()[:100])
    with pytest.raises(ValueError, match="model"):
        spacy.load(tmp_path / "nlp")


def test_without_lexicon_trains(tmp_path):
    nlp = blank_with_tagger(use_lexicon=False)
    train_nlp(nlp, make_examples(nlp), n_iter=60)
    assert ents_of(nlp(TRAIN_DATA[0][0])) == TRAIN_DATA[0][1]


def test_add_label_after_training_is_an_error(trained):
    with pytest.raises(ValueError, match="Retrain"):
        trained.get_pipe("lexner_tagger").add_label("NEW")


@pytest.mark.parametrize("factory", ["lexner_tagger", "crf_ner"])
def test_parameter_averages_reach_torch_layers(factory):
    """With use_averages, nlp.use_params (spaCy's evaluation and model-best)
    swaps the optimizer's averages into the torch modules, then restores them."""
    from thinc.api import Adam

    nlp = blank_with_tagger() if factory == "lexner_tagger" else spacy.blank("zh")
    if factory == "crf_ner":
        nlp.add_pipe("crf_ner")
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01, use_averages=True)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    params = [
        (shim.id, name, param)
        for node in nlp.get_pipe(factory).model.walk()
        for shim in node.shims
        for name, param in shim._model.named_parameters()
    ]
    trained = [param.detach().clone() for _, _, param in params]
    with nlp.use_params(optimizer.averages):
        for shim_id, name, param in params:
            numpy.testing.assert_allclose(param.detach().numpy(), optimizer.averages[(shim_id, name)], rtol=1e-6)
        nlp(TRAIN_DATA[0][0])
    assert any(not numpy.allclose(optimizer.averages[(i, n)], t.numpy()) for (i, n, _), t in zip(params, trained))
    for (_, _, param), saved in zip(params, trained):
        assert torch.equal(param.detach(), saved)


def test_entity_edges_are_stripped_of_whitespace():
    """Whitespace at an entity's edges is dropped (the documented repair),
    read from the tokens the entity touches, in char and word tokens."""
    vocab = spacy.blank("zh").vocab
    tagger = blank_with_tagger().get_pipe("lexner_tagger")
    words = Doc(vocab, words=["在", "北京", "工作"], spaces=[True, True, False])  # "在 北京 工作"
    chars = spacy.blank("zh")("在  北京 工作 ")
    with pytest.warns(UserWarning, match="1 covered only whitespace"):
        tagger.set_annotations([words, chars], [[(1, 5, "LOC")], [(2, 6, "LOC"), (8, 9, "ORG")]])
    assert [(e.text, e.start_char, e.end_char) for e in words.ents] == [("北京", 2, 4)]
    assert [(e.text, e.start_char, e.end_char) for e in chars.ents] == [("北京", 3, 5)]
