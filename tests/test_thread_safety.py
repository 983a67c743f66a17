"""A loaded pipeline called from several Python threads at once gives what
it gives sequentially, with no errors (web servers call nlp() from threads).

The pipelines are freshly loaded from disk, so the featurizer's word table,
the lexicon's automaton and the torch modules' train/eval state all start
cold, as in a server that just started. A short thread switch interval makes
the interpreter interleave the threads often, so a race shows up in a test
of seconds instead of hours of traffic.
"""

import random
import sys
import threading
from pathlib import Path
from typing import List

import pytest
import spacy

from .test_ensemble import ensemble_model
from .tiny_pipelines import RULER_PATTERNS, crf_pipeline, ents_of
from .util import make_examples, small_model, train_nlp

N_THREADS = 4
N_TEXTS = 500
CHARS = "张三李四王五在北京大学工作去了上海南京市长江大桥很长腾讯公司的工程师旺财"


def _texts() -> List[str]:
    rnd = random.Random(0)
    return ["".join(rnd.choice(CHARS) for _ in range(rnd.randint(4, 30))) + str(i) for i in range(N_TEXTS)]


def _lexicon(path: Path) -> Path:
    # Many words, so a cold featurizer keeps growing its word table while
    # the threads run (the 10-word test lexicon fills it on the first doc).
    rnd = random.Random(1)
    words = {"".join(rnd.choice(CHARS) for _ in range(rnd.randint(2, 4))) for _ in range(4000)}
    path.write_text("".join(f"{w}\t{rnd.randint(1, 500)}\n" for w in sorted(words)), encoding="utf8")
    return path


def _with_dropout(model: dict) -> dict:
    # High dropout makes a module left in train mode change the output.
    model["embed"]["dropout"] = 0.5
    model["encoder"]["dropout"] = 0.5
    return model


def _tagger_pipeline(tmp: Path, model: dict) -> spacy.language.Language:
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": _with_dropout(model)})
    nlp.config["initialize"]["components"]["lexner_tagger"] = {
        "lexicon": {"@lexicons": "spacy-lexner.file_lexicon.v1", "paths": [str(_lexicon(tmp / "lex.txt"))]}
    }
    return train_nlp(nlp, make_examples(nlp), n_iter=10)


def _ruler_pipeline(tmp: Path) -> spacy.language.Language:
    nlp = spacy.blank("zh")
    ruler = nlp.add_pipe("multimodal_entity_ruler")
    ruler.add_patterns(RULER_PATTERNS + [{"label": "PER", "pattern": w} for w in ("张三", "李四", "王五")])
    return nlp


BUILDERS = {
    "lexner_tagger": lambda tmp: _tagger_pipeline(tmp, small_model()),
    "lexner_tagger_ensemble": lambda tmp: _tagger_pipeline(tmp, ensemble_model(n_members=2)),
    "crf_ner": lambda tmp: crf_pipeline(n_iter=10),
    "multimodal_entity_ruler": _ruler_pipeline,
}


def _run_threads(nlp, texts: List[str]) -> tuple:
    results: dict = {}
    errors: List[str] = []
    barrier = threading.Barrier(N_THREADS)

    def work(k: int) -> None:
        barrier.wait()
        out = []
        try:
            for text in texts:
                doc = nlp(text)
                out.append(ents_of(doc))
        except Exception as err:  # noqa: BLE001 - the test reports every error
            errors.append(f"{type(err).__name__}: {err}")
        results[k] = out

    threads = [threading.Thread(target=work, args=(k,)) for k in range(N_THREADS)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-3)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old)
    return results, errors


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_threads_match_sequential(tmp_path: Path, name: str) -> None:
    BUILDERS[name](tmp_path).to_disk(tmp_path / "nlp")
    texts = _texts()
    nlp = spacy.load(tmp_path / "nlp")  # cold: nothing ran on it yet
    results, errors = _run_threads(nlp, texts)
    assert errors == []
    expected = [ents_of(doc) for doc in spacy.load(tmp_path / "nlp").pipe(texts, batch_size=1)]
    assert any(expected)
    sequential_after = [ents_of(nlp(text)) for text in texts[:100]]
    assert sequential_after == expected[:100], "the threads left the pipeline in a different state"
    for k in range(N_THREADS):
        differing = sum(a != b for a, b in zip(results[k], expected))
        assert len(results[k]) == len(texts) and differing == 0, f"thread {k}: {differing} docs differ"


def test_predict_leaves_torch_modules_in_eval_mode(tmp_path: Path) -> None:
    """thinc's PyTorchShim.predict puts the module back in train mode after
    each call, so another thread's prediction ran with dropout on. Ours
    stays in eval mode until the next training step."""
    nlp = _tagger_pipeline(tmp_path, small_model())
    # The CRF decodes outside the shim (it has no dropout).
    model = nlp.get_pipe("lexner_tagger").model
    modules = [shim._model for node in model.walk() if node.name != "crf" for shim in node.shims]
    assert modules
    nlp("张三在北京大学工作。")
    assert not any(module.training for module in modules)
    nlp.update(make_examples(nlp))
    assert all(module.training for module in modules)
    nlp("张三在北京大学工作。")
    assert not any(module.training for module in modules)
