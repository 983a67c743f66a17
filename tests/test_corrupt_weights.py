"""Weights and settings that decode but are wrong are refused at load, with
the file named: NaN or huge parameters, shapes from another config, a cfg
without labels. (Files that do not decode at all: tests/test_loading.py.)"""

import re
import shutil
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
import torch

from .tiny_pipelines import crf_pipeline, lexner_pipeline, write_lexicon


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("weights")
    nlp = lexner_pipeline(write_lexicon(root / "lex.txt"), n_iter=3)
    nlp.add_pipe("crf_ner", source=crf_pipeline(n_iter=3), before="multimodal_entity_ruler")
    nlp.to_disk(root / "nlp")
    return root / "nlp"


def _torch_param(nlp, pipe: str) -> torch.nn.Parameter:
    for node in nlp.get_pipe(pipe).model.walk():
        if node.name == "soft_lexicon_torch" or (node.name == "crf" and pipe == "crf_ner"):
            return next(iter(node.shims[0]._model.parameters()))
    raise AssertionError("no torch layer")


def _thinc_param(nlp, pipe: str):
    for node in nlp.get_pipe(pipe).model.walk():
        if node.name == "linear" and node.has_param("W"):
            return node
    raise AssertionError("no linear layer")


@pytest.mark.parametrize("pipe", ["lexner_tagger", "crf_ner"])
@pytest.mark.parametrize("value,problem", [(float("nan"), "NaN or infinite"), (1e30, "values above")])
def test_bad_parameter_values_are_refused(saved, tmp_path, pipe, value, problem):
    nlp = spacy.load(saved)
    if pipe == "crf_ner":
        linear = _thinc_param(nlp, pipe)
        W = linear.get_param("W").copy()
        W[0, 0] = value
        linear.set_param("W", W)
    else:
        with torch.no_grad():
            _torch_param(nlp, pipe).view(-1)[0] = value
    nlp.to_disk(tmp_path / "bad")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "bad" / pipe / "model")) + ".*" + problem):
        spacy.load(tmp_path / "bad")


def test_nonfinite_scores_are_refused(saved, tmp_path, monkeypatch):
    """Weights can be finite and still overflow the scores: the forward pass
    on a test sentence at load catches what the parameter check lets by."""
    monkeypatch.setattr("spacy_lexner.models.contract.MAX_PARAMETER", float("inf"))
    nlp = spacy.load(saved)
    for node in nlp.get_pipe("lexner_tagger").model.walk():
        if node.name == "emission_scorer":
            with torch.no_grad():
                for param in node.shims[0]._model.parameters():
                    param.fill_(3e38)
    nlp.to_disk(tmp_path / "bad")
    with pytest.raises(ValueError, match="scores of a test sentence"):
        spacy.load(tmp_path / "bad")


def test_shape_mismatch_names_the_file(saved, tmp_path):
    target = Path(shutil.copytree(saved, tmp_path / "nlp"))
    config = (target / "config.cfg").read_text(encoding="utf8")
    changed = config.replace("hidden_width = 32", "hidden_width = 48", 1)
    assert changed != config
    (target / "config.cfg").write_text(changed, encoding="utf8")
    with pytest.raises(ValueError, match=re.escape(str(target / "lexner_tagger" / "model")) + ".*incompatible config"):
        spacy.load(target)


@pytest.mark.parametrize("pipe", ["lexner_tagger", "crf_ner"])
@pytest.mark.parametrize("cfg", [{}, [], {"labels": "PER"}, {"labels": [1, 2]}])
def test_cfg_without_labels_names_the_cfg(saved, tmp_path, pipe, cfg):
    target = Path(shutil.copytree(saved, tmp_path / "nlp"))
    srsly.write_json(target / pipe / "cfg", cfg)
    with pytest.raises(ValueError, match=re.escape(str(target / pipe / "cfg")) + '.*"labels"'):
        spacy.load(target)


def test_intact_pipeline_still_loads(saved):
    nlp = spacy.load(saved)
    assert numpy.isfinite(_thinc_param(nlp, "crf_ner").get_param("W")).all()
    assert nlp("张三在北京大学工作。").ents
