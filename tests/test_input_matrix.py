"""The input-validation matrix (issue 7): every awkward input, three estimators.

Each row of the matrix is a test, parametrized over the three estimators on
sleepstudy -- ``PooledRegressor(group="Subject")``,
``FixedEffectsRegressor(group="Subject")`` and
``MixedLMRegressor("(Days | Subject)")`` -- and over the stage (fit, predict,
score) where the row applies. Errors are asserted by their text. The
grouping-factor coding itself (level order, interactions) is tested in
test_groups.py; scale equivariance in test_robustness.py.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from skmixed import (
    FixedEffectsRegressor,
    IgnoredColumnsWarning,
    MixedLMRegressor,
    PooledRegressor,
)
from skmixed.datasets import load_sleepstudy

ESTIMATORS = {
    "pooled": PooledRegressor(group="Subject"),
    "fixed": FixedEffectsRegressor(group="Subject"),
    "mixed": MixedLMRegressor("(Days | Subject)"),
}
NAMES = list(ESTIMATORS)
STAGES = ["fit", "predict", "score"]


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    # a second, non-constant feature so that one-row and one-group fits and
    # column permutations have something to work with
    df["Noise"] = np.sin(np.arange(len(df)) * 1.7)
    return df


@pytest.fixture(scope="module")
def fitted(sleep):
    """One fitted model per estimator on X = [Days, Noise, Subject]."""
    X, y = sleep[["Days", "Noise", "Subject"]], sleep["Reaction"]
    return {name: clone(est).fit(X, y) for name, est in ESTIMATORS.items()}


def _xy(sleep):
    return sleep[["Days", "Noise", "Subject"]].copy(), sleep["Reaction"].copy()


def _run(name, stage, fitted, X, y, groups=None, **params):
    """Fit on (X, y) -- or predict / score them with the model fitted on clean data."""
    if stage == "fit":
        return clone(ESTIMATORS[name]).set_params(**params).fit(X, y, groups=groups)
    model = fitted[name]
    if stage == "predict":
        return model.predict(X, groups=groups)
    return model.score(X, y, groups=groups)


def _params(model):
    """Fixed-effect coefficients as a Series, whichever the estimator."""
    if isinstance(model, MixedLMRegressor):
        return model.fixed_effects_
    return model.params_


# -- NaN and inf ----------------------------------------------------------------
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name", NAMES)
def test_nan_in_x_names_column_and_rows(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    X.loc[[3, 7], "Noise"] = np.nan
    with pytest.raises(ValueError, match=r"column 'Noise': NaN in 2 row\(s\)"):
        _run(name, stage, fitted, X, y)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name", NAMES)
def test_inf_in_x_names_column_and_rows(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    X.loc[[0, 1, 2], "Days"] = [np.inf, -np.inf, np.nan]
    with pytest.raises(
        ValueError, match=r"column 'Days': NaN in 1 row\(s\) and inf in 2 row\(s\)"
    ):
        _run(name, stage, fitted, X, y)


@pytest.mark.parametrize("stage", ["fit", "score"])
@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_in_y(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    y.iloc[[5, 6]] = np.nan
    y.iloc[9] = np.inf
    with pytest.raises(
        ValueError, match=r"y contains NaN or inf.*NaN in 2 row\(s\) and inf in 1 row"
    ):
        _run(name, stage, fitted, X, y)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name", NAMES)
def test_missing_group_labels_name_factor_and_rows(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    X["Subject"] = X["Subject"].astype(object)
    X.loc[[4, 50, 51], "Subject"] = None
    with pytest.raises(
        ValueError, match=r"'Subject' contains missing values \(NaN/None\) in 3 row"
    ):
        _run(name, stage, fitted, X, y)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name", NAMES)
def test_missing_group_labels_in_groups_argument(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    groups = X.pop("Subject").astype(str).astype(float)
    groups.iloc[10] = np.nan
    if stage != "fit":
        # the fitted models took Subject from X; pass it as groups= instead
        X = X.assign(Subject=groups)
        groups = None
    with pytest.raises(ValueError, match=r"'Subject' contains missing values .* 1 row"):
        _run(name, stage, fitted, X, y, groups=groups)


@pytest.mark.parametrize("name", NAMES)
def test_inf_group_label(sleep, name):
    X, y = _xy(sleep)
    X["Subject"] = X["Subject"].astype(str).astype(float)
    X.loc[0, "Subject"] = np.inf
    with pytest.raises(ValueError, match=r"'Subject' contains inf values"):
        clone(ESTIMATORS[name]).fit(X, y)


# -- missing="drop" -------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_estimator_documents_missing(name):
    est = ESTIMATORS[name]
    assert est.get_params()["missing"] == "error"
    assert 'missing : {"error", "drop"}' in type(est).__doc__
    assert "na.omit" in type(est).__doc__


@pytest.mark.parametrize("name", NAMES)
def test_bad_missing_option(sleep, name):
    X, y = _xy(sleep)
    with pytest.raises(
        ValueError, match=r"'missing' parameter of \w+ must be a str among"
    ):
        clone(ESTIMATORS[name]).set_params(missing="omit").fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_missing_drop_equals_fit_on_clean_rows(sleep, name):
    """R's na.omit: rows with NaN in X, y or the groups are dropped, and said so."""
    X, y = _xy(sleep)
    X["Subject"] = X["Subject"].astype(object)
    X.loc[[2, 40], "Days"] = np.nan
    X.loc[77, "Noise"] = np.inf
    y.iloc[[40, 120]] = np.nan  # row 40 is also missing in X: counted once
    X.loc[[150, 151], "Subject"] = None
    bad = [2, 40, 77, 120, 150, 151]
    est = clone(ESTIMATORS[name]).set_params(missing="drop")
    with pytest.warns(UserWarning, match=r"dropped 6 row\(s\) .*\(174 rows remain\)"):
        dropped = est.fit(X, y)
    clean = clone(ESTIMATORS[name]).fit(X.drop(index=bad), y.drop(index=bad))
    assert dropped.n_dropped_ == 6
    assert dropped.nobs_ == clean.nobs_ == 174
    pd.testing.assert_series_equal(_params(dropped), _params(clean), rtol=1e-12)
    keep = X.drop(index=bad)
    np.testing.assert_allclose(dropped.predict(keep), clean.predict(keep), rtol=1e-12)
    if name == "mixed":
        np.testing.assert_allclose(dropped.theta_, clean.theta_, rtol=1e-12)


@pytest.mark.parametrize("name", ["pooled", "fixed"])
def test_missing_drop_is_reported_in_the_summary(sleep, name):
    X, y = _xy(sleep)
    X.loc[[1, 2, 3], "Noise"] = np.nan
    with pytest.warns(UserWarning, match="dropped 3 row"):
        model = clone(ESTIMATORS[name]).set_params(missing="drop").fit(X, y)
    # R's summary.lm: "(3 observations deleted due to missingness)"
    assert "(3 observations deleted due to missingness)" in str(model.summary())


@pytest.mark.parametrize("stage", ["predict", "score"])
@pytest.mark.parametrize("name", NAMES)
def test_missing_drop_does_not_drop_at_predict(sleep, name, stage):
    """predict must return one value per row: NaN there stays an error."""
    X, y = _xy(sleep)
    model = clone(ESTIMATORS[name]).set_params(missing="drop").fit(X, y)
    X.loc[[0], "Days"] = np.nan
    with pytest.raises(ValueError, match=r"column 'Days': NaN in 1 row") as info:
        model.predict(X) if stage == "predict" else model.score(X, y)
    # ... and the message does not suggest missing='drop', which cannot help here
    assert "missing='drop'" not in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_missing_drop_with_every_row_missing(sleep, name):
    X, y = _xy(sleep)
    y[:] = np.nan
    with pytest.raises(ValueError, match="Every row has NaN or inf"):
        clone(ESTIMATORS[name]).set_params(missing="drop").fit(X, y)


# -- shapes -----------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["fit", "score"])
@pytest.mark.parametrize("name", NAMES)
def test_lengths_of_x_and_y_disagree(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    with pytest.raises(ValueError, match="X has 180 rows but y has 179"):
        _run(name, stage, fitted, X, y.iloc[:-1])


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name", NAMES)
def test_lengths_of_x_and_groups_disagree(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    groups = X["Subject"].iloc[:-1]
    if stage == "fit":
        X = X.drop(columns="Subject")
    with pytest.raises(ValueError, match="groups has 179 rows but X has 180"):
        _run(name, stage, fitted, X, y, groups=groups)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name", NAMES)
def test_empty_input(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        _run(name, stage, fitted, X.iloc[:0], y.iloc[:0])


def test_one_row(sleep):
    X, y = _xy(sleep)
    X, y = X.iloc[:1], y.iloc[:1]
    # lm on one row: the intercept is y, the slopes are aliased (NA in R)
    with pytest.warns(UserWarning, match="aliased.*Days, Noise"):
        pooled = clone(ESTIMATORS["pooled"]).fit(X, y)
    assert pooled.intercept_ == pytest.approx(y.iloc[0], rel=1e-12)
    assert pooled.df_resid_ == 0 and np.isnan(pooled.sigma_)
    with pytest.raises(ValueError, match="has a single level .* at least 2 groups"):
        clone(ESTIMATORS["fixed"]).fit(X, y)
    with pytest.raises(ValueError, match="leave no residual degrees of freedom"):
        clone(ESTIMATORS["mixed"]).fit(X, y)


def test_one_group(sleep):
    X, y = _xy(sleep)
    X, y = X.iloc[:10], y.iloc[:10]
    pooled = clone(ESTIMATORS["pooled"]).fit(X, y)
    assert pooled.nobs_ == 10
    with pytest.raises(ValueError, match=r"single level \('308'\).* PooledRegressor"):
        clone(ESTIMATORS["fixed"]).fit(X, y)
    # lme4: "grouping factors must have > 1 sampled level"
    with pytest.raises(
        ValueError, match="grouping factors must have > 1 sampled level"
    ):
        clone(ESTIMATORS["mixed"]).fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_a_group_with_a_single_observation(sleep, name):
    """Subject 309 keeps one of its ten rows: fine for every estimator."""
    X, y = _xy(sleep)
    rows = list(range(0, 10)) + [10] + list(range(20, 180))
    X, y = X.iloc[rows], y.iloc[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        model = clone(ESTIMATORS[name]).fit(X, y)
        pred = model.predict(X)
    assert np.all(np.isfinite(pred))
    if name == "mixed":
        assert model.n_groups_ == {"Subject": 18}
        # partial pooling: one row pulls the group's line only part of the way
        b = model.random_effects_["Subject"].loc["309"]
        assert np.all(np.isfinite(b)) and b.abs().max() > 0
    if name == "fixed":
        assert model.n_groups_ == 18


def test_every_group_of_size_one(sleep):
    X, y = _xy(sleep)
    rows = [10 * i + i % 10 for i in range(18)]  # one row per subject, Days varies
    X, y = X.iloc[rows], y.iloc[rows]
    # lme4's error: a random intercept per row cannot be told from the residual
    with pytest.raises(
        ValueError,
        match="number of levels of each grouping factor must be < number of "
        r"observations \(problems: Subject\)",
    ):
        clone(ESTIMATORS["mixed"]).fit(X, y)
    # lm(y ~ Days + Noise + Subject): saturated; R leaves no residual df
    with pytest.warns(UserWarning, match="not defined because of singularities"):
        fixed = clone(ESTIMATORS["fixed"]).fit(X, y)
    assert fixed.df_resid_ == 0
    np.testing.assert_allclose(fixed.fittedvalues_, y, rtol=1e-10)
    assert clone(ESTIMATORS["pooled"]).fit(X, y).df_resid_ == 15


# -- columns ------------------------------------------------------------------------
def test_random_slope_column_missing_from_x(sleep):
    X, y = _xy(sleep)
    with pytest.raises(
        ValueError,
        match=r"Random slope column\(s\) \['Reaction'\] in \(1 \+ Reaction \| "
        r"Subject\) are not numeric feature columns of X \(features: "
        r"\['Days', 'Noise'\]\)",
    ):
        MixedLMRegressor("(Reaction | Subject)").fit(X, y)
    # a slope on the grouping column itself is not a feature either
    with pytest.raises(ValueError, match=r"Random slope column\(s\) \['Subject'\]"):
        MixedLMRegressor("(Subject | Subject)").fit(X, y)


@pytest.mark.parametrize("stage", ["predict", "score"])
@pytest.mark.parametrize("name", NAMES)
def test_feature_missing_at_predict(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    with pytest.raises(
        ValueError, match=r"seen at fit time, yet now missing:\n- Noise"
    ):
        _run(name, stage, fitted, X.drop(columns="Noise"), y)


@pytest.mark.parametrize("stage", ["predict", "score"])
@pytest.mark.parametrize("name", NAMES)
def test_renamed_feature_at_predict(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    X = X.rename(columns={"Noise": "noise"})
    with pytest.raises(ValueError, match=r"Feature names unseen at fit time:\n- noise"):
        _run(name, stage, fitted, X, y)


@pytest.mark.parametrize("name", NAMES)
def test_extra_column_at_predict_is_ignored_as_r_does(sleep, fitted, name):
    """R's predict takes the model's columns from newdata by name."""
    X, _ = _xy(sleep)
    model = fitted[name]
    np.testing.assert_array_equal(
        model.predict(X.assign(Unused=np.arange(180.0))), model.predict(X)
    )


@pytest.mark.parametrize("name", NAMES)
def test_columns_in_another_order_at_predict(sleep, fitted, name):
    X, y = _xy(sleep)
    model = fitted[name]
    shuffled = X[["Subject", "Noise", "Days"]]
    np.testing.assert_array_equal(model.predict(shuffled), model.predict(X))
    assert model.score(shuffled, y) == model.score(X, y)


@pytest.mark.parametrize("stage", ["predict", "score"])
@pytest.mark.parametrize("name", NAMES)
def test_string_feature_column(sleep, fitted, name, stage):
    """A feature of the fitted model must be numeric at predict."""
    X, y = _xy(sleep)
    X["Noise"] = X["Noise"].round(2).astype(str)
    with pytest.raises(
        ValueError, match=r"Column\(s\) \['Noise'\] of X are not numeric.*OneHotEncoder"
    ):
        _run(name, stage, fitted, X, y)


@pytest.mark.parametrize("name", NAMES)
def test_string_column_is_ignored_at_fit(sleep, name):
    """R ignores a column the model does not use (issue 10; it used to fail)."""
    X, y = _xy(sleep)
    X["Noise"] = X["Noise"].round(2).astype(str)
    with pytest.warns(IgnoredColumnsWarning, match=r"\['Noise'\].*fixed_effects="):
        model = clone(ESTIMATORS[name]).fit(X, y)
    alone = clone(ESTIMATORS[name]).fit(X.drop(columns="Noise"), y)
    pd.testing.assert_series_equal(_params(model), _params(alone))


@pytest.mark.parametrize("name", NAMES)
def test_categorical_feature_column(sleep, name):
    X, y = _xy(sleep)
    X["Days"] = pd.Categorical(X["Days"])
    if name == "mixed":  # Days is the random slope: the model needs numbers
        with pytest.raises(ValueError, match=r"\['Days'\] of X are not numeric"):
            clone(ESTIMATORS[name]).fit(X, y)
        return
    with pytest.warns(IgnoredColumnsWarning, match=r"\['Days'\]"):
        model = clone(ESTIMATORS[name]).fit(X, y)
    assert "Days" not in _params(model).index


@pytest.mark.parametrize("name", NAMES)
def test_bool_and_integer_columns_equal_their_float_values(sleep, name):
    X, y = _xy(sleep)
    X["Days"] = X["Days"].astype(np.int32)
    X["Late"] = X["Days"] > 4
    as_float = X.assign(Days=X["Days"].astype(float), Late=X["Late"].astype(float))
    model = clone(ESTIMATORS[name]).fit(X, y)
    reference = clone(ESTIMATORS[name]).fit(as_float, y)
    pd.testing.assert_series_equal(_params(model), _params(reference), rtol=1e-12)
    assert "Late" in _params(model).index


@pytest.mark.parametrize("name", NAMES)
def test_pandas_nullable_dtypes(sleep, name):
    X, y = _xy(sleep)
    nullable = X.assign(
        Days=X["Days"].astype("Int64"),
        Noise=X["Noise"].astype("Float64"),
        Late=(X["Days"] > 4).astype("boolean"),
        Subject=X["Subject"].astype(str).astype("string"),
    )
    plain = X.assign(Late=(X["Days"] > 4).astype(float))
    model = clone(ESTIMATORS[name]).fit(nullable, y.astype("Float64"))
    reference = clone(ESTIMATORS[name]).fit(plain, y)
    pd.testing.assert_series_equal(_params(model), _params(reference), rtol=1e-12)
    np.testing.assert_allclose(model.predict(nullable), reference.predict(plain))


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name", NAMES)
def test_pd_na_in_nullable_column(sleep, fitted, name, stage):
    X, y = _xy(sleep)
    X["Days"] = X["Days"].astype("Int64")
    X.loc[[8, 9], "Days"] = pd.NA
    with pytest.raises(ValueError, match=r"column 'Days': NaN in 2 row\(s\)"):
        _run(name, stage, fitted, X, y)


@pytest.mark.parametrize("name", NAMES)
def test_pd_na_in_nullable_response(sleep, name):
    X, y = _xy(sleep)
    y = y.astype("Float64")
    y.iloc[3] = pd.NA
    with pytest.raises(
        ValueError, match=r"y contains NaN or inf \(column 'Reaction': NaN in 1 row"
    ):
        clone(ESTIMATORS[name]).fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_pd_na_in_nullable_group_column(sleep, name):
    X, y = _xy(sleep)
    X["Subject"] = X["Subject"].astype(str).astype("string")
    X.loc[3, "Subject"] = pd.NA
    with pytest.raises(ValueError, match=r"'Subject' contains missing values .* 1 row"):
        clone(ESTIMATORS[name]).fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_pyarrow_string_groups(sleep, name):
    pytest.importorskip("pyarrow")
    X, y = _xy(sleep)
    arrow = X.assign(Subject=X["Subject"].astype(str).astype("string[pyarrow]"))
    model = clone(ESTIMATORS[name]).fit(arrow, y)
    reference = clone(ESTIMATORS[name]).fit(X, y)
    pd.testing.assert_series_equal(_params(model), _params(reference), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_integer_nullable_group_labels(sleep, name):
    X, y = _xy(sleep)
    ints = X.assign(Subject=X["Subject"].astype(str).astype(int).astype("Int64"))
    model = clone(ESTIMATORS[name]).fit(ints, y)
    reference = clone(ESTIMATORS[name]).fit(X, y)
    np.testing.assert_allclose(model.predict(ints), reference.predict(X), rtol=1e-12)


def test_unused_categories_do_not_become_levels(sleep):
    X, y = _xy(sleep)
    labels = X["Subject"].astype(str)
    categories = ["999", *sorted(set(labels)), "zzz"]
    X["Subject"] = pd.Categorical(labels, categories=categories)
    fixed = FixedEffectsRegressor(group="Subject").fit(X, y)
    assert fixed.n_groups_ == 18 and "999" not in fixed.levels_
    assert fixed.reference_ == "308"  # the first *used* category
    mixed = MixedLMRegressor("(Days | Subject)").fit(X, y)
    assert mixed.n_groups_ == {"Subject": 18}
    assert "zzz" not in mixed.random_effects_["Subject"].index
    cluster = PooledRegressor(group="Subject", cov_type="cluster").fit(X, y)
    assert cluster.n_groups_ == 18
    # an unused category at fit is simply an unseen level at predict
    new = X.iloc[:2].copy()
    new["Subject"] = pd.Categorical(["999", "308"], categories=categories)
    pred = mixed.predict(new)
    assert pred[0] == pytest.approx(mixed.predict(new, include_random=False)[0])
    with pytest.raises(ValueError, match=r"1 level\(s\) of 'Subject' unseen at fit"):
        fixed.predict(new)


@pytest.mark.parametrize("name", NAMES)
def test_object_column_mixing_ints_and_strings_as_group_labels(sleep, name):
    X, y = _xy(sleep)
    labels = X["Subject"].astype(str).astype(int).astype(object)
    labels[labels == 308] = "first"
    mixed_types = X.assign(Subject=labels)
    strings = X.assign(Subject=labels.astype(str))
    model = clone(ESTIMATORS[name]).fit(mixed_types, y)
    reference = clone(ESTIMATORS[name]).fit(strings, y)
    pd.testing.assert_series_equal(_params(model), _params(reference), rtol=1e-12)
    np.testing.assert_array_equal(
        model.predict(mixed_types), reference.predict(strings)
    )


@pytest.mark.parametrize("name", NAMES)
def test_float_group_labels(sleep, name):
    """Integral floats (a CSV column with a NaN somewhere) label as integers;
    other floats become levels too, as R's factor() makes them."""
    X, y = _xy(sleep)
    integral = X.assign(Subject=X["Subject"].astype(str).astype(float))
    model = clone(ESTIMATORS[name]).fit(integral, y)
    reference = clone(ESTIMATORS[name]).fit(X, y)
    pd.testing.assert_series_equal(_params(model), _params(reference), rtol=1e-12)
    fractional = X.assign(Subject=integral["Subject"] + 0.25)
    shifted = clone(ESTIMATORS[name]).fit(fractional, y)
    np.testing.assert_allclose(
        shifted.predict(fractional), reference.predict(X), rtol=1e-9
    )
    if name == "mixed":
        assert shifted.random_effects_["Subject"].index[0] == "308.25"


# -- levels and names unseen at predict -----------------------------------------
def test_unseen_group_at_predict(sleep, fitted):
    X, _ = _xy(sleep)
    new = X.iloc[[0, 1]].copy()
    new["Subject"] = ["308", "new"]
    pooled, fixed, mixed = fitted["pooled"], fitted["fixed"], fitted["mixed"]
    np.testing.assert_array_equal(pooled.predict(new), pooled.predict(X.iloc[[0, 1]]))
    with pytest.raises(
        ValueError,
        match=r"1 level\(s\) of 'Subject' unseen at fit: \['new'\].*handle_unknown",
    ):
        fixed.predict(new)
    mean_effect = clone(fixed).set_params(handle_unknown="mean")
    mean_effect.fit(X, sleep["Reaction"])
    expected = mean_effect.group_intercepts_.mean() + new.iloc[1, :2] @ (
        mean_effect.coef_
    )
    assert mean_effect.predict(new)[1] == pytest.approx(expected, rel=1e-12)
    # lme4's allow.new.levels: the population-level prediction
    population = mixed.predict(new, include_random=False)
    assert mixed.predict(new)[1] == pytest.approx(population[1], rel=1e-12)
    assert mixed.predict(new)[0] != pytest.approx(population[0], rel=1e-6)


# -- degenerate response and design ---------------------------------------------
@pytest.mark.parametrize("name", ["pooled", "fixed"])
def test_constant_y_for_lm(sleep, name):
    X, _ = _xy(sleep)
    y = np.full(180, 3.0)
    model = clone(ESTIMATORS[name]).fit(X, y)
    np.testing.assert_allclose(model.predict(X), 3.0, rtol=1e-12)
    np.testing.assert_allclose(model.coef_, 0.0, atol=1e-12)
    assert model.sigma_ < 1e-12


def test_constant_y_for_the_mixed_model_is_an_error(sleep):
    """σ = 0: the variance components are not estimable (lme4 returns an
    arbitrary θ with convergence warnings); say so instead."""
    X, _ = _xy(sleep)
    with pytest.raises(ValueError, match=r"y is constant \(every value is 3.0\)"):
        MixedLMRegressor("(Days | Subject)").fit(X, np.full(180, 3.0))


def test_y_fitted_exactly_by_the_fixed_effects_is_an_error(sleep):
    X, _ = _xy(sleep)
    with pytest.raises(ValueError, match="fitted exactly by the fixed effects"):
        MixedLMRegressor("(Days | Subject)").fit(X, 3.0 + 2.0 * X["Days"])


@pytest.mark.parametrize("kind", ["constant", "duplicate"])
@pytest.mark.parametrize("name", NAMES)
def test_aliased_column_dropped_with_a_warning_naming_it(sleep, name, kind):
    X, y = _xy(sleep)
    X["Extra"] = 1.0 if kind == "constant" else X["Days"]
    pattern = (
        r"rank deficient so dropping 1 column / coefficient: \['Extra'\]"
        if name == "mixed"
        else r"1 coefficient\(s\) not defined because of singularities .*: Extra\."
    )
    with pytest.warns(UserWarning, match=pattern):
        model = clone(ESTIMATORS[name]).fit(X, y)
    reference = clone(ESTIMATORS[name]).fit(X.drop(columns="Extra"), y)
    np.testing.assert_allclose(
        model.predict(X), reference.predict(X.drop(columns="Extra")), rtol=1e-10
    )
    if name == "mixed":
        assert "Extra" not in model.fixed_effects_.index
    else:
        assert np.isnan(model.params_["Extra"]) and model.aliased_ == ["Extra"]


def test_covariate_collinear_with_the_groups(sleep):
    """A subject-level covariate: absorbed (aliased) by fixed group effects,
    identified through the between-group variation in the other two."""
    X, y = _xy(sleep)
    X["Level"] = X["Subject"].astype(str).astype(float) / 100
    with pytest.warns(UserWarning, match=r"singularities .*: Level\."):
        fixed = FixedEffectsRegressor(group="Subject").fit(X, y)
    assert np.isnan(fixed.params_["Level"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixed = MixedLMRegressor("(Days | Subject)").fit(X, y)
        pooled = PooledRegressor(group="Subject").fit(X, y)
    assert np.isfinite(mixed.fixed_effects_["Level"])
    assert np.isfinite(pooled.params_["Level"])


def test_random_slope_constant_within_every_group(sleep):
    """(Level | Subject) with Level constant in each group: each group's
    variance is a quadratic in its Level -- identified, and nested in the
    random-intercept model, so its criterion can only be lower."""
    X, y = _xy(sleep)
    X["Level"] = X["Subject"].astype(str).astype(float) / 100
    slope = MixedLMRegressor("(Level | Subject)").fit(X, y)
    intercept = MixedLMRegressor("(1 | Subject)").fit(X, y)
    assert slope.reml_criterion_ <= intercept.reml_criterion_ + 1e-6
    np.testing.assert_allclose(slope.predict(X), slope.fittedvalues_, rtol=1e-10)
