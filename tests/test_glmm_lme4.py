"""GLMMs against lme4's glmer (tests/data/glmer, copied from the shared
reference; see that folder's README conventions in the JSON files).

Our PIRLS iterates to the exact conditional modes; lme4 stops at a relative
change of 1e-7 in the penalised deviance and takes its log-determinant from
the weights of the step before, so its Laplace value at its own estimates is
higher than the exact one by up to about 6e-4 (cbpp). Where our optimum is
lower than lme4's, the test prints by how much and compares everything else
at lme4's estimates, where both compute the same quantities.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skmixed import MixedGLMRegressor, MixedLogisticRegression

DATA = Path(__file__).parent / "data" / "glmer"


def _dummies(column, levels, prefix):
    """R's treatment contrasts: one 0/1 column per level after the first."""
    values = column.astype(str)
    return {f"{prefix}{lv}": (values == lv).astype(float) for lv in levels[1:]}


def _frame(case, df):
    """Features and grouping columns, named as lme4 names the coefficients."""
    levels = case["factor_levels"]
    if case["dataset"] == "cbpp":
        X = pd.DataFrame(_dummies(df["period"], levels["period"], "period"))
        X["herd"] = df["herd"].astype(str)
        return X
    if case["dataset"] == "grouseticks":
        X = pd.DataFrame(_dummies(df["YEAR"], levels["YEAR"], "YEAR"))
        X["cHEIGHT"] = df["cHEIGHT"].to_numpy(dtype=float)
        X["BROOD"] = df["BROOD"].astype(str)
        X["LOCATION"] = df["LOCATION"].astype(str)
        return X
    X = pd.DataFrame({"Days": df["Days"].to_numpy(dtype=float)})
    X["Subject"] = df["Subject"].astype(str)
    return X


SPECS = {
    "cbpp_binomial": ("(1 | herd)", "binomial"),
    "cbpp_binomial_agq25": ("(1 | herd)", "binomial"),
    "grouseticks_poisson": ("(1 | BROOD) + (1 | LOCATION)", "poisson"),
    "sleepstudy_binary": ("(Days | Subject)", "binomial"),
}
# lme4's finite-difference Hessian is of its own objective, whose PIRLS
# tolerance (above) moves it: on cbpp its entries differ from the exact
# objective's by 1-3% (measured at lme4's estimates: H[0,0] 65.50 vs 64.81),
# its standard errors by up to 1.26%. Elsewhere they agree within 5e-3.
HESSIAN_SE_RTOL = {"cbpp_binomial": 1.5e-2}


def _load(case_id):
    case = json.loads((DATA / f"{case_id}.json").read_text())
    df = pd.read_csv(DATA / case["data_file"])
    return case, df


def _fit(case_id):
    case, df = _load(case_id)
    spec, family = SPECS[case_id]
    X = _frame(case, df)
    y = np.asarray(case["response_y"], dtype=float)
    weights = np.asarray(case["prior_weights"], dtype=float)
    model = MixedGLMRegressor(spec, family=family, nAGQ=case["nAGQ"])
    sample_weight = None if np.all(weights == 1.0) else weights
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, sample_weight=sample_weight)
    return case, df, X, model


@pytest.fixture(scope="module", params=sorted(SPECS))
def fitted(request):
    return _fit(request.param)


def _absolute(case):
    return case["deviance_decomposition"]["minus_2_logLik_absolute_scale"]


def _m2ll_reported(model):
    return -2.0 * model.loglik_


def test_objective_no_worse_than_lme4(fitted):
    case, _, _, model = fitted
    ours = -2.0 * model.loglik_absolute_
    lower_by = _absolute(case) - ours
    print(
        f"{case['case_id']}: -2 log L {ours:.10f}, lme4 {_absolute(case):.10f}, "
        f"lower by {lower_by:.3g}"
    )
    assert ours <= _absolute(case) + 1e-6
    # on lme4's own scale too (relative to the saturated model for nAGQ > 1)
    assert _m2ll_reported(model) <= case["minus_2_logLik"] + 1e-6
    assert model.converged_
    assert model.is_singular_ == case["is_singular"]
    assert model.nobs_ == case["nobs"]
    assert model.n_groups_ == case["ngrps"]
    assert model.df_ == case["logLik"]["df"]
    assert model.aic_ == pytest.approx(_m2ll_reported(model) + 2 * model.df_)
    assert model.bic_ == pytest.approx(
        _m2ll_reported(model) + np.log(model.nobs_) * model.df_
    )


def test_estimates_close_to_lme4(fitted):
    """At our optimum: β within 1e-3 SE and θ within 1e-3 relative where
    lme4's optimum is not higher than ours; otherwise within what the
    difference in the objective allows (reported)."""
    case, _, _, model = fitted
    se = np.array([row["std_error"] for row in case["fixed_effects"]])
    beta_ref = np.array(case["fixef_beta"][k] for k in case["fixef_names"])
    beta_ref = np.array([case["fixef_beta"][k] for k in case["fixef_names"]])
    assert list(model.fixed_effects_.index) == case["fixef_names"]
    dist = np.abs(model.fixed_effects_.to_numpy() - beta_ref) / se
    theta_ref = np.array(case["theta"]["values"])
    theta_rel = np.abs(model.theta_ - theta_ref) / np.abs(theta_ref)
    lower_by = _absolute(case) - (-2.0 * model.loglik_absolute_)
    print(f"{case['case_id']}: |Δβ|/SE {dist.max():.2g}, θ rel {theta_rel.max():.2g}")
    if lower_by <= 1e-6:
        assert dist.max() < 1e-3
        assert theta_rel.max() < 1e-3
    else:  # a different (lower) optimum: near lme4's, not at it
        assert dist.max() < 0.05
        assert theta_rel.max() < 5e-3


@pytest.fixture(scope="module")
def at_lme4(fitted):
    """The fitted model's attributes recomputed at lme4's (θ, β)."""
    case, df, X, model = fitted
    theta = np.array(case["theta"]["values"])
    beta = np.array([case["fixef_beta"][k] for k in case["fixef_names"]])
    model._set_results(theta, beta)
    return case, df, X, model


def test_standard_errors(at_lme4):
    case, _, _, model = at_lme4
    se_rx = np.sqrt(np.diagonal(case["vcov_fixef_RX"]["matrix"]))
    np.testing.assert_allclose(
        np.sqrt(np.diagonal(model.vcov("rx").to_numpy())), se_rx, rtol=1e-4
    )
    assert case["vcov_fixef_source"].startswith("hessian")
    assert model.vcov_source_ == "hessian"
    se = np.array([row["std_error"] for row in case["fixed_effects"]])
    rtol = HESSIAN_SE_RTOL.get(case["case_id"], 5e-3)
    np.testing.assert_allclose(
        np.sqrt(np.diagonal(model.vcov_.to_numpy())), se, rtol=rtol
    )


def test_random_effects(at_lme4):
    case, _, _, model = at_lme4
    for row in case["ranef"][:: max(1, len(case["ranef"]) // 40)]:
        frame = model.random_effects_[row["grpvar"]]
        sd = model.random_effects_sd_[row["grpvar"]]
        got = frame.loc[row["level"], row["term"]]
        assert got == pytest.approx(row["condval"], rel=1e-4, abs=1e-7)
        got_sd = sd.loc[row["level"], row["term"]]
        assert got_sd == pytest.approx(row["condsd"], rel=1e-4)
    vc = model.variance_components_
    ref = pd.DataFrame(case["varcorr"])
    assert "Residual" not in set(vc["group"])
    np.testing.assert_allclose(vc["sdcor"], ref["sdcor"], rtol=1e-10)
    np.testing.assert_allclose(vc["vcov"], ref["vcov"], rtol=1e-10)


def test_fitted_values_and_residuals(at_lme4):
    case, _, _, model = at_lme4
    np.testing.assert_allclose(model.fittedvalues_, case["fitted"], rtol=1e-4)
    np.testing.assert_allclose(
        model.linear_predictor_, case["linear_predictor"], rtol=1e-4
    )
    for kind in ("deviance", "pearson", "response"):
        np.testing.assert_allclose(
            model.residuals(kind), case[f"residuals_{kind}"], rtol=1e-4, atol=1e-7
        )
    assert model.deviance_ == pytest.approx(case["deviance"], rel=1e-6)


def test_predictions_on_new_data(at_lme4):
    case, _, _, model = at_lme4
    new = pd.DataFrame(case["newdata_prediction"]["newdata"])
    X = _frame(case, new)
    if case["dataset"] == "cbpp":
        X = X.reindex(columns=model.feature_names_in_, fill_value=0.0)
    ref = case["newdata_prediction"]
    np.testing.assert_allclose(
        model.predict(X, type="link"), ref["predict_link_allow_new_levels"], rtol=1e-4
    )
    np.testing.assert_allclose(
        model.predict(X), ref["predict_response_allow_new_levels"], rtol=1e-4
    )
    np.testing.assert_allclose(
        model.predict(X, include_random=False, type="link"),
        ref["predict_population_link"],
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        model.predict(X, include_random=False),
        ref["predict_population_response"],
        rtol=1e-4,
    )


def test_cbind_is_proportion_with_trials():
    """lme4's cbind(s, f) = y proportion with sample_weight = trials; the
    successes/failures give the same fit as the 0/1 rows they stand for."""
    case, df = _load("cbpp_binomial")
    X = _frame(case, df)
    trials = df["size"].to_numpy(dtype=float)
    y = df["incidence"].to_numpy() / trials
    grouped = MixedGLMRegressor("(1 | herd)").fit(X, y, sample_weight=trials)
    # the same data as one Bernoulli row per trial
    rows = np.repeat(np.arange(len(df)), df["size"].to_numpy())
    first = np.concatenate(
        [np.arange(s) < k for s, k in zip(df["size"], df["incidence"], strict=True)]
    )
    long = MixedGLMRegressor("(1 | herd)").fit(
        X.iloc[rows].reset_index(drop=True), first.astype(float)
    )
    np.testing.assert_allclose(long.fixed_effects_, grouped.fixed_effects_, atol=2e-5)
    np.testing.assert_allclose(long.theta_, grouped.theta_, rtol=1e-4)
    # the likelihoods differ by the binomial coefficients only
    coef = case["deviance_decomposition"]["conditional_minus2_loglik"]
    assert np.isfinite(coef)


def test_classifier_matches_regressor_on_labels():
    case, df = _load("sleepstudy_binary")
    X = _frame(case, df)
    labels = np.where(df["slow"] == 1, "slow", "fast")
    clf = MixedLogisticRegression("(Days | Subject)").fit(X, labels)
    reg = MixedGLMRegressor("(Days | Subject)").fit(X, df["slow"].to_numpy(float))
    assert list(clf.classes_) == ["fast", "slow"]
    np.testing.assert_allclose(clf.fixed_effects_, reg.fixed_effects_, rtol=1e-12)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], reg.predict(X), rtol=1e-12)
    np.testing.assert_allclose(clf.decision_function(X), reg.predict(X, type="link"))
    assert set(clf.predict(X)) <= {"fast", "slow"}
