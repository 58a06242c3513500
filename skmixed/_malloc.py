"""Freed memory kept for reuse while a Dask task of the fit runs.

Dask's worker processes start with ``MALLOC_TRIM_THRESHOLD_`` in their
environment (distributed's ``nanny.pre-spawn-environ``: glibc then returns
freed memory to the system at once). Setting it also fixes glibc's mmap
threshold at 128 kB, so that every larger array is a fresh mapping whose
pages fault in, zeroed by the kernel, on their first touch, and is unmapped
when freed. The sums of a partition of a million rows make dozens of such
temporaries (8 MB each); their page faults took half of a worker's CPU
time (5 partitions: 2.6 s of CPU, 1.25 s with freed memory reused).

:func:`reusing_freed_memory` raises both thresholds while the task runs,
and when the last task of the process that asked for it ends, puts the
worker's settings back and hands the free memory back to the system
(``malloc_trim``), as those settings intend. The thresholds are the
process's: a task of another library running in the same worker meanwhile
keeps its freed memory too, until then. :func:`keep_until_released` keeps
them raised from one task to the next, until :func:`release` (the end of a
pass, run on every worker). They do nothing elsewhere (another C library,
or a process without that variable: the threaded scheduler).

While they are raised, numpy's own request of huge pages for its large
arrays (``madvise(MADV_HUGEPAGE)``, numpy's default on Linux) is turned off
too (:func:`_huge_pages`): memory freed at the end of a pass goes back to
the system, and on a virtual machine that hands free memory back to its
host, a huge page touched again costs far more than its 512 small pages
(measured: a fresh 400 MB array filled in 0.9-1.0 s in huge pages, 0.16 s
in 4 kB pages; once the memory is the process's again, 0.06 s). The
batches of a lane reuse what they freed, so it is the first touches that
count: a lane of one batch of 5 partitions of 1M rows took 250-265 ms of
CPU a partition with huge pages, 230 without (writing the batch's rows: 80
-> 45 ms), and the workers of a fit of 10 such partitions 4.6-4.7 s of CPU,
4.0-4.1 s without.
"""

import ctypes
import math
import numbers
import os
import threading
from contextlib import contextmanager

#: mallopt's parameters (glibc's malloc.h), glibc's default mmap threshold,
#: and the thresholds while a task runs.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_MMAP_THRESHOLD = 128 * 1024
_KEEP = 1 << 30

_lock = threading.Lock()
_users = 0


def _worker_settings():
    """(glibc, trim threshold, mmap threshold) of a process started with
    MALLOC_TRIM_THRESHOLD_, else None."""
    try:
        trim = int(os.environ["MALLOC_TRIM_THRESHOLD_"])
        mmap = int(os.environ.get("MALLOC_MMAP_THRESHOLD_", _DEFAULT_MMAP_THRESHOLD))
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc's own function
    except (KeyError, ValueError, OSError, AttributeError):
        return None
    return libc, trim, mmap


_held = False
#: numpy's setting of huge pages before the thresholds were raised.
_numpy_huge_pages = None


def _huge_pages(enabled):
    """Set whether numpy asks for huge pages for its large arrays; return
    the setting it had (None: a numpy without the setting)."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy < 2
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return None
    return _set_madvise_hugepage(enabled)


def _enter(settings):
    global _users, _numpy_huge_pages
    libc = settings[0]
    with _lock:
        _users += 1
        if _users == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, _KEEP)
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP)
            _numpy_huge_pages = _huge_pages(False)


def _leave(settings):
    global _users
    libc, trim, mmap = settings
    with _lock:
        _users -= 1
        if _users == 0:
            libc.mallopt(_M_TRIM_THRESHOLD, trim)
            libc.mallopt(_M_MMAP_THRESHOLD, mmap)
            if _numpy_huge_pages is not None:
                _huge_pages(_numpy_huge_pages)
            libc.malloc_trim(0)


def keep_until_released():
    """Keep freed memory for reuse from now until :func:`release` (once per
    process, however often called), between tasks too.

    A pass of the fit runs several tasks in a row on each worker (the
    batches of a lane): handing the memory back after each, as
    :func:`reusing_freed_memory` does, made the next one fault in its ~100
    MB of sums and work arrays again (a page fault per 4 kB page, ~60,000
    a batch of 7 partitions).
    """
    global _held
    settings = _worker_settings()
    if settings is None:
        return
    with _lock:
        if _held:
            return
        _held = True
    _enter(settings)


def release():
    """End :func:`keep_until_released` (a no-op without it)."""
    global _held
    settings = _worker_settings()
    with _lock:
        if not _held or settings is None:
            return
        _held = False
    _leave(settings)


@contextmanager
def reusing_freed_memory():
    """Inside: freed memory is reused (see the module's docstring).

    Also a decorator (``@reusing_freed_memory()``).
    """
    global _users
    settings = _worker_settings()
    if settings is None:
        yield
        return
    _enter(settings)
    try:
        yield
    finally:
        _leave(settings)


#: An in-memory fit whose X holds at least this many values (200 MB of
#: doubles) runs in small pages (see :func:`small_pages_for`).
SMALL_PAGES_VALUES = 25_000_000

_small_page_users = 0
#: numpy's setting of huge pages before the first small-pages fit began.
_small_page_previous = None


@contextmanager
def small_pages_for(X):
    """Inside: numpy's large arrays are not asked to be huge pages, when X
    (a fit's input, any container with a shape) holds at least
    :data:`SMALL_PAGES_VALUES` values; else nothing changes.

    An in-memory fit of millions of rows makes arrays of hundreds of MB
    (the features, ``[X y]``, level codes), each filled once. On a virtual
    machine that hands free memory back to its host, a fresh huge page
    costs far more on its first touch than its 512 small pages (see the
    module's docstring): 10M rows and 1M levels, ``(1 + x1 | g)``, 4.7-5.3
    s of CPU with huge pages, 3.7-4.4 s without (the same numbers). Small
    fits keep them: repeated fits of 1M rows (56 MB arrays), whose freed
    memory the next fit takes again, took 190 ms with huge pages and 260
    in small pages (one fault per 4 kB page where one per 2 MB served).
    numpy's setting is the process's: it is put back when the last fit
    inside ends. A Dask collection's length is not known here: unchanged.
    """
    global _small_page_users, _small_page_previous
    shape = getattr(X, "shape", None)
    size = 0
    if shape is not None and all(isinstance(s, numbers.Integral) for s in shape):
        size = math.prod(int(s) for s in shape)
    if size < SMALL_PAGES_VALUES:
        yield
        return
    with _lock:
        _small_page_users += 1
        if _small_page_users == 1:
            _small_page_previous = _huge_pages(False)
    try:
        yield
    finally:
        with _lock:
            _small_page_users -= 1
            if _small_page_users == 0 and _small_page_previous is not None:
                _huge_pages(_small_page_previous)
