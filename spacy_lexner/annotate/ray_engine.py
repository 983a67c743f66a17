"""``--engine ray``: the same shards, annotated by a pool of Ray actors.

The dataset is the list of pending shard descriptors (path, byte offset,
line range: a few hundred bytes each), one block per shard.
``map_batches(ShardAnnotator, batch_size=1, concurrency=N)`` gives each
actor one shard at a time; the actor loads the pipeline once, in its
constructor (a loaded pipeline is never put in the object store: its
weights come back as read-only buffers that torch refuses), reads its shard
from the input file, runs the same ``annotate_shards`` as the local engine
and returns the shard's output bytes. The driver writes each shard's files
atomically, so a task that Ray retries after a worker died writes the same
bytes to the same names: no record is lost or written twice. The input must
be readable at the same path on every node (a shared file system); the
output is written by the driver only.

Needs the ``ray`` extra: ``pip install "spacy-lexner[ray]"``.
"""

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

from .inputs import AnnotateError, ReadSpec, Shard
from .job import AnnotateSettings, Job, Progress

RAY_INSTALL = 'pip install "spacy-lexner[ray]"'
# Test-only: a path; the first actor to reach its second shard creates the
# file and exits, as a worker killed by the OOM killer would (once: the
# restarted actor sees the file).
KILL_ONCE_ENV = "SPACY_LEXNER_ANNOTATE_KILL_ONCE"


class ShardAnnotator:
    """A Ray Data callable class: one pipeline per actor, one shard per call."""

    def __init__(self, settings: Dict[str, Any], spec: Dict[str, Any], kill_once: str = "") -> None:
        import ray

        from .job import load_pipeline

        self.settings = AnnotateSettings(**settings)
        if ray.get_gpu_ids():
            # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU: it is device 0 here.
            self.settings.gpu_id = 0
        self.nlp = load_pipeline(self.settings)
        self.spec = ReadSpec(**spec)
        self.kill_once = kill_once
        self.n_calls = 0

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[Any]]:
        from .core import annotate_shards

        shards = [Shard.from_dict({k: batch[k][i] for k in batch}) for i in range(len(batch["index"]))]
        s = self.settings
        out: Dict[str, List[Any]] = {"index": [], "output": [], "rejects": [], "stats": []}
        for result in annotate_shards(self.nlp, shards, self.spec, s.long_texts, s.batch_size, n_process=1):
            self.n_calls += 1
            if self.kill_once and self.n_calls == 2 and not os.path.exists(self.kill_once):
                Path(self.kill_once).write_text(str(os.getpid()), encoding="utf-8")
                os._exit(1)
            out["index"].append(result.shard.index)
            out["output"].append(result.output_bytes())
            out["rejects"].append(result.reject_bytes())
            out["stats"].append(json.dumps(result.stats()))
        return out


def init_ray(address: Any = None) -> Any:
    """Connect to the cluster at address (or $RAY_ADDRESS), or start a local
    Ray; an already initialised Ray (a test's ray.init) is used as it is."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise AnnotateError(f"--engine ray needs Ray Data ({err}). Install it with: {RAY_INSTALL}") from None
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)
    return ray


def gpus_per_worker(settings: AnnotateSettings, cluster_gpus: float) -> float:
    """--num-gpus, or, by default, one GPU per worker when the cluster has
    enough for every worker, a share of them when it has fewer, else none."""
    if settings.num_gpus is not None:
        return settings.num_gpus
    if cluster_gpus <= 0:
        return 0.0
    return min(1.0, cluster_gpus / settings.concurrency)


def run_ray(job: Job, pending: List[Shard], progress: Progress, log: Callable[[str], None]) -> None:
    ray = init_ray(job.settings.ray_address)
    s = job.settings
    context = ray.data.DataContext.get_current()
    # Shards come back in input order (the driver would be right in any
    # order: each has its own file, but the bar and the logs read better).
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    num_gpus = gpus_per_worker(s, ray.cluster_resources().get("GPU", 0))
    log(f"Ray: {s.concurrency} workers, {num_gpus:g} GPU and {s.torch_threads or 1} CPU each, {len(pending)} shards")
    items = [shard.to_dict() for shard in pending]
    try:
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
    except TypeError:  # Ray before 2.10 names it parallelism
        dataset = ray.data.from_items(items, parallelism=len(items))
    settings = {**vars(s), "n_process": 1, "progress": False}
    spec = vars(job.spec)
    dataset = dataset.map_batches(
        ShardAnnotator,
        batch_size=1,
        # A fixed pool of --concurrency actors (what `concurrency=N` meant
        # before Ray 2.51 deprecated it). Ray Data restarts a dead actor and
        # retries its task (max_restarts=-1, max_task_retries=-1 are its
        # defaults for actor pools; passing them is deprecated since 2.5x):
        # the test of a killed worker checks that.
        compute=ray.data.ActorPoolStrategy(size=s.concurrency),
        num_cpus=s.torch_threads or 1,
        num_gpus=num_gpus,
        fn_constructor_kwargs={"settings": settings, "spec": spec, "kill_once": os.environ.get(KILL_ONCE_ENV, "")},
    )
    by_index = {shard.index: shard for shard in pending}
    for row in dataset.iter_rows():
        stats = json.loads(row["stats"])
        job.write_shard(int(row["index"]), bytes(row["output"]), bytes(row["rejects"]), stats)
        progress.update(by_index[int(row["index"])].n_lines, stats["chars"])
