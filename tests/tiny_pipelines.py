"""Small trained pipelines for the reliability tests (fuzzing, long docs,
multiprocessing, loading, the version fixture).

Both use a 10-word file lexicon instead of jieba's 349k words and small
hashed tables, so they train in seconds and save to a few hundred KB.
"""

from pathlib import Path
from typing import Dict, List, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .util import make_examples, small_model, train_nlp

LEXICON_LINES = [
    "张三\t100\tnr",
    "李四\t100\tnr",
    "王五\t100\tnr",
    "北京大学\t50\tnt",
    "腾讯公司\t50\tnt",
    "上海\t200\tns",
    "北京\t200\tns",
    "南京市\t80\tns",
    "长江大桥\t30\tns",
    "工程师\t40\tn",
]
RULER_PATTERNS = [
    {"label": "ORG", "pattern": "腾讯"},
    {"label": "PRODUCT", "pattern": "Apple Store"},
    {"label": "NUM", "pattern": [{"IS_DIGIT": True, "OP": "+"}]},
    {"label": "ANIMAL", "pattern": "旺财", "visual": {"tags_any": ["dog"], "min_score": 0.5}},
]


def write_lexicon(path: Path) -> Path:
    path.write_text("\n".join(LEXICON_LINES) + "\n", encoding="utf8")
    return path


def tiny_tagger_model() -> Dict:
    model = small_model()
    model["embed"].update({"char_rows": 512, "bigram_rows": 512, "word_rows": 512, "type_rows": 32})
    return model


def tiny_tok2vec() -> Dict:
    return {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {
            "@architectures": "spacy.MultiHashEmbed.v2",
            "width": 32,
            "attrs": ["NORM", "SHAPE"],
            "rows": [500, 50],
            "include_static_vectors": False,
        },
        "encode": {
            "@architectures": "spacy.MaxoutWindowEncoder.v2",
            "width": 32,
            "depth": 1,
            "window_size": 1,
            "maxout_pieces": 2,
        },
    }


def _add_ruler(nlp: Language) -> None:
    nlp.add_pipe("multimodal_entity_ruler")


def _fill_ruler(nlp: Language) -> None:
    # initialize() clears the ruler, so patterns go in after training.
    nlp.get_pipe("multimodal_entity_ruler").add_patterns(RULER_PATTERNS)


def lexner_pipeline(lexicon_path: Path, n_iter: int = 30) -> Language:
    """lexner_tagger (10-word file lexicon) + multimodal_entity_ruler, trained."""
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": tiny_tagger_model()})
    _add_ruler(nlp)
    nlp.config["initialize"]["components"]["lexner_tagger"] = {
        "lexicon": {"@lexicons": "spacy-lexner.file_lexicon.v1", "paths": [str(lexicon_path)]}
    }
    train_nlp(nlp, make_examples(nlp), n_iter=n_iter)
    _fill_ruler(nlp)
    return nlp


def crf_pipeline(n_iter: int = 30) -> Language:
    """crf_ner over a small embedded tok2vec + multimodal_entity_ruler, trained."""
    nlp = spacy.blank("zh")
    nlp.add_pipe("crf_ner", config={"model": {"tok2vec": tiny_tok2vec()}})
    _add_ruler(nlp)
    train_nlp(nlp, make_examples(nlp), n_iter=n_iter, learn_rate=0.01)
    _fill_ruler(nlp)
    return nlp


def ents_of(doc: Doc) -> List[Tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def check_doc(doc: Doc, text: str) -> None:
    """The invariants every output must satisfy, whatever the input."""
    assert doc.text == text
    previous_end = 0
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc)
        assert 0 <= ent.start_char < ent.end_char <= len(text)
        assert ent.start_char >= previous_end, "overlapping or unsorted entities"
        assert text[ent.start_char : ent.end_char] == ent.text
        assert ent.label_
        previous_end = ent.end_char
