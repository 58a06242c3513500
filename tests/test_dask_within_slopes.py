"""FixedEffectsRegressor(group_slopes=..., method="within") on Dask
collections: the same numbers as the pandas fit (1e-10 relative), on the
LocalCluster fixture. It was refused ("group_slopes with the within method
is not available for Dask collections").
"""

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from test_dask import _assert_same_lm, _data, _partitioned  # noqa: E402

from skmixed import FixedEffectsRegressor  # noqa: E402


def _slopes_data():
    df = _data(seed=12)
    n = len(df)
    df["x3"] = np.random.default_rng(5).normal(size=n) + 0.5 * df["x1"]
    # a group in one partition only (rows n//3+1 .. n-2), of 5 rows
    df.loc[df.index[500:505], "g"] = "t_solo"
    # singular groups: one row, and x1 constant (x2 varies) in another
    df.loc[df.index[3], "g"] = "t_one"
    flat = df.index[[10, 400, 900, 1100]]  # spans partitions
    df.loc[flat, "g"] = "t_flat"
    df.loc[flat, "x1"] = 0.75
    return df


def _cuts(n):
    return [0, 7, 7, n // 3, n // 3 + 1, n - 2, n]  # an empty partition, tiny ones


@pytest.mark.parametrize("slopes", [["x1"], ["x1", "x2"], "x2"])
@pytest.mark.parametrize("weighted", [False, True])
def test_within_group_slopes_from_dask_equal_pandas(client, slopes, weighted):
    df = _slopes_data()
    cols = ["x1", "x2", "x3", "g"]
    w = None
    if weighted:
        w = np.random.default_rng(7).uniform(0.5, 2.0, len(df))
        df["w"] = np.where(np.arange(len(df)) % 9 == 1, 0.0, w)  # zeros: left out
    options = {"group": "g", "group_slopes": slopes, "method": "within"}
    # slopes not identified in "t_one" (one row) and, for x1, in "t_flat"
    with pytest.warns(UserWarning, match="aliased"):
        mem = FixedEffectsRegressor(**options).fit(
            df[cols], df["y"], sample_weight=None if w is None else df["w"]
        )
    ddf = _partitioned(df, _cuts(len(df)))
    with pytest.warns(UserWarning, match="aliased"):
        got = FixedEffectsRegressor(**options).fit(
            ddf[cols], ddf["y"], sample_weight=None if w is None else ddf["w"]
        )
    assert got.method_ == "within"
    _assert_same_lm(got, mem)
    for name in ("df_model_", "rank_", "bic_", "f_pvalue_"):
        np.testing.assert_allclose(getattr(got, name), getattr(mem, name), rtol=1e-10)
    pd.testing.assert_series_equal(
        got.group_intercepts_, mem.group_intercepts_, rtol=1e-10
    )
    pd.testing.assert_frame_equal(got.group_slopes_, mem.group_slopes_, rtol=1e-10)
    np.testing.assert_allclose(got.intercept_, mem.intercept_, rtol=1e-10)
    np.testing.assert_allclose(
        got.fittedvalues_.compute().to_numpy(), mem.fittedvalues_, rtol=1e-10
    )
    test = df.iloc[::7]
    np.testing.assert_allclose(
        got.predict(dd.from_pandas(test[cols], npartitions=3)).compute().to_numpy(),
        mem.predict(test[cols]),
        rtol=1e-10,
    )


@pytest.mark.parametrize(
    ("cols", "options"),
    [
        (["x1", "x2", "x3", "g"], {"missing": "drop"}),  # NaN rows dropped
        (["x1", "g"], {"fixed_effects": ["x1"]}),  # no other feature
    ],
)
@pytest.mark.filterwarnings("ignore:missing='drop'")
def test_within_group_slopes_edge_cases_from_dask_equal_pandas(client, cols, options):
    df = _slopes_data()
    df.loc[df.index[[20, 600]], "x3"] = np.nan
    options = {"group": "g", "group_slopes": ["x1"], "method": "within", **options}
    with pytest.warns(UserWarning, match="aliased"):
        mem = FixedEffectsRegressor(**options).fit(df[cols], df["y"])
    ddf = _partitioned(df, _cuts(len(df)))
    with pytest.warns(UserWarning, match="aliased"):
        got = FixedEffectsRegressor(**options).fit(ddf[cols], ddf["y"])
    _assert_same_lm(got, mem)
    pd.testing.assert_series_equal(
        got.group_intercepts_, mem.group_intercepts_, rtol=1e-10
    )
    pd.testing.assert_frame_equal(got.group_slopes_, mem.group_slopes_, rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_within_group_slopes_of_far_from_zero_y_from_dask_equal_pandas(
    client, weighted
):
    """y + 1e8 is the same model as y with group intercepts 1e8 higher:
    its group slopes and other coefficients, from Dask as from pandas, are
    those of y itself (``far - 1e8``: the same values, exactly). They were
    1.5e-9 (Dask) and 4e-10 (pandas) off, and the residuals from Dask 9e-9
    of the largest from those of pandas: the groups' means of y of 1e8 kept
    8 digits fewer than those of y less a constant."""
    df = _slopes_data()
    cols = ["x1", "x2", "x3", "g"]
    if weighted:
        df["w"] = np.random.default_rng(7).uniform(0.5, 2.0, len(df))
    far = df.assign(y=df["y"] + 1e8)
    near = far.assign(y=far["y"] - 1e8)
    ddf = _partitioned(far, _cuts(len(df)))
    options = {"group": "g", "group_slopes": ["x1"], "method": "within"}
    fits = []
    for X, y, w in [
        (near[cols], near["y"], near.get("w")),
        (far[cols], far["y"], far.get("w")),
        (ddf[cols], ddf["y"], ddf["w"] if weighted else None),
    ]:
        with pytest.warns(UserWarning, match="aliased"):
            fits.append(FixedEffectsRegressor(**options).fit(X, y, sample_weight=w))
    near, mem, got = fits
    for fit in (mem, got):
        pd.testing.assert_frame_equal(
            fit.group_slopes_, near.group_slopes_, rtol=1e-10, atol=0
        )
        np.testing.assert_allclose(fit.coef_, near.coef_, rtol=1e-10)
        pd.testing.assert_series_equal(
            fit.group_intercepts_, near.group_intercepts_ + 1e8, rtol=1e-15, atol=0
        )
        np.testing.assert_allclose(fit.vcov_, near.vcov_, rtol=1e-10)
        for name in ("sigma_", "rsquared_", "loglik_"):
            np.testing.assert_allclose(
                getattr(fit, name), getattr(near, name), rtol=1e-10
            )
    pd.testing.assert_frame_equal(
        got.group_slopes_, mem.group_slopes_, rtol=1e-10, atol=0
    )
    largest = np.abs(mem.residuals_).max()
    np.testing.assert_allclose(
        got.residuals_.compute().to_numpy(), mem.residuals_, atol=1e-10 * largest
    )
