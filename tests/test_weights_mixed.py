"""sample_weight for MixedLMRegressor: lme4's lmer(weights=), prior weights.

References (copied from the shared glmer reference set, see its README):
tests/data/weighted/sleepstudy_lmer_weights.json (REML) and
sleepstudy_lmer_weights_ml.json (ML), ``Reaction ~ Days + (Days | Subject)``
with ``weights = w``, ``w = 1 + Days %% 3``, data in sleepstudy_weights.csv.
They live in a subfolder so that the unweighted lmer suites (which fit every
``kind == "lmer"`` file in tests/data without weights) do not pick them up.

Each case is fitted, and a copy moved to lme4's θ (``_results_at``): at
lme4's θ every number must match R to the stated tolerance (that checks the
computation); at our own optimum (a criterion equal to or lower than lme4's)
to the issue's 1e-4.
"""

import copy
import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate
from sklearn.pipeline import make_pipeline

from skmixed import MixedLMRegressor, anova

WEIGHTED = Path(__file__).parent / "data" / "weighted"
CASES = ["sleepstudy_lmer_weights", "sleepstudy_lmer_weights_ml"]


def _data():
    return pd.read_csv(WEIGHTED / "sleepstudy_weights.csv", dtype={"Subject": str})


@cache
def _fits(case):
    ref = json.loads((WEIGHTED / f"{case}.json").read_text())
    df = _data()
    model = MixedLMRegressor("(Days | Subject)", reml=ref["REML"]).fit(
        df[["Days", "Subject"]], df["Reaction"], sample_weight=df["w"]
    )
    at_lme4 = copy.deepcopy(model)
    at_lme4._results_at(np.array(ref["theta"]["values"], dtype=float))
    return ref, model, at_lme4


def fits(case):
    ref, model, at_lme4 = _fits(case)
    return ref, copy.deepcopy(model), copy.deepcopy(at_lme4)


def relative(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.where(b == 0, 1.0, np.abs(b))
    return float(np.max(np.abs(a - b) / scale))


def _criterion(model):
    return model.reml_criterion_ if model.reml else model.deviance_


def _lme4_stopped_short(model, at_lme4):
    """Our optimum is lower than lme4's (a flat surface: θ may then differ)."""
    return _criterion(at_lme4) - _criterion(model) > 1e-10


def _both(get, model, at_lme4, expected, tol_at, tol_ours=1e-4):
    """Within ``tol_at`` of R at lme4's θ; within ``tol_ours`` at our optimum,
    or -- where lme4 stopped short of it -- as close as the move from lme4's
    θ to ours allows (plus ``tol_at``)."""
    at, ours = get(at_lme4), get(model)
    assert relative(at, expected) <= tol_at
    error = relative(ours, expected)
    if _lme4_stopped_short(model, at_lme4):
        assert error <= relative(ours, at) + tol_at
    else:
        assert error <= tol_ours


@pytest.mark.parametrize("case", CASES)
def test_criterion_and_likelihood_match_lme4(case):
    ref, model, at_lme4 = fits(case)
    expected = ref["REML_criterion"] if ref["REML"] else ref["deviance"]
    value = model.reml_criterion_ if ref["REML"] else model.deviance_
    at = at_lme4.reml_criterion_ if ref["REML"] else at_lme4.deviance_
    # lme4's criteria include -sum(log w): ours must reproduce the value
    assert abs(at - expected) < 1e-7
    assert value - expected <= 1e-7  # equal, or lower (a better optimum)
    for attr, key in (("aic_", "AIC"), ("bic_", "BIC")):
        assert abs(getattr(at_lme4, attr) - ref[key]) < 1e-7
    assert abs(at_lme4.loglik_ - ref["logLik"]["value"]) < 1e-7
    assert model.nobs_ == ref["nobs"] == 180
    # θ: lme4's to 1e-4, or (ML case: our deviance is 7e-9 lower) to 1e-3
    limit = 1e-3 if _lme4_stopped_short(model, at_lme4) else 1e-4
    assert relative(model.theta_, ref["theta"]["values"]) < limit


@pytest.mark.parametrize("case", CASES)
def test_fixed_effects_standard_errors_and_vcov(case):
    ref, model, at_lme4 = fits(case)
    est = [r["estimate"] for r in ref["fixed_effects"]]
    se = [r["std_error"] for r in ref["fixed_effects"]]
    _both(lambda m: m.fixed_effects_, model, at_lme4, est, 1e-8, 1e-6)
    _both(lambda m: np.sqrt(np.diag(m.vcov_)), model, at_lme4, se, 1e-7)
    vcov = np.array(ref["vcov_fixef"]["matrix"], dtype=float)
    _both(lambda m: m.vcov_.to_numpy(), model, at_lme4, vcov, 1e-7)


@pytest.mark.parametrize("case", CASES)
def test_sigma_and_variance_components(case):
    ref, model, at_lme4 = fits(case)
    _both(lambda m: m.sigma_, model, at_lme4, ref["sigma"], 1e-8)
    expected = [row["sdcor"] for row in ref["varcorr"]]
    # lme4's order: sd(Intercept), sd(Days), cor, Residual; ours too
    _both(lambda m: m.variance_components_["sdcor"], model, at_lme4, expected, 1e-7)
    vc = model.variance_components_
    assert list(vc["group"]) == [row["group"] for row in ref["varcorr"]]


@pytest.mark.parametrize("case", CASES)
def test_satterthwaite_tests_as_lmertest_computes_them_with_weights(case):
    ref, model, at_lme4 = fits(case)
    # p-values of 1e-17 move ~1e-6 relative with t and df in the 7th digit
    for column, tol in (("df", 1e-6), ("t_value", 1e-6), ("p_value", 1e-5)):
        expected = [r[column] for r in ref["fixed_effects"]]
        _both(
            lambda m, c=column: m.summary().coefficients[c],
            model,
            at_lme4,
            expected,
            tol,
        )
    row = ref["anova_type3_satterthwaite"][0]
    for m, tol in ((at_lme4, 1e-6), (model, 1e-4)):
        table = m.anova()
        assert relative(table.loc["Days", "den_df"], row["den_df"]) <= tol
        assert relative(table.loc["Days", "F_value"], row["F_value"]) <= tol


@pytest.mark.parametrize("case", CASES)
def test_conditional_modes_fitted_values_and_scaled_residuals(case):
    ref, model, at_lme4 = fits(case)
    block = ref["ranef_condvar_blocks"][0]
    theirs = np.array(block["condval"], dtype=float)
    rows = model.random_effects_["Subject"].index.get_indexer(block["levels"])

    def modes(m):
        return m.random_effects_["Subject"].to_numpy()[rows]

    def covs(m):
        return m.random_effects_cov_["Subject"][rows]

    scale = np.max(np.abs(theirs), axis=0)
    assert np.max(np.abs(modes(at_lme4) - theirs) / scale) < 1e-6
    assert np.max(np.abs(modes(model) - theirs) / scale) < 1e-4
    condvar = np.array(block["condvar"], dtype=float)
    assert relative(covs(at_lme4), condvar) < 1e-6
    assert relative(covs(model), condvar) < 1e-4
    # fitted values and residuals are unweighted, as lme4's
    _both(lambda m: m.fittedvalues_, model, at_lme4, ref["fitted"], 1e-8, 1e-6)
    scale = np.max(np.abs(ref["fitted"]))
    diff = np.max(np.abs(at_lme4.residuals_ - ref["residuals"])) / scale
    assert diff < 1e-8
    # the summary's scaled residuals are lme4's Pearson ones: sqrt(w) r / σ
    q = ref["scaled_residual_quantiles"]
    expected = [q[k] for k in ("min", "q1", "median", "q3", "max")]
    summary = at_lme4.summary()
    ours = np.quantile(summary.scaled_residuals, [0, 0.25, 0.5, 0.75, 1])
    assert np.max(np.abs(ours - expected)) < 1e-6
    assert "Weights: w" in str(summary)  # the Series name, as lme4 prints it


def test_nakagawa_r2_and_icc_as_performance_computes_them():
    """performance uses the residual variance at weight 1 (σ²), as we do."""
    ref, model, at_lme4 = fits("sleepstudy_lmer_weights")
    expected = ref["nakagawa"]["performance"]
    for m, tol in ((at_lme4, 1e-8), (model, 1e-5)):
        r2, icc = m.r2_nakagawa(), m.icc()
        assert abs(r2["marginal"] - expected["R2_marginal"]) < tol
        assert abs(r2["conditional"] - expected["R2_conditional"]) < tol
        assert abs(icc["adjusted"] - expected["ICC_adjusted"]) < tol
        assert abs(icc["conditional"] - expected["ICC_conditional"]) < tol


@pytest.mark.parametrize("case", CASES)
def test_profile_intervals_match_the_correct_profile(case):
    """lme4's fixed-effect profile rows are wrong with weights (lme4 #192);
    the reference holds a by-hand profile, which ours must match."""
    ref, model, _ = fits(case)
    wrong = {
        r["parm"]: r
        for r in ref["confint_profile_info"]["lme4_fixed_effect_rows_wrong"]
    }
    table = model.conf_int(method="profile")
    assert list(table.index) == [r["parm"] for r in ref["confint_profile"]]
    for row in ref["confint_profile"]:
        lower, upper = table.loc[row["parm"]]
        assert relative([lower, upper], [row["lower"], row["upper"]]) < 1e-4
        if row["parm"] in wrong:  # and not lme4's narrow ones
            assert upper - lower > 10 * (
                wrong[row["parm"]]["upper"] - wrong[row["parm"]]["lower"]
            )


def test_wald_intervals_match_lme4():
    ref, _, at_lme4 = fits("sleepstudy_lmer_weights")
    table = at_lme4.conf_int(method="wald")
    for row in ref["confint_wald"]:
        assert relative(table.loc[row["parm"]], [row["lower"], row["upper"]]) < 1e-7


def test_kenward_roger_refuses_weights():
    _, model, _ = fits("sleepstudy_lmer_weights")
    with pytest.raises(ValueError, match="Kenward-Roger.*ignores prior weights"):
        model.summary(ddf="kenward-roger")
    with pytest.raises(ValueError, match="Kenward-Roger"):
        model.anova(ddf="kenward-roger")


@pytest.mark.parametrize("refit", [True, False])
def test_likelihood_ratio_test_of_weighted_fits(refit):
    ref = json.loads((WEIGHTED / "sleepstudy_lmer_weights.json").read_text())
    expected = next(r for r in ref["lrt"] if r["refit"] is refit)["table"]
    df = _data()
    X, y, w = df[["Days", "Subject"]], df["Reaction"], df["w"]
    small = MixedLMRegressor("(1 | Subject)").fit(X, y, sample_weight=w)
    big = MixedLMRegressor("(Days | Subject)").fit(X, y, sample_weight=w)
    table = anova(small, big, refit=refit)
    assert relative(table["logLik"], [r["logLik"] for r in expected]) < 1e-7
    assert relative(table["AIC"], [r["AIC"] for r in expected]) < 1e-7
    assert relative(table["Chisq"].iloc[1], expected[1]["Chisq"]) < 1e-5


def test_bootstrap_simulates_residual_variance_sigma2_over_w():
    """Refits of responses simulated with variance σ²/w recover σ; ignoring
    the weights (variance σ²) would inflate it by sqrt(mean w) = 1.41."""
    _, model, _ = fits("sleepstudy_lmer_weights_ml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = model.conf_int(
            method="bootstrap", n_boot=30, random_state=0, parm=["sigma"]
        )
    sigmas = table.attrs["replicates"]["sigma"]
    assert abs(sigmas.mean() / model.sigma_ - 1) < 0.05


def test_zero_negative_and_bad_weights_are_refused():
    df = _data()
    X, y = df[["Days", "Subject"]], df["Reaction"]
    w = df["w"].to_numpy(dtype=float)
    w[:2] = 0.0
    model = MixedLMRegressor("(Days | Subject)")
    with pytest.raises(ValueError, match="2 zero weight.*lme4's criterion is then"):
        model.fit(X, y, sample_weight=w)
    w[:2] = -1.0
    with pytest.raises(ValueError, match="negative"):
        model.fit(X, y, sample_weight=w)
    with pytest.raises(ValueError, match="179 weights but X has 180 rows"):
        model.fit(X, y, sample_weight=w[1:])


def test_precision_weights_are_not_frequency_weights():
    """A weight of 2 halves a row's residual variance; it is not a repeated
    row (which would also count twice towards its group's random effect)."""
    df = _data()
    X, y = df[["Days", "Subject"]], df["Reaction"]
    w = df["w"].to_numpy()
    weighted = MixedLMRegressor("(1 | Subject)").fit(X, y, sample_weight=w)
    repeated = df.loc[df.index.repeat(w)]
    copies = MixedLMRegressor("(1 | Subject)").fit(
        repeated[["Days", "Subject"]], repeated["Reaction"]
    )
    assert not np.allclose(weighted.sigma_, copies.sigma_, rtol=1e-3)
    # constant weights c: the same fit with sigma scaled by 1/sqrt(c)
    doubled = MixedLMRegressor("(1 | Subject)").fit(
        X, y, sample_weight=np.full(180, 2.0)
    )
    plain = MixedLMRegressor("(1 | Subject)").fit(X, y)
    np.testing.assert_allclose(doubled.fixed_effects_, plain.fixed_effects_, rtol=1e-6)
    # residual variance σ_w² / 2 = σ²: σ_w = sqrt(2) σ
    assert doubled.sigma_ == pytest.approx(plain.sigma_ * np.sqrt(2), rel=1e-6)


def test_missing_drop_drops_the_weights_too():
    df = _data()
    y = df["Reaction"].copy()
    y.iloc[[3, 40]] = np.nan
    with pytest.warns(UserWarning, match="dropped 2 row"):
        model = MixedLMRegressor("(Days | Subject)", missing="drop").fit(
            df[["Days", "Subject"]], y, sample_weight=df["w"]
        )
    keep = y.notna()
    expected = MixedLMRegressor("(Days | Subject)").fit(
        df.loc[keep, ["Days", "Subject"]], y[keep], sample_weight=df.loc[keep, "w"]
    )
    np.testing.assert_allclose(model.fixed_effects_, expected.fixed_effects_)
    assert model.nobs_ == 178


def test_weights_are_routed_through_pipelines_and_searches():
    df = _data()
    X, y, w, g = df[["Days"]], df["Reaction"], df["w"], df["Subject"]
    cv = GroupKFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            make_pipeline(MixedLMRegressor()),
            {"mixedlmregressor__random_effects": ["(1 | Subject)", "(Days | Subject)"]},
            cv=cv,
        )
        search.fit(X, y, groups=g, sample_weight=w)
        scores = cross_validate(
            MixedLMRegressor("(Days | Subject)"),
            X,
            y,
            cv=cv,
            params={"groups": g, "sample_weight": w},
        )["test_score"]
    # the best model refitted on all rows is the weighted fit
    best = search.best_estimator_[-1]
    direct = MixedLMRegressor(best.random_effects).fit(X, y, groups=g, sample_weight=w)
    np.testing.assert_allclose(best.fixed_effects_, direct.fixed_effects_, rtol=1e-8)
    # each fold: the weighted fit, scored by the weighted R²
    train, test = next(cv.split(X, y, g))
    fold = MixedLMRegressor("(Days | Subject)").fit(
        X.iloc[train], y.iloc[train], groups=g.iloc[train], sample_weight=w.iloc[train]
    )
    expected = fold.score(
        X.iloc[test], y.iloc[test], groups=g.iloc[test], sample_weight=w.iloc[test]
    )
    assert scores[0] == pytest.approx(expected, rel=1e-10)


def test_log_likelihood_scorers_take_the_scored_rows_weights():
    """On the training rows the weighted marginal likelihood is loglik_."""
    from skmixed import PooledRegressor
    from skmixed.metrics import conditional_log_likelihood, marginal_log_likelihood

    df = _data()
    X, y, w = df[["Days", "Subject"]], df["Reaction"], df["w"]
    ml = MixedLMRegressor("(Days | Subject)", reml=False).fit(X, y, sample_weight=w)
    score = marginal_log_likelihood(ml, X, y, sample_weight=w)
    assert score == pytest.approx(ml.loglik_, rel=1e-10)
    wz = w.to_numpy(dtype=float)
    wz[:3] = 0.0  # lm: zero-weight rows are left out, as logLik.lm does
    lm = PooledRegressor().fit(df[["Days"]], y, sample_weight=wz)
    for scorer in (marginal_log_likelihood, conditional_log_likelihood):
        value = scorer(lm, df[["Days"]], y, sample_weight=wz)
        assert value == pytest.approx(lm.loglik_, rel=1e-12)
    # the conditional density: N(fitted, sigma^2 / w) by hand
    r = y.to_numpy() - ml.predict(X)
    expected = -0.5 * np.sum(
        np.log(2 * np.pi * ml.sigma_**2 / w) + w * r**2 / ml.sigma_**2
    )
    value = conditional_log_likelihood(ml, X, y, sample_weight=w)
    assert value == pytest.approx(expected, rel=1e-12)
    # a weighted fit needs the scored rows' weights
    for scorer in (marginal_log_likelihood, conditional_log_likelihood):
        with pytest.raises(ValueError, match="fitted with sample_weight"):
            scorer(ml, X, y)
    with pytest.raises(ValueError, match="zero weights"):
        marginal_log_likelihood(ml, X, y, sample_weight=wz)


def test_log_likelihood_scorers_receive_weights_under_routing():
    from skmixed.metrics import marginal_log_likelihood

    df = _data()
    X, y, w, g = df[["Days"]], df["Reaction"], df["w"], df["Subject"]
    cv = GroupKFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_validate(
            MixedLMRegressor("(Days | Subject)", reml=False),
            X,
            y,
            cv=cv,
            scoring=marginal_log_likelihood,
            params={"groups": g, "sample_weight": w},
        )["test_score"]
    train, test = next(cv.split(X, y, g))
    fold = MixedLMRegressor("(Days | Subject)", reml=False).fit(
        X.iloc[train], y.iloc[train], groups=g.iloc[train], sample_weight=w.iloc[train]
    )
    expected = marginal_log_likelihood(
        fold,
        X.iloc[test],
        y.iloc[test],
        groups=g.iloc[test],
        sample_weight=w.iloc[test],
    )
    assert scores[0] == pytest.approx(expected, rel=1e-10)


def test_hausman_needs_the_same_weights_in_both_models():
    import skmixed
    from skmixed import FixedEffectsRegressor

    df = _data()
    X, y, w = df[["Days", "Subject"]], df["Reaction"], df["w"]
    fe_w = FixedEffectsRegressor(group="Subject").fit(X, y, sample_weight=w)
    re_w = MixedLMRegressor("(1 | Subject)").fit(X, y, sample_weight=w)
    re = MixedLMRegressor("(1 | Subject)").fit(X, y)
    with pytest.raises(ValueError, match="different sample_weight"):
        skmixed.hausman(fe_w, re)
    result = skmixed.hausman(fe_w, re_w)
    # Days is balanced within subjects: V_FE - V_RE is 0 up to rounding
    # (~1e-17), so its numerical rank is 0 or 1 by the last digit of θ
    assert result.df in (0, 1) and np.isfinite(result.statistic)
    assert abs(result.statistic) < 1e-10


# -- several random-effect terms (tests/data/weighted/make_lmer_weights_extra.R)
EXTRA = json.loads((WEIGHTED / "lmer_weights_extra.json").read_text())
EXTRA_FITS = {
    "penicillin_crossed": ("Penicillin", "diameter", [], "(1 | plate) + (1 | sample)"),
    "pastes_nested": ("Pastes", "strength", [], "(1 | batch/cask)"),
    "sleep_uncorrelated_ml": ("sleepstudy", "Reaction", ["Days"], "(Days || Subject)"),
}


@pytest.mark.parametrize("case", sorted(EXTRA_FITS))
def test_weighted_fits_with_several_terms_match_lme4(case):
    from skmixed.datasets import load_pastes, load_penicillin, load_sleepstudy

    loaders = {
        "Penicillin": load_penicillin,
        "Pastes": load_pastes,
        "sleepstudy": load_sleepstudy,
    }
    ref = EXTRA[case]
    name, response, features, spec = EXTRA_FITS[case]
    df = loaders[name]()
    groups = [c for c in ("plate", "sample", "batch", "cask", "Subject") if c in spec]
    X, y, w = df[features + groups], df[response], np.array(ref["weights"])
    model = MixedLMRegressor(spec, reml=ref["REML"]).fit(X, y, sample_weight=w)
    at_lme4 = copy.deepcopy(model)
    at_lme4._results_at(np.array(ref["theta"], dtype=float))
    # the criterion (with -sum(log w)) reproduces lme4's at its θ; ours is
    # as low or lower
    assert abs(_criterion(at_lme4) - ref["criterion"]) < 1e-7
    assert _criterion(model) - ref["criterion"] < 1e-7
    assert list(model.fixed_effects_.index) == np.ravel(ref["fixef_names"]).tolist()

    def coefficients(m, column):
        return m.summary().coefficients[column]

    _both(lambda m: m.fixed_effects_, model, at_lme4, np.ravel(ref["estimate"]), 1e-8)
    for column, key in (("std_error", "std_error"), ("df", "df")):
        expected = np.ravel(ref[key])
        _both(lambda m, c=column: coefficients(m, c), model, at_lme4, expected, 1e-6)
    _both(lambda m: m.sigma_, model, at_lme4, ref["sigma"], 1e-8)
    sdcor = [row["sdcor"] for row in ref["varcorr"]]
    _both(lambda m: m.variance_components_["sdcor"], model, at_lme4, sdcor, 1e-7)
    modes = model.random_effects_[ref["ranef_factor"]]
    rows = modes.index.get_indexer(ref["ranef_levels"])
    assert (rows >= 0).all()
    expected = np.array(ref["ranef_values"], dtype=float)

    def values(m):
        return m.random_effects_[ref["ranef_factor"]].to_numpy()[rows]

    scale = np.max(np.abs(expected), axis=0)
    assert np.max(np.abs(values(at_lme4) - expected) / scale) < 1e-6
    assert np.max(np.abs(values(model) - expected) / scale) < 1e-4
    _both(lambda m: m.fittedvalues_, model, at_lme4, ref["fitted"], 1e-8, 1e-6)


def test_lmer_takes_weights_as_lme4_does():
    import skmixed

    ref, _, _ = fits("sleepstudy_lmer_weights")
    df = _data()
    model = skmixed.lmer("Reaction ~ Days + (Days | Subject)", df, weights="w")
    assert abs(model.reml_criterion_ - ref["REML_criterion"]) < 1e-6
    text = str(model.summary())
    assert "Weights: w" in text


def test_residual_plot_of_a_weighted_fit_shows_weighted_residuals():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skmixed.plotting import plot_residuals

    _, model, _ = fits("sleepstudy_lmer_weights")
    figure = plot_residuals(model)
    ax = figure.axes[0]
    assert ax.get_title() == "Weighted residuals vs fitted"
    shown = ax.collections[0].get_offsets()[:, 1]
    w = _data()["w"].to_numpy()
    np.testing.assert_allclose(shown, np.sqrt(w) * model.residuals_)
    plt.close(figure)


def test_weights_reach_the_centred_design_of_shifted_slopes():
    """A slope column far from 0 is fitted through a centred design: it must
    carry the weights too (same criterion and slope as the unshifted fit)."""
    df = _data()
    shifted = df.assign(Days=df["Days"] + 1e4)
    w = df["w"]
    plain = MixedLMRegressor("(Days | Subject)").fit(
        df[["Days", "Subject"]], df["Reaction"], sample_weight=w
    )
    far = MixedLMRegressor("(Days | Subject)").fit(
        shifted[["Days", "Subject"]], df["Reaction"], sample_weight=w
    )
    assert far._centred is not None  # the centred path was taken
    assert far.reml_criterion_ == pytest.approx(plain.reml_criterion_, abs=1e-6)
    assert far.fixed_effects_["Days"] == pytest.approx(
        plain.fixed_effects_["Days"], rel=1e-6
    )
    assert far.sigma_ == pytest.approx(plain.sigma_, rel=1e-6)
