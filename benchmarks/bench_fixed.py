"""Fixed-effects (within) fit: skmixed next to the numpy floor and its peers.

The issue's case: 1,000,000 rows, 20,000 groups with string labels,
``y ~ x1 + x2`` plus group effects correlated with ``x1``::

    python ../shared/bench/make_data.py fe-1m /tmp/fe1m.csv
    python benchmarks/bench_fixed.py --csv /tmp/fe1m.csv

Without ``--csv`` the script simulates data of the same shape itself. Every
contender starts from the same in-memory DataFrame (reading the CSV is not
timed) and must return the two slopes *and* their standard errors. Times are
medians over ``--repeats`` runs after one warm-up run (pyfixest compiles with
numba on its first call). Peers come from the ``bench`` extra:
``pip install pyfixest linearmodels``; a missing one is reported and skipped.

Contenders
----------
numpy floor (codes given)
    Integer group codes already at hand: demean x1, x2, y with
    ``np.bincount``, ``np.linalg.lstsq``. No labels, no checks, no SEs.
numpy floor (+ factorize)
    The same, starting from the string labels (``pandas.factorize``).
skmixed
    ``FixedEffectsRegressor(group="g").fit(df[["x1", "x2", "g"]], df["y"])``:
    input validation, R-ordered levels, slopes, SEs, R², F, log-likelihood,
    the 20,000 group intercepts.
pyfixest
    ``feols("y ~ x1 + x2 | g", vcov="iid")`` and its SEs.
linearmodels
    ``PanelOLS(entity_effects=True)`` on the (g, row) MultiIndex it needs;
    the index is built once, outside the timing (it takes seconds on string
    labels, which would swamp the fit).
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd


def simulate(n=1_000_000, n_groups=20_000, seed=0):
    """Unbalanced groups, string labels, effects correlated with x1."""
    rng = np.random.default_rng(seed)
    weights = rng.gamma(2.0, 1.0, n_groups)
    sizes = rng.multinomial(n - 2 * n_groups, weights / weights.sum()) + 2
    g = np.repeat(np.arange(n_groups), sizes)
    effect = rng.standard_normal(n_groups)
    x1 = 0.5 * effect[g] + rng.standard_normal(n)
    x2 = rng.standard_normal(n)
    y = 1.5 * x1 - 0.75 * x2 + effect[g] + rng.standard_normal(n)
    labels = np.char.add("g", g.astype(str))
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": labels})


def numpy_floor(codes, n_groups, X, y):
    """Demean by bincount, lstsq: the least any within fit must do."""
    counts = np.bincount(codes, minlength=n_groups)
    A = np.column_stack([X, y])
    for j in range(A.shape[1]):
        A[:, j] -= (np.bincount(codes, weights=A[:, j], minlength=n_groups) / counts)[
            codes
        ]
    return np.linalg.lstsq(A[:, :-1], A[:, -1], rcond=None)[0]


def run_skmixed(df):
    from skmixed import FixedEffectsRegressor

    model = FixedEffectsRegressor(group="g").fit(df[["x1", "x2", "g"]], df["y"])
    return model.params_.to_numpy(), np.sqrt(np.diag(model.vcov_.to_numpy()))


def run_pyfixest(df):
    import pyfixest as pf

    fit = pf.feols("y ~ x1 + x2 | g", data=df, vcov="iid")
    return fit.coef().to_numpy(), fit.se().to_numpy()


def run_linearmodels(panel):
    from linearmodels.panel import PanelOLS

    res = PanelOLS(panel["y"], panel[["x1", "x2"]], entity_effects=True).fit()
    return res.params.to_numpy(), res.std_errors.to_numpy()


def timed(fn, repeats):
    """(median seconds, last result) after one warm-up call."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", help="data file (columns y, x1, x2, g)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.csv:
        df = pd.read_csv(args.csv, dtype={"g": str})
        source = args.csv
    else:
        df = simulate()
        source = "simulated"
    n_groups = df["g"].nunique()
    print(
        f"data: {source}: {len(df):,} rows, {n_groups:,} groups; repeats={args.repeats}"
    )
    codes, uniques = pd.factorize(df["g"].to_numpy())
    X, y = df[["x1", "x2"]].to_numpy(), df["y"].to_numpy()
    panel = df.set_index(["g", pd.RangeIndex(len(df), name="row")])

    def floor_with_factorize():
        c, u = pd.factorize(df["g"].to_numpy())
        return numpy_floor(c, len(u), X, y), None

    contenders = [
        (
            "numpy floor (codes given)",
            lambda: (numpy_floor(codes, len(uniques), X, y), None),
        ),
        ("numpy floor (+ factorize)", floor_with_factorize),
        ("skmixed", lambda: run_skmixed(df)),
        ("pyfixest", lambda: run_pyfixest(df)),
        ("linearmodels PanelOLS", lambda: run_linearmodels(panel)),
    ]
    rows = []
    for name, fn in contenders:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                seconds, (coef, se) = timed(fn, args.repeats)
        except ImportError as exc:
            print(f"{name}: skipped ({exc.name} not installed)")
            continue
        rows.append((name, seconds, coef, se))
    ours = next(r for r in rows if r[0] == "skmixed")
    floor = rows[0][1]
    print(
        f"\n{'contender':28s} {'median s':>9s} {'x floor':>8s} {'x skmixed':>9s}"
        "   slopes                 SEs"
    )
    for name, seconds, coef, se in rows:
        se_text = "-" if se is None else " ".join(f"{v:.6f}" for v in se)
        print(
            f"{name:28s} {seconds:9.3f} {seconds / floor:8.2f} {seconds / ours[1]:9.2f}"
            f"   {coef[0]:.6f} {coef[1]:.6f}   {se_text}"
        )
    for name, _, coef, se in rows:
        if name != "skmixed" and se is not None:
            print(
                f"max |skmixed - {name}|: slopes {np.max(np.abs(ours[2] - coef)):.1e}, "
                f"SEs {np.max(np.abs(ours[3] - se)):.1e}"
            )


if __name__ == "__main__":
    main()
