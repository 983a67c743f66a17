"""Hypothesis profiles.

"ci" (the default): derandomized, so every run tries the same examples, and
small enough for CI. "long": many more random examples, for local fuzzing:
    HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz.py
"""

import os

# One torch thread per test process (and per child process: nlp.pipe with
# n_process, spacy train in a subprocess). The tiny test models gain nothing
# from more, and on a machine whose cores are busy, two torch threads made a
# 600-char prediction 100x slower (2.5 s instead of 0.02 s) from contention.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
