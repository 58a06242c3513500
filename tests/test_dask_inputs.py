"""Where the columns of a Dask input go: the same model, or the same error,
as the same call on the computed (pandas) frame.

Each test is a user's call, on the real LocalCluster fixture
(tests/conftest.py), first on pandas then on Dask.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
from test_dask import (  # noqa: E402  (skips without dask)
    RTOL,
    _assert_same_mixed,
    _data,
    _fits_dropping,
    _partitioned,
    _unequal,
    dask,
    dd,
)
from test_dask_user import _same_lm_numbers  # noqa: E402

from skmixed import (  # noqa: E402
    FixedEffectsRegressor,
    GroupsMissingWarning,
    MixedLMRegressor,
    PooledRegressor,
)

ESTIMATORS = [
    lambda: PooledRegressor(),
    lambda: FixedEffectsRegressor(group="g"),
    lambda: MixedLMRegressor("(1 | g)"),
]


def _unreadable(df):
    """A Dask DataFrame of ``df``'s columns whose partitions fail when read:
    a call that raises the in-memory error with it reads no row."""

    def fail():
        raise RuntimeError("a partition was read")

    parts = [dask.delayed(fail)() for _ in range(3)]
    return dd.from_delayed(parts, meta=df.iloc[:0], verify_meta=False)


# -- 1. the response as a column of X ----------------------------------------------
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_response_column_of_x_is_refused_before_reading(client, estimator):
    # fit(ddf, ddf["y"]): PooledRegressor fitted y ~ y (coef [0, 1])
    # silently, FixedEffectsRegressor too, MixedLMRegressor said the design
    # was rank deficient; in memory all three refuse, naming y
    df = _data(seed=1)
    with pytest.raises(ValueError) as in_memory:
        estimator().fit(df, df["y"])
    assert "X holds the column 'y', which is the response y" in str(in_memory.value)
    ddf = _unreadable(df)  # y is X's own column: told without reading a row
    with pytest.raises(ValueError) as from_dask:
        estimator().fit(ddf, ddf["y"])
    assert str(from_dask.value) == str(in_memory.value)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_response_column_of_x_from_another_collection_is_refused(client, estimator):
    # X and y built separately (two reads of one file): the same values
    # under the same name are the response, as in memory
    df = _data(seed=1)
    with pytest.raises(ValueError) as in_memory:
        estimator().fit(df, df["y"])
    X = _partitioned(df, _unequal(df))
    y = dd.from_pandas(df, npartitions=3)["y"]
    with pytest.raises(ValueError) as from_dask:
        estimator().fit(X, y)
    assert str(from_dask.value) == str(in_memory.value)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_response_as_a_one_column_frame_of_x_is_refused(client, estimator):
    # fit(ddf, ddf[["y"]]): the one-column frame had no name on Dask, so
    # PooledRegressor fitted y ~ y silently (memory names it by its column)
    df = _data(seed=1)
    with pytest.raises(ValueError) as in_memory:
        estimator().fit(df, df[["y"]])
    ddf = _unreadable(df)
    with pytest.raises(ValueError) as from_dask:
        estimator().fit(ddf, ddf[["y"]])
    assert str(from_dask.value) == str(in_memory.value)


def test_duplicate_column_names_are_refused_as_in_memory(client):
    # Dask raised its own DuplicateError from inside the fit
    df = _data(seed=1)[["x1", "x2", "g", "y"]]
    df.columns = ["x1", "x1", "g", "y"]
    with pytest.raises(ValueError) as in_memory:
        PooledRegressor().fit(df.iloc[:, :3], df["y"])
    ddf = _unreadable(df)
    with pytest.raises(ValueError) as from_dask:
        PooledRegressor().fit(ddf[["x1", "g"]], ddf["y"])
    assert str(from_dask.value) == str(in_memory.value)
    assert str(in_memory.value) == "X has duplicate column names: ['x1']."


def test_a_feature_named_as_another_response_is_a_feature(client):
    # pandas names 2 * X["x1"] + noise after x1: same name, other values;
    # x1 stays a feature, in memory and from Dask
    df = _data(seed=2)
    y = (2 * df["x1"] + np.random.default_rng(2).normal(size=len(df))).rename("x1")
    cols = ["x1", "x2", "g"]
    mem = PooledRegressor().fit(df[cols], y)
    ddf = _partitioned(df, _unequal(df))
    fitted = PooledRegressor().fit(ddf[cols], dd.from_pandas(y, npartitions=2))
    assert list(fitted.params_.index) == ["(Intercept)", "x1", "x2"]
    _same_lm_numbers(fitted, mem)


# -- 2. missing='drop': the levels of the rows kept ---------------------------------
def _with_factor(seed=3):
    df = _data(seed=seed)
    rng = np.random.default_rng(seed)
    df["f"] = np.array(["a", "b", "c", "d"])[rng.integers(0, 4, len(df))]
    df["w"] = rng.uniform(0.5, 2, len(df))
    return df


@pytest.mark.parametrize("column", ["y", "x1", "w"])
def test_formula_level_of_dropped_rows_only_is_no_level_of_the_lm(client, column):
    # every row of level d misses y (or x1, or its weight): R's lm with
    # na.omit has no fd; from Dask fd was a column (an NA coefficient)
    df = _with_factor()
    df.loc[df["f"] == "d", column] = np.nan
    cols = ["x1", "x2", "f", "g"]
    fits = []
    for data in (df, _partitioned(df, _unequal(df))):
        with pytest.warns(UserWarning, match="dropped"):
            model = PooledRegressor(fixed_effects="x1 + f", missing="drop")
            fits.append(model.fit(data[cols], data["y"], sample_weight=data["w"]))
    mem, fitted = fits
    assert list(mem.params_.index) == ["(Intercept)", "x1", "fb", "fc"]
    assert list(fitted.params_.index) == list(mem.params_.index)
    _same_lm_numbers(fitted, mem)
    assert fitted.df_resid_ == mem.df_resid_


def test_formula_reference_level_of_dropped_rows_only_moves_as_in_memory(client):
    # level a (the reference) only on rows missing y: R's reference is b;
    # from Dask the fit kept a's contrasts and dropped another column
    df = _with_factor(seed=4)
    rows = df["f"] == "a"
    df.loc[rows, "y"] = np.nan
    ddf = _partitioned(df, _unequal(df))
    cols = ["x1", "x2", "f", "g"]
    fitted, mem = _fits_dropping(
        "(1 | g)", df, ddf, cols, rows.sum(), fixed_effects="x1 + f"
    )
    assert list(mem.fixed_effects_.index) == ["(Intercept)", "x1", "fc", "fd"]
    _assert_same_mixed(fitted, mem)


@pytest.mark.parametrize("column", ["y", "x1", "o", "g"])
def test_group_level_of_dropped_rows_only_is_no_level(client, column):
    # a group whose rows all miss a value: no level of the fit (R's
    # model.frame after na.omit), from Dask as in memory
    df = _with_factor(seed=5)
    df["o"] = np.random.default_rng(5).normal(size=len(df))
    rows = df["g"] == "s7"
    df.loc[rows, column] = np.nan if column != "g" else None
    ddf = _partitioned(df, _unequal(df))
    cols = ["x1", "x2", "g", "o"]
    fitted, mem = _fits_dropping("(x1 | g)", df, ddf, cols, rows.sum(), offset="o")
    assert "s7" not in mem.random_effects_["g"].index
    assert mem.n_groups_ == {"g": 39}
    _assert_same_mixed(fitted, mem)
    assert str(fitted.summary()) == str(mem.summary())


# -- 3. a weight or the groups given as a column of X --------------------------------
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_weight_column_of_x_is_a_feature_and_said(client, estimator):
    # fit(X, y, sample_weight=X["w"]) with w in X: R's lm(y ~ ., d,
    # weights = w) makes w a predictor too, as scikit-learn's "X is the
    # features" does; likely unmeant, so it is said, from Dask as in memory
    df = _with_factor()
    cols = ["x1", "x2", "w", "g"]
    fits, said = [], []
    for data in (df, _partitioned(df, _unequal(df))):
        with pytest.warns(UserWarning, match="sample_weight is the column 'w'") as w:
            fits.append(estimator().fit(data[cols], data["y"], sample_weight=data["w"]))
        said.append([str(r.message) for r in w if "sample_weight" in str(r.message)])
    mem, fitted = fits
    assert said[0] == said[1]
    coef = "params_" if hasattr(mem, "params_") else "fixed_effects_"
    assert "w" in getattr(mem, coef).index
    pd.testing.assert_series_equal(getattr(fitted, coef), getattr(mem, coef), rtol=RTOL)


def test_weights_named_as_a_feature_with_other_values_are_not_said(client):
    df = _with_factor()
    weights = pd.Series(np.linspace(0.5, 2, len(df)), name="x2")
    ddf = _partitioned(df, _unequal(df))
    cols = ["x1", "x2", "g"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mem = PooledRegressor(group="g").fit(df[cols], df["y"], sample_weight=weights)
        fitted = PooledRegressor(group="g").fit(
            ddf[cols], ddf["y"], sample_weight=dd.from_pandas(weights, npartitions=2)
        )
    _same_lm_numbers(fitted, mem)


@pytest.mark.parametrize(
    "estimator",
    [
        lambda: FixedEffectsRegressor(),
        lambda: FixedEffectsRegressor(method="within"),
        lambda: MixedLMRegressor(),
    ],
)
def test_groups_given_as_a_column_of_x_is_no_feature(client, estimator):
    # fit(X, y, groups=X["gi"]) with an integer gi in X: a grouping column,
    # not a slope; from Dask the dummies were named group1, group2, ...
    # where memory names them after the column (gi1, gi2, ...)
    df = _data(seed=6)
    df["gi"] = df["g"].str[1:].astype(np.int64)
    cols = ["x1", "x2", "gi"]
    mem = estimator().fit(df[cols], df["y"], groups=df["gi"])
    ddf = _partitioned(df, _unequal(df))
    fitted = estimator().fit(ddf[cols], ddf["y"], groups=ddf["gi"])
    coef = "params_" if hasattr(mem, "params_") else "fixed_effects_"
    assert "gi" not in getattr(mem, coef).index
    pd.testing.assert_series_equal(getattr(fitted, coef), getattr(mem, coef), rtol=RTOL)
    np.testing.assert_allclose(
        fitted.predict(ddf[cols], groups=ddf["gi"]).compute(),
        mem.predict(df[cols], groups=df["gi"]),
        rtol=RTOL,
    )


def test_groups_disagreeing_with_the_column_of_x_is_refused(client):
    df = _data(seed=6)
    other = df["g"].sample(frac=1.0, random_state=0).reset_index(drop=True)
    cols = ["x1", "x2", "g"]
    model = MixedLMRegressor("(1 | g)")
    with pytest.raises(ValueError) as in_memory:
        model.fit(df[cols], df["y"], groups=other.to_frame())
    ddf = _partitioned(df, _unequal(df))
    groups = _partitioned(other.to_frame(), _unequal(df))
    with pytest.raises(ValueError) as from_dask:
        model.fit(ddf[cols], ddf["y"], groups=groups)
    assert str(from_dask.value) == str(in_memory.value)


# -- 4. the warning without groups says what is true of X ----------------------------
@pytest.mark.parametrize(
    "estimator, example",
    [
        (lambda: FixedEffectsRegressor(), "FixedEffectsRegressor(group='g')"),
        (lambda: MixedLMRegressor(), "MixedLMRegressor('(1 | g)')"),
    ],
)
def test_without_groups_a_dataframe_is_told_to_name_its_column(estimator, example):
    # the warning said "(a numpy X has no column names ...)" of a pandas X
    df = _data(seed=7)
    with pytest.warns(GroupsMissingWarning) as record:
        estimator().fit(df[["x1", "x2", "g"]], df["y"])
    said = str(record[0].message)
    assert "numpy" not in said
    assert "no column of X is named as a grouping factor" in said
    assert f"Name the grouping column of X ({example})" in said
    # numbers only: no feature is offered as the grouping column
    with pytest.warns(GroupsMissingWarning) as record:
        estimator().fit(df[["x1", "x2"]], df["y"])
    assert "<column>" in str(record[0].message)


@pytest.mark.parametrize("weighted", [False, True])
def test_fixed_effects_without_groups_from_dask_is_the_pandas_fit(client, weighted):
    # memory warns and fits lm(y ~ x1 + x2); from Dask the same warning came,
    # then "needs the grouping column"
    df = _with_factor(seed=7)
    cols = ["x1", "x2", "g"]
    fits, said = [], []
    for data in (df, _partitioned(df, _unequal(df))):
        weights = data["w"] if weighted else None
        with pytest.warns(GroupsMissingWarning) as record:
            model = FixedEffectsRegressor()
            fits.append(model.fit(data[cols], data["y"], sample_weight=weights))
        said.append([str(r.message) for r in record])
    mem, fitted = fits
    assert said[0] == said[1]
    assert mem.n_groups_ == fitted.n_groups_ == 0
    _same_lm_numbers(fitted, mem)
    assert str(fitted.summary()) == str(mem.summary())
    np.testing.assert_allclose(
        fitted.predict(df[cols]), mem.predict(df[cols]), rtol=RTOL
    )


@pytest.mark.parametrize(
    "options, weighted",
    [({}, False), ({"reml": False}, False), ({}, True), ({"offset": "o"}, False)],
)
def test_mixed_model_without_groups_from_dask_is_the_pandas_fit(
    client, options, weighted
):
    # memory warns and fits the fixed-effects-only model (lme4's criterion
    # of lm); from Dask the same warning came, then "needs the grouping
    # factors"
    df = _with_factor(seed=7)
    df["o"] = np.random.default_rng(7).normal(size=len(df))
    cols = ["x1", "x2", "g", "o"]
    fits, said = [], []
    for data in (df, _partitioned(df, _unequal(df))):
        weights = data["w"] if weighted else None
        with pytest.warns(GroupsMissingWarning) as record:
            model = MixedLMRegressor(**options)
            fits.append(model.fit(data[cols], data["y"], sample_weight=weights))
        said.append([str(r.message) for r in record])
    mem, fitted = fits
    assert said[0] == said[1]
    _assert_same_mixed(fitted, mem)
    assert fitted.n_groups_ == {} and fitted.theta_.size == 0
    # (values of ~1: absolutely to 1e-12, as some are near 0)
    np.testing.assert_allclose(
        fitted.fittedvalues_.compute(), mem.fittedvalues_, rtol=RTOL, atol=1e-12
    )
    np.testing.assert_allclose(
        fitted.predict(df[cols]), mem.predict(df[cols]), rtol=RTOL, atol=1e-12
    )


def test_mixed_model_without_groups_drops_aliased_columns_as_in_memory(client):
    df = _data(seed=7)
    df["x3"] = 2 * df["x1"] - df["x2"]  # aliased: lme4 drops it, with a warning
    cols = ["x1", "x2", "x3"]
    fits = []
    for data in (df, _partitioned(df, _unequal(df))):
        with pytest.warns(UserWarning, match="rank deficient"):
            fits.append(MixedLMRegressor().fit(data[cols], data["y"]))
    mem, fitted = fits
    assert list(mem.fixed_effects_.index) == ["(Intercept)", "x1", "x2"]
    _assert_same_mixed(fitted, mem)


def test_dask_array_without_groups_warns_and_fits_as_numpy(client):
    # a dask array X and a model naming g: memory (numpy) warns and fits
    # without groups; from Dask it raised, naming columns '__skmixed_x0__'
    # that the user never made
    df = _data(seed=7)
    ddf = dd.from_pandas(df, npartitions=3)
    X = ddf[["x1", "x2"]].to_dask_array(lengths=True)
    y = ddf["y"].to_dask_array(lengths=True)
    with pytest.warns(GroupsMissingWarning) as in_memory:
        mem = MixedLMRegressor("(1 | g)").fit(
            df[["x1", "x2"]].to_numpy(), df["y"].to_numpy()
        )
    with pytest.warns(GroupsMissingWarning) as from_dask:
        fitted = MixedLMRegressor("(1 | g)").fit(X, y)
    assert str(from_dask[0].message) == str(in_memory[0].message)
    assert "all 2 column(s) of the numpy X" in str(in_memory[0].message)
    _assert_same_mixed(fitted, mem)
    # with groups= it is the numpy fit with groups=
    mem = MixedLMRegressor("(1 | g)").fit(
        df[["x1", "x2"]].to_numpy(), df["y"].to_numpy(), groups=df["g"]
    )
    fitted = MixedLMRegressor("(1 | g)").fit(X, y, groups=ddf["g"])
    _assert_same_mixed(fitted, mem)


def test_level_of_rows_missing_only_the_offset_is_no_level(client):
    # R's model frame holds the offset: na.omit drops the rows missing it
    # before the unused levels (tests/data/offset_levels). In memory level
    # a stayed the reference (coefficients fb, fc of rows b, c, d: R has
    # fc, fd); from Dask too
    from _r_outputs import r_data, r_output

    df = r_data("offset_levels", "offset_levels")
    r = r_output("offset_levels", "offset_levels")["lmer_fixef"]
    ddf = _partitioned(df, [0, 30, 30, 77, len(df)])
    cols = ["x", "f", "g", "o"]
    fitted, mem = _fits_dropping(
        "(1 | g)", df, ddf, cols, 30, fixed_effects="x + f", offset="o"
    )
    assert list(mem.fixed_effects_.index) == ["(Intercept)", "x", "fc", "fd"]
    np.testing.assert_allclose(mem.fixed_effects_, list(r.values()), atol=1e-6)
    _assert_same_mixed(fitted, mem)


@pytest.mark.parametrize("estimator", ["pooled", "lm"])
def test_factor_call_value_only_on_dropped_rows_is_no_level(client, estimator):
    # factor(k) = 3 only on rows missing y: R's lm has no factor(k)3
    # (tests/data/offset_levels). In memory formulaic learned the levels of
    # every row, so factor(k)3 was an aliased (NaN) coefficient; from Dask
    # the levels were the rows kept's already
    from _r_outputs import r_data, r_output

    import skmixed

    df = r_data("offset_levels", "factor_call_levels")
    r = r_output("offset_levels", "offset_levels")["lm_factor_call"]
    fits = []
    for data in (df, _partitioned(df, [0, 50, 50, 90, len(df)])):
        with pytest.warns(UserWarning, match="dropped 40 row"):
            if estimator == "lm":
                fits.append(skmixed.lm("y ~ x + factor(k)", data, missing="drop"))
            else:
                model = PooledRegressor(fixed_effects="x + factor(k)", missing="drop")
                fits.append(model.fit(data[["x", "k"]], data["y"]))
    mem, fitted = fits
    assert list(mem.params_.index) == list(r)
    np.testing.assert_allclose(mem.params_, list(r.values()), rtol=1e-10)
    _same_lm_numbers(fitted, mem)


@pytest.mark.parametrize(
    "estimator",
    [
        lambda: PooledRegressor(fixed_effects="x1 + f"),
        lambda: MixedLMRegressor("(1 | g)", fixed_effects="x1 + f"),
    ],
)
def test_missing_label_of_a_formula_column_is_named_as_in_memory(client, estimator):
    # memory: "column 'f': missing in 2 row(s)"; from Dask the message named
    # the design columns, x1 too, which has no missing value
    df = _with_factor(seed=8)
    df["f"] = df["f"].astype(object)
    df.loc[[3, 900], "f"] = None
    cols = ["x1", "f", "g"]
    with pytest.raises(ValueError) as in_memory:
        estimator().fit(df[cols], df["y"])
    assert "(column 'f': missing in 2 row(s))" in str(in_memory.value)
    ddf = _partitioned(df, _unequal(df))
    with pytest.raises(ValueError) as from_dask:
        estimator().fit(ddf[cols], ddf["y"])
    assert str(from_dask.value) == str(in_memory.value)


def test_parquet_files_with_their_own_categories_fit_as_strings(client, tmp_path):
    # dd.read_parquet of files whose categorical group column holds each
    # file's own categories: the one-factor fit merged a batch's labels
    # (strings, once two files' categories are united) with another's
    # (a categorical): TypeError "cannot concatenate object of type
    # LargeStringArray". Memory fits the labels as strings
    pytest.importorskip("pyarrow")
    df = _data(seed=15)
    for i, (a, b) in enumerate([(0, 300), (300, 301), (301, 900), (900, 1200)]):
        part = df.iloc[a:b].copy()
        part["g"] = pd.Categorical(part["g"])  # this file's labels only
        part.to_parquet(tmp_path / f"part{i}.parquet")
    data = dd.read_parquet(tmp_path)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    fitted = MixedLMRegressor("(x1 | g)").fit(data[cols], data["y"])
    _assert_same_mixed(fitted, mem)


def test_predict_with_groups_disagreeing_with_x_is_refused(client):
    # at predict the groups= labels were ignored for X's column of that
    # name: predictions for the wrong groups, where memory refuses
    df = _data(seed=6)
    cols = ["x1", "x2", "g"]
    model = MixedLMRegressor("(1 | g)").fit(df[cols], df["y"])
    rows = df.iloc[:60]
    other = rows["g"].sample(frac=1.0, random_state=1).to_frame()
    other.index = rows.index
    with pytest.raises(ValueError) as in_memory:
        model.predict(rows[cols], groups=other)
    data = dd.from_pandas(rows, npartitions=2)
    with pytest.raises(ValueError) as from_dask:
        model.predict(data[cols], groups=dd.from_pandas(other, npartitions=2)).compute()
    assert str(from_dask.value).endswith(str(in_memory.value))
    # the same labels: the predictions of X's column
    same = model.predict(data[cols], groups=data[["g"]]).compute()
    np.testing.assert_allclose(same, model.predict(rows[cols]), rtol=RTOL)


def test_partition_with_other_categories_says_which_and_how(client):
    # it said "dtype category in partition 1 but category in the
    # collection's metadata"; the advice it now gives fits as memory does
    df = _data(seed=18)
    first, second = df.iloc[:600].copy(), df.iloc[600:].copy()
    first["g"] = pd.Categorical(first["g"])
    categories = [*first["g"].cat.categories, "extra"]
    second["g"] = pd.Categorical(second["g"], categories=categories)
    parts = [dask.delayed(first.copy)(), dask.delayed(second.copy)()]
    ddf = dd.from_delayed(parts, meta=first.iloc[:0], verify_meta=False)
    cols = ["x1", "g"]
    with pytest.raises(ValueError) as e:
        MixedLMRegressor("(1 | g)").fit(ddf[cols], ddf["y"])
    assert str(e.value).startswith(
        "Column 'g' has other categories in partition 1 than in the collection's "
        "metadata (only in the partition: ['extra']; only in the metadata: [])"
    )
    ddf["g"] = ddf["g"].cat.as_unknown()
    fitted = MixedLMRegressor("(1 | g)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, MixedLMRegressor("(1 | g)").fit(df[cols], df["y"]))


# -- a column the model does not read ----------------------------------------------
def _ignored_column_of_two_dtypes(df):
    """``df`` in 3 partitions whose column ``note`` is int64 in the first
    and float64 in the others (files written apart), as the metadata says
    float64."""
    df = df.assign(note=np.arange(len(df)) + 0.5)
    pieces = np.array_split(np.arange(len(df)), 3)
    parts = [df.iloc[p] for p in pieces]
    parts[0] = parts[0].assign(note=np.arange(len(parts[0])))
    delayed = [dask.delayed(lambda p=p: p)() for p in parts]
    return df, dd.from_delayed(delayed, meta=df.iloc[:0], verify_meta=False)


@pytest.mark.parametrize(
    "estimator",
    [
        lambda: PooledRegressor(fixed_effects=["x1", "x2"]),
        lambda: FixedEffectsRegressor(group="g", fixed_effects=["x1", "x2"]),
        lambda: MixedLMRegressor("(1 | g)", fixed_effects=["x1", "x2"]),
        lambda: MixedLMRegressor("(1 | g) + (1 | h)", fixed_effects="x1 + x2"),
    ],
)
def test_a_column_the_model_ignores_may_change_dtype(client, estimator):
    # memory fits (the column is not read); Dask refused: "Column 'note' has
    # dtype int64 in partition 0 but float64 in the collection's metadata"
    df, ddf = _ignored_column_of_two_dtypes(_data(seed=5))
    columns = [c for c in df.columns if c != "y"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = estimator().fit(df[columns], df["y"])
        lazy = estimator().fit(ddf[columns], ddf["y"])
    assert lazy.coef_ == pytest.approx(memory.coef_, rel=RTOL)
    assert lazy.intercept_ == pytest.approx(memory.intercept_, rel=RTOL)


def test_a_column_the_model_reads_must_keep_its_dtype(client):
    df, ddf = _ignored_column_of_two_dtypes(_data(seed=5))
    with pytest.raises(ValueError, match="'note' has dtype int64 in partition 0"):
        PooledRegressor(fixed_effects=["x1", "note"]).fit(ddf, ddf["y"])
