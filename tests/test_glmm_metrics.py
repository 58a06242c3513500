"""Grouped scorers for GLMMs: held-out marginal and conditional
log-likelihoods, grouped log loss, and a random-effects structure chosen by
GroupKFold cross-validation on a binary outcome."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from sklearn.metrics import log_loss, roc_auc_score

from skmixed import MixedGLMRegressor, MixedLogisticRegression
from skmixed.datasets import load_cbpp, load_sleepstudy
from skmixed.metrics import (
    conditional_log_likelihood,
    make_grouped_scorer,
    marginal_log_likelihood,
)


def _cbpp():
    df = load_cbpp()
    X = pd.get_dummies(df["period"], prefix="period", prefix_sep="", drop_first=True)
    X = X.astype(float)
    X["herd"] = df["herd"]
    return X, (df["incidence"] / df["size"]).rename("incidence"), df["size"]


def _sleep_binary():
    df = load_sleepstudy()
    return df[["Days", "Subject"]], (df["Reaction"] > 300).astype(int).rename("slow")


def _simulate(seed, slope_sd, n_groups=60, n_per=20, intercept_sd=1.0):
    """Binary outcome, logit link, random intercept and slope of x per g."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), n_per)
    x = rng.standard_normal(n_groups * n_per)
    b0 = rng.normal(0.0, intercept_sd, n_groups)
    b1 = rng.normal(0.0, slope_sd, n_groups)
    eta = -0.3 + 0.8 * x + b0[g] + b1[g] * x
    y = (rng.random(x.size) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"x": x, "g": g.astype(str)}), y


def _fit(model, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y, **kwargs)


@pytest.mark.parametrize("n_agq", [1, 25])
def test_marginal_on_the_training_data_is_the_fits_loglik(n_agq):
    X, y, size = _cbpp()
    model = _fit(MixedGLMRegressor("(1 | herd)", nAGQ=n_agq), X, y, sample_weight=size)
    score = marginal_log_likelihood(model, X, y, sample_weight=size)
    assert score == pytest.approx(model.loglik_absolute_, rel=1e-10)
    if n_agq > 1:  # lme4's AGQ logLik is relative to the saturated model
        assert score != pytest.approx(model.loglik_, rel=1e-3)


def test_marginal_of_the_classifier_on_its_training_data():
    X, y = _sleep_binary()
    labels = np.where(y == 1, "slow", "fast")
    clf = _fit(MixedLogisticRegression("(Days | Subject)"), X, labels)
    assert marginal_log_likelihood(clf, X, labels) == pytest.approx(
        clf.loglik_, rel=1e-10
    )


def _brute_force_marginal(beta, sd, X, y, g):
    """Σ_groups log ∫ Π_j Bernoulli(y_j | logit⁻¹(x_j β + sd z)) φ(z) dz."""
    eta_fixed = beta[0] + X @ beta[1:]
    total = 0.0
    for level in np.unique(g):
        rows = g == level

        def integrand(z, rows=rows):
            eta = eta_fixed[rows] + sd * z
            ll = np.sum(y[rows] * eta - np.logaddexp(0.0, eta))
            return np.exp(ll) * stats.norm.pdf(z)

        value, _ = integrate.quad(integrand, -12, 12, epsabs=1e-14, epsrel=1e-12)
        total += np.log(value)
    return total


def test_marginal_agq_on_new_groups_equals_a_dense_integral():
    """Held-out groups, scalar intercept: AGQ (25 nodes) vs quadrature, 1e-6;
    the Laplace approximation is close but not equal."""
    X, y = _simulate(3, slope_sd=0.0, n_groups=40, n_per=8, intercept_sd=1.5)
    train, test = X["g"].astype(int) < 30, X["g"].astype(int) >= 30
    agq = _fit(MixedLogisticRegression("(1 | g)", nAGQ=25), X[train], y[train])
    laplace = _fit(MixedLogisticRegression("(1 | g)"), X[train], y[train])
    g = X["g"].to_numpy()[test]
    x = X[["x"]].to_numpy()[test]
    for model in (agq, laplace):
        beta = model.fixed_effects_.to_numpy()
        exact = _brute_force_marginal(beta, model.theta_[0], x, y[test], g)
        score = marginal_log_likelihood(model, X[test], y[test])
        if model is agq:
            assert score == pytest.approx(exact, abs=1e-6)
        else:
            assert abs(score - exact) > 1e-4
            assert score == pytest.approx(exact, rel=1e-2)


def test_marginal_integrates_the_scored_groups_effects_out():
    """Not the population-level conditional density; invariant to labels."""
    X, y = _simulate(0, slope_sd=1.0, n_groups=30)
    train = X["g"].astype(int) < 20
    model = _fit(MixedLogisticRegression("(x | g)"), X[train], y[train])
    test = X[~train]
    marginal = marginal_log_likelihood(model, test, y[~train])
    population = conditional_log_likelihood(model, test, y[~train])
    assert marginal > population  # the shared group effects explain the rows
    relabelled = test.assign(g="new" + test["g"])
    assert marginal_log_likelihood(model, relabelled, y[~train]) == pytest.approx(
        marginal, rel=1e-12
    )


def test_conditional_is_the_familys_log_density_of_the_predictions():
    X, y = _sleep_binary()
    clf = _fit(MixedLogisticRegression("(Days | Subject)"), X, y)
    proba = clf.predict_proba(X)
    expected = -log_loss(y, proba, normalize=False)
    assert conditional_log_likelihood(clf, X, y) == pytest.approx(expected, rel=1e-12)
    Xc, yc, size = _cbpp()
    m = _fit(MixedGLMRegressor("(1 | herd)"), Xc, yc, sample_weight=size)
    mu = m.predict(Xc)
    k = np.round(yc * size)
    expected = np.sum(stats.binom.logpmf(k, size, mu))
    score = conditional_log_likelihood(m, Xc, yc, sample_weight=size)
    assert score == pytest.approx(expected, rel=1e-12)


def test_grouped_log_loss_and_auc_use_the_groups():
    X, y = _sleep_binary()
    clf = _fit(MixedLogisticRegression("(Days | Subject)"), X, y)
    neg_log_loss = make_grouped_scorer(
        log_loss, greater_is_better=False, response_method="predict_proba"
    )
    expected = -log_loss(y, clf.predict_proba(X)[:, 1])
    assert neg_log_loss(clf, X, y) == pytest.approx(expected, rel=1e-12)
    auc = make_grouped_scorer(roc_auc_score, response_method="decision_function")
    assert auc(clf, X, y) == pytest.approx(roc_auc_score(y, clf.decision_function(X)))
    assert "response_method='predict_proba'" in repr(neg_log_loss)
    with pytest.raises(ValueError, match="response_method must be one of"):
        make_grouped_scorer(log_loss, response_method="predict_log")


def test_scorer_input_errors_name_the_problem():
    X, y = _sleep_binary()
    clf = _fit(MixedLogisticRegression("(1 | Subject)"), X, y)
    with pytest.raises(ValueError, match="labels not seen at fit"):
        marginal_log_likelihood(clf, X, np.full(len(y), 7))
    Xc, yc, size = _cbpp()
    m = _fit(MixedGLMRegressor("(1 | herd)"), Xc, yc, sample_weight=size)
    with pytest.raises(
        ValueError, match=r"sample_weight has \d+ weights but X has \d+ rows"
    ):
        marginal_log_likelihood(m, Xc, yc, sample_weight=size[:10])


# GridSearchCV + GroupKFold + the marginal scorer picking (x | g) when the
# slope is real and (1 | g) when its variance is 0 is tested through
# examples/glmm_model_selection.py (tests/test_example_glmm_model_selection.py),
# which runs exactly that search on the data simulated by _simulate's twin.
