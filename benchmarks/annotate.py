"""Throughput of `spacy-lexner annotate`: the local engine at --n-process 1
and 2, Ray at --concurrency 1 and 2, against a plain nlp.pipe loop.

    python benchmarks/annotate.py --model training/resume/model-best --records 100000

The corpus is --records JSONL records: the Resume train sentences
(/work/shared/data/resume/train.char.bmes, one char + tag per line) cycled
in order, or the texts of --input (a JSONL file with a "text" field). Each
system runs once, in a fresh process (the CLI, as a user runs it; the
baseline is this script's own child), so every number includes loading the
pipeline: wall time, records/s and chars/s over the whole run, and the peak
RSS of each process of the run (VmHWM from /proc, Linux only: the driver,
and the nlp.pipe children or the Ray workers). Every engine's output is
checked to equal the baseline's entities. The JSON lands in --out.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from lexicon_throughput import read_sentences as resume_sentences  # noqa: E402

BASELINE = """
import json, sys, time
import spacy, torch
torch.set_num_threads(1)
started = time.perf_counter()
nlp = spacy.load(sys.argv[1])
loaded = time.perf_counter()
texts = [json.loads(line)["text"] for line in open(sys.argv[2], encoding="utf-8")]
with open(sys.argv[3], "w", encoding="utf-8") as out:
    for doc in nlp.pipe(texts, batch_size=int(sys.argv[4])):
        out.write(json.dumps([[e.start_char, e.end_char, e.label_] for e in doc.ents]) + "\\n")
print(json.dumps({"load_s": loaded - started}))
"""


def write_corpus(texts: List[str], n: int, path: Path) -> int:
    n_chars = 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text = texts[i % len(texts)]
            n_chars += len(text)
            f.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
    return n_chars


def descendants(pid: int) -> List[int]:
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    for marker in ("MapWorker", "raylet", "gcs_server", "ray::"):
        if marker in cmd:
            return marker
    return "python" if "python" in cmd else cmd.split(" ")[0][-20:]


def run(command: List[str]) -> Dict:
    """Run command, sampling the peak RSS of it and its descendants."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: Dict[int, tuple] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid in descendants(proc.pid):
                rss = peak_rss_mb(pid)
                if rss:
                    peaks[pid] = (process_name(pid), max(rss, peaks.get(pid, ("", 0))[1]))
            stop.wait(0.3)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return {"wall_s": wall, "stdout": stdout, "peaks": sorted(peaks.values(), key=lambda p: -p[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="training/resume/model-best")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--input", type=Path, help="JSONL with a text field [default: Resume train sentences]")
    parser.add_argument("--resume-data", type=Path, default=Path("/work/shared/data/resume/train.char.bmes"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--systems", default="baseline,local1,local2,ray1,ray2")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_annotate.json")
    args = parser.parse_args()

    if args.input:
        texts = [json.loads(line)["text"] for line in args.input.read_text(encoding="utf-8").splitlines() if line]
    else:
        texts = resume_sentences(args.resume_data)
    work = Path(tempfile.mkdtemp(prefix="annotate-bench-"))
    corpus = work / "corpus.jsonl"
    n_chars = write_corpus(texts, args.records, corpus)
    print(f"{args.records:,} records, {n_chars:,} chars ({n_chars / args.records:.1f} per record) in {corpus}")
    cli = [sys.executable, "-m", "spacy_lexner", "annotate", args.model, str(corpus)]
    common = ["--batch-size", str(args.batch_size), "--shard-size", str(args.shard_size), "--no-progress"]
    systems = {
        "baseline": [sys.executable, "-c", BASELINE, args.model, str(corpus), str(work / "baseline.jsonl")],
        "local1": cli + [str(work / "local1.jsonl"), "--n-process", "1"] + common,
        "local2": cli + [str(work / "local2.jsonl"), "--n-process", "2"] + common,
        "ray1": cli + [str(work / "ray1.jsonl"), "--engine", "ray", "--concurrency", "1"] + common,
        "ray2": cli + [str(work / "ray2.jsonl"), "--engine", "ray", "--concurrency", "2"] + common,
    }
    systems["baseline"].append(str(args.batch_size))
    results = {}
    for name in args.systems.split(","):
        result = run(systems[name])
        result["records_per_s"] = args.records / result["wall_s"]
        result["chars_per_s"] = n_chars / result["wall_s"]
        if name == "baseline":  # its child prints the pipeline's load time
            result["load_s"] = json.loads(result["stdout"].strip().splitlines()[-1])["load_s"]
        results[name] = result
        peaks = ", ".join(f"{n} {mb:.0f}" for n, mb in result["peaks"][:4])
        print(
            f"{name:9} {result['wall_s']:7.1f} s {result['records_per_s']:8,.0f} rec/s {result['chars_per_s']:10,.0f} chars/s  peak RSS MB: {peaks}"
        )
    # Same entities as the plain loop, record by record.
    if "baseline" in results:
        expected = (work / "baseline.jsonl").read_text(encoding="utf-8").splitlines()
        for name in results:
            if name != "baseline":
                got = [
                    json.dumps([[e["start"], e["end"], e["label"]] for e in json.loads(line)["ents"]])
                    for line in (work / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
                ]
                results[name]["same_entities_as_baseline"] = got == expected
                print(f"{name}: same entities as the baseline: {got == expected}", flush=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    payload = {"records": args.records, "chars": n_chars, "batch_size": args.batch_size, "machine": machine}
    payload["results"] = {k: {kk: vv for kk, vv in v.items() if kk != "stdout"} for k, v in results.items()}
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
