"""Freed memory reused inside a Dask task (skmixed._malloc)."""

import os
import subprocess
import sys

import pytest

from skmixed._malloc import reusing_freed_memory

#: How much memory a freed 64 MB temporary leaves in the process (MB),
#: read from /proc: the start of each script below.
_MEASURE = """
import os
import numpy as np

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def kept():
    before = resident()
    np.ones(8 * 2**20)  # made, touched, freed
    return resident() - before
"""


def _run_as_worker(script):
    """The numbers ``script`` prints, run after :data:`_MEASURE` in a
    process started as Dask starts its workers."""
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE + script],
        env=env,
        check=True,
        capture_output=True,
    )
    return map(float, out.stdout.split())


#: In a process started as Dask starts its workers: the memory a freed
#: 64 MB temporary leaves in the process (MB), outside the context, inside
#: it, and after it.
_KEPT = """
from skmixed._malloc import _worker_settings, reusing_freed_memory

assert _worker_settings() is not None

outside = kept()
with reusing_freed_memory():
    inside = kept()
    before = resident()
after = resident() - before
print(outside, inside, after)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc settings"
)
def test_freed_memory_is_kept_inside_and_returned_after():
    outside, inside, after = _run_as_worker(_KEPT)
    assert outside < 16  # returned to the system at once (the worker's way)
    assert inside > 48  # kept for the next temporary
    assert after < -48  # handed back on leaving


def test_no_op_without_the_worker_setting(monkeypatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)

    @reusing_freed_memory()
    def task(x):
        return x + 1

    assert task(1) == 2
    assert task.__name__ == "task"  # pickled by reference in a Dask graph


#: keep_until_released: freed memory kept across tasks until release(),
#: however often it is asked for; release() hands it back once.
_HELD = """
from skmixed import _malloc

_malloc.keep_until_released()
_malloc.keep_until_released()  # a second batch of the same pass
with _malloc.reusing_freed_memory():  # a task starts and ends meanwhile
    pass
held = kept()
before = resident()
_malloc.release()
after = resident() - before
_malloc.release()  # again: nothing to do
print(held, after, kept())
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc settings"
)
def test_freed_memory_is_kept_between_tasks_until_released():
    held, after, outside = _run_as_worker(_HELD)
    assert held > 48  # kept, though the task in between has ended
    assert after < -48  # handed back on release
    assert outside < 16  # and the worker's own setting is back


#: Huge pages (kB) of a fresh 64 MB array, outside the context, inside it
#: and after it (numpy asks for them by madvise; the context turns that off).
_HUGE = """
from skmixed._malloc import reusing_freed_memory

def huge_pages():
    with open("/proc/self/smaps_rollup") as f:
        line = next(x for x in f if x.startswith("AnonHugePages:"))
    return int(line.split()[1])

def fresh():
    before = huge_pages()
    a = np.ones(8 * 2**20)
    return huge_pages() - before

outside = fresh()
with reusing_freed_memory():
    inside = fresh()
print(outside, inside, fresh())
"""


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


@pytest.mark.skipif(
    _thp_mode() != "madvise", reason="huge pages only where madvise asks for them"
)
def test_no_huge_pages_inside():
    outside, inside, after = _run_as_worker(_HUGE)
    assert outside > 0  # numpy's default: huge pages for large arrays
    assert inside == 0  # 4 kB pages: a cheaper first touch on a VM
    assert after > 0  # numpy's setting back


#: small_pages_for: huge pages (kB) of a fresh 64 MB array inside it for an
#: X of SMALL_PAGES_VALUES values (nested too), for a smaller X, after it;
#: and numpy's setting after a fit.
_SMALL = (
    _HUGE.split("outside = fresh()")[0]
    + """
from types import SimpleNamespace

import pandas as pd
from numpy._core.multiarray import _set_madvise_hugepage
from skmixed import MixedLMRegressor
from skmixed._malloc import SMALL_PAGES_VALUES, small_pages_for

large = SimpleNamespace(shape=(SMALL_PAGES_VALUES // 5, 5))
small = SimpleNamespace(shape=(SMALL_PAGES_VALUES // 5 - 1, 5))
with small_pages_for(large):
    with small_pages_for(large):
        inside = fresh()
    still = fresh()
with small_pages_for(small):
    below = fresh()
after = fresh()
rng = np.random.default_rng(0)
X = pd.DataFrame({"x": rng.normal(size=200), "g": np.repeat(np.arange(20), 10)})
y = X["x"] + rng.normal(size=20)[X["g"]] + rng.normal(size=200)
MixedLMRegressor("(1 | g)").fit(X, y)
print(inside, still, below, after, int(_set_madvise_hugepage(True)))
"""
)


@pytest.mark.skipif(
    _thp_mode() != "madvise", reason="huge pages only where madvise asks for them"
)
def test_large_fits_run_in_small_pages_and_put_numpy_setting_back():
    inside, still, below, after, setting = _run_as_worker(_SMALL)
    assert inside == 0 and still == 0  # the outer context still holds
    assert below > 0  # a smaller X keeps numpy's huge pages
    assert after > 0  # numpy's setting back
    assert setting == 1  # and after a fit too
