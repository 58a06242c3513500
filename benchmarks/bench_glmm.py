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
import shutil
import sys
from pathlib import Path

import pandas as pd
from _harness import (
    DATA,
    DEFAULT_MAKE_DATA,
    R_TIMING_LOOP,
    cell,
    ensure_csv,
    print_report,
    run_worker,
    time_fits,
)

# name -> (fixed features, lme4 random-effects spec, family)
CASES = {
    "binary-100k": (["x1", "x2", "x3"], "(1 + x1 | g)", "binomial"),
    "binary-1m": (["x1", "x2", "x3"], "(1 + x1 | g)", "binomial"),
    "poisson-crossed-100k": (["x1", "x2"], "(1 | subject) + (1 | item)", "poisson"),
}
TARGETS_S = {"binary-100k": 0.5, "binary-1m": 5.0, "poisson-crossed-100k": None}
PEERS = ["lme4", "mixedlm", "lme-python"]


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
fit <- function() {
  m <- suppressWarnings(glmer(as.formula(args[2]), data = df, family = fam))
  -2 * as.numeric(logLik(m))
}
"""
_R_SCRIPT += R_TIMING_LOOP


def _worker(library, case, budget):
    """Time repeated fits; prints one JSON line (``_harness.time_fits``)."""
    df = pd.read_csv(DATA / f"{case}.csv")
    fit, criterion = FITTERS[library](df, case)
    time_fits(fit, criterion, budget)


# -- orchestration ----------------------------------------------------------------
def _run(library, case, timeout, budget):
    if library == "lme4":
        if shutil.which("Rscript") is None:
            return {"error": "no Rscript"}
        cmd = ["Rscript", "-e", _R_SCRIPT, str(DATA / f"{case}.csv"), _formula(case)]
        cmd += [CASES[case][2], str(budget)]
    else:
        cmd = [sys.executable, __file__, "--worker", library, case]
        cmd += ["--budget", str(budget)]
    return run_worker(cmd, timeout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make-data", default=str(DEFAULT_MAKE_DATA))
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
        ensure_csv(case, Path(args.make_data))
    results = {}
    for case in cases:
        ours = _run("skmixed", case, args.timeout, args.budget)
        results[case] = [ours] + [
            _run(p, case, args.timeout, args.budget) for p in peers
        ]
        done = ", ".join(
            f"{name} {cell(r, None).strip()}"
            for name, r in zip(["skmixed", *peers], results[case], strict=True)
        )
        print(f"{case}: {done}", file=sys.stderr, flush=True)
    print_report(results, peers, TARGETS_S, "-2 log L (Laplace)", width=22)


if __name__ == "__main__":
    main()
