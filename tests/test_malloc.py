"""Freed memory reused inside a Dask task (skmixed._malloc)."""

import os
import subprocess
import sys

import pytest

from skmixed._malloc import reusing_freed_memory

#: In a process started as Dask starts its workers: minor page faults of
#: ten 64 MB temporaries, made outside and inside the context.
_FAULTS = """
import resource
import numpy as np
from skmixed._malloc import _worker_settings, reusing_freed_memory

assert _worker_settings() is not None

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        np.ones(8 * 2**20)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults()
with reusing_freed_memory():
    inside = faults()
after = faults()
print(outside, inside, after)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc settings"
)
def test_freed_memory_is_reused_inside_and_returned_after():
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS], env=env, check=True, capture_output=True
    )
    outside, inside, after = map(int, out.stdout.split())
    # fresh mappings fault in every time; reused memory faults in once
    assert inside < outside / 3
    # on leaving, the worker's settings are back: fresh mappings again
    assert after > outside / 2


def test_no_op_without_the_worker_setting(monkeypatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)

    @reusing_freed_memory()
    def task(x):
        return x + 1

    assert task(1) == 2
    assert task.__name__ == "task"  # pickled by reference in a Dask graph
