"""No unsafe deserialisation anywhere in the package."""

import re

from .util import REPO_ROOT

PICKLE = re.compile(r"^\s*(import pickle|from pickle|import cPickle)|pickle\.loads?\(", re.M)
TORCH_LOAD = re.compile(r"torch\.load\(([^)]*)\)")


def test_package_uses_no_pickle_or_unsafe_torch_load():
    sources = list((REPO_ROOT / "spacy_lexner").rglob("*.py")) + list((REPO_ROOT / "scripts").rglob("*.py"))
    assert sources
    for path in sources:
        text = path.read_text(encoding="utf8")
        assert not PICKLE.search(text), f"{path} uses pickle"
        for call in TORCH_LOAD.finditer(text):
            assert "weights_only=True" in call.group(1), f"{path}: torch.load without weights_only=True"
