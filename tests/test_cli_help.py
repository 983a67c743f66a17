"""`spacy-lexner --help` reads well at 80 columns and starts without loading
spaCy or torch."""

import os
import subprocess
import sys

import pytest

from .util import REPO_ROOT

COMMANDS = ["", "convert", "report", "pretrain-vectors", "merge-ensemble", "clean-strings", "serve", "annotate"]
HELP = """
import json, sys
from typer.main import get_command
from spacy_lexner.cli import app
from click.testing import CliRunner
result = CliRunner().invoke(get_command(app), sys.argv[1:] + ["--help"], terminal_width=80)
print(json.dumps({"output": result.output, "code": result.exit_code,
                  "loaded": sorted(m for m in ("spacy", "torch", "thinc", "numpy") if m in sys.modules)}))
"""


def run_help(command: str) -> dict:
    import json

    env = {**os.environ, "COLUMNS": "80"}
    args = [sys.executable, "-c", HELP] + ([command] if command else [])
    proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO_ROOT, env=env, check=True)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c or "main")
def test_help_fits_80_columns_and_loads_no_model_code(command):
    result = run_help(command)
    assert result["code"] == 0, result["output"]
    lines = result["output"].splitlines()
    assert lines and lines[0].startswith("Usage: spacy-lexner")
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, too_wide
    assert "…" not in result["output"]  # rich's truncation of option names
    if "Commands:" in result["output"]:  # click cuts a short help that does not fit with "..."
        assert "..." not in result["output"].split("Commands:")[1]
    assert result["loaded"] == [], f"--help imported {result['loaded']}"


def test_register_imports_every_registering_module():
    code = (
        "import spacy_lexner, spacy; spacy_lexner.register();"
        "from spacy.util import registry;"
        "print(registry.architectures.get('spacy-lexner.CRFDecoder.v1').__name__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert proc.stdout.strip() == "build_crf_decoder"
