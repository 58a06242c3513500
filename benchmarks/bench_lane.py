"""One lane of the Dask one-factor fit in one process, step by step.

Usage::

    MALLOC_TRIM_THRESHOLD_=65536 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        python benchmarks/bench_lane.py DATA_DIR [--batches 2] [--batch 7]
                                        [--repeat 5] [--first 0]

Runs what one worker thread of ``bench_dask.py``'s 100-partition fit runs
(``accumulate_batch`` on ``--batches`` batches of ``--batch`` partitions,
each folding the sums of the one before), without Dask's workers: the
graphs, spec and metadata are those the fit builds (captured from a fit
stopped before its pass). ``MALLOC_TRIM_THRESHOLD_`` gives the process the
glibc settings of a Dask worker (see ``skmixed/_malloc.py``). Each step's
time is summed over the lane (the functions of the fit wrapped by a
timer, in CPU seconds of the thread: less sensitive to other processes
than wall time) and the medians over ``--repeat`` runs are printed, in ms
per partition, beside the bare read-and-sum of the same partitions (the
floor's task, CPU time too) and the lane's wall time.
"""

import argparse
import functools
import json
import resource
import statistics
import time
from collections import defaultdict
from pathlib import Path

FEATURES = ["x1", "x2", "x3", "x4", "x5"]
SPEC = "(1 + x1 | g)"

#: (module, function name) timed, by step name.
_STEPS = {
    "read": ("dask.local", "get_sync"),
    "label_keys": ("skmixed._dask_labels", "label_keys"),
    "bucket_order": ("skmixed._dask_labels", "bucket_order"),
    "fill_rows": ("skmixed.mixed.dask_fit", "_fill_rows"),
    "partition_rows": ("skmixed.mixed.dask_fit", "partition_rows"),
    "code_buckets": ("skmixed._dask_labels", "code_buckets"),
    "block_sums": ("skmixed.mixed.dask_fit", "_bucket_block_sums"),
    "coded_sums": ("skmixed.mixed.dask_fit", "_coded_sums"),
    "labelled_sums": ("skmixed.mixed.dask_fit", "labelled_sums"),
}


class _Stop(Exception):
    pass


def _captured_task(files):
    """(frame, meta, task) of the fit's pass, from a fit stopped there."""
    import dask
    import dask.dataframe as dd

    from skmixed import MixedLMRegressor
    from skmixed.mixed import dask_fit

    seen = {}

    def capture(frame, meta, task):
        seen.update(frame=frame, meta=meta, task=task)
        raise _Stop

    original = dask_fit._labelled_tasks
    dask_fit._labelled_tasks = capture
    try:
        frame = dd.read_parquet(files)
        with dask.config.set(scheduler="sync"):
            MixedLMRegressor(SPEC).fit(frame[[*FEATURES, "g"]], frame["y"])
    except _Stop:
        pass
    finally:
        dask_fit._labelled_tasks = original
    return seen["frame"], seen["meta"], seen["task"]


def _timed(times):
    """Wrap the functions of _STEPS so that their time adds to ``times``."""
    import importlib

    for step, (module_name, name) in _STEPS.items():
        module = importlib.import_module(module_name)
        function = getattr(module, name)

        @functools.wraps(function)
        def wrapper(*args, _f=function, _step=step, **kwargs):
            start, faults = time.thread_time(), _faults()
            try:
                return _f(*args, **kwargs)
            finally:
                times[_step] += time.thread_time() - start
                times[_step + "_faults"] += _faults() - faults

        setattr(module, name, wrapper)


def _faults():
    """Page faults of this thread so far (a fresh page's first touch)."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def _floor(graphs):
    """The floor's work on these partitions: read, numbers summed, labels
    counted."""
    from dask.local import get_sync

    start = time.thread_time()
    for _, graph, key in graphs:
        part = get_sync(graph, key)
        part[["y", *FEATURES]].sum()
        part["g"].count()
    return time.thread_time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--first", type=int, default=0, help="first file")
    parser.add_argument("--by-batch", action="store_true", help="steps per batch")
    args = parser.parse_args()

    import dask.dataframe as dd
    from threadpoolctl import threadpool_limits

    from skmixed import _dask
    from skmixed.mixed import dask_fit

    threadpool_limits(1)
    n = args.batches * args.batch
    files = sorted(str(f) for f in Path(args.folder).glob("*.parquet"))
    files = files[args.first : args.first + n]
    frame, meta, task = _captured_task(files)
    graphs = _dask.partition_graphs(frame)
    floor_graphs = _dask.partition_graphs(dd.read_parquet(files))
    times = defaultdict(float)
    _timed(times)
    runs, floors, per_batch = [], [], []
    for _ in range(args.repeat):
        floors.append(_floor(floor_graphs))
        times.clear()
        start, cpu, faults = time.perf_counter(), time.thread_time(), _faults()
        carry, batches = None, []
        for b in range(args.batches):
            batch = graphs[b * args.batch : (b + 1) * args.batch]
            batch = dask_fit.PartitionGraphs(batch, dask_fit.BATCH_BYTES)
            before = dict(times)
            carry = dask_fit.accumulate_batch(batch, meta, task, carry)
            batches.append({k: v - before.get(k, 0.0) for k, v in times.items()})
        per_batch.append(batches)
        times["lane_wall"] = time.perf_counter() - start
        times["lane"] = time.thread_time() - cpu
        times["lane_faults"] = _faults() - faults
        runs.append(dict(times))
        del carry
        dask_fit.release_buffers()
    steps = ["lane_wall", "lane", *_STEPS]
    per_partition = {
        step: round(1e3 * statistics.median(r.get(step, 0.0) for r in runs) / n, 1)
        for step in steps
    }
    faults = {
        step: round(statistics.median(r.get(step + "_faults", 0) for r in runs) / n)
        for step in steps[1:]
    }
    floor = round(1e3 * statistics.median(floors) / n, 1)
    print(json.dumps({"ms_per_partition": per_partition, "floor_ms": floor}))
    print(json.dumps({"page_faults_per_partition": faults}))
    if args.by_batch:  # each batch's steps (medians, ms per partition)
        for b in range(args.batches):
            print(
                f"batch {b}:",
                json.dumps(
                    {
                        step: round(
                            1e3
                            * statistics.median(r[b].get(step, 0.0) for r in per_batch)
                            / args.batch,
                            1,
                        )
                        for step in _STEPS
                    }
                    | {
                        "faults": {
                            step: round(
                                statistics.median(
                                    r[b].get(step + "_faults", 0) for r in per_batch
                                )
                                / args.batch
                            )
                            for step in _STEPS
                        }
                    }
                ),
            )


if __name__ == "__main__":
    main()
