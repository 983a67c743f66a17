"""The docs agree with the code they describe, and their links resolve.

- Numbers that are easy to read from a source (a config, project.yml, a
  registered function's defaults, a factory's default config) match it:
  the sentences listed in NUMBER_CHECKS, every table whose first column is
  `config` and whose other columns are in CONFIG_COLUMNS, and the `defaults`
  column of the encoder table in docs/encoders_and_decoders.md.
- Every relative link in README.md, docs/*.md and benchmarks/RESULTS.md
  points to a file that exists, and an `#anchor` to one of its headings.

Each check returns a list of problems for a repository root, so the last
test can run them on a deliberately wrong copy and see them fail. No spaCy
import: the sources are read with configparser, yaml and ast.
"""

import ast
import configparser
import json
import math
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import srsly

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "docs/*.md", "benchmarks/RESULTS.md")

# Sources: "configs/X.cfg" (dotted section.key), "project.yml" (dotted path),
# "factory:FILE" (a key of the @Language.factory default_config in FILE) and
# "const:FILE" (a module-level constant in FILE).
PROJECT, RESUME, WEIBO, LEXNER_TRF = "project.yml", "configs/resume.cfg", "configs/weibo.cfg", "configs/lexner_trf.cfg"
TAGGER_FACTORY = "factory:spacy_lexner/pipeline/lexner_tagger.py"
TAGGER = "components.lexner_tagger."
# doc -> (regex with one group, source, key). The doc's whitespace is
# collapsed to single spaces first, so a regex may span a line break.
NUMBER_CHECKS: Dict[str, List[Tuple[str, str, str]]] = {
    "README.md": [
        (r"`vars\.max_steps` = (\d[\d,]*)", PROJECT, "vars.max_steps"),
        (r"the config's own `max_steps = (\d+)`", WEIBO, "training.max_steps"),
    ],
    "docs/project.md": [
        (r"`vars\.max_steps` = (\d[\d,]*)", PROJECT, "vars.max_steps"),
        (r"as many as `configs/weibo\.cfg` \(`max_steps = (\d+)`", WEIBO, "training.max_steps"),
        (r"config's length \(`resume\.cfg` (\d+)\)", RESUME, "training.max_steps"),
        (r"\| `max_steps`, `eval_frequency` \| `(\d+)`, `\d+` \|", PROJECT, "vars.max_steps"),
        (r"\| `max_steps`, `eval_frequency` \| `\d+`, `(\d+)` \|", PROJECT, "vars.eval_frequency"),
        (r"`package_name`, `package_version` \| `[^`]+`, `([^`]+)` \|", PROJECT, "vars.package_version"),
    ],
    "docs/lexner_tagger.md": [
        (r"\| `window_size` \| (\d+) \|", TAGGER_FACTORY, "window_size"),
        (r"\| `window_overlap` \| (\d+) \|", TAGGER_FACTORY, "window_overlap"),
        (r"\| `batch_chars` \| (\d+) \|", TAGGER_FACTORY, "batch_chars"),
        (r"\| `alignment_mode` \| `([^`]+)` \|", TAGGER_FACTORY, "alignment_mode"),
        (r"\| `overwrite_ents` \| `([^`]+)` \|", TAGGER_FACTORY, "overwrite_ents"),
        (r"\| `quantize` \| `([^`]+)` \|", TAGGER_FACTORY, "quantize"),
        (r"`batch_by_padded` with (\d+) padded characters", RESUME, "training.batcher.size"),
        (r"\(`warmup_linear\.v1`, (\d+) warm-up steps\)", RESUME, "training.optimizer.learn_rate.warmup_steps"),
        (r"Weibo dev set \(width (\d+),", WEIBO, TAGGER + "model.encoder.hidden_width"),
        (r"Weibo dev set \(width \d+, dropout ([\d.]+),", WEIBO, TAGGER + "model.encoder.dropout"),
        (r"learning rate ([\d.]+)\), and adds world knowledge", WEIBO, "training.optimizer.learn_rate.initial_rate"),
    ],
    "docs/lexicon.md": [
        (r"`max_length` \((\d+) characters\)", "const:spacy_lexner/lexicon/lexicon.py", "DEFAULT_MAX_LENGTH"),
        (r"a (\d[\d,]*)-row table \(`word_rows`\)", RESUME, TAGGER + "model.embed.word_rows"),
        (r"min_length = 1 max_length = (\d+)", RESUME, "initialize." + TAGGER + "lexicon.max_length"),
    ],
    "docs/crf_ner.md": [
        (r"`spacy-lexner\.TokenVectorSoftLexiconEmbed\.v1`, width (\d+)", LEXNER_TRF, TAGGER + "model.embed.width"),
        (r"its learning rate of ([\de.-]+) is a compromise", LEXNER_TRF, "training.optimizer.learn_rate.initial_rate"),
    ],
    "docs/gpu.md": [
        (r"a BiLSTM (\d+) wide", RESUME, TAGGER + "model.encoder.hidden_width"),
        (r"a BiLSTM \d+ wide \((\d+) for Weibo\)", WEIBO, TAGGER + "model.encoder.hidden_width"),
        (r"batches of about (\d+) characters", RESUME, "training.batcher.size"),
    ],
}

# Columns of a `| config | ... |` table -> the config keys they show. Every
# key of a column that the config has must equal the cell; one must exist.
CONFIG_COLUMNS: Dict[str, Tuple[str, ...]] = {
    "max_steps": ("training.max_steps",),
    "eval_frequency": ("training.eval_frequency",),
    "patience": ("training.patience",),
    "hidden_width": ("components.lexner_tagger.model.encoder.hidden_width",),
    "dropout": ("components.lexner_tagger.model.embed.dropout", "components.lexner_tagger.model.encoder.dropout"),
    "learn_rate": ("training.optimizer.learn_rate.initial_rate", "training.optimizer.learn_rate"),
    "use_averages": ("training.optimizer.use_averages",),
}
ENCODER_DOC = "docs/encoders_and_decoders.md"

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


# -- reading the sources ------------------------------------------------------


def parse_value(text: str) -> Any:
    """A doc cell or config value as a Python value: numbers, booleans,
    null, strings (quotes and backticks dropped, digit commas ignored)."""
    text = text.strip().strip("`")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", text):
        text = text.replace(",", "")
    try:
        return json.loads(text)
    except ValueError:
        return text.strip("\"'")


def same(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


@lru_cache(maxsize=None)
def read_config(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keep the keys' case
    parser.read(path, encoding="utf-8")
    return parser


# An embed layer that extends another (spacy-lexner.LACEmbed.v1) holds the
# SoftLexicon block one level down: the docs' embed columns describe that one.
WRAPPED_EMBED = ("components.lexner_tagger.model.embed", "components.lexner_tagger.model.embed.embed")


def config_value(path: Path, dotted: str) -> Optional[Any]:
    section, _, key = dotted.rpartition(".")
    parser = read_config(path)
    outer, inner = WRAPPED_EMBED
    if section == outer and parser.has_section(inner):
        section = inner
    if not parser.has_option(section, key):
        return None
    return parse_value(parser.get(section, key))


@lru_cache(maxsize=None)
def parse_module(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def function_defaults(path: Path, name: str) -> Dict[str, Any]:
    for node in ast.walk(parse_module(path)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            args = node.args.args
            defaults = dict(zip([a.arg for a in args[len(args) - len(node.args.defaults) :]], node.args.defaults))
            defaults.update({a.arg: d for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None})
            return {arg: ast.literal_eval(value) for arg, value in defaults.items()}
    raise KeyError(f"no function {name} in {path}")


def factory_defaults(path: Path) -> Dict[str, Any]:
    """Literal values of the default_config of the @Language.factory in path."""
    for node in ast.walk(parse_module(path)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "factory":
            for keyword in node.keywords:
                if keyword.arg == "default_config" and isinstance(keyword.value, ast.Dict):
                    out = {}
                    for key, value in zip(keyword.value.keys, keyword.value.values):
                        try:
                            out[ast.literal_eval(key)] = ast.literal_eval(value)
                        except ValueError:
                            pass  # a name such as DEFAULT_MODEL
                    return out
    raise KeyError(f"no @Language.factory default_config in {path}")


def module_constant(path: Path, name: str) -> Any:
    for node in parse_module(path).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"no constant {name} in {path}")


def source_value(root: Path, source: str, key: str) -> Any:
    if source.endswith(".cfg"):
        return config_value(root / source, key)
    if source == "project.yml":
        value: Any = srsly.read_yaml(root / source)
        for part in key.split("."):
            value = value[part]
        return value
    kind, _, path = source.partition(":")
    if kind == "factory":
        return factory_defaults(root / path).get(key)
    if kind == "const":
        return module_constant(root / path, key)
    raise ValueError(f"unknown source {source}")


def architecture_builders(root: Path) -> Dict[str, Tuple[Path, str]]:
    """Registered architecture name -> (module file, function), from setup.cfg."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(root / "setup.cfg", encoding="utf-8")
    builders = {}
    for line in parser.get("options.entry_points", "spacy_architectures").strip().splitlines():
        name, _, target = (part.strip() for part in line.partition("="))
        module, _, function = target.partition(":")
        builders[name] = (root / (module.replace(".", "/") + ".py"), function)
    return builders


# -- reading the docs ---------------------------------------------------------


def doc_files(root: Path) -> List[Path]:
    return sorted(path for pattern in DOCS for path in root.glob(pattern))


def flat_text(path: Path) -> str:
    return re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))


def tables(text: str) -> List[List[List[str]]]:
    """Markdown tables outside code blocks: rows of cells, header first."""
    found, current = [], []
    for line in FENCE.sub("", text).splitlines() + [""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set:
    seen: Dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


# -- the checks ---------------------------------------------------------------


def check_numbers(root: Path) -> List[str]:
    problems = []
    for doc, checks in NUMBER_CHECKS.items():
        text = flat_text(root / doc)
        for pattern, source, key in checks:
            expected = source_value(root, source, key)
            matches = re.findall(pattern, text)
            if not matches:
                problems.append(f"{doc}: no text matches {pattern!r} (update NUMBER_CHECKS if the doc changed)")
            for found in matches:
                if not same(parse_value(found), expected):
                    problems.append(f"{doc}: says {found} where {source} has {key} = {expected}")
    return problems


def check_config_tables(root: Path) -> List[str]:
    problems = []
    n_checked = 0
    for path in doc_files(root):
        doc = path.relative_to(root)
        for table in tables(path.read_text(encoding="utf-8")):
            header = table[0]
            known = [h for h in header[1:] if h in CONFIG_COLUMNS]
            if header[0] != "config" or not known:
                continue
            unknown = [h for h in header[1:] if h not in CONFIG_COLUMNS]
            if unknown:
                problems.append(f"{doc}: config table columns {unknown} are not in CONFIG_COLUMNS")
            for row in table[1:]:
                match = re.search(r"configs/\w+\.cfg", row[0])
                if not match:
                    problems.append(f"{doc}: config table row {row[0]!r} names no configs/*.cfg")
                    continue
                for column, cell in zip(header[1:], row[1:]):
                    values = [config_value(root / match.group(0), k) for k in CONFIG_COLUMNS.get(column, ())]
                    values = [v for v in values if v is not None]
                    if not values:
                        problems.append(f"{doc}: {match.group(0)} has none of {CONFIG_COLUMNS.get(column)}")
                    for value in values:
                        n_checked += 1
                        if not same(parse_value(cell), value):
                            problems.append(f"{doc}: {match.group(0)} {column} is {value}, the table says {cell}")
    if not n_checked:
        problems.append("no config table found in the docs")
    return problems


def check_encoder_defaults(root: Path) -> List[str]:
    problems = []
    builders = architecture_builders(root)
    table = next((t for t in tables((root / ENCODER_DOC).read_text(encoding="utf-8")) if "defaults" in t[0]), None)
    if table is None:
        return [f"{ENCODER_DOC}: no table with a 'defaults' column"]
    column = table[0].index("defaults")
    for row in table[1:]:
        name = row[0].strip("` ").split("`")[0]
        if name not in builders:
            problems.append(f"{ENCODER_DOC}: {name} is not a registered architecture in setup.cfg")
            continue
        defaults = function_defaults(*builders[name])
        pairs = re.findall(r"`(\w+) = ([^`]+)`", row[column])
        if not pairs:
            problems.append(f"{ENCODER_DOC}: no `name = value` defaults for {name}")
        for arg, text in pairs:
            if arg not in defaults:
                problems.append(f"{ENCODER_DOC}: {name} has no argument {arg} with a default")
            elif not same(parse_value(text), defaults[arg]):
                problems.append(f"{ENCODER_DOC}: {name} {arg} defaults to {defaults[arg]!r}, the doc says {text}")
    return problems


def check_links(root: Path) -> List[str]:
    problems = []
    for path in doc_files(root):
        text = INLINE_CODE.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(root)}: link {target}"
            if not linked.exists():
                problems.append(f"{where}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{where}: no heading #{anchor} in {linked.name}")
    return problems


CHECKS = (check_numbers, check_config_tables, check_encoder_defaults, check_links)


def test_numbers_match_their_sources() -> None:
    assert check_numbers(REPO_ROOT) == []


def test_config_tables_match_the_configs() -> None:
    assert check_config_tables(REPO_ROOT) == []


def test_encoder_defaults_match_the_code() -> None:
    assert check_encoder_defaults(REPO_ROOT) == []


def test_relative_links_resolve() -> None:
    assert check_links(REPO_ROOT) == []


def test_checks_fail_on_a_wrong_copy(tmp_path: Path) -> None:
    """Each check reports a deliberate mistake in a copy of the docs."""
    for name in ("README.md", "project.yml", "setup.cfg"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    for name in ("docs", "configs", "assets/weibo"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("weiboNER_*"))
    shutil.copytree(REPO_ROOT / "spacy_lexner", tmp_path / "spacy_lexner", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(REPO_ROOT / "benchmarks" / "RESULTS.md", tmp_path / "benchmarks" / "RESULTS.md")
    for check in CHECKS:
        assert check(tmp_path) == [], check.__name__

    def edit(name: str, old: str, new: str) -> None:
        path = tmp_path / name
        text = path.read_text(encoding="utf-8")
        assert old in text, (name, old)
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    edit("docs/project.md", "`vars.max_steps` = 1000", "`vars.max_steps` = 2000")
    edit("docs/gpu.md", "(300 for Weibo)", "(200 for Weibo)")
    edit(
        "docs/lexner_tagger.md",
        "| 1000 | 200 | 300 | 0.3 | 0.004 | true |",
        "| 2000 | 200 | 300 | 0.3 | 0.004 | true |",
    )
    edit(ENCODER_DOC, "`max_words = 128`", "`max_words = 64`")
    edit("docs/gpu.md", "[project.md](project.md)", "[project.md](projects.md)")
    edit("README.md", "(docs/data.md)", "(docs/data.md#no-such-heading)")
    problems = {check.__name__: check(tmp_path) for check in CHECKS}

    assert any("docs/project.md: says 2000" in p for p in problems["check_numbers"]), problems
    assert any("docs/gpu.md: says 200" in p for p in problems["check_numbers"]), problems
    assert any("configs/weibo.cfg max_steps is 1000" in p for p in problems["check_config_tables"]), problems
    assert any("max_words defaults to 128" in p for p in problems["check_encoder_defaults"]), problems
    assert any("projects.md: no such file" in p for p in problems["check_links"]), problems
    assert any("no heading #no-such-heading" in p for p in problems["check_links"]), problems
