"""Remove leaked text from the StringStore of a saved pipeline.

Pipelines saved by spacy-lexner 0.1.0 carry every text their tagger saw
while training and evaluating (each train and dev sentence, verbatim) in
``vocab/strings.json``: the tagger built its windows as one-token Docs, which
interned the window text together with the affixes and shape spaCy derives
from a lexeme. Nothing reads those strings back; they only leak the data.

A string is kept when the pipeline could need it:
- it is one character, or the pipeline's tokenizer reads it as one token
  (the vocabulary of a word-segmented pipeline);
- it is the key of a static vector;
- it is a label of one of the pipeline's components.
Everything else is removed. Strings a component needs at run time (labels,
pattern keys) are added back by spaCy when the pipeline loads or runs, so
the cleaned pipeline predicts exactly what the original predicts;
``clean_strings`` checks that on the removed texts themselves.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Set, Union

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc

# Enough to compare the outputs on a large sample of the removed texts
# without making a big pipeline's cleaning slow.
MAX_CHECKED_TEXTS = 2000


@dataclass
class CleanReport:
    n_strings: int
    n_removed: int
    longest_removed: int
    n_checked: int
    removed_sample: List[str] = field(default_factory=list)


def clean_strings(
    input_path: Union[str, Path], output_path: Union[str, Path], *, max_checked: int = MAX_CHECKED_TEXTS
) -> CleanReport:
    """Copy the pipeline at input_path to output_path without the strings it
    does not need, and check that both give the same entities.

    RAISES ValueError: output_path is input_path or inside it, already
        exists, or the cleaned pipeline predicts differently.
    """
    source, target = Path(input_path), Path(output_path)
    if not (source / "vocab" / "strings.json").is_file():
        raise ValueError(
            f"{source} is not a saved spaCy pipeline (no vocab/strings.json). Pass the "
            "directory written by nlp.to_disk or spacy train (e.g. training/model-best)."
        )
    if target.resolve() == source.resolve() or source.resolve() in target.resolve().parents:
        raise ValueError(
            f"The output {target} is the input pipeline or inside it. Write the cleaned "
            "pipeline to a new directory; the input is never changed."
        )
    if target.exists():
        raise ValueError(f"The output {target} already exists. Remove it or choose a new directory.")
    nlp = spacy.load(source)
    strings = srsly.read_json(source / "vocab" / "strings.json")
    needed = _needed_strings(nlp, strings)
    kept = [s for s in strings if s in needed]
    removed = [s for s in strings if s not in needed]
    shutil.copytree(source, target)
    srsly.write_json(target / "vocab" / "strings.json", kept)
    checked = _texts_to_check(removed, max_checked)
    try:
        _check_same_ents(nlp, spacy.load(target), checked)
    except ValueError:
        shutil.rmtree(target)
        raise
    return CleanReport(
        n_strings=len(strings),
        n_removed=len(removed),
        longest_removed=max(map(len, removed), default=0),
        n_checked=len(checked),
        removed_sample=sorted(removed, key=len, reverse=True)[:3],
    )


def _needed_strings(nlp: Language, strings: Iterable[str]) -> Set[str]:
    needed: Set[str] = set()
    vector_keys = set(int(key) for key in nlp.vocab.vectors.keys())
    for name, pipe in nlp.pipeline:
        labels = getattr(pipe, "labels", None) or ()
        needed.update(label for label in labels if isinstance(label, str))
    for string in strings:
        if len(string) <= 1 or nlp.vocab.strings[string] in vector_keys:
            needed.add(string)
        elif not string.isspace() and len(nlp.make_doc(string)) == 1:
            needed.add(string)
    return needed


def _texts_to_check(removed: List[str], limit: int) -> List[str]:
    texts = sorted(removed, key=len, reverse=True)[:limit]
    return texts + ["", " ", "张三在北京大学工作。", "iPhone 12在Apple Store卖3999元😀"]


def _check_same_ents(original: Language, cleaned: Language, texts: List[str]) -> None:
    for before, after in zip(original.pipe(texts), cleaned.pipe(texts)):
        if _ents(before) != _ents(after):
            raise ValueError(
                "The cleaned pipeline predicts different entities for "
                f"{before.text[:40]!r}: {_ents(before)} before, {_ents(after)} after. "
                "Nothing was written; please report this as a bug."
            )


def _ents(doc: Doc) -> list:
    return [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
