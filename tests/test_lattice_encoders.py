"""A task only the lattice can solve, for each encoder that reads the
lattice's words itself (Lattice LSTM, LR-CNN).

Every text holds one lexicon word (the entity) and one decoy: a string of
the same characters that is not in the lexicon. Test texts use words never
seen in training, so the characters alone cannot tell the word from the
decoy; the lattice can, since the lexicon lists the new words too. The
SoftLexicon input is off in both runs, and all words share one word vector
(word_rows = 1), so what the encoder learns is where a word lies, not which.
"""

import random
from typing import List, Tuple

import pytest
import spacy
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_lexner.lexicon.lexicon import Lexicon

from .util import small_model

WORD_CHARS = "甲乙丙丁戊己庚辛壬癸"
FILLER_CHARS = "的了是在有和就也"
ENCODERS = {
    "lattice_lstm": {"@architectures": "spacy-lexner.LatticeLSTMEncoder.v1", "hidden_width": 32, "dropout": 0.0},
    "lrcnn": {
        "@architectures": "spacy-lexner.LRCNNEncoder.v1",
        "hidden_width": 32,
        "depth": 3,
        "rethink": 2,
        "dropout": 0.0,
    },
}
Data = List[Tuple[str, List[Tuple[int, int, str]]]]


def lattice_task(seed: int = 0) -> Tuple[List[str], Data, Data]:
    """(lexicon words, train data, test data); test words are not in train."""
    rng = random.Random(seed)
    strings = sorted({"".join(rng.choices(WORD_CHARS, k=rng.choice((2, 3)))) for _ in range(400)})
    rng.shuffle(strings)
    words: List[str] = []
    for s in strings:  # no word inside another, so each text matches one word
        if len(words) < 40 and not any(s in w or w in s for w in words):
            words.append(s)
    # A decoy contains no lexicon word, so it matches nothing.
    decoys = [s for s in strings if not any(w in s for w in words)]
    filler = lambda: "".join(rng.choices(FILLER_CHARS, k=rng.choice((1, 2))))  # noqa: E731

    def texts(word_pool: List[str], n: int) -> Data:
        data = []
        for _ in range(n):
            word, decoy = rng.choice(word_pool), rng.choice(decoys)
            first, second = (word, decoy) if rng.random() < 0.5 else (decoy, word)
            text = filler() + first + filler() + second + filler()
            start = text.find(word) if first == word else text.rfind(word)
            data.append((text, [(start, start + len(word), "X")]))
        return data

    return words, texts(words[:20], 120), texts(words[20:], 60)


def train_and_score(encoder: dict, use_lattice: bool, words: List[str], train: Data, test: Data) -> float:
    fix_random_seed(0)
    model = small_model(encoder={**encoder, "use_lattice": use_lattice, "word_rows": 1}, use_lexicon=False)
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": model})
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": ents}) for t, ents in train]
    optimizer = nlp.initialize(lambda: examples)
    nlp.get_pipe("lexner_tagger").set_lexicon(Lexicon([(w, None, None) for w in words]))
    optimizer.learn_rate = 0.01
    rng = random.Random(0)
    for _ in range(12):
        rng.shuffle(examples)
        for start in range(0, len(examples), 8):
            nlp.update(examples[start : start + 8], sgd=optimizer)
    scores = nlp.evaluate([Example.from_dict(nlp.make_doc(t), {"entities": ents}) for t, ents in test])
    return scores["ents_f"]


def test_the_task_needs_the_lattice():
    words, train, test = lattice_task()
    test_words = {text[s:e] for text, ents in test for s, e, _ in ents}
    assert not test_words & {text[s:e] for text, ents in train for s, e, _ in ents}
    assert test_words <= set(words)
    for text, ents in train + test:
        # Exactly one lexicon word per text, and it is the entity.
        found = [(i, i + len(w)) for w in words for i in range(len(text)) if text.startswith(w, i)]
        assert found == [ents[0][:2]]


@pytest.mark.parametrize("name", list(ENCODERS))
def test_only_the_lattice_solves_it(name):
    words, train, test = lattice_task()
    with_lattice = train_and_score(ENCODERS[name], True, words, train, test)
    without = train_and_score(ENCODERS[name], False, words, train, test)
    assert with_lattice >= 0.9, (with_lattice, without)
    assert without <= 0.75, (with_lattice, without)
