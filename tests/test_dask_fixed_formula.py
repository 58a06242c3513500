"""FixedEffectsRegressor with a formula fixed part on Dask collections: the
same numbers as the pandas fit (1e-10 relative), on the LocalCluster fixture.
It was refused ("a formula fixed part is available for MixedLMRegressor and
PooledRegressor").
"""

import numpy as np
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from test_dask import _assert_same_lm, _partitioned, _unequal  # noqa: E402
from test_dask_user import RTOL, _formula_data, _same_lm_numbers  # noqa: E402

from skmixed import FixedEffectsRegressor  # noqa: E402


def _data():
    df = _formula_data(seed=11)
    df["g"] = "s" + df["g"].astype(str)  # a string group column
    # a level of the formula factor f in the last rows only (one partition)
    df.loc[df.index[-2:], "f"] = "z"
    return df


@pytest.mark.parametrize("method", ["dummy", "within"])
@pytest.mark.parametrize(
    "formula, weighted, drop",
    [
        ("x1 + f", False, False),
        ("x1 * f", True, False),
        ("x1 + factor(k)", False, True),
    ],
)
def test_formula_fixed_part_from_dask_equals_pandas(
    client, method, formula, weighted, drop
):
    df = _data()
    if drop:
        df.loc[df.index[3], "x1"] = np.nan
    X, y = df.drop(columns="y"), df["y"]
    options = {"fixed_effects": formula, "group": "g", "method": method}
    if drop:
        options["missing"] = "drop"
    weights = df["e"] if weighted else None
    mem = FixedEffectsRegressor(**options).fit(X, y, sample_weight=weights)
    ddf = _partitioned(df, _unequal(df))
    dweights = ddf["e"] if weighted else None
    got = FixedEffectsRegressor(**options).fit(
        ddf.drop(columns="y"), ddf["y"], sample_weight=dweights
    )
    _same_lm_numbers(got, mem)
    assert got.nobs_ == mem.nobs_
    assert got.formula_ == mem.formula_
    assert str(got.summary()) == str(mem.summary())
    rows = df.iloc[10:50]  # (no missing value: predict needs every row)
    new = rows.drop(columns="y")
    want = mem.predict(new)
    drows = _partitioned(rows, [0, 15, 15, 40])
    pred = got.predict(drows.drop(columns="y"))
    np.testing.assert_allclose(np.asarray(pred.compute()), want, rtol=RTOL)
    np.testing.assert_allclose(got.predict(new), want, rtol=RTOL)
    score = got.score(drows.drop(columns="y"), drows["y"])
    np.testing.assert_allclose(
        float(getattr(score, "compute", lambda: score)()),
        mem.score(new, rows["y"]),
        rtol=RTOL,
    )


def test_formula_with_group_slopes_from_dask_equals_pandas(client):
    # group_slopes name a column of the formula's design, as in memory
    df = _data()
    options = {"fixed_effects": "x1 + f", "group_slopes": "x1", "group": "g"}
    mem = FixedEffectsRegressor(method="dummy", **options).fit(
        df.drop(columns="y"), df["y"]
    )
    ddf = _partitioned(df, _unequal(df))
    got = FixedEffectsRegressor(method="dummy", **options).fit(
        ddf.drop(columns="y"), ddf["y"]
    )
    # (covariances that are zero in exact arithmetic: 1e-16 noise, atol)
    _assert_same_lm(got, mem)
    assert str(got.summary()) == str(mem.summary())


def test_formula_without_intercept_is_refused_as_in_memory(client):
    df = _data()
    model = FixedEffectsRegressor(fixed_effects="0 + x1 + f", group="g")
    with pytest.raises(ValueError) as mem:
        model.fit(df.drop(columns="y"), df["y"])
    ddf = _partitioned(df, _unequal(df))
    with pytest.raises(ValueError) as got:
        model.fit(ddf.drop(columns="y"), ddf["y"])
    assert str(got.value) == str(mem.value)
