"""Load test of `spacy-lexner serve` on localhost: throughput, latency,
errors and mismatches against offline nlp(text), for 1 and 2 workers, with
1 client and with N concurrent clients.

    python benchmarks/serve_load.py --model training/resume/model-best
    python benchmarks/serve_load.py --model training/resume/model-best --requests 100 --output /tmp/serve.json

Each client is a thread with one keep-alive HTTP connection (http.client)
that posts --requests requests of 1-5 texts drawn (seeded) from the test
DocBin, and stops early after --max-seconds. Every served entity list is
compared with what the same pipeline gives offline (loaded here once); the
expected numbers: 0 errors, 0 mismatches, and with 2 workers the N-client
throughput at least 1.5x the 1-client one (on a machine with 2 free cores).
The server is started through the real CLI, one run per worker count.
"""

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
from spacy.tokens import DocBin

Ents = List[Tuple[int, int, str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, workers: int, port: int, log_path: Path, timeout: float = 180.0) -> subprocess.Popen:
    args = [sys.executable, "-m", "spacy_lexner", "serve", str(model), "--port", str(port)]
    args += ["--workers", str(workers), "--no-access-log"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log_path}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"the server did not answer /health in {timeout} s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def percentile(values: List[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_clients(
    port: int,
    n_clients: int,
    n_requests: int,
    texts: List[str],
    expected: Dict[str, Ents],
    max_seconds: float,
    seed: int,
) -> Dict:
    latencies: List[float] = []
    errors: List[str] = []
    mismatches: List[str] = []
    pids = set()
    n_texts = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(n_clients + 1)
    stop_at = [0.0]

    def client(k: int) -> None:
        rnd = random.Random(seed * 1000 + k)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/health")
        pid = json.loads(conn.getresponse().read())["pid"]
        barrier.wait()
        mine: List[float] = []
        for _ in range(n_requests):
            if time.perf_counter() > stop_at[0]:
                break
            batch = rnd.sample(texts, rnd.randint(1, 5))
            body = json.dumps({"texts": batch}).encode("utf8")
            start = time.perf_counter()
            try:
                conn.request("POST", "/ents", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = json.loads(response.read())
            except (OSError, http.client.HTTPException, ValueError) as err:
                with lock:
                    errors.append(f"{type(err).__name__}: {err}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                with lock:
                    errors.append(f"{response.status}: {data}")
                continue
            bad = [
                t
                for t, d in zip(batch, data["docs"])
                if [(e["start"], e["end"], e["label"]) for e in d["ents"]] != expected[t]
            ]
            with lock:
                n_texts[0] += len(batch)
                mismatches.extend(bad)
        conn.close()
        with lock:
            latencies.extend(mine)
            pids.add(pid)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + max_seconds + 3600  # set properly once all clients are connected
    barrier.wait()
    start = time.perf_counter()
    stop_at[0] = start + max_seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {
        "clients": n_clients,
        "requests": len(latencies),
        "texts": n_texts[0],
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "texts_per_s": round(n_texts[0] / elapsed, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 1),
        "p95_ms": round(1000 * percentile(latencies, 95), 1),
        "p99_ms": round(1000 * percentile(latencies, 99), 1),
        "errors": len(errors),
        "mismatches": len(mismatches),
        "worker_pids_seen": len(pids),
        "first_errors": errors[:3],
        "first_mismatches": mismatches[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="trained pipeline directory")
    parser.add_argument("--test", type=Path, default=Path("benchmarks/runs_encoders/resume/corpus/test.spacy"))
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the concurrent runs")
    parser.add_argument("--requests", type=int, default=500, help="requests per client")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop a run's clients after this")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results_serve_load.json"))
    args = parser.parse_args()
    # One torch thread per process, here and in the workers (the CLI's default).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

    nlp = spacy.load(args.model)
    texts = sorted({doc.text for doc in DocBin().from_disk(args.test).get_docs(nlp.vocab) if doc.text.strip()})
    start = time.perf_counter()
    expected = {t: [(e.start_char, e.end_char, e.label_) for e in nlp(t).ents] for t in texts}
    offline_s = time.perf_counter() - start
    print(f"{len(texts)} distinct test texts; offline nlp(text) {len(texts) / offline_s:.1f} texts/s (1 thread)")

    rows = []
    for workers in args.workers:
        port = free_port()
        log = Path(f"/tmp/serve_load_{workers}w.log")
        proc = start_server(args.model, workers, port, log)
        try:
            for n_clients in (1, args.clients):
                row = run_clients(port, n_clients, args.requests, texts, expected, args.max_seconds, args.seed)
                row["workers"] = workers
                rows.append(row)
                print(json.dumps(row))
        finally:
            stop_server(proc)

    print()
    print("| workers | clients | requests | req/s | texts/s | p50 ms | p95 ms | p99 ms | errors | mismatches |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['clients']} | {r['requests']} | {r['requests_per_s']} | {r['texts_per_s']} "
            f"| {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} | {r['mismatches']} |"
        )
    speedups = {}
    for workers in args.workers:
        one = next(r for r in rows if r["workers"] == workers and r["clients"] == 1)
        many = next(r for r in rows if r["workers"] == workers and r["clients"] == args.clients)
        speedups[workers] = round(many["requests_per_s"] / one["requests_per_s"], 2)
        print(f"{workers} worker(s): {args.clients} clients get {speedups[workers]}x the throughput of 1 client")
    result = {
        "model": str(args.model),
        "test": str(args.test),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "requests_per_client": args.requests,
        "rows": rows,
        "speedup_n_clients_over_1": speedups,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf8")
    print(f"wrote {args.output}")
    if any(r["errors"] or r["mismatches"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
