"""What every benchmark script shares: workers, timing and the printed tables.

A benchmark runs each library on each data set in a fresh worker process
(this script again with ``--worker``, or ``Rscript`` for lme4) with BLAS on
one thread, so a slow or failing peer cannot hold up the others and no
library inherits another's threads. A worker times repeated fits of data
already in memory and prints one JSON line: the median wall time
(``seconds``), the median CPU time of the process (``cpu_seconds``: on a
shared machine it moves far less than wall time, since time spent waiting
for a core is not counted), the number of runs, the criterion reached and
the peak memory.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
DEFAULT_MAKE_DATA = REPO.parent / "shared/bench/make_data.py"

# BLAS on one thread in every worker (R and Python alike)
ONE_THREAD = {
    name: "1"
    for name in (
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
    )
}

# R: the same stopping rule as time_fits, for an expression `fit()` that
# returns the criterion; prints the same JSON line as a Python worker.
R_TIMING_LOOP = r"""
wall <- c(); cpu <- c(); start <- proc.time()[["elapsed"]]
repeat {
  t0 <- proc.time()
  crit <- fit()
  t1 <- proc.time()
  wall <- c(wall, t1[["elapsed"]] - t0[["elapsed"]])
  cpu <- c(cpu, (t1[["user.self"]] + t1[["sys.self"]]) -
                (t0[["user.self"]] + t0[["sys.self"]]))
  spent <- proc.time()[["elapsed"]] - start
  if (length(wall) >= 25 || (length(wall) >= 3 && spent > budget)) break
  if (wall[1] > budget) break
}
peak <- sum(gc()[, 6])  # max used, MB (R's heap)
cat(sprintf(paste0('{"seconds": %.6f, "cpu_seconds": %.6f, "runs": %d, ',
                   '"criterion": %.10f, "peak_mb": %.0f}\n'),
            median(wall), median(cpu), length(wall), crit, peak))
"""


def ensure_csv(case, make_data):
    """``benchmarks/data/CASE.csv``, written by ``make_data.py`` on first use."""
    path = DATA / f"{case}.csv"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(make_data), case, str(path)], check=True)
    return path


def time_fits(fit, criterion, budget):
    """Repeat ``fit()`` (at most 25 times, at least 3 within ``budget`` s).

    Prints the worker's JSON line (see the module docstring).
    """
    import warnings

    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore")
    wall, cpu = [], []
    start = time.perf_counter()
    with threadpool_limits(1):
        while True:
            t0, c0 = time.perf_counter(), time.process_time()
            model = fit()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            spent = time.perf_counter() - start
            if len(wall) >= 25 or (len(wall) >= 3 and spent > budget):
                break
            if wall[0] > budget:  # a slow fit: one run is all we can afford
                break
    result = {
        "seconds": statistics.median(wall),
        "cpu_seconds": statistics.median(cpu),
        "runs": len(wall),
        "criterion": float(criterion(model)),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }
    print(json.dumps(result))


def run_worker(cmd, timeout):
    """Run one worker command; its JSON line, or ``{"error": ...}``."""
    env = dict(os.environ, **ONE_THREAD)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    )
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
        )
    except FileNotFoundError:
        return {"error": f"{cmd[0]} not found"}
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout:.0f} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last[:60]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _seconds_text(seconds):
    ms = seconds * 1e3
    if ms < 10:
        return f"{ms:8.2f} ms"
    if ms < 10_000:
        return f"{ms:8.0f} ms"
    return f"{seconds:8.1f} s "


def cell(result, ours, key="seconds"):
    """A table cell: the time, and for a peer its ratio to ours (peer / ours)."""
    if "error" in result:
        return result["error"]
    if key not in result:
        return "-"
    text = _seconds_text(result[key])
    if ours is not None and ours.get(key):
        text += f" ({result[key] / ours[key]:5.1f}x)"
    return text


def print_report(results, peers, targets, criterion_label, width=14):
    """Print wall times, CPU times, criteria and peak memory, a row per case.

    ``results`` maps case -> [ours, *peers' results] (the workers' JSON).
    """
    head = f"{'case':{width}s} {'target':>11s} {'skmixed':>11s}   "
    head += "   ".join(f"{p:>20s}" for p in peers)
    for key, title in (
        ("seconds", "Wall time, median (ratio = peer / skmixed):"),
        ("cpu_seconds", "CPU time of the worker, median (less moved by load):"),
    ):
        print(f"\n{title}\n{head}")
        for case, (ours, *row) in results.items():
            target = targets.get(case)
            target_text = _seconds_text(target) if target else f"{'-':>11s}"
            print(
                f"{case:{width}s} {target_text} {cell(ours, None, key):>11s}   "
                + "   ".join(f"{cell(r, ours, key):>20s}" for r in row)
            )
    print(f"\n{criterion_label} reached (peer minus skmixed):")
    print(
        f"{'case':{width}s} {'skmixed':>18s}   "
        + "   ".join(f"{p:>14s}" for p in peers)
    )
    for case, (ours, *row) in results.items():
        mine = ours.get("criterion")
        cells = [
            f"{r['criterion'] - mine:+14.2e}"
            if "criterion" in r and mine is not None
            else f"{'-':>14s}"
            for r in row
        ]
        first = f"{mine:18.6f}" if mine is not None else f"{'-':>18s}"
        print(f"{case:{width}s} {first}   " + "   ".join(cells))
    print("\nPeak memory of the worker process (MB; lme4: R's heap):")
    print(f"{'case':{width}s} {'skmixed':>10s} " + " ".join(f"{p:>10s}" for p in peers))
    for case, row in results.items():
        cells = [f"{r.get('peak_mb', float('nan')):10.0f}" for r in row]
        print(f"{case:{width}s} " + " ".join(cells))
