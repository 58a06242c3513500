"""GLMM estimators: scikit-learn conventions, input errors, predictions."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmixed import (
    GroupsMissingWarning,
    MixedGLMRegressor,
    MixedLMRegressor,
    MixedLogisticRegression,
)
from skmixed.datasets import load_sleepstudy

# MixedLMRegressor and the GLMM estimators word levels unseen at fit alike
UNSEEN_WARNING = (
    r"Levels not seen at fit get the population-level prediction "
    r"\(random effect 0\): g: \['never-seen'\]\."
)
UNSEEN_ERROR = (
    r"Levels not seen at fit: g: \['never-seen'\]\. Use handle_unknown='population' "
    r"to predict them at population level \(random effect 0\)\."
)


@parametrize_with_checks(
    [MixedLogisticRegression(), MixedGLMRegressor(family="poisson")]
)
def test_sklearn_compatible(estimator, check):
    # The checks pass no groups: the estimators warn and fit the GLM.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GroupsMissingWarning)
        check(estimator)


def _binary_data(seed=0, n_groups=30, size=20, slope_sd=0.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    x = rng.standard_normal(g.size)
    b0 = rng.normal(0.0, 1.0, n_groups)
    b1 = rng.normal(0.0, slope_sd, n_groups)
    eta = -0.3 + 0.8 * x + b0[g] + b1[g] * x
    y = (rng.random(g.size) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    X = pd.DataFrame({"x": x, "g": [f"g{i}" for i in g]})
    return X, y


def test_grouped_cross_validation_with_log_loss():
    X, y = _binary_data()
    clf = MixedLogisticRegression("(1 | g)")
    scores = cross_val_score(
        clf, X, y, groups=X["g"], cv=GroupKFold(3), scoring="neg_log_loss"
    )
    # new groups get random effect 0: a sensible, finite log loss
    assert np.all(np.isfinite(scores)) and np.all(scores > -1.0)
    fitted = clone(clf).fit(X, y)
    proba = fitted.predict_proba(X)
    assert log_loss(y, proba) < log_loss(y, np.full_like(proba, 0.5))


def test_pickle_and_clone_keep_predictions():
    X, y = _binary_data(1)
    clf = MixedLogisticRegression("(1 | g)").fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert clone(clf).get_params() == clf.get_params()


def test_unseen_levels_contribute_zero():
    X, y = _binary_data(2)
    clf = MixedLogisticRegression("(1 | g)").fit(X, y)
    new = X.iloc[:3].copy()
    new["g"] = "never-seen"
    np.testing.assert_allclose(
        clf.decision_function(new), clf.decision_function(new, include_random=False)
    )
    # the same words as MixedLMRegressor's, the warning at the caller's line
    lmm = MixedLMRegressor("(1 | g)").fit(X, y.astype(float))
    for model, call in ((clf, "decision_function"), (lmm, "predict")):
        with pytest.warns(UserWarning, match=UNSEEN_WARNING) as seen:
            getattr(model.set_params(handle_unknown="warn"), call)(new)
        assert seen[0].filename == __file__
        with pytest.raises(ValueError, match=UNSEEN_ERROR):
            getattr(model.set_params(handle_unknown="error"), call)(new)


@pytest.mark.parametrize(
    ("kwargs", "y", "message"),
    [
        ({"family": "gaussian"}, None, "family='gaussian' is not supported"),
        ({"link": "log"}, None, "link='log' is not available for the binomial"),
        ({"nAGQ": 0}, None, "nAGQ must be >= 1"),
        ({"vcov_method": "sandwich"}, None, "'vcov_method' parameter"),
        ({}, 2.0, r"y in \[0, 1\]"),
        ({"family": "poisson"}, -1.0, "counts y >= 0"),
    ],
)
def test_clear_errors(kwargs, y, message):
    X, labels = _binary_data(3)
    target = labels.astype(float)
    if y is not None:
        target[0] = y
    with pytest.raises(ValueError, match=message):
        MixedGLMRegressor("(1 | g)", **kwargs).fit(X, target)


def test_poisson_with_non_integer_counts_warns():
    # R's poisson family gives a non-integer count likelihood 0 (dpois warns
    # "non-integer x = 2.5" and lme4's logLik is -Inf); our log-likelihood
    # extends it by gammaln, so the fit and its numbers are not R's: say so.
    X, labels = _binary_data(3)
    counts = labels.astype(float) * 2.0
    counts[[0, 5]] = [2.5, 0.25]
    with pytest.warns(UserWarning, match=r"non-integer x = 2\.500000 .*2 row\(s\)"):
        MixedGLMRegressor("(1 | g)", family="poisson").fit(X, counts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MixedGLMRegressor("(1 | g)", family="poisson").fit(X, labels.astype(float))


def test_agq_needs_a_single_scalar_term():
    X, y = _binary_data(4)
    with pytest.raises(ValueError, match="single scalar random-effects term"):
        MixedGLMRegressor("(x | g)", nAGQ=5).fit(X, y)


def test_predict_type_link_and_response():
    X, y = _binary_data(5)
    m = MixedGLMRegressor("(1 | g)", link="probit").fit(X, y)
    eta = m.predict(X, type="link")
    from scipy.special import ndtr

    np.testing.assert_allclose(m.predict(X), ndtr(eta))
    np.testing.assert_allclose(m.predict(X), m.fittedvalues_, rtol=1e-12)
    with pytest.raises(ValueError, match="type must be one of"):
        m.predict(X, type="probability")


@pytest.mark.parametrize(
    ("estimator", "params", "name"),
    [
        (MixedGLMRegressor, {"vcov_method": "sandwich"}, "vcov_method"),
        (MixedGLMRegressor, {"handle_unknown": "ignore"}, "handle_unknown"),
        (MixedGLMRegressor, {"family": 3}, "family"),
        (MixedLogisticRegression, {"fit_intercept": "yes"}, "fit_intercept"),
        (MixedLogisticRegression, {"max_iter": 0}, "max_iter"),
    ],
)
def test_parameters_are_validated_as_scikit_learn_does(estimator, params, name):
    df = load_sleepstudy()
    X, y = df[["Days", "Subject"]], (df["Reaction"] > 300).astype(int)
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        estimator("(1 | Subject)", **params).fit(X, y)


def test_missing_drop_with_sample_weight_equals_dropping_by_hand():
    # binomial proportions with trials; one NaN feature, one NaN weight
    rng = np.random.default_rng(3)
    n = 120
    g = np.repeat(np.arange(12), 10)
    x = rng.standard_normal(n)
    trials = rng.integers(1, 6, n).astype(float)
    p = 1.0 / (1.0 + np.exp(-(0.3 + 0.8 * x + rng.normal(0, 0.7, 12)[g])))
    y = rng.binomial(trials.astype(int), p) / trials
    X = pd.DataFrame({"x": x, "g": g})
    X.loc[5, "x"] = np.nan
    weights = pd.Series(trials)
    weights[17] = np.nan
    with pytest.warns(UserWarning, match="dropped 2 row"):
        dropped = MixedGLMRegressor("(1 | g)", missing="drop").fit(
            X, y, sample_weight=weights
        )
    keep = np.ones(n, dtype=bool)
    keep[[5, 17]] = False
    by_hand = MixedGLMRegressor("(1 | g)").fit(
        X[keep], y[keep], sample_weight=trials[keep]
    )
    assert dropped.n_dropped_ == 2
    assert dropped.nobs_ == by_hand.nobs_ == n - 2
    np.testing.assert_allclose(dropped.fixed_effects_, by_hand.fixed_effects_)
    np.testing.assert_allclose(dropped.theta_, by_hand.theta_)
    assert dropped.loglik_ == pytest.approx(by_hand.loglik_, rel=1e-12)


def test_missing_drop_with_sample_weight_for_the_classifier():
    df = load_sleepstudy()
    X = df[["Days", "Subject"]].copy()
    X.loc[3, "Days"] = np.nan
    slow = (df["Reaction"] > 300).astype(int)
    weights = np.where(np.arange(len(df)) % 2 == 0, 1.0, 2.0)
    with pytest.warns(UserWarning, match="dropped 1 row"):
        dropped = MixedLogisticRegression("(1 | Subject)", missing="drop").fit(
            X, slow, sample_weight=weights
        )
    keep = np.arange(len(df)) != 3
    by_hand = MixedLogisticRegression("(1 | Subject)").fit(
        X[keep], slow[keep], sample_weight=weights[keep]
    )
    np.testing.assert_allclose(dropped.fixed_effects_, by_hand.fixed_effects_)
    assert dropped.loglik_ == pytest.approx(by_hand.loglik_, rel=1e-12)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 1, 2], r"3 classes: \[0, 1, 2\]"),
        (["a", "b", "c"], r"3 classes: \['a', 'b', 'c'\]"),
        ([1], r"got 1 class: 1\."),
        (["yes"], r"got 1 class: 'yes'\."),
    ],
)
def test_classifier_names_the_classes_it_refuses(labels, message):
    # The classes are printed as the user wrote them, not as numpy reprs
    # such as np.int64(0) or np.str_('a').
    X, _ = _binary_data(3)
    y = np.resize(np.array(labels), len(X))
    with pytest.raises(ValueError, match=message):
        MixedLogisticRegression("(1 | g)").fit(X, y)


def test_aliased_column_dropped_with_lme4s_warning():
    X, y = _binary_data(3)
    with pytest.warns(UserWarning, match="rank deficient so dropping 1 column") as seen:
        clf = MixedLogisticRegression("(1 | g)").fit(X.assign(x2=2 * X["x"]), y)
    assert seen[0].filename == __file__  # at the call of fit, as the LMM's
    assert list(clf.fixed_effects_.index) == ["(Intercept)", "x"]
    reference = MixedLogisticRegression("(1 | g)").fit(X, y)
    np.testing.assert_allclose(clf.coef_, [*reference.coef_, 0.0], rtol=1e-10)


def test_lme4s_level_checks_glmer_allows_what_lmer_cannot():
    # lme4's check.nobs.vs.nlev and check.nobs.vs.nRE: lmer's residual
    # variance makes it refuse m * k = n random effects; glmer refuses more
    rng = np.random.default_rng(4)
    x, z = rng.standard_normal(60), rng.standard_normal(60)
    X = pd.DataFrame({"x": x, "z": z, "g": np.repeat(np.arange(30), 2).astype(str)})
    y = rng.poisson(np.exp(0.5 + 0.3 * x))
    with pytest.raises(
        ValueError,
        match=r"number of observations \(=60\) <= number of random effects \(=60\) "
        r"for term \(\(Intercept\) \+ x \| g\); the random-effects parameters and "
        r"the residual variance \(or scale parameter\) are probably unidentifiable$",
    ):
        MixedLMRegressor("(x | g)").fit(X, y.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular, or not converged: no error
        MixedGLMRegressor("(x | g)", family="poisson").fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"number of observations \(=60\) < number of random effects \(=90\) "
        r"for term \(\(Intercept\) \+ x \+ z \| g\); the random-effects "
        r"parameters are probably unidentifiable$",
    ):
        MixedGLMRegressor("(x + z | g)", family="poisson").fit(X, y)
    one_per_row = X.assign(g=np.arange(60).astype(str))
    with pytest.raises(ValueError, match=r"observations \(problems: g\)$"):
        MixedGLMRegressor("(1 | g)", family="poisson").fit(one_per_row, y)
    with pytest.raises(ValueError, match=r"\(problems: g\): with one observation"):
        MixedLMRegressor("(1 | g)").fit(one_per_row, y.astype(float))


@pytest.mark.parametrize(
    "model",
    [MixedGLMRegressor("(1 | g)", family="poisson"), MixedLMRegressor("(1 | g)")],
)
def test_fitted_without_groups_has_no_random_effects(model):
    # A numpy X carries no grouping column: both models fit without random
    # effects (GroupsMissingWarning) and their tables say so, empty.
    rng = np.random.default_rng(5)
    x = rng.standard_normal(50)
    y = rng.poisson(np.exp(0.2 + 0.5 * x)).astype(float)
    with pytest.warns(GroupsMissingWarning):
        model.fit(x[:, None], y)
    assert model.n_groups_ == {} and len(model.theta_) == 0
    assert model.random_effects_ == {}
    assert model.random_effects_cov_ == {}
    assert list(model.variance_components_["group"]) in ([], ["Residual"])
    if hasattr(model, "random_effects_sd_"):
        assert model.random_effects_sd_ == {}
