"""MixedLMRegressor: scikit-learn behaviour, diagnostics, prediction, recovery.

The lme4 comparisons on the reference data sets are in test_mixed_lme4.py;
here: the blocked Cholesky against a dense computation of the likelihood,
awkward data sets (tests/data/robustness, fitted by lme4 with make_refs.R
there), simulated-data recovery, and the estimator's contract.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _estimator_checks import expected_failed_checks
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmixed import GroupsMissingWarning, MixedLMRegressor
from skmixed.datasets import load_sleepstudy
from skmixed.mixed.criterion import ProfiledCriterion
from skmixed.mixed.design import TermDesign, build_design

ROBUSTNESS = Path(__file__).parent / "data" / "robustness"


@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy()


# -- scikit-learn ------------------------------------------------------------
@parametrize_with_checks(
    [MixedLMRegressor()], expected_failed_checks=expected_failed_checks
)
def test_sklearn_compatible(estimator, check):
    # The checks pass no groups: the estimator warns and fits the pooled model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GroupsMissingWarning)
        check(estimator)


def test_grid_search_picks_the_random_slope_model(sleep):
    X = sleep[["Days", "Subject"]]
    search = GridSearchCV(
        MixedLMRegressor(),
        {"random_effects": ["(1 | Subject)", "(Days | Subject)"]},
        cv=KFold(5, shuffle=True, random_state=0),
    )
    search.fit(X, sleep["Reaction"])
    assert search.best_params_ == {"random_effects": "(Days | Subject)"}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] + 0.05


def test_parameters_are_stored_verbatim():
    est = MixedLMRegressor("(x || g)", reml=False)
    assert est.get_params()["random_effects"] == "(x || g)"
    assert clone(est).get_params() == est.get_params()


# -- defaults and groups ------------------------------------------------------
def test_default_spec_uses_the_groups_argument(sleep):
    X, y, g = sleep[["Days"]], sleep["Reaction"], sleep["Subject"]
    default = MixedLMRegressor().fit(X, y, groups=g)
    named = MixedLMRegressor("(1 | Subject)").fit(X, y, groups=g)
    np.testing.assert_allclose(default.theta_, named.theta_, rtol=1e-10)
    assert list(default.random_effects_) == ["groups"]
    assert list(named.random_effects_) == ["Subject"]


def test_groups_missing_fits_the_pooled_model(sleep):
    # A numpy X cannot carry a named grouping column: the model says what it
    # fits instead (a pandas X without 'Subject' is an error, see
    # test_inputs.py).
    X, y = sleep[["Days"]].to_numpy(), sleep["Reaction"]
    with pytest.warns(GroupsMissingWarning, match="without group effects"):
        model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    design = np.column_stack([np.ones(len(X)), X[:, 0]])
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    np.testing.assert_allclose(model.fixed_effects_, beta, rtol=1e-10)
    assert model.random_effects_ == {} and len(model.theta_) == 0
    assert list(model.variance_components_["group"]) == ["Residual"]
    resid = y - design @ beta
    assert model.sigma_ == pytest.approx(np.sqrt(resid @ resid / (len(y) - 2)))
    with pytest.warns(GroupsMissingWarning):
        np.testing.assert_allclose(model.predict(X), design @ beta)


def test_predict_without_groups_is_population_level(sleep):
    X, y, g = sleep[["Days"]], sleep["Reaction"], sleep["Subject"]
    model = MixedLMRegressor("(Days | Subject)").fit(X, y, groups=g)
    with pytest.warns(GroupsMissingWarning):
        pred = model.predict(X)
    np.testing.assert_allclose(pred, model.predict(X, g, include_random=False))


def test_cross_val_score_with_group_column_in_x(sleep):
    X = sleep[["Days", "Subject"]]
    cv = KFold(3, shuffle=True, random_state=0)  # known subjects in every fold
    scores = cross_val_score(
        MixedLMRegressor("(Days | Subject)"), X, sleep["Reaction"], cv=cv
    )
    assert np.all(scores > 0.5)


# -- prediction ---------------------------------------------------------------
def test_unseen_levels(sleep):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["308", "999"]})
    pred = model.predict(new)
    population = model.predict(new, include_random=False)
    assert pred[1] == pytest.approx(population[1], rel=1e-12)
    b = model.random_effects_["Subject"].loc["308"]
    assert pred[0] == pytest.approx(population[0] + b["(Intercept)"], rel=1e-12)
    # the warning at the caller's line (its words: test_glmm_estimator.py)
    with pytest.warns(UserWarning, match="999") as seen:
        clone(model).set_params(handle_unknown="warn").fit(X, y).predict(new)
    assert seen[0].filename == __file__
    with pytest.raises(ValueError, match="999"):
        clone(model).set_params(handle_unknown="error").fit(X, y).predict(new)


def test_numpy_input_with_groups(sleep):
    X, y, g = sleep[["Days"]], sleep["Reaction"], sleep["Subject"]
    frame = MixedLMRegressor("(Days | groups)").fit(X, y, groups=g)
    array = MixedLMRegressor("(x0 | groups)").fit(
        X.to_numpy(), y.to_numpy(), groups=g.to_numpy()
    )
    np.testing.assert_allclose(array.theta_, frame.theta_, rtol=1e-8)
    assert list(array.fixed_effects_.index) == ["(Intercept)", "x0"]


# -- diagnostics ---------------------------------------------------------------
def test_singular_fit_warns():
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(8), 10)
    e = rng.normal(size=80)
    # equal group means: no between-group variance, the fit is on the boundary
    y = e - np.bincount(g, e)[g] / 10
    X = pd.DataFrame({"x": rng.normal(size=80), "g": g.astype(str)})
    with pytest.warns(UserWarning, match=r"boundary \(singular\) fit"):
        model = MixedLMRegressor("(1 | g)").fit(X, y)
    assert model.is_singular_
    assert model.theta_[0] < 1e-4


def test_rank_deficient_columns_are_dropped(sleep):
    X = sleep[["Days", "Subject"]].assign(Days2=2 * sleep["Days"])
    with pytest.warns(UserWarning, match="rank deficient so dropping 1 column") as seen:
        model = MixedLMRegressor("(1 | Subject)").fit(X, sleep["Reaction"])
    assert seen[0].filename == __file__  # at the call of fit
    assert list(model.fixed_effects_.index) == ["(Intercept)", "Days"]
    assert model.coef_.tolist()[1] == 0.0
    ref = MixedLMRegressor("(1 | Subject)").fit(
        X[["Days", "Subject"]], sleep["Reaction"]
    )
    np.testing.assert_allclose(model.predict(X), ref.predict(X[["Days", "Subject"]]))


def test_one_level_per_observation_is_an_error():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=20), "g": np.arange(20).astype(str)})
    with pytest.raises(ValueError, match="must be < number of observations"):
        MixedLMRegressor("(1 | g)").fit(X, rng.normal(size=20))
    X["g"] = "a"
    with pytest.raises(ValueError, match="> 1 sampled level"):
        MixedLMRegressor("(1 | g)").fit(X, rng.normal(size=20))


def test_convergence_warning_when_the_optimiser_stops_early(sleep):
    # unbalanced (the balanced design's moment start is its optimum, where
    # one pass of 4 θ points converges): the first subject's first two days
    # dropped, so that 5 evaluations are too few
    data = sleep.iloc[2:]
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = MixedLMRegressor("(Days | Subject)", max_iter=5).fit(
            data[["Days", "Subject"]], data["Reaction"]
        )
    assert not model.converged_


@pytest.mark.parametrize(
    "spec, match",
    [
        ("(1 | Subject", "unbalanced"),
        ("Days | Subject", "expected a '\\('"),
        ("(Days + | Subject)", "missing after"),
        ("(Nope | Subject)", "Nope"),
        ("(1 | Nowhere)", "Nowhere"),
    ],
)
def test_bad_specs_are_value_errors(sleep, spec, match):
    X, groups = sleep[["Days"]], sleep[["Subject", "Days"]]
    with pytest.raises(ValueError, match=match):
        MixedLMRegressor(spec).fit(X, sleep["Reaction"], groups=groups)


def test_bad_handle_unknown(sleep):
    with pytest.raises(ValueError, match="handle_unknown"):
        MixedLMRegressor("(1 | Subject)", handle_unknown="zero").fit(
            sleep[["Days", "Subject"]], sleep["Reaction"]
        )


# -- the criterion against a dense computation ---------------------------------
def _dense_criterion(X, y, designs, lambdas, reml):
    """-2 log-likelihood (or REML), profiled over β and σ, computed densely."""
    n, p = X.shape
    blocks = []
    for d, lam in zip(designs, lambdas, strict=True):
        Z = np.zeros((n, d.m * d.k))
        cols = d.columns()
        for a in range(d.k):
            Z[np.arange(n), d.codes * d.k + a] = cols[:, a]
        blocks.append(Z @ np.kron(np.eye(d.m), lam))
    ZL = np.hstack(blocks)
    V = ZL @ ZL.T + np.eye(n)
    Vinv = np.linalg.inv(V)
    XtVX = X.T @ Vinv @ X if p else np.zeros((0, 0))
    beta = np.linalg.solve(XtVX, X.T @ Vinv @ y) if p else np.zeros(0)
    r = y - X @ beta
    rss = r @ Vinv @ r
    dof = n - p if reml else n
    value = np.linalg.slogdet(V)[1] + dof * (1 + np.log(2 * np.pi * rss / dof))
    if reml and p:
        value += np.linalg.slogdet(XtVX)[1]
    return value, beta


def _random_designs(rng, n):
    a = rng.integers(0, 12, n)
    b = rng.integers(0, 5, n)
    c = (a * 7 + b) % 9
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return [
        TermDesign(
            a,
            np.arange(12).astype(str),
            np.column_stack([np.ones(n), x1, x2]),
            ["(Intercept)", "x1", "x2"],
        ),
        TermDesign(c, np.arange(9).astype(str), None, ["(Intercept)"]),
        TermDesign(
            b,
            np.arange(5).astype(str),
            np.column_stack([np.ones(n), x1]),
            ["(Intercept)", "x1"],
        ),
    ], np.column_stack([np.ones(n), x1, x2])


@pytest.mark.parametrize(
    ("strategy", "rest_structure"),
    [("outer", None), ("sparse", "sparse"), ("sparse", "dense"), ("dense", None)],
)
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("p", [3, 0])
def test_blocked_cholesky_matches_dense_likelihood(reml, p, strategy, rest_structure):
    rng = np.random.default_rng(7)
    n = 150
    designs, X = _random_designs(rng, n)
    X = X[:, :p]
    y = rng.normal(size=n) + designs[0].codes * 0.1
    criterion = ProfiledCriterion(
        build_design(X, y, designs),
        reml=reml,
        strategy=strategy,
        rest_structure=rest_structure,
    )
    assert criterion.strategy == strategy
    assert criterion.rest_structure == rest_structure
    assert criterion.n_theta == 6 + 1 + 3
    for _ in range(3):
        theta = rng.uniform(-1, 1.5, criterion.n_theta)
        theta = np.maximum(theta, criterion.theta_lower)
        expected, beta = _dense_criterion(X, y, designs, criterion.lambdas(theta), reml)
        assert criterion(theta) == pytest.approx(expected, rel=1e-10, abs=1e-9)
        dec = criterion.decompose(theta)
        np.testing.assert_allclose(dec.beta, beta, rtol=1e-8, atol=1e-10)
        # the unprofiled ingredients give back the criterion
        dof = n - p if reml else n
        sigma2 = dec.pwrss / dof
        unprofiled = (
            dec.logdet_L + dof * np.log(2 * np.pi * sigma2) + dec.pwrss / sigma2
        )
        if reml:
            unprofiled += dec.logdet_RX
        assert unprofiled == pytest.approx(expected, rel=1e-10)


def _nested_designs(rng, n, k_outer):
    """Classes (first, most levels) nested in 7 schools; the school term has
    k_outer columns."""
    klass = rng.integers(0, 21, n)
    school = klass % 7
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    Z_school = np.column_stack([np.ones(n), x1])[:, :k_outer]
    return [
        TermDesign(
            klass,
            np.arange(21).astype(str),
            np.column_stack([np.ones(n), x2]),
            ["(Intercept)", "x2"],
        ),
        TermDesign(
            school, np.arange(7).astype(str), Z_school, ["(Intercept)", "x1"][:k_outer]
        ),
    ], np.column_stack([np.ones(n), x1, x2])


@pytest.mark.parametrize(
    ("make", "rest_structure"),
    [
        (_random_designs, "sparse"),
        (_random_designs, "dense"),
        (lambda rng, n: _nested_designs(rng, n, 1), "diagonal"),
        (lambda rng, n: _nested_designs(rng, n, 2), "diagonal"),
        (lambda rng, n: _nested_designs(rng, n, 2), "sparse"),
    ],
)
def test_conditional_modes_and_covariances_match_dense(make, rest_structure):
    rng = np.random.default_rng(3)
    n = 120
    designs, X = make(rng, n)
    y = rng.normal(size=n)
    criterion = ProfiledCriterion(
        build_design(X, y, designs),
        reml=True,
        strategy="sparse",
        rest_structure=rest_structure,
    )
    assert criterion.rest_structure == rest_structure
    theta = np.maximum(rng.uniform(-0.5, 1.5, criterion.n_theta), criterion.theta_lower)
    dec = criterion.decompose(theta)
    # dense penalised least squares: [ZΛ X]ᵀ[ZΛ X] + blockdiag(I, 0)
    blocks, lams = [], criterion.lambdas(theta)
    for d, lam in zip(designs, lams, strict=True):
        Z = np.zeros((n, d.m * d.k))
        cols = d.columns()
        for a in range(d.k):
            Z[np.arange(n), d.codes * d.k + a] = cols[:, a]
        blocks.append((Z, np.kron(np.eye(d.m), lam)))
    ZL = np.hstack([Z @ L for Z, L in blocks])
    q = ZL.shape[1]
    W = np.hstack([ZL, X])
    M = W.T @ W
    M[:q, :q] += np.eye(q)
    sol = np.linalg.solve(M, W.T @ y)
    u = np.concatenate([ui.ravel() for ui in dec.u])
    np.testing.assert_allclose(u, sol[:q], rtol=1e-8, atol=1e-10)
    sigma = 1.7
    covs = dec.conditional_covariances(sigma)
    Ainv = np.linalg.inv(ZL.T @ ZL + np.eye(q))
    start = 0
    for (_, L), cov, d in zip(blocks, covs, designs, strict=True):
        size = d.m * d.k
        full = sigma**2 * L @ Ainv[start : start + size, start : start + size] @ L.T
        for j in range(d.m):
            sl = slice(j * d.k, (j + 1) * d.k)
            np.testing.assert_allclose(cov[j], full[sl, sl], rtol=1e-8, atol=1e-12)
        start += size


def test_with_response_matches_a_new_design():
    rng = np.random.default_rng(5)
    designs, X = _random_designs(rng, 80)
    design = build_design(X, rng.normal(size=80), designs)
    y2 = rng.normal(size=80)
    fresh = build_design(X, y2, designs)
    reused = design.with_response(y2)
    np.testing.assert_allclose(reused.B, fresh.B)
    np.testing.assert_allclose(reused.C, fresh.C)


# -- awkward data sets (lme4 references) ----------------------------------------
@pytest.mark.parametrize(
    "case", ["corr_slopes", "zero_slope_var", "pairs_10k", "one_big_group"]
)
def test_robustness_cases_match_lme4(case):
    ref = json.loads((ROBUSTNESS / f"{case}.json").read_text())
    df = pd.read_csv(ROBUSTNESS / f"{case}.csv", dtype={"g": str})
    spec = ref["formula"].split("x + ")[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MixedLMRegressor(spec, reml=ref["REML"]).fit(df[["x", "g"]], df["y"])
    assert model.reml_criterion_ - ref["criterion"] <= 1e-6
    assert model.is_singular_ == ref["is_singular"]
    singular = any("singular" in str(w.message) for w in caught)
    assert singular == ref["is_singular"]
    np.testing.assert_allclose(
        model.fixed_effects_, list(ref["fixef"].values()), rtol=1e-5
    )
    se = np.sqrt(np.diag(model.vcov_))
    np.testing.assert_allclose(se, list(ref["se"].values()), rtol=1e-3)
    assert model.sigma_ == pytest.approx(ref["sigma"], rel=1e-4)


# -- recovery on simulated data ---------------------------------------------------
def test_recovers_slopes_100k_parameters():
    """Data shaped like the benchmark's slopes-100k (same model, own seed).

    y = 10 + X β + b0[g] + b1[g] x1 + ε, 1000 unbalanced groups,
    Cov(b) = [[1, .15], [.15, .25]], σ = 1.
    """
    rng = np.random.default_rng(11)
    n, m, p = 100_000, 1_000, 5
    w = rng.gamma(2.0, 1.0, m)
    sizes = rng.multinomial(n - 2 * m, w / w.sum()) + 2
    g = np.repeat(np.arange(m), sizes)
    X = rng.standard_normal((n, p))
    beta = np.array([2.0, -1.0, 0.5, 0.0, 0.25])
    cov = np.array([[1.0, 0.15], [0.15, 0.25]])
    b = rng.multivariate_normal([0.0, 0.0], cov, m)
    y = 10.0 + X @ beta + b[g, 0] + b[g, 1] * X[:, 0] + rng.standard_normal(n)
    frame = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(p)])
    frame["g"] = np.char.add("g", g.astype(str))
    model = MixedLMRegressor("(x1 | g)").fit(frame, y)
    se = np.sqrt(np.diag(model.vcov_))
    truth = np.r_[10.0, beta]
    assert np.all(np.abs(model.fixed_effects_.to_numpy() - truth) < 4 * se)
    vc = model.variance_components_
    assert vc["group"].tolist() == ["g", "g", "g", "Residual"]
    sd0, sd1, corr = vc["sdcor"].iloc[:3]
    # with 1000 groups the sds are known to a few percent
    assert sd0 == pytest.approx(1.0, rel=0.1)
    assert sd1 == pytest.approx(0.5, rel=0.1)
    assert corr == pytest.approx(0.3, abs=0.1)
    assert model.sigma_ == pytest.approx(1.0, rel=0.01)
    assert model.n_groups_ == {"g": 1000}
    assert model.converged_ and not model.is_singular_


@pytest.mark.parametrize("optimizer", ["bobyqa", "lbfgsb", "cobyqa", "nelder-mead"])
def test_every_optimizer_reaches_lme4s_optimum(sleep, optimizer):
    """BOBYQA (nlopt) is the default; scipy's methods are the fallbacks."""
    model = MixedLMRegressor("(Days | Subject)", optimizer=optimizer).fit(
        sleep[["Days", "Subject"]], sleep["Reaction"]
    )
    # lme4's REML criterion (tests/data/ss_lmer_slope_reml.json)
    assert model.reml_criterion_ - 1743.628271959952 <= 1e-6
    assert model.converged_


def test_unknown_optimizer(sleep):
    with pytest.raises(ValueError, match="'optimizer' parameter .* must be a str"):
        MixedLMRegressor("(1 | Subject)", optimizer="newton").fit(
            sleep[["Days", "Subject"]], sleep["Reaction"]
        )


def test_no_fixed_intercept_matches_lme4(sleep):
    """lme4 1.1-31: lmer(Reaction ~ 0 + Days + (Days | Subject), sleepstudy).

    Numbers printed by Rscript (REMLcrit, fixef, getME(m, "theta")).
    """
    model = MixedLMRegressor("(Days | Subject)", fit_intercept=False).fit(
        sleep[["Days", "Subject"]], sleep["Reaction"]
    )
    assert model.reml_criterion_ - 1828.339975386384 <= 1e-6
    assert model.intercept_ == 0.0
    assert list(model.fixed_effects_.index) == ["Days"]
    assert model.fixed_effects_["Days"] == pytest.approx(18.3002450402225, rel=1e-5)
    np.testing.assert_allclose(
        model.theta_,
        [9.867475568525668, -0.303001174100836, 0.235266822127233],
        rtol=1e-3,
    )


def test_explicit_uncorrelated_terms_ml_match_lme4(sleep):
    """lme4 1.1-31: lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject),
    REML = FALSE): deviance 1752.003255144601, θ = (0.94582374, 0.22692668)."""
    model = MixedLMRegressor("(1 | Subject) + (0 + Days | Subject)", reml=False).fit(
        sleep[["Days", "Subject"]], sleep["Reaction"]
    )
    assert model.deviance_ - 1752.003255144601 <= 1e-6
    np.testing.assert_allclose(
        model.theta_, [0.945823743258260, 0.226926681710544], rtol=1e-4
    )
    assert list(model.variance_components_["group"]) == [
        "Subject",
        "Subject.1",
        "Residual",
    ]


def test_three_correlated_random_effects_match_lme4(sleep):
    """lme4 1.1-31, D2 = Days² / 10:
    lmer(Reaction ~ Days + D2 + (Days + D2 | Subject)) -> REMLcrit
    1724.665949997059, fixef (255.449372777777, 7.43408501262545,
    3.37022327441157), θ as below (Rscript)."""
    X = sleep[["Days", "Subject"]].assign(D2=sleep["Days"] ** 2 / 10)
    model = MixedLMRegressor("(Days + D2 | Subject)").fit(X, sleep["Reaction"])
    assert model.reml_criterion_ - 1724.665949997059 <= 1e-6
    np.testing.assert_allclose(
        model.fixed_effects_,
        [255.449372777777, 7.43408501262545, 3.37022327441157],
        rtol=1e-5,
    )
    theta = [
        1.246518221937807,
        -0.263581507782793,
        0.292066922941625,
        0.584970072558186,
        -0.508520424019787,
        0.259813228460085,
    ]
    np.testing.assert_allclose(model.theta_, theta, rtol=1e-3, atol=1e-4)
    assert model.random_effects_cov_["Subject"].shape == (18, 3, 3)
    assert not model.is_singular_


# -- per-call costs cut for small fits keep every check -------------------------
def test_a_parameter_made_invalid_after_a_valid_fit_is_still_refused(sleep):
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    model = MixedLMRegressor("(Days | Subject)").fit(X, y)
    for bad in ({"reml": 1}, {"max_iter": 0}, {"optimizer": "newton"}):
        with pytest.raises(InvalidParameterError):
            clone(model).set_params(**bad).fit(X, y)
    # a list fixed_effects is unhashable: checked at every fit
    model.set_params(fixed_effects=["Days"]).fit(X, y)
    with pytest.raises(InvalidParameterError):
        model.set_params(fixed_effects=3).fit(X, y)


def test_parameter_names_are_read_per_class():
    class Tagged(MixedLMRegressor):
        def __init__(self, random_effects="(1 | groups)", *, tag="a"):
            super().__init__(random_effects)
            self.tag = tag

    assert "tag" not in MixedLMRegressor().get_params()
    params = Tagged(tag="b").get_params()
    assert params == {"random_effects": "(1 | groups)", "tag": "b"}
    assert clone(Tagged(tag="c")).tag == "c"


def test_repeated_fits_share_nothing_mutable(sleep):
    # the categorical dtype and level coding are reused across fits with the
    # same labels; the fitted factors and designs stay each fit's own
    X = sleep[["Days", "Subject"]]
    a = MixedLMRegressor("(Days | Subject)").fit(X, sleep["Reaction"])
    b = MixedLMRegressor("(Days | Subject)").fit(X, sleep["Reaction"] * 2.0)
    np.testing.assert_allclose(b.fixed_effects_, 2.0 * a.fixed_effects_, rtol=1e-6)
    np.testing.assert_allclose(a.theta_, b.theta_, rtol=1e-5)
    assert a._criterion.design.terms[0].codes is not b._criterion.design.terms[0].codes
    assert list(a.random_effects_["Subject"].index) == list(
        b.random_effects_["Subject"].index
    )
