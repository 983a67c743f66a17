"""Long documents: bounded memory (measured in a subprocess by
benchmarks/long_doc.py), windows that agree with sentence-by-sentence
tagging, and spaCy's own E088 for docs over nlp.max_length."""

import importlib.util

import pytest
import spacy

from spacy_lexner.lexicon import Lattice
from spacy_lexner.lexicon.windows import _SENTENCE_END

from .tiny_pipelines import check_doc, ents_of, lexner_pipeline, write_lexicon
from .util import REPO_ROOT


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("long_doc", REPO_ROOT / "benchmarks" / "long_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


long_doc = _benchmark_module()


@pytest.fixture(scope="module")
def nlp(tmp_path_factory):
    return lexner_pipeline(write_lexicon(tmp_path_factory.mktemp("lex") / "lex.txt"))


def test_memory_growth_is_bounded():
    """Tripling the text must add far less memory than padding it whole would.

    The measured growth includes what is O(n) anyway (the tag array, the
    entities); unbounded padding would add (embed + encoder width) * 4 bytes
    per char for the activations alone.
    """
    small = long_doc.run(100_000)
    large = long_doc.run(300_000)
    assert large["chars"] == 300_000 and large["ents"] > 0
    extra_growth = large["growth_mb"] - small["growth_mb"]
    extra_unbounded = large["unbounded_estimate_mb"] - small["unbounded_estimate_mb"]
    assert extra_growth < 0.3 * extra_unbounded, (small, large)
    assert large["growth_mb"] < 0.75 * large["unbounded_estimate_mb"], large


def test_windows_agree_with_sentences(nlp):
    text = long_doc.make_text(4000)
    assert len(text) > nlp.get_pipe("lexner_tagger").window_size
    with nlp.select_pipes(enable=["lexner_tagger"]):
        doc = nlp(text)
        check_doc(doc, text)
        expected, offset = [], 0
        tagger = nlp.get_pipe("lexner_tagger")
        for sentence in _SENTENCE_END.split(text):
            if len(sentence) <= tagger.window_size:
                spans = ents_of(nlp(sentence))
            else:  # a long run without a sentence end: its overlapping windows
                spans = [(s, e, label) for s, e, label in tagger.predict([nlp.make_doc(sentence)])[0]]
            expected.extend((s + offset, e + offset, label) for s, e, label in spans)
            offset += len(sentence)
    assert ents_of(doc) == [e for e in expected if text[e[0] : e[1]].strip()]


def test_hard_windows_match_each_window_alone(nlp):
    """In a sentence longer than window_size, each window's owned region gets
    the tags that window gets when tagged alone (batching and padding do not
    change them)."""
    tagger = nlp.get_pipe("lexner_tagger")
    text = "张三在北京大学工作李四去了上海" * 40  # 600 chars, no sentence end
    windows = tagger._windows(text)
    assert len(windows) > 2 and all(w.end - w.start <= tagger.window_size for w in windows)
    assert windows[0].own_start == 0 and windows[-1].own_end == len(text)
    for left, right in zip(windows, windows[1:]):
        assert left.own_end == right.own_start  # owned regions tile the text
        assert right.start < left.end  # windows overlap
    full = tagger.predict([nlp.make_doc(text)])[0]
    pasted = []
    for w in windows:
        path = tagger._decode(Lattice.build([text[w.start : w.end]], tagger.lexicon))[0]
        pasted.extend(path[w.own_start - w.start : w.own_end - w.start])
    assert tagger.tag_scheme.decode(pasted) == full


def test_doc_over_max_length_is_spacys_error(nlp):
    nlp.max_length = 5000
    try:
        check_doc(nlp("张" * 5000), "张" * 5000)
        with pytest.raises(ValueError, match="E088"):
            nlp("张" * 5001)
        with pytest.raises(ValueError, match="E088"):
            list(nlp.pipe(["短", "张" * 5001]))
    finally:
        nlp.max_length = 1_000_000


def test_default_max_length_doc_builds():
    # 1,000,000 chars is spaCy's default limit; one more is E088 (the full
    # 1M-char run is benchmarks/long_doc.py, too slow for CI).
    nlp = spacy.blank("zh")
    with pytest.raises(ValueError, match="E088"):
        nlp("a" * (nlp.max_length + 1))
