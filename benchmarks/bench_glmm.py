"""Time MixedGLMRegressor against lme4's glmer, mixedlm and lme-python.

Usage::

    python benchmarks/bench_glmm.py [--make-data PATH] [--cases a,b,...]
                                    [--peers lme4,mixedlm,lme-python]
                                    [--timeout SECONDS] [--budget SECONDS]

Data: the simulated sets of ``make_data.py`` (default
``../shared/bench/make_data.py`` next to the repository), written to
``benchmarks/data/`` (git-ignored) on first use. Every fit runs in a fresh
worker process with BLAS on one thread (``OPENBLAS_NUM_THREADS=1`` etc.), so
a slow or failing peer cannot hold up the others; a worker's time is the
median of repeated fits of data already in memory (reading the CSV is not
timed). Each worker reports the criterion it reached: the Laplace
approximation of -2 log L (lme4's ``-2 * logLik``). lme4 runs through
``Rscript`` when R is installed; the Python peers are in the ``bench``
extra (``pip install -e ".[bench]"``).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"

# name -> (fixed features, lme4 random-effects spec, family)
CASES = {
    "binary-100k": (["x1", "x2", "x3"], "(1 + x1 | g)", "binomial"),
    "binary-1m": (["x1", "x2", "x3"], "(1 + x1 | g)", "binomial"),
    "poisson-crossed-100k": (["x1", "x2"], "(1 | subject) + (1 | item)", "poisson"),
}
TARGETS_S = {"binary-100k": 0.5, "binary-1m": 5.0, "poisson-crossed-100k": None}
PEERS = ["lme4", "mixedlm", "lme-python"]
_ONE_THREAD = {
    name: "1"
    for name in (
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OMP_NUM_THREADS",
        "BLIS_NUM_THREADS",
    )
}


def _ensure_data(case, make_data):
    path = DATA / f"{case}.csv"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(make_data), case, str(path)], check=True)
    return path


def _formula(case):
    features, spec, _ = CASES[case]
    return f"y ~ {' + '.join(features)} + {spec}"


# -- one library on one data set (runs in a worker process) ---------------------
def _fit_skmixed(df, case):
    from skmixed import MixedGLMRegressor
    from skmixed.mixed.terms import grouping_columns, parse_random_effects

    features, spec, family = CASES[case]
    groups = grouping_columns(parse_random_effects(spec))
    X, y = df[features + groups], df["y"]

    def fit():
        return MixedGLMRegressor(spec, family=family).fit(X, y)

    return fit, lambda m: -2.0 * m.loglik_


def _fit_mixedlm(df, case):
    import mixedlm
    from mixedlm import families

    family = families.Binomial() if CASES[case][2] == "binomial" else families.Poisson()
    formula = _formula(case)

    def criterion(m):
        value = m.logLik()
        return -2.0 * float(getattr(value, "value", value))

    return (lambda: mixedlm.glmer(formula, df, family=family)), criterion


def _fit_lme_python(df, case):
    import lme_python
    import polars as pl

    # lme-python reads polars: converted once, outside the timed fit.
    frame = pl.DataFrame(
        {
            c: df[c].to_numpy()
            if df[c].dtype.kind in "fi"
            else df[c].to_numpy(dtype=object).astype(str)
            for c in df.columns
        }
    )
    formula = _formula(case)
    family = CASES[case][2]
    return (
        (lambda: lme_python.glmer(formula, frame, family)),
        lambda m: -2.0 * float(m.log_likelihood),
    )


FITTERS = {
    "skmixed": _fit_skmixed,
    "mixedlm": _fit_mixedlm,
    "lme-python": _fit_lme_python,
}

_R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(lme4))
df <- read.csv(args[1])
fam <- if (args[3] == "binomial") binomial() else poisson()
budget <- as.numeric(args[4])
times <- c(); start <- proc.time()[["elapsed"]]
repeat {
  t <- system.time(m <- suppressWarnings(glmer(as.formula(args[2]), data = df,
                                                family = fam)))[["elapsed"]]
  times <- c(times, t)
  spent <- proc.time()[["elapsed"]] - start
  if (length(times) >= 25 || (length(times) >= 3 && spent > budget)) break
  if (times[1] > budget) break
}
cat(sprintf('{"seconds": %.6f, "runs": %d, "criterion": %.10f}\n',
            median(times), length(times), -2 * as.numeric(logLik(m))))
"""


def _worker(library, case, budget):
    """Median time of repeated fits; prints one JSON line."""
    import warnings

    import pandas as pd
    from threadpoolctl import threadpool_limits

    warnings.simplefilter("ignore")
    df = pd.read_csv(DATA / f"{case}.csv")
    fit, criterion = FITTERS[library](df, case)
    times = []
    start = time.perf_counter()
    with threadpool_limits(1):
        while True:
            t0 = time.perf_counter()
            model = fit()
            times.append(time.perf_counter() - t0)
            spent = time.perf_counter() - start
            if len(times) >= 25 or (len(times) >= 3 and spent > budget):
                break
            if times[0] > budget:  # a slow fit: one run is all we can afford
                break
    print(
        json.dumps(
            {
                "seconds": statistics.median(times),
                "runs": len(times),
                "criterion": float(criterion(model)),
            }
        )
    )


# -- orchestration ----------------------------------------------------------------
def _run(library, case, timeout, budget):
    env = {**os.environ, **_ONE_THREAD}
    if library == "lme4":
        if shutil.which("Rscript") is None:
            return {"error": "no Rscript"}
        cmd = [
            "Rscript",
            "-e",
            _R_SCRIPT,
            str(DATA / f"{case}.csv"),
            _formula(case),
            CASES[case][2],
            str(budget),
        ]
    else:
        cmd = [sys.executable, __file__, "--worker", library, case]
        cmd += ["--budget", str(budget)]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout:.0f} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last[:60]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cell(result, ours):
    if "error" in result:
        return result["error"]
    text = f"{result['seconds']:8.2f} s"
    if ours is not None and "seconds" in ours:
        text += f" ({result['seconds'] / ours['seconds']:5.1f}x)"
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--make-data", default=str(REPO.parent / "shared/bench/make_data.py")
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per worker")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CASE"))
    args = parser.parse_args(argv)
    if args.worker:
        _worker(*args.worker, args.budget)
        return
    cases = [c for c in args.cases.split(",") if c]
    peers = [p for p in args.peers.split(",") if p]
    for case in cases:
        _ensure_data(case, Path(args.make_data))
    print(
        f"{'case':22s} {'target':>8s} {'skmixed':>10s}   "
        + "   ".join(f"{p:>19s}" for p in peers)
    )
    criteria = {}
    for case in cases:
        ours = _run("skmixed", case, args.timeout, args.budget)
        row = [_run(p, case, args.timeout, args.budget) for p in peers]
        criteria[case] = [ours] + row
        target = TARGETS_S[case]
        target_text = f"{target:6.1f} s" if target else f"{'-':>8s}"
        print(
            f"{case:22s} {target_text} {_cell(ours, None):>10s}   "
            + "   ".join(f"{_cell(r, ours):>19s}" for r in row),
            flush=True,
        )
    print("\n-2 log L (Laplace) reached (difference from skmixed's):")
    print(f"{'case':22s} {'skmixed':>16s}   " + "   ".join(f"{p:>12s}" for p in peers))
    for case, results in criteria.items():
        ours = results[0].get("criterion")
        cells = []
        for r in results[1:]:
            if "criterion" in r and ours is not None:
                cells.append(f"{r['criterion'] - ours:+12.2e}")
            else:
                cells.append(f"{'-':>12s}")
        first = f"{ours:16.6f}" if ours is not None else f"{'-':>16s}"
        print(f"{case:22s} {first}   " + "   ".join(cells))


if __name__ == "__main__":
    main()
