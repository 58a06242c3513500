"""Fit MixedLMRegressor from Parquet with Dask, against the bare read floor.

Usage::

    python ../shared/bench/make_data.py slopes-100m DATA_DIR   # once, ~6 GB
    python benchmarks/bench_dask.py DATA_DIR [--parts 10,50,100] [--repeat 1]
                                    [--memory-limit 3GiB] [--no-in-memory]
                                    [--int-groups int64|uint64|Int64]
                                    [--int-dir DIR] [--timeline]

For each number of partitions (files of 1,000,000 rows, 1,000,000 groups,
``y ~ x1..x5 + (1 + x1 | g)``), a fresh ``distributed.LocalCluster`` of two
single-threaded worker processes (BLAS on one thread) runs

- the I/O floor: ``dd.read_parquet(files)`` summed (every column read,
  numbers summed, labels counted) -- what any pass over the data costs;
- the fit: ``MixedLMRegressor("(1 + x1 | g)").fit(X, y)`` from the same
  files (one pass: batches of up to 8 partitions read and coded together,
  their sums keyed by their labels, hashed and summed bucket by bucket of
  the labels' keys, and folded batch after batch in one lane per worker
  thread; the lanes' sums merged by label at the end);

(after one untimed read, so that both run on warm workers) and reports
the median times, their ratio, the CPU seconds of the workers
(together) and of the client, the workers' and the client's peak RSS, and
the REML criterion. Last, the in-memory fit of the first 10
files (10M rows) in a separate process, for comparison. The machine's load
average is printed with every row: other processes distort the times.

``--int-groups DTYPE`` runs the same on integer group ids (label ``g123``
read as the number 123, of that dtype), as most large data identify users:
a copy of the files with ``g`` so converted is written first (untimed, ~1 s
a file) to ``--int-dir`` (files already there are reused) or to a temporary
folder removed afterwards, and both the floor and the fit read the copy.

``--timeline`` adds, per row, the medians of the fit's stages (from Dask's
task stream and the fit's clock: submission, lanes, exchange of the
ranges' rows, merge, gather, the client's part of the sums, the client's
fit; see ``_stages``).
"""

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FEATURES = ["x1", "x2", "x3", "x4", "x5"]
SPEC = "(1 + x1 | g)"


def _peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _files(folder, n_parts):
    files = sorted(Path(folder).glob("*.parquet"))
    if len(files) < n_parts:
        raise SystemExit(f"{folder} has {len(files)} partitions, fewer than {n_parts}")
    return [str(f) for f in files[:n_parts]]


def _integer_copy(folder, n_parts, dtype, out):
    """Write the first ``n_parts`` files of ``folder`` to ``out`` with the
    labels ``g123`` as the integers 123 of ``dtype`` (files already in
    ``out`` are kept)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    arrow_type = {"int64": pa.int64(), "uint64": pa.uint64(), "Int64": pa.int64()}
    out.mkdir(parents=True, exist_ok=True)
    for name in _files(folder, n_parts):
        target = out / Path(name).name
        if target.exists():
            continue
        table = pq.read_table(name)
        column = table.schema.get_field_index("g")
        ids = pc.cast(pc.utf8_slice_codeunits(table["g"], 1), arrow_type[dtype])
        frame = table.set_column(column, "g", ids).to_pandas()
        if dtype == "Int64":  # pandas' nullable Int64 (kept in the file's metadata)
            frame["g"] = frame["g"].astype("Int64")
        frame.to_parquet(target.with_suffix(".tmp"), index=False)
        os.replace(target.with_suffix(".tmp"), target)  # no half-written file


def _workers_cpu(client):
    """CPU seconds used so far by all the workers together (every thread)."""
    return sum(client.run(time.process_time).values())


def _floor(dd, files, client):
    import dask

    frame = dd.read_parquet(files)
    cpu, start = _workers_cpu(client), time.perf_counter()
    dask.compute(frame[["y", *FEATURES]].sum(), frame["g"].count())
    return time.perf_counter() - start, _workers_cpu(client) - cpu


def _fit(dd, files, client, timeline=False):
    import contextlib

    import distributed

    from skmixed import MixedLMRegressor

    frame = dd.read_parquet(files)
    cpu, start = _workers_cpu(client), time.perf_counter()
    client_cpu = time.process_time()
    stream = distributed.get_task_stream(client) if timeline else None
    began = time.time()  # (the task stream's clock)
    with stream or contextlib.nullcontext():
        model = MixedLMRegressor(SPEC).fit(frame[[*FEATURES, "g"]], frame["y"])
    seconds = time.perf_counter() - start
    cpu = (_workers_cpu(client) - cpu, time.process_time() - client_cpu)
    if timeline:
        model._timeline = _stages(stream.data, began, seconds, model._dask_seconds)
    return seconds, cpu, model


#: The one-factor fit's tasks, by the stage they belong to.
_STAGE_OF_TASK = {
    "accumulate_batch": "lanes",
    "merge_bucket_range": "merge",
    "merge_labelled": "merge",
}


def _stages(tasks, began, total, seconds):
    """Where a one-factor fit's wall time went, from Dask's task stream
    (``tasks``, times since ``began``, the fit's start; it took ``total``)
    and the fit's own clock (``seconds``): the stages one after the other,
    in seconds.

    - ``to_first_task``: input assembly, graph, submission;
    - ``lanes``: the batches read, coded and summed (first start to last end);
    - ``exchange``: from the lanes' end to the last merge's start (the small
      tasks, the transfers of the ranges' rows);
    - ``merge``: the ranges merged (last merge's start to its end);
    - ``gather``: the merged ranges to the client (to the compute's return);
    - ``sums_on_client``: their order, levels and labels on the client;
    - ``client``: the client's optimisation and results.
    """
    spans = {}
    for task in tasks:
        name = task["key"][0] if isinstance(task["key"], tuple) else task["key"]
        stage = next((v for k, v in _STAGE_OF_TASK.items() if k in str(name)), None)
        for part in task["startstops"]:
            if stage and part["action"] == "compute":
                low, high = spans.get(stage, (math.inf, -math.inf))
                spans[stage] = (min(low, part["start"]), max(high, part["stop"]))
    if "lanes" not in spans or "merge" not in spans:
        return None
    lanes, merge = spans["lanes"], spans["merge"]
    last_merge_start = max(
        p["start"]
        for t in tasks
        for p in t["startstops"]
        if p["action"] == "compute" and "merge" in str(t["key"])
    )
    on_client = seconds.get("sums_on_client", 0.0)
    stages = {
        "to_first_task": lanes[0] - began,
        "lanes": lanes[1] - lanes[0],
        "exchange": last_merge_start - lanes[1],
        "merge": merge[1] - last_merge_start,
    }
    # the fit ends with the client's stages
    stages["gather"] = total - seconds["client"] - on_client - (merge[1] - began)
    stages["sums_on_client"] = on_client
    stages["client"] = seconds["client"]
    stages["total"] = total
    return {k: round(v, 3) for k, v in stages.items()}


def run_partitions(folder, n_parts, repeat, memory_limit, timeline=False):
    """One row of the table, on a fresh cluster (so peaks are this run's)."""
    import dask.dataframe as dd
    import distributed

    files = _files(folder, n_parts)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=":0",
            env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # untimed: a fresh worker's first read of Parquet costs ~2 s more
        # than the next ones (imports, the readers' set-up), which would
        # inflate the floor of a single repeat (the fit runs on warm workers)
        _floor(dd, files, client)
        floors, fits, model = [], [], None
        floor_cpus, fit_cpus, client_cpus, timelines = [], [], [], []
        for _ in range(repeat):
            seconds, cpu = _floor(dd, files, client)
            floors.append(seconds)
            floor_cpus.append(cpu)
            seconds, (cpu, client_cpu), model = _fit(dd, files, client, timeline)
            fits.append(seconds)
            fit_cpus.append(cpu)
            client_cpus.append(client_cpu)
            if timeline and model._timeline:
                timelines.append(model._timeline)
        workers = client.run(_peak_rss_gb)
    floor, fit = statistics.median(floors), statistics.median(fits)
    stages = None
    if timelines:  # each stage's median over the repeats
        stages = {
            k: round(statistics.median(t[k] for t in timelines), 3)
            for k in timelines[0]
        }
    return {
        "partitions": n_parts,
        "rows": n_parts * 1_000_000,
        "floor_s": round(floor, 1),
        "fit_s": round(fit, 1),
        "fit_over_floor": round(fit / floor, 2),
        # CPU seconds (less sensitive to other processes than wall time): all
        # workers together for the floor and for the fit, and the client's
        "floor_worker_cpu_s": round(statistics.median(floor_cpus), 1),
        "fit_worker_cpu_s": round(statistics.median(fit_cpus), 1),
        "fit_client_cpu_s": round(statistics.median(client_cpus), 1),
        "worker_peak_gb": round(max(workers.values()), 2),
        # the client's peak so far (monotone: run the sizes in increasing order)
        "client_peak_gb": round(_peak_rss_gb(), 2),
        "reml_criterion": round(model.reml_criterion_, 3),
        "n_evaluations": model.n_evaluations_,
        # levels pass (0: none), sums pass, the client's optimiser
        "seconds": getattr(model, "_dask_seconds", None),
        # --timeline: the stages' medians (see _stages)
        **({"stages": stages} if stages else {}),
        "load": round(os.getloadavg()[0], 1),
    }


def in_memory(folder, n_parts):
    """The in-memory fit of the same files (run in its own process)."""
    import pandas as pd

    from skmixed import MixedLMRegressor

    frame = pd.concat([pd.read_parquet(f) for f in _files(folder, n_parts)])
    start = time.perf_counter()
    model = MixedLMRegressor(SPEC).fit(frame[[*FEATURES, "g"]], frame["y"])
    seconds = time.perf_counter() - start
    return {
        "partitions": n_parts,
        "rows": len(frame),
        "in_memory_fit_s": round(seconds, 1),
        "peak_gb": round(_peak_rss_gb(), 2),
        "reml_criterion": round(model.reml_criterion_, 3),
        "load": round(os.getloadavg()[0], 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--parts", default="10,50,100")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--memory-limit", default="3GiB")
    parser.add_argument("--no-in-memory", action="store_true")
    parser.add_argument(
        "--int-groups",
        choices=["int64", "uint64", "Int64"],
        help="fit on integer group ids of this dtype (a converted copy)",
    )
    parser.add_argument("--int-dir", help="where the integer copy is kept")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="the fit's stages from Dask's task stream (medians)",
    )
    parser.add_argument("--in-memory-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_memory_worker:
        print(json.dumps(in_memory(args.folder, args.in_memory_worker)))
        return
    if args.int_groups:
        temporary = args.int_dir is None
        out = Path(args.int_dir or tempfile.mkdtemp(prefix="bench_dask_int_"))
        most = max(
            [int(p) for p in args.parts.split(",")] + [0 if args.no_in_memory else 10]
        )
        try:
            _integer_copy(args.folder, most, args.int_groups, out)
            print(f"group ids as {args.int_groups}, read from {out}", flush=True)
            _run(argparse.Namespace(**{**vars(args), "folder": str(out)}))
        finally:
            if temporary:
                shutil.rmtree(out, ignore_errors=True)
        return
    _run(args)


def _run(args):
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    rows = []
    for n_parts in [int(p) for p in args.parts.split(",")]:
        result = run_partitions(
            args.folder, n_parts, args.repeat, args.memory_limit, args.timeline
        )
        rows.append(result)
        print(json.dumps(result), flush=True)
    per_row = [r["fit_s"] / r["rows"] * 1e8 for r in rows]
    if len(rows) > 1:
        print(
            "fit seconds per 100M rows at each size (linear if constant): "
            + ", ".join(f"{v:.1f}" for v in per_row)
        )
    if not args.no_in_memory:
        out = subprocess.run(
            [sys.executable, __file__, args.folder, "--in-memory-worker", "10"],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        )
        print(out.stdout.strip() or out.stderr[-2000:])


if __name__ == "__main__":
    main()
