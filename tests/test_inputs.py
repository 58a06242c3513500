"""Inputs reach the model as the user means them (issue 10).

Each test is a user's call from the issue's "What goes wrong today" list,
asserting the intended model (the same numbers as the equivalent explicit
fit) or the intended error text, plus the "Done when" search on Penicillin.
"""

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_val_score
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_info, threadpool_limits

import skmixed
from skmixed import (
    FixedEffectsRegressor,
    GroupsMissingWarning,
    IgnoredColumnsWarning,
    MixedLMRegressor,
    PooledRegressor,
)
from skmixed.datasets import load_penicillin, load_sleepstudy
from skmixed.metrics import marginal_log_likelihood

STRUCTURES = ["(1|plate)", "(1|sample)", "(1|plate) + (1|sample)"]


@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy(school=True)


@pytest.fixture(scope="module")
def penicillin():
    return load_penicillin()


def _integer_coded(frame):
    """Penicillin with plate and sample as integer codes (1, 2, ...)."""
    out = frame.copy()
    for column in ("plate", "sample"):
        out[column] = out[column].cat.codes.astype(np.int64) + 1
    return out


def _same_fit(a, b):
    pd.testing.assert_series_equal(a.fixed_effects_, b.fixed_effects_, rtol=1e-8)
    np.testing.assert_allclose(a.theta_, b.theta_, rtol=1e-6, atol=1e-8)
    assert a.loglik_ == pytest.approx(b.loglik_, rel=1e-10)


# -- 1. a grouping column the spec does not name ---------------------------------------
def test_integer_grouping_column_not_in_the_spec_with_fixed_effects_stated(penicillin):
    d = _integer_coded(penicillin)
    X, y = d[["plate", "sample"]], d["diameter"]
    model = MixedLMRegressor("(1 | plate)", fixed_effects=[]).fit(X, y)
    alone = MixedLMRegressor("(1 | plate)").fit(d[["plate"]], y)
    assert list(model.fixed_effects_.index) == ["(Intercept)"]
    _same_fit(model, alone)


def test_misspelled_grouping_name_is_an_error_naming_the_column(sleep):
    X = sleep[["Days"]].assign(Subject=sleep["Subject"].astype(int))
    with pytest.raises(
        ValueError, match=r"'Subjet'.*not found.*Did you mean 'Subject'"
    ):
        MixedLMRegressor("(Days | Subjet)").fit(X, sleep["Reaction"])


def test_misspelled_cluster_column_of_the_pooled_model(sleep):
    X = sleep[["Days"]].assign(Subject=sleep["Subject"].astype(int))
    with pytest.raises(ValueError, match=r"'Subjet'.*not found.*mean 'Subject'"):
        PooledRegressor(group="Subjet").fit(X, sleep["Reaction"])


def test_grouping_column_is_never_a_feature_whatever_its_dtype(sleep):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    integer = X.assign(Subject=X["Subject"].astype(int))
    floats = X.assign(Subject=X["Subject"].astype(float))
    reference = MixedLMRegressor("(Days | Subject)").fit(X, y)
    for frame in (integer, floats):
        _same_fit(MixedLMRegressor("(Days | Subject)").fit(frame, y), reference)


def test_fixed_effects_list_chooses_exactly_those_columns(sleep):
    X, y = sleep[["Days", "Subject", "School"]], sleep["Reaction"]
    X = X.assign(Noise=np.sin(np.arange(len(X))))
    model = MixedLMRegressor("(Days | Subject)", fixed_effects=["Days"]).fit(X, y)
    alone = MixedLMRegressor("(Days | Subject)").fit(sleep[["Days", "Subject"]], y)
    _same_fit(model, alone)
    # a random slope need not be a fixed effect (lme4's y ~ 1 + (Days | g))
    slope_only = MixedLMRegressor("(Days | Subject)", fixed_effects=[]).fit(X, y)
    assert list(slope_only.fixed_effects_.index) == ["(Intercept)"]
    assert slope_only.theta_.shape == (3,)
    # and predict takes the slope column from X again
    assert np.isfinite(slope_only.predict(X)).all()


@pytest.mark.parametrize(
    "estimator",
    [
        PooledRegressor(fixed_effects=["Dyas"]),
        FixedEffectsRegressor(group="Subject", fixed_effects=["Dyas"]),
        MixedLMRegressor("(1 | Subject)", fixed_effects=["Dyas"]),
    ],
)
def test_fixed_effects_name_not_in_x_names_the_closest(sleep, estimator):
    with pytest.raises(ValueError, match=r"'Dyas'.*Did you mean 'Days'"):
        estimator.fit(sleep[["Days", "Subject"]], sleep["Reaction"])


def test_fixed_effects_listing_a_grouping_column_is_an_error(sleep):
    with pytest.raises(ValueError, match="'Subject', a grouping factor"):
        MixedLMRegressor("(1 | Subject)", fixed_effects=["Days", "Subject"]).fit(
            sleep[["Days", "Subject"]], sleep["Reaction"]
        )


def test_intercept_only_pooled_and_fixed(sleep):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    pooled = PooledRegressor(fixed_effects=[]).fit(X, y)
    assert pooled.params_.to_dict() == pytest.approx({"(Intercept)": y.mean()})
    fixed = FixedEffectsRegressor(group="Subject", fixed_effects=[]).fit(X, y)
    means = y.groupby(sleep["Subject"], observed=True).mean()
    np.testing.assert_allclose(fixed.group_intercepts_, means.to_numpy())


# -- 2. string labels a candidate does not use -----------------------------------------
def test_string_grouping_column_a_model_does_not_use_is_ignored(penicillin):
    d = penicillin.astype({"plate": str, "sample": str})
    X, y = d[["plate", "sample"]], d["diameter"]
    with pytest.warns(IgnoredColumnsWarning, match=r"\['sample'\].*fixed_effects="):
        model = MixedLMRegressor("(1 | plate)").fit(X, y)
    _same_fit(model, MixedLMRegressor("(1 | plate)").fit(d[["plate"]], y))
    assert model.predict(X).shape == (len(d),)


def _structure_search(estimator):
    return GridSearchCV(
        estimator,
        {"random_effects": STRUCTURES},
        cv=KFold(4, shuffle=True, random_state=0),
        scoring=marginal_log_likelihood,
        error_score="raise",
    )


def _check_search(search, X, y):
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert search.best_params_ == {"random_effects": "(1|plate) + (1|sample)"}
    for params in search.cv_results_["params"]:
        refit = clone(search.estimator).set_params(**params).fit(X, y)
        assert list(refit.fixed_effects_.index) == ["(Intercept)"]


@pytest.mark.parametrize("coding", ["string", "integer"])
def test_penicillin_search_over_structures_compares_like_with_like(penicillin, coding):
    if coding == "string":
        d = penicillin.astype({"plate": str, "sample": str})
        estimator = MixedLMRegressor()
    else:
        d = _integer_coded(penicillin)
        estimator = MixedLMRegressor(fixed_effects=[])
    X, y = d[["plate", "sample"]], d["diameter"]
    search = _structure_search(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredColumnsWarning)
        search.fit(X, y)
        _check_search(search, X, y)


def test_anova_across_structures_with_string_labels(penicillin):
    d = penicillin.astype({"plate": str, "sample": str})
    X, y = d[["plate", "sample"]], d["diameter"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredColumnsWarning)
        models = [MixedLMRegressor(s).fit(X, y) for s in STRUCTURES]
    table = skmixed.anova(models[0], models[2])
    assert table["Df"].iloc[1] == 1
    assert table["Chisq"].iloc[1] > 0 and np.isfinite(table["p_value"].iloc[1])


# -- 3. numpy X ------------------------------------------------------------------------
def test_numpy_x_without_groups_says_which_columns_are_features(sleep):
    X = sleep[["Days", "Subject"]].astype({"Subject": int}).to_numpy(dtype=float)
    y = sleep["Reaction"]
    with pytest.warns(GroupsMissingWarning) as record:
        model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    message = str(record[0].message)
    assert "all 2 column(s) of the numpy X as fixed-effect features" in message
    assert "without group effects" in message and "pooled" not in message
    assert list(model.fixed_effects_.index) == ["(Intercept)", "x0", "x1"]
    lm = PooledRegressor().fit(X, y)
    np.testing.assert_allclose(model.fixed_effects_, lm.params_, rtol=1e-10)


def test_numpy_x_with_groups_fits_the_grouped_model(sleep):
    y, g = sleep["Reaction"], sleep["Subject"]
    frame = MixedLMRegressor("(Days | Subject)").fit(sleep[["Days", "Subject"]], y)
    array = MixedLMRegressor("(x0 | Subject)").fit(
        sleep[["Days"]].to_numpy(), y, groups=g
    )
    np.testing.assert_allclose(array.fixed_effects_, frame.fixed_effects_, rtol=1e-8)
    assert array.loglik_ == pytest.approx(frame.loglik_, rel=1e-10)


def test_numpy_x_fixed_effects_by_positional_name(sleep):
    y, g = sleep["Reaction"], sleep["Subject"]
    X = np.column_stack([sleep["Days"], np.sin(np.arange(len(y)))])
    model = MixedLMRegressor("(x0 | Subject)", fixed_effects=["x0"]).fit(X, y, groups=g)
    alone = MixedLMRegressor("(x0 | Subject)").fit(X[:, :1], y, groups=g)
    _same_fit(model, alone)


# -- 4. predict takes groups from either place -----------------------------------------
def test_fit_with_groups_predict_with_the_column_in_x(sleep):
    X, y, g = sleep[["Days"]], sleep["Reaction"], sleep["Subject"]
    model = MixedLMRegressor("(Days | Subject)").fit(X, y, groups=g)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupsMissingWarning)
        in_x = model.predict(sleep[["Days", "Subject"]])
    np.testing.assert_allclose(in_x, model.predict(X, groups=g), rtol=1e-12)
    assert not np.allclose(in_x, model.predict(X, groups=g, include_random=False))


def test_fit_with_the_column_in_x_predict_with_groups(sleep):
    y, g = sleep["Reaction"], sleep["Subject"]
    model = MixedLMRegressor("(Days | Subject)").fit(sleep[["Days", "Subject"]], y)
    routed = model.predict(sleep[["Days"]], groups=g)
    np.testing.assert_allclose(routed, model.predict(sleep[["Days", "Subject"]]))
    assert model.score(sleep[["Days"]], y, groups=g) == pytest.approx(
        model.score(sleep[["Days", "Subject"]], y)
    )


def test_numpy_x_at_predict_after_a_frame_fit(sleep):
    X, y = sleep[["Days", "Subject"]].astype({"Subject": int}), sleep["Reaction"]
    model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    with pytest.warns(UserWarning, match=r"by position as \['Days', 'Subject'\]"):
        by_position = model.predict(X.to_numpy())
    np.testing.assert_allclose(by_position, model.predict(X), rtol=1e-12)
    with pytest.raises(ValueError, match=r"columns \['Days', 'Subject'\]"):
        model.predict(X[["Days"]].to_numpy())


def test_frame_at_predict_after_a_numpy_fit_is_read_by_position(sleep):
    y, g = sleep["Reaction"], sleep["Subject"]
    model = MixedLMRegressor("(x0 | Subject)").fit(
        sleep[["Days"]].to_numpy(), y, groups=g
    )
    with pytest.warns(UserWarning, match="fitted without feature names"):
        by_position = model.predict(sleep[["Days"]], groups=g)
    np.testing.assert_array_equal(
        by_position, model.predict(sleep[["Days"]].to_numpy(), groups=g)
    )


# -- 5. groups= that names another factor ----------------------------------------------
def test_routing_with_a_splitter_grouped_by_another_factor(sleep):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_val_score(
            MixedLMRegressor("(Days | Subject)"),
            X,
            y,
            cv=GroupKFold(3),
            scoring=marginal_log_likelihood,
            params={"groups": sleep["School"]},
        )
    plain = cross_val_score(
        MixedLMRegressor("(Days | Subject)"),
        X,
        y,
        groups=sleep["School"],
        cv=GroupKFold(3),
        scoring=marginal_log_likelihood,
    )
    np.testing.assert_allclose(routed, plain, rtol=1e-10)


def test_a_named_series_serves_only_its_factor(sleep):
    with pytest.raises(ValueError, match=r"Series named 'School'.*'Subject'"):
        MixedLMRegressor("(Days | Subject)").fit(
            sleep[["Days"]], sleep["Reaction"], groups=sleep["School"]
        )


def test_an_unnamed_array_serves_a_one_factor_model(sleep):
    y = sleep["Reaction"]
    unnamed = MixedLMRegressor("(Days | Subject)").fit(
        sleep[["Days"]], y, groups=sleep["Subject"].to_numpy()
    )
    _same_fit(
        unnamed, MixedLMRegressor("(Days | Subject)").fit(sleep[["Days", "Subject"]], y)
    )


def test_same_factor_twice_with_different_labels_is_an_error(sleep):
    with pytest.raises(ValueError, match="both a column of X and given in groups="):
        MixedLMRegressor("(Days | Subject)").fit(
            sleep[["Days", "Subject"]],
            sleep["Reaction"],
            groups=sleep["Subject"].sample(frac=1, random_state=0).to_numpy(),
        )


# -- parameters, threads, messages -----------------------------------------------------
@pytest.mark.parametrize(
    ("estimator", "parameter"),
    [
        (MixedLMRegressor("(1 | Subject)", reml="no"), "reml"),
        (MixedLMRegressor("(1 | Subject)", max_iter=0), "max_iter"),
        (MixedLMRegressor("(1 | Subject)", fixed_effects=3), "fixed_effects"),
        (PooledRegressor(fit_intercept="yes"), "fit_intercept"),
        (FixedEffectsRegressor(group="Subject", method="lsdv"), "method"),
    ],
)
def test_parameters_are_validated(sleep, estimator, parameter):
    with pytest.raises(InvalidParameterError, match=f"'{parameter}' parameter"):
        estimator.fit(sleep[["Days", "Subject"]], sleep["Reaction"])


def test_nan_group_label_mentions_missing_drop(sleep):
    X = sleep[["Days", "Subject"]].astype({"Subject": object})
    X.loc[3, "Subject"] = None
    with pytest.raises(ValueError, match="missing='drop'"):
        MixedLMRegressor("(Days | Subject)").fit(X, sleep["Reaction"])


def _blas_threads():
    return [(i["filepath"], i["num_threads"]) for i in threadpool_info()]


def test_concurrent_fits_are_identical_and_leave_blas_as_it_was(sleep):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]

    def fit(_):
        return MixedLMRegressor("(Days | Subject)").fit(X, y).theta_

    serial = fit(None)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        with ThreadPoolExecutor(max_workers=4) as pool:
            thetas = list(pool.map(fit, range(80)))
        after = _blas_threads()
    assert after == before
    for theta in thetas:
        np.testing.assert_array_equal(theta, serial)


def test_blas_is_one_thread_inside_a_fit_and_restored_after():
    from skmixed.mixed.optimize import blas_single_thread

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas()
        with blas_single_thread():
            inside = blas()
            with blas_single_thread():  # re-entrant
                assert blas() == inside
            assert blas() == inside
        assert blas() == before
    assert inside and all(n == 1 for n in inside)


# -- the formula hook ------------------------------------------------------------------
def test_formula_fixed_part_reaches_all_three_estimators():
    from skmixed.datasets import load_oats

    d = load_oats()
    X, y = d.drop(columns="yield"), d["yield"]
    # Variety is a fixed effect and part of the factor Block:Variety, as in R
    mixed = MixedLMRegressor("(1 | Block/Variety)", fixed_effects="nitro + Variety")
    mixed.fit(X, y)
    names = ["(Intercept)", "nitro", "VarietyMarvellous", "VarietyVictory"]
    assert list(mixed.fixed_effects_.index) == names
    assert mixed.fixed_formula_ is mixed._input_layout.formula
    # lme4: fixef(lmer(yield ~ nitro + Variety + (1 | Block/Variety), Oats))
    np.testing.assert_allclose(
        mixed.fixed_effects_, [82.4, 73.666667, 5.291667, -6.875], atol=1e-5
    )
    np.testing.assert_allclose(mixed.predict(X.iloc[::-1]), mixed.predict(X)[::-1])
    pooled = PooledRegressor(fixed_effects="nitro + Variety").fit(X, y)
    assert list(pooled.params_.index) == names
    fixed = FixedEffectsRegressor(group="Block", fixed_effects="0 + nitro")
    with pytest.raises(ValueError, match="always has an intercept"):
        fixed.fit(X, y)
    with pytest.raises(ValueError, match="fit_intercept=False"):
        PooledRegressor(fit_intercept=False, fixed_effects="nitro").fit(X, y)


def test_a_numpy_refit_forgets_the_frames_names_and_reads_integers_as_floats():
    df = load_sleepstudy()
    model = MixedLMRegressor("(1 | groups)")
    model.fit(df[["Days"]], df.Reaction, groups=df.Subject)
    assert list(model.feature_names_in_) == ["Days"]
    days = df[["Days"]].to_numpy().astype(np.int64)
    model.fit(days, df.Reaction, groups=df.Subject.to_numpy())
    assert not hasattr(model, "feature_names_in_")
    assert model.n_features_in_ == 1
    as_float = MixedLMRegressor("(1 | groups)").fit(
        days.astype(float), df.Reaction, groups=df.Subject.to_numpy()
    )
    np.testing.assert_array_equal(model.coef_, as_float.coef_)
    assert model.reml_criterion_ == as_float.reml_criterion_
