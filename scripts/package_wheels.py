"""Build the wheels a packaged pipeline needs into one folder, so that
`pip install torch==2.13.0` then `pip install OUTPUT/*.whl` installs it alone.

    python scripts/package_wheels.py MODEL_DIR OUTPUT --name NAME --version VERSION [--meta-path META]

`spacy package` writes the pipeline's wheel under OUTPUT/<lang>_<name>-<version>/dist/;
it lists spacy-lexner among its requirements (the factories come from
spacy-lexner's entry points), which is not on PyPI. This script also builds
the spacy-lexner wheel from the checkout it is installed from (`python -m build`) and copies both
wheels to OUTPUT/.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def source_tree() -> Path:
    """The checkout spacy-lexner is installed from (editable: `pip install -e .`)."""
    import spacy_lexner

    root = Path(spacy_lexner.__file__).resolve().parent.parent
    if not (root / "setup.cfg").is_file():
        raise SystemExit(
            f"spacy-lexner is installed from {root}, not from a checkout: install it with "
            "`pip install -e .` from the repository to build its wheel."
        )
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--meta-path", type=Path, default=None)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    package = [sys.executable, "-m", "spacy", "package", str(args.model_dir), str(args.output)]
    package += ["--name", args.name, "--version", args.version, "--build", "wheel", "--force"]
    if args.meta_path is not None:
        package += ["--meta-path", str(args.meta_path)]
    subprocess.run(package, check=True)
    pipeline_wheels = sorted(args.output.glob(f"*_{args.name}-{args.version}/dist/*.whl"))
    if not pipeline_wheels:
        raise SystemExit(f"spacy package wrote no wheel under {args.output}")
    for wheel in pipeline_wheels:
        shutil.copy(wheel, args.output / wheel.name)
    for old in args.output.glob("spacy_lexner-*.whl"):
        old.unlink()
    build = [sys.executable, "-m", "build", "--wheel", "--outdir", str(args.output), str(source_tree())]
    subprocess.run(build, check=True)
    wheels = sorted(p.name for p in args.output.glob("*.whl"))
    print(f"Wheels in {args.output}: {', '.join(wheels)}")
    print(f"Install them alone: pip install torch==2.13.0 && pip install {args.output}/*.whl")


if __name__ == "__main__":
    main()
