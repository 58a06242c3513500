"""Time MixedLMRegressor against its peers on the same data, in the same run.

Usage::

    python benchmarks/bench_mixed.py [--make-data PATH] [--cases a,b,...]
                                     [--peers mixedlm,lme-python,statsmodels]
                                     [--timeout SECONDS]

Data: sleepstudy (shipped) and the simulated sets of ``make_data.py``
(default ``../shared/bench/make_data.py`` next to the repository), written to
``benchmarks/data/`` (git-ignored) on first use. Every fit runs in a fresh
worker process (``--worker``), so a slow or failing peer cannot hold up the
others; a worker's time is the median of several fits of data already in
memory (reading the CSV is not timed), and its output is the REML criterion
each reached. Peers are in the ``bench`` extra:
``pip install -e ".[bench]"``.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"

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
}
TARGETS_MS = {
    "sleepstudy": 2,
    "slopes-100k": 80,
    "slopes-1m": 1000,
    "nested-200k": 1000,
    "crossed-100k": 1000,
}
PEERS = ["mixedlm", "lme-python", "statsmodels"]


# -- data ---------------------------------------------------------------------
def _ensure_data(case, make_data):
    if case == "sleepstudy":
        return None
    path = DATA / f"{case}.csv"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(make_data), case, str(path)], check=True)
    return path


def _load(case):
    import pandas as pd

    if case == "sleepstudy":
        from skmixed.datasets import load_sleepstudy

        df = load_sleepstudy()
        return df.assign(Subject=df["Subject"].astype(str))
    return pd.read_csv(DATA / f"{case}.csv")


def _grouping_columns(spec):
    from skmixed.mixed.terms import grouping_columns, parse_random_effects

    return grouping_columns(parse_random_effects(spec))


def _formula(case):
    features, spec, response = CASES[case]
    return f"{response} ~ {' + '.join(features)} + {spec}"


# -- one library on one data set (runs in a worker process) ---------------------
def _fit_skmixed(df, case):
    from skmixed import MixedLMRegressor

    features, spec, response = CASES[case]
    X, y = df[features + _grouping_columns(spec)], df[response]

    def fit():
        return MixedLMRegressor(spec).fit(X, y)

    return fit, lambda m: m.reml_criterion_


def _fit_mixedlm(df, case):
    import mixedlm

    formula = _formula(case)
    return (lambda: mixedlm.lmer(formula, df)), lambda m: m.REMLcrit()


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
    formula = _formula(case)
    return (lambda: lme_python.lmer(formula, frame)), lambda m: m.reml_criterion


def _fit_statsmodels(df, case):
    import statsmodels.formula.api as smf

    features, spec, response = CASES[case]
    if spec.count("|") != 1:
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


def _worker(library, case, budget):
    """Median time of repeated fits; prints one JSON line."""
    import warnings

    warnings.simplefilter("ignore")
    df = _load(case)
    fit, criterion = FITTERS[library](df, case)
    times = []
    start = time.perf_counter()
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
    cmd = [sys.executable, __file__, "--worker", library, case, "--budget", str(budget)]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO
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
    ms = result["seconds"] * 1e3
    text = f"{ms:9.1f} ms"
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
    print(
        f"{'case':14s} {'target':>8s} {'skmixed':>12s}   "
        + "   ".join(f"{p:>21s}" for p in peers)
    )
    criteria = {}
    for case in cases:
        ours = _run("skmixed", case, args.timeout, args.budget)
        row = [_run(p, case, args.timeout, args.budget) for p in peers]
        criteria[case] = [ours] + row
        print(
            f"{case:14s} {TARGETS_MS[case]:6d} ms {_cell(ours, None):>12s}   "
            + "   ".join(f"{_cell(r, ours):>21s}" for r in row),
            flush=True,
        )
    print("\nREML criterion reached (difference from skmixed's):")
    print(f"{'case':14s} {'skmixed':>18s}   " + "   ".join(f"{p:>14s}" for p in peers))
    for case, results in criteria.items():
        ours = results[0].get("criterion")
        cells = []
        for r in results[1:]:
            if "criterion" in r and ours is not None:
                cells.append(f"{r['criterion'] - ours:+14.2e}")
            else:
                cells.append(f"{'-':>14s}")
        first = f"{ours:18.6f}" if ours is not None else f"{'-':>18s}"
        print(f"{case:14s} {first}   " + "   ".join(cells))


if __name__ == "__main__":
    main()
