"""The package is layered, and no module imports upward or sideways.

Layers, from the bottom up (a module may import only from its own layer or a
lower one):

    0   spacy_lexner/util/, and spacy_lexner/about.py (counted as util)
    1   spacy_lexner/lexicon/
    2a  spacy_lexner/models/pytorch/   (torch modules: a lower sub-layer)
    2b  spacy_lexner/models/           (the rest: thinc architectures)
    3   spacy_lexner/pipeline/
    4   spacy_lexner/corpora/, spacy_lexner/evaluation/ and spacy_lexner/annotate/
        (not each other)
    5   spacy_lexner/cli/
    top spacy_lexner/__init__.py, spacy_lexner/__main__.py (may import anything)

No module in a layer imports the package root (`import spacy_lexner`,
`from spacy_lexner import X` or `from .. import X` where X is not a
submodule): the root's __init__ imports everything. No other file may sit
directly in spacy_lexner/, and no other top-level package may exist.

Every import counts, wherever it is: at module level, inside functions,
methods and classes, under `if TYPE_CHECKING:`, in try/except, and
`importlib.import_module("spacy_lexner...")` / `__import__(...)` calls with a
literal name. The checker is plain functions below, tested on synthetic
sources so that it is known to be able to fail.
"""

import ast
import textwrap
from pathlib import Path
from typing import FrozenSet, Iterable, Iterator, List, NamedTuple, Optional, Set, Tuple

import pytest

PACKAGE = "spacy_lexner"
SOURCE_DIR = Path(__file__).resolve().parent.parent / PACKAGE


class Layer(NamedTuple):
    name: str
    rank: Tuple[int, int]
    label: str


LAYERS = {
    "util": Layer("util", (0, 0), "layer util[0]"),
    "lexicon": Layer("lexicon", (1, 0), "layer lexicon[1]"),
    "models.pytorch": Layer("models.pytorch", (2, 0), "layer models.pytorch[2a]"),
    "models": Layer("models", (2, 1), "layer models[2b]"),
    "pipeline": Layer("pipeline", (3, 0), "layer pipeline[3]"),
    "corpora": Layer("corpora", (4, 0), "layer corpora[4]"),
    "evaluation": Layer("evaluation", (4, 0), "layer evaluation[4]"),
    "annotate": Layer("annotate", (4, 0), "layer annotate[4]"),
    "cli": Layer("cli", (5, 0), "layer cli[5]"),
}
ROOT = Layer("root", (99, 0), "package root")
OUTSIDE = "outside the layout"
# Top-level packages of spacy_lexner/ (models/pytorch/ is inside models/).
LAYER_PACKAGES = frozenset(name for name in LAYERS if "." not in name)
# The only files allowed directly in spacy_lexner/, and their layers.
TOP_LEVEL_FILES = {"__init__.py": ROOT, "__main__.py": ROOT, "about.py": LAYERS["util"]}


class Violation(NamedTuple):
    line: int
    source: str
    target: str
    source_layer: Optional[Layer]
    target_layer: Optional[Layer]
    note: str = ""

    def format(self, path: str) -> str:
        if self.note:
            return f"{path}:{self.line}: {self.source}: {self.note}"
        src = self.source_layer.label if self.source_layer else OUTSIDE
        tgt = self.target_layer.label if self.target_layer else OUTSIDE
        return f"{path}:{self.line}: {self.source} imports {self.target} ({src} -> {tgt})"


# --------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------


def layer_of(module: str) -> Optional[Layer]:
    """The layer of a dotted module name in the package; None: outside the layout."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    rest = parts[1:]
    if not rest:
        return ROOT
    if len(rest) == 1 and rest[0] + ".py" in TOP_LEVEL_FILES:
        return TOP_LEVEL_FILES[rest[0] + ".py"]
    if rest[:2] == ["models", "pytorch"]:
        return LAYERS["models.pytorch"]
    if rest[0] in LAYER_PACKAGES:
        return LAYERS[rest[0]]
    return None


def is_allowed(source: Layer, target: Optional[Layer]) -> bool:
    """May a module of layer `source` import one of layer `target`?"""
    if source == ROOT:
        return True
    if target is None or target == ROOT:
        return False
    return target.name == source.name or target.rank < source.rank


def layout_problem(parts: Tuple[str, ...]) -> Optional[str]:
    """Why a file at `parts` (relative to spacy_lexner/) is outside the layout, or None."""
    if len(parts) == 1:
        if parts[0] in TOP_LEVEL_FILES:
            return None
        allowed = ", ".join(sorted(TOP_LEVEL_FILES))
        return f"is outside the layout (only {allowed} may sit directly in {PACKAGE}/)"
    if parts[0] not in LAYER_PACKAGES:
        return f"is outside the layout (unknown top-level package {parts[0]!r})"
    return None


def module_name(parts: Tuple[str, ...]) -> Tuple[str, bool]:
    """Dotted module name and is-package flag of a file at `parts` (relative to spacy_lexner/)."""
    names = [PACKAGE, *parts[:-1]]
    stem = parts[-1][: -len(".py")]
    is_package = stem == "__init__"
    if not is_package:
        names.append(stem)
    return ".".join(names), is_package


def resolve_relative(package: str, level: int, name: Optional[str]) -> Optional[str]:
    """importlib's resolution of `level` dots plus `name` against `package`; None: beyond the top."""
    bits = package.rsplit(".", level - 1) if package else []
    if len(bits) < level:
        return None
    base = bits[0]
    return f"{base}.{name}" if name else base


def _in_package(target: str) -> bool:
    return target == PACKAGE or target.startswith(PACKAGE + ".")


def _dynamic_import(node: ast.Call, module: str, package: str) -> Optional[str]:
    """The module named by `importlib.import_module("...")` / `__import__("...")`, if literal."""
    func = node.func
    fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if fname not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    name = first.value
    if not name.startswith("."):
        return name
    if fname != "import_module":
        return None
    anchor = node.args[1] if len(node.args) > 1 else None
    for keyword in node.keywords:
        if keyword.arg == "package":
            anchor = keyword.value
    if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
        anchor_name = anchor.value
    elif isinstance(anchor, ast.Name) and anchor.id == "__name__":
        anchor_name = module
    elif isinstance(anchor, ast.Name) and anchor.id == "__package__":
        anchor_name = package
    else:
        return None
    level = len(name) - len(name.lstrip("."))
    return resolve_relative(anchor_name, level, name[level:] or None) or name


def iter_imports(tree: ast.AST, module: str, is_package: bool, known: FrozenSet[str]) -> Iterator[Tuple[int, str, str]]:
    """(line, target module, note) for every import in `tree` of a module of the package.

    `known` holds the package's module and package names, to tell
    `from pkg import submodule` from `from pkg import name`. A note is set
    (and the target is the import as written) when the import cannot be
    resolved: a relative import beyond the top-level package.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ""
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = resolve_relative(package, node.level, node.module)
                if base is None:
                    written = "." * node.level + (node.module or "")
                    yield node.lineno, written, (f"relative import {written!r} goes beyond the top-level package")
                    continue
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield node.lineno, submodule if submodule in known else base, ""
        elif isinstance(node, ast.Call):
            target = _dynamic_import(node, module, package)
            if target is not None:
                yield node.lineno, target, ""


def check_source(
    source: str,
    module: str,
    is_package: bool = False,
    known: Iterable[str] = (),
    filename: str = "<string>",
) -> List[Violation]:
    """Every import in `source` (the text of `module`) that breaks the layering."""
    src_layer = layer_of(module)
    if src_layer is None:
        raise ValueError(f"{module} is outside the layout")
    known = frozenset(known)
    tree = ast.parse(source, filename=filename)
    seen: Set[Tuple[int, str]] = set()
    violations = []
    for line, target, note in iter_imports(tree, module, is_package, known):
        if (line, target) in seen:
            continue
        seen.add((line, target))
        if note:
            violations.append(Violation(line, module, target, src_layer, None, note))
            continue
        if not _in_package(target):
            continue
        tgt_layer = layer_of(target)
        if not is_allowed(src_layer, tgt_layer):
            violations.append(Violation(line, module, target, src_layer, tgt_layer))
    return sorted(violations)


def check_tree(source_dir: Path) -> Tuple[List[str], int]:
    """Every layering problem under `source_dir` (a spacy_lexner/ tree), and the file count."""
    root = source_dir.parent
    files = sorted(source_dir.rglob("*.py"))
    names = {path: module_name(path.relative_to(source_dir).parts) for path in files}
    known: Set[str] = set()
    for module, _ in names.values():
        parts = module.split(".")
        known.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    problems = []
    for path in files:
        shown = path.relative_to(root).as_posix()
        module, is_package = names[path]
        problem = layout_problem(path.relative_to(source_dir).parts)
        if problem:
            problems.append(f"{shown}: {module} {problem}")
            continue
        try:
            source = path.read_text(encoding="utf8")
            violations = check_source(source, module, is_package, known, filename=shown)
        except SyntaxError as err:
            problems.append(f"{shown}:{err.lineno}: cannot parse: {err.msg}")
            continue
        problems.extend(v.format(shown) for v in violations)
    return problems, len(files)


# --------------------------------------------------------------------------
# The real tree
# --------------------------------------------------------------------------


def test_package_layers():
    assert (SOURCE_DIR / "__init__.py").is_file(), f"no package at {SOURCE_DIR}"
    problems, n_files = check_tree(SOURCE_DIR)
    assert n_files > 1
    if problems:
        pytest.fail(
            f"{len(problems)} layering problem(s) in {n_files} files under {PACKAGE}/ "
            f"(see the layers in {Path(__file__).name}'s docstring):\n" + "\n".join(problems),
            pytrace=False,
        )


# --------------------------------------------------------------------------
# The checker itself
# --------------------------------------------------------------------------

KNOWN = frozenset(
    f"{PACKAGE}{suffix}"
    for suffix in (
        "",
        ".about",
        ".util",
        ".util.serialize",
        ".lexicon",
        ".lexicon.words",
        ".models",
        ".models.tagger",
        ".models.pytorch",
        ".models.pytorch.lstm",
        ".pipeline",
        ".pipeline.ner",
        ".corpora",
        ".corpora.readers",
        ".evaluation",
        ".evaluation.scores",
        ".cli",
        ".cli.train",
    )
)

P = PACKAGE
CASES = [
    # id, module, is_package, source, flagged (line, target) pairs
    (
        "upward-inside-function",
        f"{P}.lexicon.words",
        False,
        """
        import os

        def lookup(word):
            from spacy_lexner.pipeline import LexiconPipe
            return LexiconPipe
        """,
        {(5, f"{P}.pipeline")},
    ),
    (
        "upward-inside-method-try-except",
        f"{P}.util.serialize",
        False,
        """
        class Saver:
            def save(self):
                try:
                    from spacy_lexner.cli.train import app
                except ImportError:
                    app = None
        """,
        {(5, f"{P}.cli.train")},
    ),
    (
        "upward-under-type-checking",
        f"{P}.util.serialize",
        False,
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from spacy_lexner.models.tagger import Tagger
        """,
        {(4, f"{P}.models.tagger")},
    ),
    (
        "relative-three-dots-from-models-subpackage",
        f"{P}.models.architectures.tagger",
        False,
        """
        from ...pipeline import x
        """,
        {(2, f"{P}.pipeline")},
    ),
    (
        "relative-two-dots-from-models-module",
        f"{P}.models.tagger",
        False,
        """
        from ..pipeline import ner
        """,
        {(2, f"{P}.pipeline.ner")},
    ),
    (
        "relative-from-init-is-its-own-package",
        f"{P}.models",
        True,
        """
        from . import tagger, pytorch
        from ..lexicon import words
        from ..pipeline import x
        """,
        {(4, f"{P}.pipeline")},
    ),
    (
        "relative-beyond-top-level",
        f"{P}.models.tagger",
        False,
        """
        from ...pipeline import x
        """,
        {(2, "...pipeline")},
    ),
    (
        "sideways-corpora-to-evaluation",
        f"{P}.corpora.readers",
        False,
        """
        import spacy_lexner.evaluation.scores as scores
        """,
        {(2, f"{P}.evaluation.scores")},
    ),
    (
        "sideways-evaluation-to-corpora-relative",
        f"{P}.evaluation.scores",
        False,
        """
        from ..corpora import readers
        """,
        {(2, f"{P}.corpora.readers")},
    ),
    (
        "models-pytorch-to-models",
        f"{P}.models.pytorch.lstm",
        False,
        """
        from spacy_lexner.models.tagger import build
        from .. import tagger
        """,
        {(2, f"{P}.models.tagger"), (3, f"{P}.models.tagger")},
    ),
    (
        "models-pytorch-init-to-models",
        f"{P}.models.pytorch",
        True,
        """
        from ..tagger import build
        from . import lstm
        """,
        {(2, f"{P}.models.tagger")},
    ),
    (
        "allowed-downward",
        f"{P}.pipeline.ner",
        False,
        """
        import torch
        import spacy_lexner_extra
        import spacy_lexner.about
        from spacy_lexner.lexicon import Lexicon
        from ..models.tagger import build
        from ..models.pytorch import lstm
        from ..util import serialize
        from .. import lexicon, about
        from . import ner
        from .ner import Thing
        """,
        set(),
    ),
    (
        "allowed-models-to-pytorch-and-pytorch-down",
        f"{P}.models.pytorch.lstm",
        False,
        """
        from spacy_lexner.models.pytorch import lstm
        from ...lexicon.words import Words
        from ...util import serialize
        """,
        set(),
    ),
    (
        "about-is-util",
        f"{P}.util.serialize",
        False,
        """
        from ..about import __version__
        from .. import about
        """,
        set(),
    ),
    (
        "package-root-from-a-layer",
        f"{P}.util.serialize",
        False,
        """
        import spacy_lexner
        from spacy_lexner import __version__
        from .. import __version__ as version
        """,
        {(2, P), (3, P), (4, P)},
    ),
    (
        "outside-the-layout-target",
        f"{P}.lexicon.words",
        False,
        """
        from spacy_lexner.tagger.windows import windows
        from ..torch_utils import glue
        """,
        {(2, f"{P}.tagger.windows"), (3, f"{P}.torch_utils")},
    ),
    (
        "import-module-literal",
        f"{P}.pipeline.ner",
        False,
        """
        import importlib
        from importlib import import_module

        def load(name):
            importlib.import_module("spacy_lexner.cli.train")
            import_module(".evaluation.scores", package="spacy_lexner")
            import_module("..corpora", __package__)
            importlib.import_module(name)
            importlib.import_module("spacy_lexner.models.tagger")
            __import__("spacy_lexner.cli")
        """,
        {(6, f"{P}.cli.train"), (7, f"{P}.evaluation.scores"), (8, f"{P}.corpora"), (11, f"{P}.cli")},
    ),
    (
        "root-may-import-anything",
        P,
        True,
        """
        from .cli import app
        from . import corpora, evaluation
        import spacy_lexner.pipeline
        """,
        set(),
    ),
    (
        "main-may-import-anything",
        f"{P}.__main__",
        False,
        """
        from .cli import app
        from spacy_lexner import __version__
        """,
        set(),
    ),
]


@pytest.mark.parametrize(
    "module,is_package,source,flagged", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_checker_flags(module, is_package, source, flagged):
    violations = check_source(textwrap.dedent(source), module, is_package, KNOWN)
    assert {(v.line, v.target) for v in violations} == flagged


@pytest.mark.parametrize(
    "module,layer",
    [
        (P, "root"),
        (f"{P}.__main__", "root"),
        (f"{P}.about", "util"),
        (f"{P}.util.doc_ext", "util"),
        (f"{P}.lexicon", "lexicon"),
        (f"{P}.models", "models"),
        (f"{P}.models.tagger", "models"),
        (f"{P}.models.pytorchish", "models"),
        (f"{P}.models.pytorch", "models.pytorch"),
        (f"{P}.models.pytorch.lstm", "models.pytorch"),
        (f"{P}.pipeline.ner", "pipeline"),
        (f"{P}.corpora", "corpora"),
        (f"{P}.evaluation.x", "evaluation"),
        (f"{P}.cli.train", "cli"),
        (f"{P}.tagger", None),
        (f"{P}.convert", None),
        (f"{P}.about.x", None),
        ("spacy", None),
    ],
)
def test_layer_of(module, layer):
    found = layer_of(module)
    assert (found.name if found else None) == layer


@pytest.mark.parametrize(
    "package,level,name,expected",
    [
        (f"{P}.util", 1, None, f"{P}.util"),
        (f"{P}.util", 1, "x", f"{P}.util.x"),
        (f"{P}.util", 2, "lexicon", f"{P}.lexicon"),
        (f"{P}.util", 2, None, P),
        (f"{P}.util", 3, "x", None),
        (P, 1, "cli", f"{P}.cli"),
        (P, 2, None, None),
        (f"{P}.models.pytorch", 3, "pipeline", f"{P}.pipeline"),
    ],
)
def test_resolve_relative(package, level, name, expected):
    assert resolve_relative(package, level, name) == expected


@pytest.mark.parametrize(
    "parts,allowed",
    [
        (("__init__.py",), True),
        (("__main__.py",), True),
        (("about.py",), True),
        (("convert.py",), False),
        (("cli.py",), False),
        (("lexicon.py",), False),
        (("util", "__init__.py"), True),
        (("models", "pytorch", "lstm.py"), True),
        (("evaluation", "report", "plots.py"), True),
        (("tagger", "model.py"), False),
        (("report", "__init__.py"), False),
    ],
)
def test_layout_problem(parts, allowed):
    assert (layout_problem(parts) is None) == allowed


def test_module_name():
    assert module_name(("__init__.py",)) == (P, True)
    assert module_name(("about.py",)) == (f"{P}.about", False)
    assert module_name(("models", "pytorch", "__init__.py")) == (f"{P}.models.pytorch", True)
    assert module_name(("models", "pytorch", "lstm.py")) == (f"{P}.models.pytorch.lstm", False)


def test_message_format():
    source = "from spacy_lexner.models import tagger\n"
    (violation,) = check_source(source, f"{P}.models.pytorch.lstm", False, KNOWN)
    assert violation.format("spacy_lexner/models/pytorch/lstm.py") == (
        "spacy_lexner/models/pytorch/lstm.py:1: spacy_lexner.models.pytorch.lstm imports "
        "spacy_lexner.models.tagger (layer models.pytorch[2a] -> layer models[2b])"
    )


def test_check_tree_on_a_synthetic_package(tmp_path):
    files = {
        "__init__.py": "from .pipeline import ner\n",
        "about.py": "__version__ = '0'\n",
        "util/__init__.py": "",
        "util/serialize.py": "def f():\n    from ..lexicon import words\n",
        "lexicon/__init__.py": "from . import words\n",
        "lexicon/words.py": "from ..util import serialize\n",
        "models/__init__.py": "",
        "models/tagger.py": "from .pytorch import lstm\n",
        "models/pytorch/__init__.py": "from .. import tagger\n",
        "models/pytorch/lstm.py": "from ...lexicon import words\n",
        "pipeline/__init__.py": "",
        "pipeline/ner.py": "from ..models import tagger\nfrom spacy_lexner import about\n",
        "corpora/__init__.py": "from ..evaluation import scores\n",
        "evaluation/__init__.py": "",
        "evaluation/scores.py": "import spacy_lexner\n",
        "convert.py": "",
        "tagger/__init__.py": "",
        "broken/__init__.py": "def (:\n",
    }
    source_dir = tmp_path / PACKAGE
    for rel, text in files.items():
        path = source_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf8")
    problems, n_files = check_tree(source_dir)
    assert n_files == len(files)
    assert [p.split(" (")[0] for p in problems] == [
        "spacy_lexner/broken/__init__.py: spacy_lexner.broken is outside the layout",
        "spacy_lexner/convert.py: spacy_lexner.convert is outside the layout",
        "spacy_lexner/corpora/__init__.py:1: spacy_lexner.corpora imports spacy_lexner.evaluation.scores",
        "spacy_lexner/evaluation/scores.py:1: spacy_lexner.evaluation.scores imports spacy_lexner",
        "spacy_lexner/models/pytorch/__init__.py:1: spacy_lexner.models.pytorch imports spacy_lexner.models.tagger",
        "spacy_lexner/tagger/__init__.py: spacy_lexner.tagger is outside the layout",
        "spacy_lexner/util/serialize.py:2: spacy_lexner.util.serialize imports spacy_lexner.lexicon.words",
    ]
    (source_dir / "lexicon" / "broken.py").write_text("def (:\n", encoding="utf8")
    problems, _ = check_tree(source_dir)
    assert "spacy_lexner/lexicon/broken.py:1: cannot parse: invalid syntax" in problems
