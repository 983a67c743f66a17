"""Labels added in code with add_label count at initialize, as they do for
spaCy's ner, for both CRF pipes."""

import pytest
import spacy

from .tiny_pipelines import tiny_tok2vec, write_lexicon
from .util import make_examples, small_model

CONFIGS = {
    "lexner_tagger": {"model": small_model()},
    "crf_ner": {"model": {"tok2vec": tiny_tok2vec()}},
}


@pytest.mark.parametrize("factory", sorted(CONFIGS))
def test_added_labels_without_data(factory, tmp_path):
    nlp = spacy.blank("zh")
    pipe = nlp.add_pipe(factory, config=CONFIGS[factory])
    assert pipe.add_label("PER") == 1 and pipe.add_label("PER") == 0
    pipe.add_label("ORG")
    if factory == "lexner_tagger":
        nlp.config["initialize"]["components"]["lexner_tagger"] = {
            "lexicon": {
                "@lexicons": "spacy-lexner.file_lexicon.v1",
                "paths": [str(write_lexicon(tmp_path / "lex.txt"))],
            }
        }
    nlp.initialize()  # no examples at all
    assert pipe.labels == ("ORG", "PER")
    assert len(pipe.tag_scheme) == 9  # O + 4 tags for each of the two labels
    nlp("张三在北京大学工作。")


@pytest.mark.parametrize("factory", sorted(CONFIGS))
def test_added_labels_join_the_data_labels(factory, tmp_path):
    nlp = spacy.blank("zh")
    pipe = nlp.add_pipe(factory, config=CONFIGS[factory])
    pipe.add_label("PRODUCT")
    examples = make_examples(nlp)
    if factory == "lexner_tagger":
        nlp.config["initialize"]["components"]["lexner_tagger"] = {
            "lexicon": {
                "@lexicons": "spacy-lexner.file_lexicon.v1",
                "paths": [str(write_lexicon(tmp_path / "lex.txt"))],
            }
        }
    nlp.initialize(lambda: examples)
    assert pipe.labels == ("LOC", "ORG", "PER", "PRODUCT")
    with pytest.raises(ValueError, match="Retrain"):
        pipe.add_label("NEW")
