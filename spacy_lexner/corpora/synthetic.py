"""A generated disambiguation set where only the image tells two labels apart.

Every sentence names one of a few pet-or-person names in a neutral template
("旺财今天很可爱"). With an image from cluster "animal" the name is ANIMAL, with
one from cluster "person" it is PER. Each (name, template) pair occurs with
both labels equally often, so text alone cannot do better than chance.
"""

from typing import List, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.training import Example

from ..util.image_context import set_image_context

NAMES = ["旺财", "小白", "豆豆", "球球", "乐乐", "阿黄", "大毛", "Rocky", "Lucky", "可乐"]
TEMPLATES = ["{}今天很可爱。", "我家{}在睡觉。", "{}又跑出去了", "昨天{}吃了很多", "{}和我们一起去公园"]
LABELS = ("ANIMAL", "PER")


def make_examples(nlp: Language, n: int, *, image_width: int = 32, noise: float = 0.5, seed: int = 0) -> List[Example]:
    """n examples; cluster centres are fixed (seed 1234) so that train and
    test sets drawn with different seeds share them."""
    centres = numpy.random.default_rng(1234).normal(size=(2, image_width)).astype("float32")
    rng = numpy.random.default_rng(seed)
    examples = []
    for i in range(n):
        name = NAMES[(i // 2) % len(NAMES)]
        template = TEMPLATES[(i // (2 * len(NAMES))) % len(TEMPLATES)]
        label_index = i % 2
        text = template.format(name)
        start = text.index(name)
        doc = nlp.make_doc(text)
        image = centres[label_index] + noise * rng.normal(size=image_width).astype("float32")
        set_image_context(doc, embedding=image)
        eg = Example.from_dict(doc, {"entities": [(start, start + len(name), LABELS[label_index])]})
        set_image_context(eg.reference, embedding=image)
        examples.append(eg)
    return examples


def label_accuracy(nlp: Language, examples: List[Example]) -> float:
    """Share of gold entities predicted with the right span and label."""
    docs = nlp.pipe([eg.predicted.copy() for eg in examples])
    right = total = 0
    for doc, eg in zip(docs, examples):
        predicted = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
        for ent in eg.reference.ents:
            total += 1
            right += (ent.start_char, ent.end_char, ent.label_) in predicted
    return right / max(total, 1)


def blank_pipeline(image_width: int, visual: bool, small: bool = True) -> Tuple[Language, dict]:
    """spacy.blank("zh") with a lexner_tagger, with or without the visual gate."""
    embed = {
        "@architectures": "spacy-lexner.SoftLexiconEmbed.v2",
        "char_width": 16,
        "bigram_width": 16,
        "word_width": 16,
        "type_width": 8,
        "char_rows": 1024,
        "bigram_rows": 2048,
        "word_rows": 2048,
        "type_rows": 64,
        "dropout": 0.1,
    }
    if visual:
        embed = {
            "@architectures": "spacy-lexner.VisualGateEmbed.v1",
            "embed": embed,
            "image_width": image_width,
            "width": 16,
        }
    model = {
        "@architectures": "spacy-lexner.LexiconTagger.v1",
        "embed": embed,
        "encoder": {"@architectures": "spacy-lexner.BiLSTMEncoder.v1", "hidden_width": 32, "dropout": 0.1},
    }
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": model})
    return nlp, model
