"""``poly(x, degree)`` in a formula fitted from Dask collections, on the
LocalCluster fixture: the same numbers as the pandas fit (1e-10 relative)
and as R (tests/data/dask_poly, make_dask_poly.R; R 4.2.2, lme4 1.1-31).
It was refused ("whose state (centre, scale, polynomial basis) is learned
from every row").

R's poly(x, d) takes its basis (the recurrence's alpha and norm2) from every
row where x is present, rows missing y or another variable included, and
refuses a missing x; ``raw = TRUE`` has no state and takes a missing x.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from _r_outputs import r_data, r_output

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

import test_dask as on_dask  # noqa: E402
from test_rows_used import _quiet  # noqa: E402

import skmixed  # noqa: E402

_R = r_output("dask_poly", "dask_poly")
_NEW = pd.DataFrame(
    {
        "x1": [-2, 0, 1, 3.5],
        "x2": [0, 1, -1, 0.5],
        "x3": [0.0, 1, 2, -1],
        "big": 1e6 + np.array([-1, 0, 0.5, 2]),
        "g": "g1",
    }
)


def _cuts(n):
    """Unequal partitions, one of them empty."""
    return [0, 5, 5, 41, 42, n // 2, n - 3, n]


def _data():
    return r_data("dask_poly", "dask_poly")


def _close_to_r(got, coef, want, rtol):
    """The coefficients ``coef`` (R's names), their standard errors, sigma
    and the number of rows of a fit ``got``, as R's ``want``."""
    assert got.nobs_ == want["nobs"]
    assert list(coef.index) == list(want["coef"])
    np.testing.assert_allclose(coef.to_numpy(), list(want["coef"].values()), rtol=rtol)
    np.testing.assert_allclose(
        np.sqrt(np.diag(got.vcov_)), list(want["se"].values()), rtol=rtol
    )
    np.testing.assert_allclose(got.sigma_, want["sigma"], rtol=rtol)


@pytest.mark.parametrize(
    "case, formula",
    [
        ("lm_poly2", "y ~ poly(x1, 2) + x2"),
        ("lm_raw2", "y ~ poly(x3, 2, raw = TRUE) + x2"),
        ("lm_big3", "y ~ poly(big, 3) + x2"),
    ],
)
def test_lm_with_poly_from_dask_equals_pandas_and_r(client, case, formula):
    df = _data()
    ddf = on_dask._partitioned(df, _cuts(len(df)))
    mem = _quiet(skmixed.lm, formula, df)
    got = _quiet(skmixed.lm, formula, ddf)
    on_dask._assert_same_lm(got, mem)
    want = _R[case]
    _close_to_r(got, got.params_, want, 1e-9)
    np.testing.assert_allclose(got.loglik_, want["loglik"], rtol=1e-9)
    # predict on new data uses the basis learned at fit, pandas and Dask
    np.testing.assert_allclose(got.predict(_NEW), want["predict"], rtol=1e-9)
    new = dd.from_pandas(_NEW, npartitions=2)
    np.testing.assert_allclose(
        got.predict(new).compute().to_numpy(), mem.predict(_NEW), rtol=on_dask.RTOL
    )


def test_lmer_with_poly_from_dask_equals_pandas_and_r(client):
    df = _data()
    ddf = on_dask._partitioned(df, _cuts(len(df)))
    formula = "y ~ poly(x1, 3) + x2 + (1 | g)"
    mem = _quiet(skmixed.lmer, formula, df)
    got = _quiet(skmixed.lmer, formula, ddf)
    on_dask._assert_same_mixed(got, mem)
    assert str(got.summary()) == str(mem.summary())
    want = _R["lmer_poly3"]
    _close_to_r(got, got.fixed_effects_, want, 1e-6)
    np.testing.assert_allclose(got.theta_, want["theta"], rtol=1e-5)
    rows = df.dropna()
    np.testing.assert_allclose(
        got.predict(dd.from_pandas(rows, npartitions=3)).compute().to_numpy(),
        mem.predict(rows),
        rtol=on_dask.RTOL,
    )


_ESTIMATORS = [
    (skmixed.MixedLMRegressor, {"random_effects": "(1 | g)"}),
    (skmixed.PooledRegressor, {}),
    (skmixed.FixedEffectsRegressor, {"group": "g", "method": "dummy"}),
    (skmixed.FixedEffectsRegressor, {"group": "g", "method": "within"}),
]


@pytest.mark.parametrize("estimator, options", _ESTIMATORS)
@pytest.mark.parametrize(
    "rhs",
    [
        "poly(x1, 2) + x2",
        "poly(x1, 3) + scale(x2)",
        "poly(x3, 2, raw = TRUE) + x2",
        "x2 * poly(big, 2)",
    ],
)
def test_estimators_with_poly_from_dask_equal_pandas(client, estimator, options, rhs):
    df = _data()
    cols = ["g", "x1", "x2", "x3", "big"]
    ddf = on_dask._partitioned(df, _cuts(len(df)))
    mem = _fit(estimator(fixed_effects=rhs, **options), df[cols], df["y"])
    got = _fit(estimator(fixed_effects=rhs, **options), ddf[cols], ddf["y"])
    if estimator is skmixed.MixedLMRegressor:
        on_dask._assert_same_mixed(got, mem)
    else:
        on_dask._assert_same_lm(got, mem)
    rows = df.dropna()[cols]  # predict needs every value
    np.testing.assert_allclose(
        got.predict(dd.from_pandas(rows, npartitions=3)).compute().to_numpy(),
        mem.predict(rows),
        rtol=on_dask.RTOL,
    )


def _fit(model, X, y):
    """``model`` fitted with missing='drop', its warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.set_params(missing="drop").fit(X, y)


@pytest.mark.parametrize(
    "rhs",
    [
        "poly(x3, 2) + x2",  # x3 is missing in two rows: R refuses it
        "poly(h, 3)",  # three distinct values: R wants a degree below 3
    ],
)
def test_poly_refused_from_dask_as_in_memory(client, rhs):
    df = _data()
    df["h"] = np.arange(len(df)) % 3 * 1.5
    cols = ["g", "x1", "x2", "x3", "h"]
    ddf = on_dask._partitioned(df, _cuts(len(df)))
    messages = []
    for X, y in ((df[cols], df["y"]), (ddf[cols], ddf["y"])):
        with pytest.raises(ValueError, match=r"R refuses it") as caught:
            _fit(skmixed.MixedLMRegressor("(1 | g)", fixed_effects=rhs), X, y)
        messages.append(str(caught.value))
    assert messages[1] == messages[0]


@pytest.mark.parametrize("degree", [3, 8])
def test_high_degree_poly_of_a_skewed_variable_equals_pandas(client, degree):
    # the alpha and norm2 from the moments of a lognormal x lose 1e-7 at
    # degree 8: another pass refines them
    rng = np.random.default_rng(23)
    n = 3000
    z = np.exp(rng.normal(size=n) * 1.5)
    g = rng.integers(0, 25, n)
    y = np.log(z) + 0.3 * np.log(z) ** 2 + rng.normal(size=25)[g] + rng.normal(size=n)
    df = pd.DataFrame({"z": z, "g": g.astype(str), "y": y})
    df.loc[df.index[:4], "y"] = np.nan
    ddf = on_dask._partitioned(df, _cuts(n))
    rhs = f"poly(z, {degree})"
    for estimator, options in _ESTIMATORS[:2]:
        mem = _fit(estimator(fixed_effects=rhs, **options), df[["z", "g"]], df["y"])
        got = _fit(estimator(fixed_effects=rhs, **options), ddf[["z", "g"]], ddf["y"])
        np.testing.assert_allclose(
            _coefficients(got), _coefficients(mem), rtol=on_dask.RTOL
        )
        # the basis is orthogonal: the covariances, near 0, are compared
        # relative to the variances
        vcov = np.asarray(mem.vcov_)
        np.testing.assert_allclose(
            np.asarray(got.vcov_),
            vcov,
            rtol=on_dask.RTOL,
            atol=on_dask.RTOL * np.abs(np.diag(vcov)).max(),
        )


def _coefficients(model):
    if hasattr(model, "fixed_effects_"):
        return model.fixed_effects_.to_numpy()
    return np.asarray(model.params_, dtype=float)


@pytest.mark.parametrize(
    "case, data, formula",
    [
        ("coefs_big3", "dask_poly", "y ~ poly(big, 3) + x2"),
        ("coefs_x1_3", "dask_poly", "y ~ poly(x1, 3) + x2"),
        ("coefs_far3", "far", "y ~ poly(big, 3)"),
    ],
)
def test_poly_basis_is_rs_in_memory_and_from_dask(client, case, data, formula):
    # the recurrence's alpha and norm2 that predict uses are R's (poly()'s
    # "coefs") to the last bit or so: alpha_0 is the correctly rounded mean and
    # the others that mean plus sums on x less the mean, as R's. In "far"
    # (x a million plus N(0, 1)) formulaic's sum(x P^2) / sum(P^2) put
    # alpha_0 and alpha_1 one bit off, which moved the linear coefficient by
    # 4e-9 relative between a fit in memory and one from Dask
    df = r_data("dask_poly", data)
    ddf = on_dask._partitioned(df, _cuts(len(df)))
    want = {k: np.array(v, dtype=float) for k, v in _R[case].items()}
    fits = [_quiet(skmixed.lm, formula, frame) for frame in (df, ddf)]
    for model in fits:
        (state,) = model.fixed_formula_._spec.transform_state.values()
        alpha = [state["alpha"][j] for j in range(3)]
        norms2 = [state["norms2"][j] for j in range(4)]
        np.testing.assert_array_max_ulp(alpha, want["alpha"], maxulp=1)
        np.testing.assert_allclose(norms2, want["norm2"][1:], rtol=1e-14)
    on_dask._assert_same_lm(*fits[::-1])
