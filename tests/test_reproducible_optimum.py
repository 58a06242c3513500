"""The fitted optimum is a function of the data, not of the rows' order.

Sums added in another order differ in their last bits; the optimiser's own
tolerance (~1e-7 in θ) would let that move θ by far more. The final Newton
polish on the analytic gradient lands on the criterion's stationary point
to rounding error, so two fits of the same rows in another order agree to
1e-10 (relative) in θ, β, σ and the criterion -- what a Dask fit needs to
equal the in-memory fit (issue 12).
"""

import numpy as np
import pandas as pd
import pytest

from skmixed import MixedLMRegressor

TOL = 1e-10


def _data(seed, n_groups=40, n_per=12):
    """General (non-dyadic) floats: covariates, responses and weights."""
    rng = np.random.default_rng(seed)
    n = n_groups * n_per
    g = np.repeat(np.arange(n_groups), n_per)
    h = rng.integers(0, 9, n)
    x = rng.normal(size=n) * 1.7 + 0.3
    z = rng.uniform(-1, 1, n)
    b0 = rng.normal(scale=0.9, size=n_groups)
    b1 = rng.normal(scale=0.4, size=n_groups)
    c0 = rng.normal(scale=0.6, size=9)
    y = 2.1 + 0.7 * x - 0.3 * z + b0[g] + b1[g] * x + c0[h] + rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "z": z,
            "g": pd.Series(g).map("g{}".format),
            "h": pd.Series(h).map("h{}".format),
            "y": y,
            "w": rng.uniform(0.3, 3.0, n),
        }
    )


def _relative(a, b):
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.mark.parametrize(
    ("spec", "reml", "weighted", "optimizer"),
    [
        ("(x | g)", True, False, "auto"),
        ("(x | g)", False, True, "auto"),
        ("(1 | g) + (1 | h)", True, False, "auto"),
        # L-BFGS-B on the gradient (the large crossed designs' optimiser)
        ("(1 | g) + (1 | h)", False, False, "lbfgsb"),
        ("(x || g) + (1 | h)", True, True, "auto"),
    ],
)
def test_permuted_rows_give_the_same_fit(spec, reml, weighted, optimizer):
    df = _data(7)
    order = np.random.default_rng(1).permutation(len(df))
    fits = []
    columns = ["x", "z", "g"] + (["h"] if "h" in spec else [])
    for frame in (df, df.iloc[order]):
        kwargs = {"sample_weight": frame["w"]} if weighted else {}
        fits.append(
            MixedLMRegressor(spec, reml=reml, optimizer=optimizer).fit(
                frame[columns], frame["y"], **kwargs
            )
        )
    a, b = fits
    # the two fits' sums really differ in their last bits
    assert not np.array_equal(
        a._criterion.design.Bxx, b._criterion.design.Bxx
    ) or not np.array_equal(a._criterion.design.CX, b._criterion.design.CX)
    bounded = np.isfinite(a._criterion.theta_lower)
    assert np.all(a.theta_[bounded] > 1e-3)  # an interior optimum
    assert _relative(a.theta_, b.theta_) < TOL
    assert _relative(a.coef_, b.coef_) < TOL
    assert _relative(a.intercept_, b.intercept_) < TOL
    assert _relative(a.sigma_, b.sigma_) < TOL
    crit = "reml_criterion_" if reml else "deviance_"
    assert _relative(getattr(a, crit), getattr(b, crit)) < TOL
