"""Combine separately trained ``lexner_tagger`` pipelines into one ensemble.

Models trained apart (different seeds, so different initialisations and
batch orders) disagree more than members trained together, and averaging
their CRF potentials is what benchmarks/ensemble_potentials.py measured.
``merge_taggers`` copies each model's weights into one member of a
spacy-lexner.LexiconTaggerEnsemble.v1, so the result is an ordinary
pipeline: nlp.to_disk, spacy.load and spacy package work as usual.
"""

from typing import Any, Dict, Sequence

from spacy.language import Language

from ..models.contract import is_initialized
from ..models.ensemble import copy_member_weights, weights_shapes
from .lexner_tagger import LexiconTagger

ENSEMBLE = "spacy-lexner.LexiconTaggerEnsemble.v1"
SINGLE = "spacy-lexner.LexiconTagger.v1"


def merge_taggers(pipelines: Sequence[Language], name: str = "lexner_tagger") -> Language:
    """The first pipeline, with its tagger replaced (in place) by an
    ensemble of the taggers of all pipelines. They must share labels,
    lexicon and layer sizes: e.g. one config trained with different seeds."""
    if len(pipelines) < 2:
        raise ValueError(f"An ensemble needs at least two pipelines, got {len(pipelines)}.")
    sources = [_tagger(nlp, name, i) for i, nlp in enumerate(pipelines)]
    _check_compatible(sources)
    nlp = pipelines[0]
    first = sources[0]
    component_config = dict(nlp.config["components"][name])
    component_config.pop("factory")
    component_config["model"] = _ensemble_config(component_config["model"], len(sources))
    ensemble = nlp.replace_pipe(name, "lexner_tagger", config=component_config)
    ensemble.cfg.update(first.cfg)
    ensemble.set_lexicon(first.lexicon)  # the replaced pipe no longer uses it
    ensemble._set_labels(first.labels)
    ensemble.model.initialize()
    copy_member_weights(ensemble.model, [source.model for source in sources])
    return nlp


def _tagger(nlp: Language, name: str, index: int) -> LexiconTagger:
    if name not in nlp.pipe_names:
        raise ValueError(f"Pipeline {index} has no component '{name}' (it has {nlp.pipe_names}).")
    tagger = nlp.get_pipe(name)
    architecture = nlp.config["components"][name]["model"].get("@architectures")
    if architecture != SINGLE:
        raise ValueError(f"Pipeline {index}'s '{name}' uses {architecture}; only {SINGLE} models can be merged.")
    if not is_initialized(tagger.model):
        raise ValueError(f"Pipeline {index}'s '{name}' is not trained or initialized.")
    return tagger


def _check_compatible(sources: Sequence[LexiconTagger]) -> None:
    first = sources[0]
    first_lexicon, first_shapes = first.lexicon.to_bytes(), weights_shapes(first.model)
    for i, source in enumerate(sources[1:], start=1):
        if source.labels != first.labels:
            raise ValueError(f"Pipeline {i} has labels {list(source.labels)}, pipeline 0 has {list(first.labels)}.")
        if source.lexicon.to_bytes() != first_lexicon:
            raise ValueError(
                f"Pipeline {i}'s lexicon differs from pipeline 0's: the members would read different "
                "features. Merge pipelines trained with the same lexicon."
            )
        if weights_shapes(source.model) != first_shapes:
            raise ValueError(f"Pipeline {i}'s model has other layer sizes than pipeline 0's: use one config for all.")


def _ensemble_config(model_config: Dict[str, Any], n_members: int) -> Dict[str, Any]:
    config = dict(model_config)
    config["@architectures"] = ENSEMBLE
    config["n_members"] = n_members
    config["bagging"] = False
    return config
