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
keeps its freed memory too, until then. It does nothing elsewhere (another
C library, or a process without that variable: the threaded scheduler).
"""

import ctypes
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
    libc, trim, mmap = settings
    with _lock:
        _users += 1
        if _users == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, _KEEP)
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP)
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                libc.mallopt(_M_TRIM_THRESHOLD, trim)
                libc.mallopt(_M_MMAP_THRESHOLD, mmap)
                libc.malloc_trim(0)
