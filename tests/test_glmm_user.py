"""The GLMM estimators as a data scientist uses them: labels, bad input,
and numbers against lme4's glmer on small simulated data
(tests/data/glmer_user, made by make_glmer_user.R there)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skmixed
from skmixed import MixedLogisticRegression


def _binary_data(seed=0, n_groups=20, size=15):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    x = rng.standard_normal(g.size)
    eta = -0.3 + 0.8 * x + rng.normal(0.0, 1.0, n_groups)[g]
    y = rng.random(g.size) < 1.0 / (1.0 + np.exp(-eta))
    X = pd.DataFrame({"x": x, "g": [f"g{i}" for i in g]})
    return X, np.where(y, "yes", "no")


@pytest.mark.parametrize(
    "as_labels",
    [
        lambda y: pd.Series(y, dtype=object),
        lambda y: pd.Series(y, dtype="string"),
        lambda y: pd.Series(pd.Categorical(y)),
        lambda y: pd.Series((y == "yes").astype(float)),
    ],
    ids=["object", "string", "categorical", "float"],
)
def test_classifier_missing_labels_are_named_or_dropped(as_labels):
    # A label column with a gap, as read from a CSV: the error names it
    # (not a TypeError from sorting None among strings), and
    # missing='drop' drops the row, as the docstring promises for y.
    X, y = _binary_data(4)
    labels = as_labels(y)
    labels[7] = None
    with pytest.raises(ValueError, match=r"y .*missing label.*1 row"):
        MixedLogisticRegression("(1 | g)").fit(X, labels)
    with pytest.warns(UserWarning, match="dropped 1 row"):
        dropped = MixedLogisticRegression("(1 | g)", missing="drop").fit(X, labels)
    keep = np.arange(len(X)) != 7
    by_hand = MixedLogisticRegression("(1 | g)").fit(X[keep], labels[keep])
    np.testing.assert_array_equal(dropped.classes_, by_hand.classes_)
    assert dropped.nobs_ == len(X) - 1
    np.testing.assert_allclose(dropped.fixed_effects_, by_hand.fixed_effects_)


_DATA = Path(__file__).parent / "data" / "glmer_user"


def _read(name):
    return pd.read_csv(_DATA / name)


@pytest.fixture(scope="module")
def glmer_user():
    return json.loads((_DATA / "glmer_user.json").read_text())


# (case, formula, data, newdata, glmer's other arguments, tolerances). The
# random-slope fit stops at a log-likelihood 5e-4 above lme4's (BOBYQA
# stops early there); its estimates then differ by up to 3e-4 and its
# finite-difference Hessian SEs by up to 0.6%.
_CASES = [
    (
        "prop_slope",
        "cbind(s, n - s) ~ x + z + (x | g)",
        "proportions.csv",
        "newdata_proportions.csv",
        {},
        {"loglik": 1e-3, "est": 1e-3, "se": 1e-2},
    ),
    (
        "prop_agq",
        "cbind(s, n - s) ~ x + z + (1 | g)",
        "proportions.csv",
        "newdata_proportions.csv",
        {"nAGQ": 9},
        {"loglik": 1e-6, "est": 1e-5, "se": 1e-4},
    ),
    (
        "count_crossed",
        "y ~ x + (1 | a) + (1 | b) + offset(log(t))",
        "counts.csv",
        "newdata_counts.csv",
        {"family": "poisson", "weights": "w"},
        {"loglik": 1e-5, "est": 1e-4, "se": 1e-2},
    ),
]


# performance warns as we do for the Poisson case's mean count of 1.4
@pytest.mark.filterwarnings("ignore:mu of 1.4 is too close to zero")
@pytest.mark.parametrize(
    ("case", "formula", "data", "newdata", "kwargs", "tol"),
    _CASES,
    ids=[c[0] for c in _CASES],
)
def test_glmer_numbers_on_simulated_data(
    glmer_user, case, formula, data, newdata, kwargs, tol
):
    ref = glmer_user[case]
    new = _read(newdata)  # holds one level never seen at fit, "new"
    m = skmixed.glmer(formula, _read(data), **kwargs)
    assert m.loglik_ == pytest.approx(ref["logLik"], abs=tol["loglik"])
    assert m.loglik_ >= ref["logLik"] - 1e-6  # never a worse optimum
    est = tol["est"]
    np.testing.assert_allclose(m.fixed_effects_, list(ref["fixef"].values()), atol=est)
    np.testing.assert_allclose(m.theta_, ref["theta"], atol=est)
    np.testing.assert_allclose(
        m.variance_components_["sdcor"], ref["varcorr"]["sdcor"], atol=est
    )
    np.testing.assert_allclose(
        np.sqrt(np.diag(m.vcov_)), list(ref["se"].values()), rtol=tol["se"]
    )
    np.testing.assert_allclose(
        np.sqrt(np.diag(m.vcov("rx"))), list(ref["se_rx"].values()), rtol=10 * est
    )
    for factor, modes in ref["ranef"].items():
        ours = m.random_effects_[factor].loc[modes["levels"]].to_numpy()
        np.testing.assert_allclose(ours, modes["values"], atol=est)
        sd = m.random_effects_sd_[factor].loc[modes["levels"]].to_numpy()
        # the AGQ fit's conditional SDs are up to 1.5e-5 from lme4's (modes: 2e-7)
        np.testing.assert_allclose(sd.ravel(), np.ravel(modes["sd"]), atol=10 * est)
    np.testing.assert_allclose(m.fittedvalues_[:10], ref["fitted_head"], atol=est)
    np.testing.assert_allclose(m.predict(new), ref["predict_response"], atol=est)
    np.testing.assert_allclose(
        m.predict(new, type="link"), ref["predict_link"], atol=est
    )
    np.testing.assert_allclose(
        m.predict(new, include_random=False), ref["predict_population"], atol=est
    )
    # performance's r2_nakagawa() and icc() (latent scale)
    r2, icc = m.r2_nakagawa(), m.icc()
    np.testing.assert_allclose(
        [r2["conditional"], r2["marginal"]], ref["r2_nakagawa"], rtol=10 * est
    )
    np.testing.assert_allclose(
        [icc["adjusted"], icc["conditional"]], ref["icc"], rtol=10 * est
    )


def _separated_data():
    # Two classes apart along x0 (as scikit-learn's estimator checks use):
    # the fitted probabilities reach 0 and 1.
    rng = np.random.default_rng(0)
    x0 = np.r_[rng.normal(-3, 0.5, 15), rng.normal(3, 0.5, 15)]
    X = pd.DataFrame({"x0": x0, "x1": rng.normal(0, 0.5, 30)})
    return X, np.repeat([0, 1], 15)


def test_probit_on_separated_classes_fits_as_r_glm_does():
    # R's glm(y ~ x0 + x1, binomial("probit")) warns "fitted probabilities
    # numerically 0 or 1 occurred" and returns finite coefficients: the
    # probit's inverse link keeps mu eps away from 0 and 1 (eta clipped at
    # -qnorm(eps) = 8.13), so no working weight divides by 0.
    X, y = _separated_data()
    clf = MixedLogisticRegression(link="probit", fit_intercept=True)
    with pytest.warns(skmixed.GroupsMissingWarning):
        clf.fit(X, y)
    assert np.all(np.isfinite(clf.fixed_effects_))
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba)) and np.all((proba > 0) & (proba < 1))
    np.testing.assert_array_equal(clf.predict(X), y)


def test_family_object_and_a_different_link_are_refused():
    # family=Binomial("probit") with link="logit" fitted the probit model
    # and said nothing; the same link, or link=None, is fine.
    from skmixed.glmm.families import Binomial

    X, y = _binary_data(5)
    y01 = (y == "yes").astype(float)
    with pytest.raises(ValueError, match=r"link='logit'.*family=.*probit"):
        skmixed.MixedGLMRegressor(
            "(1 | g)", family=Binomial("probit"), link="logit"
        ).fit(X, y01)
    for link in (None, "probit"):
        m = skmixed.MixedGLMRegressor("(1 | g)", family=Binomial("probit"), link=link)
        assert m.fit(X, y01).link_ == "probit"


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (pd.Series(np.ones(300)).where(np.arange(300) != 2), r"NaN in 1 row.*'drop'"),
        (np.r_[-1.0, np.ones(299)], r"1 negative weight.*row 0"),
        (np.array(["a"] * 300), "sample_weight must be numeric"),
    ],
    ids=["nan", "negative", "strings"],
)
def test_bad_sample_weight_is_named(weights, message):
    # As the linear models say it: how many rows, which, and what to do
    # (was "sample_weight must be finite and non-negative." for the first
    # two and numpy's "could not convert string to float" for the last).
    X, y = _binary_data(6)
    with pytest.raises(ValueError, match=message):
        MixedLogisticRegression("(1 | g)").fit(X, y, sample_weight=weights)


def test_poisson_with_large_counts_fits_without_numpy_overflow_warnings():
    # Counts of about a thousand: PIRLS's first step from beta = 0 overshoots,
    # its step halving recovers, and numpy's "overflow encountered in
    # matmul" from the trial step reached the user (2-4 times a fit).
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(30), 20)
    x = rng.standard_normal(g.size)
    y = rng.poisson(np.exp(7.0 + 0.3 * x + rng.normal(0, 0.3, 30)[g]))
    X = pd.DataFrame({"x": x, "g": g})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        m = skmixed.MixedGLMRegressor("(1 | g)", family="poisson").fit(X, y)
        with pytest.warns(skmixed.GroupsMissingWarning):  # the GLM's IRLS too
            glm = skmixed.MixedGLMRegressor(family="poisson").fit(X[["x"]], y)
    assert m.fixed_effects_["x"] == pytest.approx(0.3, abs=0.02)
    assert glm.fixed_effects_["x"] == pytest.approx(0.3, abs=0.02)


def test_classifier_from_formula_as_its_regressor_sibling():
    # MixedLMRegressor and MixedGLMRegressor take lme4's formula; the
    # classifier, the one an lme4 user puts in cross_val_score, did not
    # (AttributeError).
    X, y = _binary_data(7)
    X["z"] = np.random.default_rng(7).standard_normal(len(X))
    clf = MixedLogisticRegression.from_formula("y ~ x + (1 | g)", link="probit")
    assert (clf.random_effects, clf.fixed_effects, clf.link) == (
        "(1 | g)",
        "x",
        "probit",
    )
    clf.fit(X, y)
    assert list(clf.fixed_effects_.index) == ["(Intercept)", "x"]  # z unused
    by_hand = MixedLogisticRegression("(1 | g)", fixed_effects="x", link="probit")
    np.testing.assert_allclose(clf.fixed_effects_, by_hand.fit(X, y).fixed_effects_)
    assert "Formula: y ~ x + (1 | g)" in str(clf.summary())
