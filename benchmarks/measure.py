"""Run one command and report its wall time and peak RSS as JSON on the last line.

    python benchmarks/measure.py -- python -m spacy train ...

Peak RSS comes from getrusage(RUSAGE_CHILDREN) in this fresh process, so it is
the peak of exactly that one command (and its own children).
"""

import json
import resource
import subprocess
import sys
import time


def main() -> None:
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    start = time.perf_counter()
    result = subprocess.run(cmd)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"returncode": result.returncode, "wall_s": wall, "peak_rss_mb": peak_kb / 1024}))
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
