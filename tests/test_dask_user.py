"""A data scientist's calls on Dask collections, each compared with the same
call on the computed (pandas) frame: the numbers to 1e-10 relative, the
error messages word for word.

Runs on the real LocalCluster fixture (tests/conftest.py).
"""

import re

import numpy as np
import pandas as pd
import pytest

import skmixed

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from test_dask import _data, _partitioned, _unequal  # noqa: E402

from skmixed import (  # noqa: E402
    FixedEffectsRegressor,
    MixedLMRegressor,
    PooledRegressor,
)

RTOL = 1e-10


def _same_lm_numbers(got, want, rtol=RTOL):
    for name in ("sigma_", "rsquared_", "rsquared_adj_", "fvalue_", "loglik_"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=rtol)
    np.testing.assert_allclose(
        np.asarray(got.params_, dtype=float),
        np.asarray(want.params_, dtype=float),
        rtol=rtol,
    )
    np.testing.assert_allclose(
        np.asarray(got.vcov_, dtype=float),
        np.asarray(want.vcov_, dtype=float),
        rtol=rtol,
    )


@pytest.mark.parametrize(
    "estimator, options, weighted",
    [
        (PooledRegressor, {"group": "g"}, False),
        (PooledRegressor, {"group": "g"}, True),
        (FixedEffectsRegressor, {"group": "g", "method": "dummy"}, False),
        (FixedEffectsRegressor, {"group": "g", "method": "dummy"}, True),
        (FixedEffectsRegressor, {"group": "g", "method": "within"}, False),
    ],
)
def test_lm_response_far_from_zero_equals_pandas(client, estimator, options, weighted):
    # y + 1e8: the same model as y, the intercept 1e8 larger. The residual
    # sum of squares from a QR of [X | y] kept only ~8 digits of sigma, in
    # memory and from Dask each differently (1e-9 apart), and so did the
    # Dask fit's total sum of squares; both are now fitted as y less a
    # constant that the intercept absorbs
    df = _data(seed=9)
    df["w"] = np.random.default_rng(9).uniform(0.3, 3.0, len(df))
    df["y"] = (df["y"] + 1e8) - 1e8  # y's digits that y + 1e8 keeps, exactly
    cols = ["x1", "x2", "g"]
    weights = (lambda frame: frame["w"]) if weighted else (lambda frame: None)
    plain = estimator(**options).fit(df[cols], df["y"], sample_weight=weights(df))
    df["y"] += 1e8  # exact
    mem = estimator(**options).fit(df[cols], df["y"], sample_weight=weights(df))
    ddf = _partitioned(df, _unequal(df))
    fitted = estimator(**options).fit(ddf[cols], ddf["y"], sample_weight=weights(ddf))
    _same_lm_numbers(fitted, mem)
    # and both are the fit of the same rows of y, less the intercept's 1e8
    for name in ("sigma_", "rsquared_", "fvalue_", "loglik_"):
        np.testing.assert_allclose(getattr(mem, name), getattr(plain, name), rtol=RTOL)
    slopes = [c for c in plain.params_.index if c != "(Intercept)"]
    np.testing.assert_allclose(mem.params_[slopes], plain.params_[slopes], rtol=RTOL)
    # a residual of y + 1e8 is known to 1e8's last bit, ~1.5e-8
    np.testing.assert_allclose(
        fitted.residuals_.compute().to_numpy(), plain.residuals_, atol=1e-7
    )


def test_offset_nan_message_counts_all_rows_as_in_memory(client):
    # a NaN in two rows of the offset, in two partitions: "NaN in 2 row(s)"
    df = _data(seed=8)
    df["o"] = np.random.default_rng(8).normal(3, 2, len(df))
    df.loc[[5, 700], "o"] = np.nan
    cols = ["x1", "x2", "g", "o"]
    ddf = _partitioned(df, _unequal(df))
    for offset in ("o", "log(exp(o))"):
        with pytest.raises(ValueError) as in_memory:
            MixedLMRegressor("(1 | g)", offset=offset).fit(df[cols], df["y"])
        with pytest.raises(ValueError) as from_dask:
            MixedLMRegressor("(1 | g)", offset=offset).fit(ddf[cols], ddf["y"])
        assert "NaN in 2 row(s)" in str(in_memory.value)
        assert str(from_dask.value) == str(in_memory.value)


def _formula_data(seed=5):
    """_data with a factor, an integer id, a exposure and a nested level."""
    df = _data(seed=seed)
    rng = np.random.default_rng(seed)
    df["f"] = np.array(["a", "b", "c"])[rng.integers(0, 3, len(df))]
    df["k"] = rng.integers(0, 4, len(df))
    df["e"] = rng.uniform(0.5, 5, len(df))
    df["gi"] = rng.integers(0, 30, len(df))
    df["hs"] = "h" + df["h"].astype(str)
    return df


@pytest.mark.parametrize(
    "call",
    [
        lambda data: skmixed.lmer("y ~ C(f) + x1 * x2 + (1 | g)", data),
        lambda data: skmixed.lmer(
            "y ~ f:x1 + x2 + offset(log(e)) + (1 | g)", data, weights="e"
        ),
        lambda data: skmixed.lmer("y ~ x1 + (x1 | g)", data, offset="log(e)"),
        lambda data: skmixed.lmer("y ~ x1 + (1 | hs/g)", data, REML=False),
        lambda data: skmixed.lmer("y ~ x1 + (1 | gi) + (1 | hs)", data),
        lambda data: skmixed.lm("y ~ C(f) * x1 + x2", data),
        lambda data: skmixed.lm("y ~ 0 + f + x1", data, weights="e"),
    ],
)
def test_lmer_and_lm_on_a_dask_dataframe_equal_pandas(client, call):
    # the docs' formula entry points take the Dask DataFrame as data (they
    # said "data must be a pandas DataFrame ...; got DataFrame")
    df = _formula_data()
    mem = call(df)
    fitted = call(_partitioned(df, _unequal(df)))
    for name in ("sigma_", "loglik_"):
        np.testing.assert_allclose(getattr(fitted, name), getattr(mem, name), rtol=RTOL)
    coef = "fixed_effects_" if hasattr(mem, "fixed_effects_") else "params_"
    pd.testing.assert_series_equal(getattr(fitted, coef), getattr(mem, coef), rtol=RTOL)
    assert str(fitted.summary()) == str(mem.summary())


def test_glmer_refuses_a_dask_dataframe_clearly():
    df = _formula_data()
    df["yes"] = (df["y"] > df["y"].median()).astype(float)
    data = dd.from_pandas(df, npartitions=2)
    with pytest.raises(NotImplementedError, match="glmer does not fit from Dask"):
        skmixed.glmer("yes ~ x1 + (1 | g)", data)


@pytest.mark.parametrize(
    "call",
    [
        lambda data: PooledRegressor(fixed_effects=[]).fit(
            data[["x1", "g"]], data["y"]
        ),
        lambda data: skmixed.lm("y ~ 1", data),
    ],
)
def test_intercept_only_lm_on_dask_equals_pandas(client, call):
    # R's lm(y ~ 1): in memory it fits; from Dask it said "0 feature(s)"
    df = _data(seed=2)
    mem = call(df)
    fitted = call(_partitioned(df, _unequal(df)))
    assert list(fitted.params_.index) == ["(Intercept)"]
    _same_lm_numbers(fitted, mem)
    assert str(fitted.summary()) == str(mem.summary())


def test_no_feature_without_an_intercept_is_refused_as_in_memory(client):
    df = _data(seed=2)
    ddf = dd.from_pandas(df, npartitions=2)
    for fit in (
        lambda data: PooledRegressor().fit(data[["g"]], data["y"]),
        lambda data: PooledRegressor(fixed_effects=[], fit_intercept=False).fit(
            data[["x1"]], data["y"]
        ),
    ):
        with pytest.raises(ValueError) as in_memory:
            fit(df)
        with pytest.raises(ValueError) as from_dask:
            fit(ddf)
        # the same words; Dask does not count the rows to say so
        want = str(in_memory.value).replace(f"({len(df)}, 0)", "(n, 0)")
        assert str(from_dask.value) == want


@pytest.mark.parametrize(
    "estimator",
    [
        lambda: MixedLMRegressor("(x1 | g)"),
        lambda: PooledRegressor(),
        lambda: FixedEffectsRegressor(group="g"),
    ],
)
def test_score_of_a_response_far_from_zero_equals_pandas(client, estimator):
    # R² of y + 1e8 from Dask: the partitions' means of y were merged as
    # numbers of 1e8 (1.2e-10 relative off the in-memory score, weighted)
    df = _data(seed=4)
    df["y"] += 1e8
    df["w"] = np.random.default_rng(4).uniform(0.5, 2.0, len(df))
    cols = ["x1", "x2", "g"]
    model = estimator().fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    for weights in (None, "w"):
        want = model.score(
            df[cols], df["y"], sample_weight=None if weights is None else df[weights]
        )
        got = model.score(
            ddf[cols], ddf["y"], sample_weight=None if weights is None else ddf[weights]
        )
        assert got.compute() == pytest.approx(want, rel=1e-13)


def test_predict_errors_say_which_partition_they_count(client):
    # predict and score are lazy: a partition that finds a NaN feature or
    # an unseen level raises when computed, counting its own rows only. It
    # said "NaN in 1 row(s)" of two, as if for all; it now names its
    # partition before the in-memory message of its rows
    df = _data(seed=4)
    cols = ["x1", "x2", "g"]
    model = FixedEffectsRegressor(group="g").fit(df[cols], df["y"])
    test = df.iloc[:60].copy()
    test.loc[test.index[[3, 40]], "x1"] = np.nan
    unseen = df.iloc[:60].copy()
    unseen.loc[unseen.index[[5, 45]], "g"] = ["new1", "new2"]
    for rows in (test, unseen):
        data = dd.from_pandas(rows, npartitions=2)  # rows 0-29 and 30-59
        with pytest.raises(ValueError) as in_memory:
            model.predict(rows.iloc[:30][cols])
        for call in (
            lambda data: model.predict(data[cols]).compute(),
            lambda data: model.score(data[cols], data["y"]).compute(),
        ):
            with pytest.raises(ValueError) as from_dask:
                call(data)
            message = str(from_dask.value)
            assert re.match(r"Partition [01] of 2 of X: \S", message)
            if message.startswith("Partition 0"):
                assert message.endswith(str(in_memory.value))


def _two_partitions(first, second):
    """A Dask DataFrame of two pandas partitions, dtypes unchecked."""
    parts = [dask.delayed(first.copy)(), dask.delayed(second.copy)()]
    return dd.from_delayed(parts, meta=first.iloc[:0], verify_meta=False)


@pytest.mark.parametrize(
    "estimator",
    [
        lambda: MixedLMRegressor("(1 | g)"),
        lambda: PooledRegressor(),
        lambda: FixedEffectsRegressor(group="g"),
    ],
)
def test_partition_dtype_of_y_and_weights_named_as_the_user_knows_them(
    client, estimator
):
    # Parquet files whose y is float in one and int in another: the error
    # named skmixed's internal column '__skmixed_y__'
    df = _data(seed=6)
    df["y"] = np.round(df["y"])
    df["w"] = 1.0
    cols = ["x1", "x2", "g"]
    second = df.iloc[600:].astype({"y": np.int64})
    ddf = _two_partitions(df.iloc[:600], second)
    with pytest.raises(ValueError, match="^Column 'y' has dtype int64 in partition 1"):
        estimator().fit(ddf[cols], ddf["y"])
    second = df.iloc[600:].astype({"w": np.int64})
    ddf = _two_partitions(df.iloc[:600], second)
    with pytest.raises(ValueError, match="^Column 'sample_weight' has dtype int64"):
        estimator().fit(ddf[cols], ddf["y"], sample_weight=ddf["w"])


def test_score_with_a_missing_response_or_weight_is_refused_as_in_memory(client):
    # from Dask the partitions summed NaN: R² came out 0.0, silently
    df = _data(seed=5)
    cols = ["x1", "x2", "g"]
    model = MixedLMRegressor("(1 | g)").fit(df[cols], df["y"])
    rows = df.iloc[:40].copy()
    rows["w"] = 1.0
    for column in ("y", "w"):
        bad = rows.copy()
        bad.loc[bad.index[3], column] = np.nan
        data = dd.from_pandas(bad, npartitions=2)  # row 3: partition 0
        with pytest.raises(ValueError) as in_memory:
            model.score(bad[cols], bad["y"], sample_weight=bad["w"])
        with pytest.raises(ValueError) as from_dask:
            model.score(data[cols], data["y"], sample_weight=data["w"]).compute()
        assert str(from_dask.value) == f"Partition 0 of 2 of X: {in_memory.value}"


@pytest.mark.parametrize(
    "estimator",
    [
        lambda: MixedLMRegressor("(x1 | g)"),
        lambda: PooledRegressor(group="g"),
        lambda: FixedEffectsRegressor(group="g"),
    ],
)
def test_predict_without_a_fitted_numeric_column_fails_before_reading(
    client, estimator
):
    # from Dask the missing column was found by each partition, when
    # computed, and said as if about that partition's rows
    df = _data(seed=5)
    model = estimator().fit(df[["x1", "x2", "g"]], df["y"])
    rows = df.iloc[:40].copy()
    rows["text"] = rows["x2"].map("{:.3f}".format)  # x2 as strings
    data = dd.from_pandas(rows, npartitions=2)
    for call in (
        lambda frame: model.predict(frame[["x1", "g"]]),
        lambda frame: model.score(frame[["x1", "g"]], frame["y"]),
        lambda frame: model.predict(
            frame[["x1", "text", "g"]].rename(columns={"text": "x2"})
        ),
    ):
        with pytest.raises(ValueError) as in_memory:
            call(rows)
        with pytest.raises(ValueError) as from_dask:
            call(data)  # not computed
        assert str(from_dask.value) == str(in_memory.value)
