"""Time MixedLMRegressor against its peers on the same data, in the same run.

Usage::

    python benchmarks/bench_mixed.py [--make-data PATH] [--cases a,b,...]
                                     [--peers lme4,mixedlm,lme-python,statsmodels]
                                     [--timeout SECONDS]

Data: sleepstudy (shipped) and the simulated sets of ``make_data.py``
(default ``../shared/bench/make_data.py`` next to the repository), written to
``benchmarks/data/`` (git-ignored) on first use. Every fit runs in a fresh
worker process (``--worker``), so a slow or failing peer cannot hold up the
others; a worker's time is the median of several fits of data already in
memory (reading the CSV is not timed), and its output is the REML criterion
each reached, and its peak memory. Peers are in the ``bench`` extra:
``pip install -e ".[bench]"``; lme4 runs through ``Rscript`` (when R and
lme4 are installed) with ``calc.derivs = FALSE`` on the same CSV file.
Every worker runs with BLAS on one thread.

``many-small`` is 2,000 sleepstudy-sized data sets (sleepstudy's design,
responses simulated from its fit, seeds 0..1999): each library loops over
the same 2,000 fits; the time is the whole loop and the criterion the sum of
the 2,000 REML criteria.
"""

import argparse
import sys
from pathlib import Path

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

# name -> (fixed features, lme4 random-effects spec, response)
CASES = {
    "sleepstudy": (["Days"], "(Days | Subject)", "Reaction"),
    "slopes-100k": (["x1", "x2", "x3", "x4", "x5"], "(x1 | g)", "y"),
    "slopes-1m": (["x1", "x2", "x3", "x4", "x5"], "(x1 | g)", "y"),
    "nested-200k": (
        ["x1", "x2", "x3"],
        "(1 | school) + (1 + x1 | school:student)",
        "y",
    ),
    "crossed-100k": (["x1", "x2", "x3"], "(1 | subject) + (1 | item)", "y"),
    "nested-1m-wide": (["x1", "x2"], "(1 | school/class)", "y"),
    "crossed3-500k": (["x1", "x2"], "(1 | a) + (1 | b) + (1 | c)", "y"),
    "crossed-1m-big": (["x1", "x2", "x3"], "(1 | user) + (1 | item)", "y"),
    "many-small": (["Days"], "(Days | Subject)", "y"),
}
TARGETS_S = {
    "sleepstudy": 0.0008,
    "slopes-100k": 0.08,
    "slopes-1m": 1.0,
    "nested-200k": 1.0,
    "crossed-100k": 0.15,
    "nested-1m-wide": 1.5,
    "crossed3-500k": 15.0,
    "crossed-1m-big": 120.0,
    "many-small": 1.5,
}
PEERS = ["lme4", "mixedlm", "lme-python", "statsmodels"]
N_SMALL = 2000


# -- data ---------------------------------------------------------------------
def _ensure_data(case, make_data):
    if case == "many-small":
        path = DATA / f"{case}.csv"
        if not path.exists():
            DATA.mkdir(exist_ok=True)
            _small_data_sets().to_csv(path, index=False)
        return path
    if case == "sleepstudy":
        return None
    return ensure_csv(case, make_data)


def _small_data_sets():
    """sleepstudy's Subject and Days with N_SMALL simulated responses y0, y1...

    Simulated from lme4's REML fit of ``Reaction ~ Days + (Days | Subject)``
    (rounded): intercept 251.4, slope 10.47, random-effect sds 24.7 and 5.9
    with correlation 0.07, residual sd 25.6.
    """
    import numpy as np
    import pandas as pd

    from skmixed.datasets import load_sleepstudy

    df = load_sleepstudy()
    subject = pd.factorize(df["Subject"])[0]
    days = df["Days"].to_numpy(dtype=float)
    sd = np.array([24.7, 5.9])
    cov = np.outer(sd, sd) * np.array([[1.0, 0.07], [0.07, 1.0]])
    columns = {"Subject": df["Subject"].astype(str), "Days": days}
    for i in range(N_SMALL):
        rng = np.random.default_rng(i)
        b = rng.multivariate_normal([0.0, 0.0], cov, subject.max() + 1)
        y = 251.4 + 10.47 * days + b[subject, 0] + b[subject, 1] * days
        columns[f"y{i}"] = y + rng.normal(scale=25.6, size=len(days))
    return pd.DataFrame(columns)


def _load(case):
    import pandas as pd

    if case == "sleepstudy":
        from skmixed.datasets import load_sleepstudy

        df = load_sleepstudy()
        return df.assign(Subject=df["Subject"].astype(str))
    return pd.read_csv(DATA / f"{case}.csv", dtype={"Subject": str})


def _grouping_columns(spec):
    from skmixed.mixed.terms import grouping_columns, parse_random_effects

    return grouping_columns(parse_random_effects(spec))


def _formula(case, response=None):
    features, spec, default = CASES[case]
    return f"{response or default} ~ {' + '.join(features)} + {spec}"


def _many(make_fit, criterion):
    """One fit per simulated response column; criteria summed."""

    def fit():
        return [make_fit(f"y{i}")() for i in range(N_SMALL)]

    return fit, lambda models: sum(criterion(m) for m in models)


# -- one library on one data set (runs in a worker process) ---------------------
def _fit_skmixed(df, case):
    from skmixed import MixedLMRegressor

    features, spec, response = CASES[case]
    X = df[features + _grouping_columns(spec)]

    def make_fit(column):
        y = df[column]
        return lambda: MixedLMRegressor(spec).fit(X, y)

    criterion = lambda m: m.reml_criterion_  # noqa: E731
    if case == "many-small":
        return _many(make_fit, criterion)
    return make_fit(response), criterion


def _fit_mixedlm(df, case):
    import mixedlm

    def make_fit(column):
        formula = _formula(case, column)
        return lambda: mixedlm.lmer(formula, df)

    criterion = lambda m: m.REMLcrit()  # noqa: E731
    if case == "many-small":
        return _many(make_fit, criterion)
    return make_fit(None), criterion


def _fit_lme_python(df, case):
    import lme_python
    import polars as pl

    # lme-python reads polars (pandas' string columns need pyarrow): the
    # conversion is done once, outside the timed fit.
    frame = pl.DataFrame(
        {
            c: df[c].to_numpy()
            if df[c].dtype.kind == "f"
            else df[c].to_numpy(dtype=object).astype(str)
            for c in df.columns
        }
    )

    def make_fit(column):
        formula = _formula(case, column)
        return lambda: lme_python.lmer(formula, frame)

    criterion = lambda m: m.reml_criterion  # noqa: E731
    if case == "many-small":
        return _many(make_fit, criterion)
    return make_fit(None), criterion


def _fit_statsmodels(df, case):
    import statsmodels.formula.api as smf

    features, spec, response = CASES[case]
    if spec.count("|") != 1 or "/" in spec or case == "many-small":
        raise NotImplementedError("statsmodels: one grouping factor only here")
    lhs, group = (s.strip(" ()") for s in spec.split("|"))
    slopes = [s.strip() for s in lhs.split("+") if s.strip() not in ("1", "0")]
    re_formula = "~" + " + ".join(slopes) if slopes else "1"
    formula = f"{response} ~ {' + '.join(features)}"

    def fit():
        model = smf.mixedlm(formula, df, groups=df[group], re_formula=re_formula)
        return model.fit(reml=True)

    return fit, lambda m: -2.0 * m.llf


FITTERS = {
    "skmixed": _fit_skmixed,
    "mixedlm": _fit_mixedlm,
    "lme-python": _fit_lme_python,
    "statsmodels": _fit_statsmodels,
}


_LME4 = r"""
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
df <- read.csv(args[1], stringsAsFactors = TRUE)
budget <- as.numeric(args[3])
control <- lmerControl(calc.derivs = FALSE)
if (args[2] == "many") {
  df$Subject <- factor(df$Subject)
  ys <- grep("^y[0-9]+$", names(df), value = TRUE)
  fit <- function() {
    total <- 0
    for (col in ys) {
      df$y <- df[[col]]
      m <- lmer(y ~ Days + (Days | Subject), df, control = control)
      total <- total + REMLcrit(m)
    }
    total
  }
} else {
  formula <- as.formula(args[2])
  fit <- function() REMLcrit(lmer(formula, df, control = control))
}
"""
_LME4 += R_TIMING_LOOP


def _run_lme4(case, timeout, budget):
    """lme4 on the same CSV in Rscript; the same JSON line as a worker."""
    path = DATA / f"{case}.csv"
    if case == "sleepstudy":
        path = DATA / "sleepstudy.csv"
        if not path.exists():
            DATA.mkdir(exist_ok=True)
            _load(case).to_csv(path, index=False)
    formula = "many" if case == "many-small" else _formula(case)
    cmd = ["Rscript", "-e", _LME4, str(path), formula, str(budget)]
    return run_worker(cmd, timeout)


def _worker(library, case, budget):
    """Time repeated fits; prints one JSON line (``_harness.time_fits``)."""
    df = _load(case)
    fit, criterion = FITTERS[library](df, case)
    time_fits(fit, criterion, budget)


# -- orchestration ----------------------------------------------------------------
def _run(library, case, timeout, budget):
    if library == "lme4":
        return _run_lme4(case, timeout, budget)
    cmd = [sys.executable, __file__, "--worker", library, case, "--budget", str(budget)]
    return run_worker(cmd, timeout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make-data", default=str(DEFAULT_MAKE_DATA))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per worker")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CASE"))
    args = parser.parse_args(argv)
    if args.worker:
        _worker(*args.worker, args.budget)
        return
    cases = [c for c in args.cases.split(",") if c]
    peers = [p for p in args.peers.split(",") if p]
    for case in cases:
        _ensure_data(case, Path(args.make_data))
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
    print_report(results, peers, TARGETS_S, "REML criterion")


if __name__ == "__main__":
    main()
