"""skmixed's estimators on every scikit-learn model-selection path.

Two ways for the groups to reach the model: as a column of a pandas X (works
everywhere), or as ``groups=`` with metadata routing enabled (inside
``sklearn.config_context`` so the global configuration is left alone). Every
path on which scikit-learn drops ``groups=`` must raise a
``GroupsMissingWarning`` that names the fix.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from _estimator_checks import expected_failed_checks
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.inspection import permutation_importance
from sklearn.metrics import r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    RandomizedSearchCV,
    cross_val_predict,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmixed import (
    FixedEffectsRegressor,
    GroupsMissingWarning,
    MixedLMRegressor,
    PooledRegressor,
)
from skmixed.datasets import load_sleepstudy
from skmixed.metrics import (
    conditional_log_likelihood,
    make_grouped_scorer,
    marginal_log_likelihood,
)

STRUCTURES = ["(1 | Subject)", "(Days | Subject)"]
# The warning must say how to keep the groups.
FIX = r"pandas X.*enable_metadata_routing=True"
# Under routing, it names the paths that never pass groups to predict.
ROUTING_FIX = r"routing is enabled.*never pass.*pandas X.*make_grouped_scorer"


@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy()


def routing():
    return sklearn.config_context(enable_metadata_routing=True)


class no_groups_missing_warning(warnings.catch_warnings):
    """Fail on any GroupsMissingWarning inside the block."""

    def __enter__(self):
        super().__enter__()
        warnings.simplefilter("error", GroupsMissingWarning)


def scaled_days():
    """Standardise Days; Subject passes through under its own name."""
    return ColumnTransformer(
        [("scale", StandardScaler(), ["Days"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def structure_search(scoring, **kwargs):
    return GridSearchCV(
        MixedLMRegressor(),
        {"random_effects": STRUCTURES},
        cv=GroupKFold(6),
        scoring=scoring,
        error_score="raise",
        **kwargs,
    )


def _check_picks_slope_while_r2_ties(search):
    results = pd.DataFrame(search.cv_results_).set_index("param_random_effects")
    assert search.best_params_ == {"random_effects": "(Days | Subject)"}
    ll = results["mean_test_mll"]
    assert ll["(Days | Subject)"] > ll["(1 | Subject)"] + 1.0
    r2 = results["mean_test_r2"]
    assert r2["(Days | Subject)"] == pytest.approx(r2["(1 | Subject)"], abs=1e-3)


# -- the acceptance test: GroupKFold + marginal log-likelihood -----------------
def test_grid_search_picks_slope_with_subject_as_x_column(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    scoring = {"mll": marginal_log_likelihood, "r2": "r2"}
    with no_groups_missing_warning():
        search = structure_search(scoring, refit="mll").fit(X, y, groups=sleep.Subject)
    _check_picks_slope_while_r2_ties(search)
    # The plain string scorer form of the acceptance test.
    with no_groups_missing_warning():
        single = structure_search(marginal_log_likelihood).fit(
            X, y, groups=sleep.Subject
        )
    assert single.best_params_ == {"random_effects": "(Days | Subject)"}
    assert single.best_score_ == pytest.approx(search.best_score_, rel=1e-12)


def test_grid_search_picks_slope_with_groups_under_routing(sleep):
    X, y = sleep[["Days"]], sleep.Reaction
    scoring = {"mll": marginal_log_likelihood, "r2": make_grouped_scorer(r2_score)}
    with routing(), no_groups_missing_warning():
        search = structure_search(scoring, refit="mll").fit(X, y, groups=sleep.Subject)
    _check_picks_slope_while_r2_ties(search)
    # Same folds, same numbers as with Subject in X.
    with no_groups_missing_warning():
        in_x = structure_search(
            {"mll": marginal_log_likelihood, "r2": "r2"}, refit="mll"
        ).fit(sleep[["Days", "Subject"]], y, groups=sleep.Subject)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_mll"],
        in_x.cv_results_["mean_test_mll"],
        rtol=1e-10,
    )


def test_grid_search_without_routing_drops_groups_and_says_so(sleep):
    # groups= reaches only the splitter. A pandas X without the grouping
    # column is an error naming the fix (it used to fit the pooled model
    # with a warning); a numpy X has no names, so the model warns.
    X, y = sleep[["Days"]], sleep.Reaction
    with pytest.raises(ValueError, match=f"'Subject'.*not found.*{FIX}"):
        structure_search(marginal_log_likelihood).fit(X, y, groups=sleep.Subject)
    with pytest.warns(GroupsMissingWarning, match=FIX):
        structure_search(marginal_log_likelihood).fit(
            X.to_numpy(), y, groups=sleep.Subject
        )


# -- cross_validate / cross_val_score ------------------------------------------
def test_cross_validate_with_x_column(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    with no_groups_missing_warning():
        result = cross_validate(
            MixedLMRegressor("(Days | Subject)"),
            X,
            y,
            groups=sleep.Subject,
            cv=GroupKFold(6),
            scoring={
                "mll": marginal_log_likelihood,
                "cll": conditional_log_likelihood,
                "r2": "r2",
            },
        )
    assert result["test_mll"].shape == (6,)
    assert np.all(np.isfinite(result["test_mll"]))
    # Under GroupKFold every test subject is new: the conditional score uses
    # no random effects and is worse, in total, than the marginal one.
    assert result["test_cll"].sum() < result["test_mll"].sum() - 50


def test_cross_validate_with_groups_under_routing(sleep):
    X, y = sleep[["Days"]], sleep.Reaction
    with routing(), no_groups_missing_warning():
        routed = cross_validate(
            MixedLMRegressor("(Days | Subject)"),
            X,
            y,
            cv=GroupKFold(6),
            scoring=marginal_log_likelihood,
            params={"groups": sleep.Subject},
        )
    in_x = cross_val_score(
        MixedLMRegressor("(Days | Subject)"),
        sleep[["Days", "Subject"]],
        y,
        groups=sleep.Subject,
        cv=GroupKFold(6),
        scoring=marginal_log_likelihood,
    )
    np.testing.assert_allclose(routed["test_score"], in_x, rtol=1e-10)


def test_cross_val_score_without_routing_warns(sleep):
    X, y = sleep[["Days"]], sleep.Reaction
    model = MixedLMRegressor("(Days | Subject)")
    # groups= reaches only the splitter: fit and score warn (numpy X; a
    # pandas X without the column is an error, see above).
    with pytest.warns(GroupsMissingWarning, match=FIX):
        cross_val_score(model, X.to_numpy(), y, groups=sleep.Subject, cv=GroupKFold(3))
    # params= reaches fit but not the scorer: scoring warns.
    with pytest.warns(GroupsMissingWarning, match=f"at predict.*{FIX}"):
        cross_val_score(
            model,
            X,
            y,
            groups=sleep.Subject,
            cv=GroupKFold(3),
            scoring=marginal_log_likelihood,
            params={"groups": sleep.Subject},
        )


def test_string_scorer_under_routing_drops_groups_and_warns(sleep):
    X, y = sleep[["Days"]], sleep.Reaction
    with routing():
        with pytest.warns(GroupsMissingWarning, match=f"at predict.*{ROUTING_FIX}"):
            plain = cross_val_score(
                MixedLMRegressor("(Days | Subject)"),
                X,
                y,
                cv=GroupKFold(3),
                scoring="r2",
                params={"groups": sleep.Subject},
            )
        with no_groups_missing_warning():
            grouped = cross_val_score(
                MixedLMRegressor("(Days | Subject)"),
                X,
                y,
                cv=GroupKFold(3),
                scoring=make_grouped_scorer(r2_score),
                params={"groups": sleep.Subject},
            )
    # Under GroupKFold every test subject is new: the same predictions.
    np.testing.assert_allclose(plain, grouped, rtol=1e-12)


# -- Pipelines -----------------------------------------------------------------
def test_pipeline_column_transformer_passes_group_column(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    pipe = Pipeline(
        [("prep", scaled_days()), ("model", MixedLMRegressor("(Days | Subject)"))]
    )
    with no_groups_missing_warning():
        result = cross_validate(
            pipe,
            X,
            y,
            groups=sleep.Subject,
            cv=GroupKFold(6),
            scoring={"mll": marginal_log_likelihood, "r2": "r2"},
        )
        fitted = pipe.fit(X, y)
        r2 = fitted.score(X, y)
    plain = MixedLMRegressor("(Days | Subject)").fit(X, y)
    # Equal up to the optimiser's tolerance (the slope's scale changed).
    assert r2 == pytest.approx(plain.score(X, y), rel=1e-6)
    assert np.all(np.isfinite(result["test_mll"]))


def test_pipeline_standard_scaler_with_groups_under_routing(sleep):
    X, y, g = sleep[["Days"]], sleep.Reaction, sleep.Subject
    pipe = Pipeline(
        [
            ("scale", StandardScaler().set_output(transform="pandas")),
            ("model", MixedLMRegressor("(Days | Subject)")),
        ]
    )
    plain = MixedLMRegressor("(Days | Subject)").fit(X, y, groups=g)
    with routing(), no_groups_missing_warning():
        pipe.fit(X, y, groups=g)
        predicted = pipe.predict(X, groups=g)
        r2 = pipe.score(X, y, groups=g)
        scores = cross_val_score(
            pipe,
            X,
            y,
            cv=GroupKFold(3),
            scoring=marginal_log_likelihood,
            params={"groups": g},
        )
    np.testing.assert_allclose(predicted, plain.predict(X, groups=g), rtol=1e-6)
    assert r2 == pytest.approx(plain.score(X, y, groups=g), rel=1e-6)
    assert np.all(np.isfinite(scores))


def test_pipeline_without_routing(sleep):
    X, y, g = sleep[["Days"]], sleep.Reaction, sleep.Subject
    pipe = Pipeline(
        [
            ("scale", StandardScaler().set_output(transform="pandas")),
            ("model", MixedLMRegressor("(Days | Subject)")),
        ]
    )
    # Step-prefixed fit params and predict(groups=) work without routing ...
    with no_groups_missing_warning():
        pipe.fit(X, y, model__groups=g)
        predicted = pipe.predict(X, groups=g)
    plain = MixedLMRegressor("(Days | Subject)").fit(X, y, groups=g)
    np.testing.assert_allclose(predicted, plain.predict(X, groups=g), rtol=1e-6)
    # ... Pipeline.score drops groups.
    with pytest.warns(GroupsMissingWarning, match=FIX):
        pipe.score(X, y, groups=g)


# -- the three estimators in one grid ----------------------------------------
def _three_model_search(prep, models, scoring):
    grid = [
        {"model": [models["pooled"]]},
        {"model": [models["fixed"]]},
        {"model": [MixedLMRegressor()], "model__random_effects": STRUCTURES},
    ]
    pipe = Pipeline([("prep", prep), ("model", MixedLMRegressor())])
    return GridSearchCV(
        pipe, grid, cv=GroupKFold(6), scoring=scoring, refit="mll", error_score="raise"
    )


def _check_three_models(search):
    results = pd.DataFrame(search.cv_results_)
    names = [
        type(p["model"]).__name__ + p.get("model__random_effects", "")
        for p in results["params"]
    ]
    ll = pd.Series(results["mean_test_mll"].to_numpy(), index=names)
    r2 = pd.Series(results["mean_test_r2"].to_numpy(), index=names)
    # Balanced data: every model predicts new subjects with the same line.
    np.testing.assert_allclose(r2, r2.iloc[0], atol=1e-6)
    assert ll.idxmax() == "MixedLMRegressor(Days | Subject)"
    assert ll["MixedLMRegressor(1 | Subject)"] > ll["PooledRegressor"]
    assert ll["PooledRegressor"] > ll["FixedEffectsRegressor"]
    assert isinstance(search.best_estimator_[-1], MixedLMRegressor)
    assert search.best_estimator_[-1].random_effects == "(Days | Subject)"


def test_three_estimators_in_one_grid_with_x_column(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    models = {
        "pooled": PooledRegressor(group="Subject"),
        "fixed": FixedEffectsRegressor(group="Subject", handle_unknown="mean"),
    }
    scoring = {"mll": marginal_log_likelihood, "r2": "r2"}
    search = _three_model_search(scaled_days(), models, scoring)
    with no_groups_missing_warning():
        search.fit(X, y, groups=sleep.Subject)
    _check_three_models(search)


def test_three_estimators_in_one_grid_with_groups_under_routing(sleep):
    X, y = sleep[["Days"]], sleep.Reaction
    models = {
        "pooled": PooledRegressor(),
        "fixed": FixedEffectsRegressor(handle_unknown="mean"),
    }
    scoring = {"mll": marginal_log_likelihood, "r2": make_grouped_scorer(r2_score)}
    prep = StandardScaler().set_output(transform="pandas")
    with routing(), no_groups_missing_warning():
        search = _three_model_search(prep, models, scoring)
        search.fit(X, y, groups=sleep.Subject)
    _check_three_models(search)


# The checks fit without groups: the models say so, and that is expected here.
@pytest.mark.filterwarnings("ignore::skmixed.GroupsMissingWarning")
@parametrize_with_checks(
    [PooledRegressor(), FixedEffectsRegressor(), MixedLMRegressor()],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- searches ------------------------------------------------------------------
def test_randomized_search_over_structure_and_reml(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    search = RandomizedSearchCV(
        MixedLMRegressor(),
        {
            "random_effects": STRUCTURES + ["(Days || Subject)"],
            "reml": [True, False],
        },
        n_iter=4,
        cv=GroupKFold(3),
        scoring=marginal_log_likelihood,
        random_state=0,
        error_score="raise",
    )
    with no_groups_missing_warning():
        search.fit(X, y, groups=sleep.Subject)
    params = search.cv_results_["params"]
    assert len(params) == 4
    assert {p["reml"] for p in params} == {True, False}
    assert search.best_params_["random_effects"] != "(1 | Subject)"
    assert search.best_estimator_.reml == search.best_params_["reml"]


def test_fitted_search_predicts_with_x_column_and_warns_without(sleep):
    y = sleep.Reaction
    with no_groups_missing_warning():
        search = structure_search(marginal_log_likelihood).fit(
            sleep[["Days", "Subject"]], y, groups=sleep.Subject
        )
        conditional = search.predict(sleep[["Days", "Subject"]])
        ll = marginal_log_likelihood(search, sleep[["Days", "Subject"]], y)
    best = search.best_estimator_
    np.testing.assert_array_equal(conditional, best.predict(sleep[["Days", "Subject"]]))
    assert ll == marginal_log_likelihood(best, sleep[["Days", "Subject"]], y)
    # With groups= under routing the refit model has them, but
    # GridSearchCV.predict takes no groups.
    with routing():
        routed = structure_search(marginal_log_likelihood).fit(
            sleep[["Days"]], y, groups=sleep.Subject
        )
        with pytest.warns(GroupsMissingWarning, match=ROUTING_FIX):
            routed.predict(sleep[["Days"]])
        with no_groups_missing_warning():
            score = routed.score(sleep[["Days"]], y, groups=sleep.Subject)
    assert score == pytest.approx(ll, rel=1e-10)


# -- cross_val_predict ---------------------------------------------------------
def test_cross_val_predict_with_x_column(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    model = MixedLMRegressor("(Days | Subject)")
    # New subjects: population-level predictions of the held-out subjects.
    cv = GroupKFold(6)
    with no_groups_missing_warning():
        predicted = cross_val_predict(model, X, y, cv=cv, groups=sleep.Subject)
    train, test = next(cv.split(X, y, sleep.Subject))
    fold = clone(model).fit(X.iloc[train], y.iloc[train])
    np.testing.assert_allclose(
        predicted[test],
        fold.predict(X.iloc[test], include_random=False),
        rtol=1e-10,
    )
    # New rows of known subjects: the subjects' conditional modes are used.
    cv = KFold(5, shuffle=True, random_state=0)
    with no_groups_missing_warning():
        predicted = cross_val_predict(model, X, y, cv=cv)
    train, test = next(cv.split(X))
    fold = clone(model).fit(X.iloc[train], y.iloc[train])
    np.testing.assert_allclose(predicted[test], fold.predict(X.iloc[test]), rtol=1e-10)
    assert r2_score(y, predicted) > 0.7


@pytest.mark.parametrize("use_routing", [False, True])
def test_cross_val_predict_drops_groups_and_warns(sleep, use_routing):
    X, y = sleep[["Days"]], sleep.Reaction
    context = routing() if use_routing else warnings.catch_warnings()
    fix = ROUTING_FIX if use_routing else FIX
    with context, pytest.warns(GroupsMissingWarning, match=f"at predict.*{fix}"):
        cross_val_predict(
            MixedLMRegressor("(Days | Subject)"),
            X,
            y,
            cv=GroupKFold(3),
            params={"groups": sleep.Subject},
            **({} if use_routing else {"groups": sleep.Subject}),
        )


# -- clone, pickle, permutation importance -------------------------------------
def test_clone_keeps_parameters_and_drops_fit(sleep):
    model = MixedLMRegressor("(Days || Subject)", reml=False).fit(
        sleep[["Days", "Subject"]], sleep.Reaction
    )
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "theta_")


def test_pickle_round_trip_predicts_identically(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    new = X.assign(Subject="new-subject")
    np.testing.assert_array_equal(again.predict(new), model.predict(new))
    assert marginal_log_likelihood(again, X, y) == marginal_log_likelihood(model, X, y)
    with no_groups_missing_warning():
        search = structure_search(marginal_log_likelihood).fit(
            X, y, groups=sleep.Subject
        )
    reloaded = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(reloaded.predict(X), search.predict(X))


def test_permutation_importance_with_x_column(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    with no_groups_missing_warning():
        result = permutation_importance(model, X, y, n_repeats=3, random_state=0)
    importance = pd.Series(result.importances_mean, index=X.columns)
    # Both matter: Days through the slope, Subject through the conditional modes.
    assert importance["Days"] > 0.2
    assert importance["Subject"] > 0.1


def test_permutation_importance_with_groups_argument_warns(sleep):
    X, y, g = sleep[["Days"]], sleep.Reaction, sleep.Subject
    model = MixedLMRegressor("(Days | Subject)").fit(X, y, groups=g)
    with pytest.warns(GroupsMissingWarning, match=f"at predict.*{FIX}"):
        permutation_importance(model, X, y, n_repeats=2, random_state=0)


def one_day_ahead(days, first=3):
    """Per-subject time split: train on the days before d, test on day d."""
    days = np.asarray(days)
    return [
        (np.flatnonzero(days < d), np.flatnonzero(days == d))
        for d in range(first, int(days.max()) + 1)
    ]


def test_time_split_of_known_subjects_prefers_slopes_by_r2(sleep):
    X, y = sleep[["Days", "Subject"]], sleep.Reaction
    search = GridSearchCV(
        MixedLMRegressor(),
        {"random_effects": STRUCTURES},
        cv=one_day_ahead(sleep.Days),
        scoring={"r2": "r2", "cll": conditional_log_likelihood},
        refit="r2",
        error_score="raise",
    )
    with no_groups_missing_warning():
        search.fit(X, y)
    results = pd.DataFrame(search.cv_results_).set_index("param_random_effects")
    assert search.best_params_ == {"random_effects": "(Days | Subject)"}
    r2 = results["mean_test_r2"]
    assert r2["(Days | Subject)"] > r2["(1 | Subject)"] + 0.05
    # Here, unlike under GroupKFold, point predictions differ by structure.
    assert results["mean_test_cll"].notna().all()
