"""``spacy-lexner annotate``: a corpus through a pipeline, resumable, on one
machine or a Ray cluster (docs/annotate.md). The CLI imports this package
inside its command, so `spacy-lexner --help` loads neither spaCy nor Ray.
"""

from .inputs import AnnotateError
from .job import AnnotateSettings, Summary, run_annotate

__all__ = ["AnnotateError", "AnnotateSettings", "Summary", "run_annotate"]
