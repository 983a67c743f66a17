"""nlp.pipe with n_process=2 and batch sizes 1 and 1000 gives what nlp()
gives one doc at a time, for pipelines loaded from disk."""

import multiprocessing

import pytest
import spacy

from .tiny_pipelines import crf_pipeline, ents_of, lexner_pipeline, write_lexicon
from .util import pipe_with_spawn

TEXTS = [
    "张三在北京大学工作。",
    "李四去了上海。",
    "王五是腾讯公司的工程师，在Apple Store卖了3台。",
    "",
    "  ",
    "😀\x00ＡＢＣ",
    "南京市长江大桥很长。" * 40,
    "旺财",
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("mp")
    lexner_pipeline(write_lexicon(root / "lex.txt")).to_disk(root / "lexner")
    crf_pipeline().to_disk(root / "crf")
    return root


@pytest.mark.parametrize("name", ["lexner", "crf"])
@pytest.mark.parametrize("n_process,batch_size", [(1, 1), (1, 1000), (2, 1), (2, 1000)])
def test_pipe_equals_one_at_a_time(saved, name, n_process, batch_size):
    nlp = spacy.load(saved / name)
    expected = [ents_of(nlp(text)) for text in TEXTS]
    assert any(expected)
    docs = list(nlp.pipe(TEXTS, n_process=n_process, batch_size=batch_size))
    assert [d.text for d in docs] == TEXTS
    assert [ents_of(d) for d in docs] == expected


def test_start_method_is_known():
    # spaCy's n_process uses multiprocessing's default start method (fork on
    # Linux, spawn on macOS and Windows); both are covered by the test above
    # on the platform CI runs on.
    assert multiprocessing.get_start_method() in ("fork", "spawn", "forkserver")


def test_spawn_start_method(saved):
    """With spawn (the default on macOS and Windows) each child unpickles the
    pipeline; lexner_tagger, crf_ner and the ruler must survive that."""
    nlp = spacy.load(saved / "lexner")
    nlp.add_pipe("crf_ner", name="crf_ner", source=spacy.load(saved / "crf"), before="multimodal_entity_ruler")
    expected = [ents_of(nlp(text)) for text in TEXTS]
    assert [ents_of(d) for d in pipe_with_spawn(nlp, TEXTS)] == expected
