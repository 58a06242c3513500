"""Inference for MixedLMRegressor against lmerTest, lme4 and performance.

Every public lmer reference case in tests/data is checked (issue 4
tolerances): Satterthwaite df and p-values (1e-3 relative), Kenward-Roger
df and p-values, type III F tests, Wald intervals (1e-6), profile intervals
(1e-3 relative), Nakagawa R² and ICC (1e-5), scaled residual quantiles.
Extra R references made for these tests (scripts inside the files):
contest_joint.json (lmerTest::contest with a 2-row L, Satterthwaite and
Kenward-Roger) and ss_lmer_slope_reml_boot.json (lme4's bootstrap
percentile intervals, 4000 refits).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from _lmer_fits import check_close, fits, lmer_cases, reference, relative

from skmixed import MixedLMRegressor
from skmixed.mixed import _numderiv, inference, kenward_roger
from skmixed.mixed.bootstrap import percentile_interval
from skmixed.mixed.inference import (
    _deviance_hessian,
    _deviance_varpar,
    _f_denominator_df,
    check_ddf,
)

CASES = lmer_cases()
# p-values as small as 1e-18 move by ~2e-3 (relative) under the ~1e-5
# differences between our optimum and lme4's; at lme4's θ they agree to 1e-6.
P_TOL_OURS = 5e-3


def _column(table, name):
    return lambda m: table(m)[name].to_numpy()


@pytest.mark.parametrize("case", CASES)
def test_satterthwaite_df_and_p(case):
    ref, ours, at = fits(case)
    expected = ref["fixed_effects"]

    def table(m):
        return m.summary().coefficients

    for key, tol, tol_ours in (("df", 1e-3, 1e-3), ("p_value", 1e-3, P_TOL_OURS)):
        values = [row[key] for row in expected]
        check_close(_column(table, key), ours, at, values, tol, tol_ours)
    check_close(
        _column(table, "std_error"),
        ours,
        at,
        [row["std_error"] for row in expected],
        1e-6,
        1e-4,
    )


def _rows_for_order_test(seed=3, n=1200):
    """General floats: a permutation of the rows changes the cross-products
    in their last bits, as a Dask fit's partition sums do."""
    rng = np.random.default_rng(seed)
    g, h = rng.integers(0, 40, n), rng.integers(0, 6, n)
    x1, x2 = rng.normal(size=n) * 1.3 + 0.2, rng.uniform(-2, 2, n)
    b = rng.normal(size=(40, 2)) * np.array([1.5, 0.6])
    y = 1 + 2 * x1 - x2 + b[g, 0] + b[g, 1] * x1 + rng.normal(size=6)[h] * 0.8
    y = y + rng.normal(size=n) * 1.7
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "h": h, "y": y})


@pytest.mark.parametrize("spec", ["(x1 | g)", "(x1 | g) + (1 | h)"])
@pytest.mark.parametrize("reml", [True, False])
def test_satterthwaite_df_do_not_depend_on_the_order_of_the_rows(spec, reml):
    # second differences of the deviance moved the df of (x1 | g) + (1 | h)
    # by 3e-8 relative between two orders of the same rows
    df = _rows_for_order_test()
    shuffled = df.sample(frac=1, random_state=0)
    cols = ["x1", "x2", "g", "h"]
    fits_ = [
        MixedLMRegressor(spec, reml=reml).fit(d[cols], d["y"]) for d in (df, shuffled)
    ]
    tables = [m.anova() for m in fits_]
    pd.testing.assert_frame_equal(tables[1], tables[0], rtol=1e-10)
    coefs = [m.summary().coefficients for m in fits_]
    pd.testing.assert_frame_equal(coefs[1], coefs[0], rtol=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_kenward_roger(case):
    ref, ours, at = fits(case)
    expected = ref["fixed_effects_kenward_roger"]
    if expected is None:  # ML fit: lmerTest refuses, so do we
        with pytest.raises(ValueError, match="only available for REML"):
            ours.summary(ddf="kenward-roger")
        return

    def table(m):
        return m.summary(ddf="kenward-roger").coefficients

    for key, tol, tol_ours in (
        ("df", 1e-3, 1e-3),
        ("p_value", 1e-3, P_TOL_OURS),
        ("std_error", 1e-6, 1e-4),
    ):
        values = [row[key] for row in expected]
        check_close(_column(table, key), ours, at, values, tol, tol_ours)


@pytest.mark.parametrize("case", CASES)
def test_type3_anova(case):
    ref, ours, at = fits(case)
    for key, ddf in (
        ("anova_type3_satterthwaite", "satterthwaite"),
        ("anova_type3_kenward_roger", "kenward-roger"),
    ):
        expected = ref.get(key)
        if not expected:
            continue
        assert list(ours.anova(ddf).index) == [row["term"] for row in expected]
        for column, tol, tol_ours in (
            ("den_df", 1e-3, 1e-3),
            ("p_value", 1e-3, P_TOL_OURS),
            ("F_value", 1e-6, 1e-4),
            ("sum_sq", 1e-6, 1e-4),
        ):
            values = [row[column] for row in expected]
            check_close(
                lambda m, c=column, d=ddf: m.anova(d)[c].to_numpy(),
                ours,
                at,
                values,
                tol,
                tol_ours,
            )
        assert (ours.anova(ddf)["num_df"] == [r["num_df"] for r in expected]).all()


def test_joint_contest_matches_lmertest():
    """A 2-row L: the eigen-decomposition and the combined denominator df."""
    joint = reference("contest_joint")
    for item in joint["cases"]:
        _, ours, at = fits(item["case"])
        L = np.array(item["L"], dtype=float)
        for ddf in ("satterthwaite", "kenward_roger"):
            expected = item.get(ddf)
            if expected is None:
                continue
            for column, tol in (("den_df", 1e-3), ("F_value", 1e-6), ("p_value", 1e-3)):
                got = at.contest(L, ddf=ddf)[column].iloc[0]
                assert relative(got, expected[column]) <= tol, (item["case"], ddf)
            assert at.contest(L, ddf=ddf)["num_df"].iloc[0] == 2


def test_contest_accepts_a_named_contrast():
    _, ours, _ = fits("ss_lmer_slope_reml")
    by_name = ours.contest({"Days": 1.0})
    by_vector = ours.contest([0.0, 1.0])
    assert np.allclose(by_name.to_numpy(), by_vector.to_numpy())
    assert np.isclose(by_name["p_value"].iloc[0], ours.anova()["p_value"].iloc[0])
    with pytest.raises(ValueError, match="Unknown fixed effect"):
        ours.contest({"Nights": 1.0})
    with pytest.raises(ValueError, match="columns"):
        ours.contest([1.0, 0.0, 0.0])


@pytest.mark.parametrize("case", CASES)
def test_wald_intervals(case):
    ref, ours, at = fits(case)
    expected = ref["confint_wald"]
    assert list(ours.conf_int().index) == [row["parm"] for row in expected]
    for side in ("lower", "upper"):
        # A Wald bound is β ± 1.96 se: at our θ, se differs by up to ~5e-6.
        check_close(
            lambda m, s=side: m.conf_int()[s].to_numpy(),
            ours,
            at,
            [row[side] for row in expected],
            1e-6,
            1e-5,
        )


def _nakagawa_expected(ref):
    """performance's numbers, or by_hand where performance 0.10.2 is wrong.

    For ``(Days || Subject)`` performance drops the second (slope) term; the
    reference's by_hand numbers keep it, as Johnson's extension does.
    """
    nak = ref["nakagawa"]
    if "||" in ref["formula"]:
        return nak["by_hand"]
    return nak["performance"]


@pytest.mark.parametrize("case", CASES)
def test_nakagawa_r2_and_icc(case):
    ref, ours, at = fits(case)
    expected = _nakagawa_expected(ref)
    # At our optimum the variance components differ from lme4's by up to
    # ~1e-5 relative (ss_lmer_slope_ml), which moves these ratios by as much.
    for model, tol in ((at, 1e-5), (ours, 5e-5)):
        singular = ref["nakagawa"]["performance"]["R2_conditional"] is None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r2 = model.r2_nakagawa()
            icc = model.icc()
        assert abs(r2["marginal"] - expected["R2_marginal"]) <= tol
        if singular:
            # performance: a warning, NaN, and a marginal R² without τ.
            assert len(caught) == 2
            assert np.isnan(r2["conditional"])
            assert np.isnan(icc["adjusted"]) and np.isnan(icc["conditional"])
            continue
        assert not caught
        assert abs(r2["conditional"] - expected["R2_conditional"]) <= tol
        assert abs(icc["adjusted"] - expected["ICC_adjusted"]) <= tol
        assert abs(icc["conditional"] - expected["ICC_conditional"]) <= tol


def test_nakagawa_variance_parts_by_hand():
    """Johnson's random-slope variance: mean over rows of z_iᵀ Σ z_i."""
    from skmixed.mixed.r2 import variance_parts

    for case in ("ss_lmer_slope_reml", "ss_lmer_uncorr_reml", "pastes_lmer"):
        ref, _, at = fits(case)
        parts = variance_parts(at)
        by_hand = ref["nakagawa"]["by_hand"]
        assert relative(parts["fixed"], by_hand["var_fixed"]) < 1e-8
        assert relative(parts["random"], by_hand["var_random"]) < 1e-8
        assert relative(parts["residual"], by_hand["var_residual"]) < 1e-8
        if "||" in ref["formula"]:
            continue  # R's list of components kept one of the two Subject terms
        for factor, value in by_hand["var_random_components"].items():
            assert relative(parts["random_components"][factor], value) < 1e-8


@pytest.mark.parametrize("case", CASES)
def test_scaled_residual_quantiles(case):
    ref, ours, at = fits(case)
    q = ref["scaled_residual_quantiles"]
    expected = [q[k] for k in ("min", "q1", "median", "q3", "max")]

    def quantiles(m):
        return np.quantile(m.residuals_ / m.sigma_, [0, 0.25, 0.5, 0.75, 1])

    at_q, our_q = quantiles(at), quantiles(ours)
    assert np.max(np.abs(at_q - expected)) <= 1e-6
    assert np.max(np.abs(our_q - expected)) <= 1e-3


# -- profile intervals --------------------------------------------------------
# lme4 itself warned that its profile of this singular three-level model is
# unreliable ("non-monotonic profile", "bad spline fit ... falling back to
# linear interpolation"). At its bounds for these parameters the profile's ζ
# is not 1.96 (1.906 to 1.967; checked by restarting each constrained fit
# from 30 random points), so ours differ from them by up to 3%.
_LME4_UNRELIABLE = {
    "ss3_lmer_school_slope": {
        "sd_(Intercept)|School",
        "sd_Days|School",
        "(Intercept)",
        "Days",
    }
}


@pytest.mark.parametrize("case", CASES)
def test_profile_intervals(case):
    ref, ours, _ = fits(case)
    expected = ref["confint_profile"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = ours.conf_int(method="profile")
    assert list(table.index) == [row["parm"] for row in expected]
    unreliable = _LME4_UNRELIABLE.get(case, set())
    for row in expected:
        lower, upper = table.loc[row["parm"]]
        if row["parm"] in unreliable:
            assert relative([lower, upper], [row["lower"], row["upper"]]) < 0.05
            continue
        # Boundary values (0 for a standard deviation, ±1 for a correlation)
        # are exact; the others within 1e-3 relative.
        assert relative(lower, row["lower"]) <= 1e-3, (row["parm"], lower)
        assert relative(upper, row["upper"]) <= 1e-3, (row["parm"], upper)


def test_profile_zeta_at_the_bounds_is_the_normal_quantile():
    """The endpoints are where the signed root deviance crosses ±1.96."""
    from skmixed.mixed.intervals import ml_theta
    from skmixed.mixed.profile import _KINDS, Profiler

    _, ours, _ = fits("ss_lmer_slope_reml")
    criterion, theta = ml_theta(ours)
    profiler = Profiler(criterion, theta, list(ours.fixed_effects_.index))
    for k in (0, 1, 3, 5):  # an sd, the correlation, sigma, a fixed effect
        par = profiler.params[k]
        problem = _KINDS[par.kind](profiler, par)
        lower, upper = profiler.interval(k)
        for bound, sign in ((lower, -1), (upper, 1)):
            dev, _, _ = problem.solve(bound, profiler.theta_hat, profiler.sigma_hat)
            zeta = np.sqrt(dev - profiler.dev_min)
            assert abs(zeta - 1.959964) < 1e-4, par.name
            assert np.sign(bound - profiler.estimates[k]) == sign


def test_profile_parm_selection_and_level():
    _, ours, _ = fits("ss_lmer_int_reml")
    sd_only = ours.conf_int(method="profile", parm="theta_")
    assert list(sd_only.index) == ["sd_(Intercept)|Subject", "sigma"]
    days = ours.conf_int(method="profile", parm=["Days"])
    assert list(days.index) == ["Days"]
    narrow = ours.conf_int(level=0.5, method="profile", parm="Days")
    assert narrow.loc["Days", "lower"] > days.loc["Days", "lower"]
    assert narrow.loc["Days", "upper"] < days.loc["Days", "upper"]
    with pytest.raises(ValueError, match="Unknown parameter"):
        ours.conf_int(method="profile", parm="Nights")
    with pytest.raises(ValueError, match="level"):
        ours.conf_int(level=1.5)
    with pytest.raises(ValueError, match="method"):
        ours.conf_int(method="exact")


# -- bootstrap ------------------------------------------------------------------
def _rank_band(n, p, width=4.0):
    """Ranks (1-based) within ``width`` binomial SDs of the p-quantile's rank."""
    centre = n * p
    spread = width * np.sqrt(n * p * (1 - p))
    return max(1, int(np.floor(centre - spread))), min(n, int(np.ceil(centre + spread)))


def _within_mc_error(samples, value, p):
    """Is ``value`` inside the Monte Carlo band of the p-quantile of samples?"""
    t = np.sort(samples[np.isfinite(samples)])
    lo, hi = _rank_band(t.size, p)
    return t[lo - 1] <= value <= t[hi - 1]


def test_bootstrap_against_lme4_and_profile():
    """1000 parametric-bootstrap refits of the sleepstudy slope model.

    Each percentile bound is compared, within Monte Carlo error (4 binomial
    SDs of the order-statistic rank), with lme4's bootstrap bound (4000
    refits) and, for the fixed effects and σ, with the profile bound. The
    standard deviations' and correlation's bootstrap bounds are not the
    profile's (lme4's own bootstrap differs from its profile there too:
    the REML sd estimates are skewed).
    """
    ref, ours, _ = fits("ss_lmer_slope_reml")
    boot_ref = {
        r["parm"]: r for r in reference("ss_lmer_slope_reml_boot")["confint_boot"]
    }
    table = ours.conf_int(
        method="bootstrap", n_boot=1000, random_state=0, progress=False
    )
    replicates = table.attrs["replicates"]
    assert replicates.shape == (1000, 6)
    assert replicates.notna().all().all()
    profile = {r["parm"]: r for r in ref["confint_profile"]}
    for parm in table.index:
        samples = replicates[parm].to_numpy()
        assert _within_mc_error(samples, boot_ref[parm]["lower"], 0.025), parm
        assert _within_mc_error(samples, boot_ref[parm]["upper"], 0.975), parm
        if parm == "sigma" or not parm.startswith(("sd_", "cor_")):
            assert _within_mc_error(samples, profile[parm]["lower"], 0.025), parm
            assert _within_mc_error(samples, profile[parm]["upper"], 0.975), parm


def test_bootstrap_is_reproducible_and_checks_arguments():
    _, ours, _ = fits("dyestuff_lmer")
    a = ours.conf_int(method="bootstrap", n_boot=20, random_state=3, progress=False)
    b = ours.conf_int(method="bootstrap", n_boot=20, random_state=3, progress=False)
    assert a.equals(b)
    assert list(a.index) == ["sd_(Intercept)|Batch", "sigma", "(Intercept)"]
    with pytest.raises(ValueError, match="n_boot"):
        ours.conf_int(method="bootstrap", n_boot=1)


def test_bootstrap_progress_line(capsys):
    _, ours, _ = fits("dyestuff_lmer")
    ours.conf_int(method="bootstrap", n_boot=5, random_state=0, progress=True)
    err = capsys.readouterr().err
    assert "bootstrap: 5/5 refits" in err


def test_percentile_interval_is_boot_ci_perc():
    """boot's rule: rank (R + 1)α, normal-scale interpolation in between."""
    t = np.arange(1.0, 100.0)  # R = 99: (R + 1) * 0.025 = 2.5
    lower, upper = percentile_interval(t, 0.95)
    assert 2.0 < lower < 3.0 and 97.0 < upper < 98.0
    lower, upper = percentile_interval(np.arange(1.0, 1000.0), 0.95)
    assert (lower, upper) == (25.0, 975.0)


# -- pieces ---------------------------------------------------------------------
def test_richardson_derivatives_are_accurate():
    def f(v):
        return np.exp(v[0]) * np.sin(v[1]) + v[0] ** 3 * v[1]

    x = np.array([0.7, 1.3])
    exact = np.array(
        [
            [
                np.exp(0.7) * np.sin(1.3) + 6 * 0.7 * 1.3,
                np.exp(0.7) * np.cos(1.3) + 3 * 0.49,
            ],
            [np.exp(0.7) * np.cos(1.3) + 3 * 0.49, -np.exp(0.7) * np.sin(1.3)],
        ]
    )
    assert np.allclose(_numderiv.hessian(f, x), exact, rtol=1e-8, atol=1e-8)
    grad = _numderiv.jacobian(lambda v: np.array([f(v)]), x)[:, 0]
    exact_grad = [
        np.exp(0.7) * np.sin(1.3) + 3 * 0.49 * 1.3,
        np.exp(0.7) * np.cos(1.3) + 0.343,
    ]
    assert np.allclose(grad, exact_grad, rtol=1e-10)


@pytest.mark.parametrize("spec", ["(x1 | g)", "(x1 | g) + (1 | h)"])
@pytest.mark.parametrize("reml", [True, False])
def test_deviance_hessian_is_numderivs_second_differences(spec, reml, monkeypatch):
    # the analytic σ rows and the differenced gradient against lmerTest's
    # way, second differences of the deviance. These lose digits where a θ is
    # near 0 (θ₂₁ = -0.001 here): at numDeriv's steps (10% of θ, so 1e-4)
    # they are off by 2e-4 relative and move by as much with the step; at
    # 20% they agree with ours to 2e-5 there (ML) and 1e-7 elsewhere. Ours
    # moves by < 1e-6 when the steps are halved or doubled.
    df = _rows_for_order_test()
    model = MixedLMRegressor(spec, reml=reml).fit(df[["x1", "x2", "g", "h"]], df["y"])
    criterion, design = model._criterion, model._criterion.design
    varpar = np.append(model.theta_, model.sigma_)

    def ours():
        return _deviance_hessian(criterion, varpar, reml, design.n, design.p)

    numderiv = _numderiv.hessian(
        lambda v: _deviance_varpar(criterion, v, reml, design.n, design.p),
        varpar,
        rel_step=0.2,
    )
    hessian = ours()
    scale = np.abs(hessian).max()
    np.testing.assert_allclose(hessian, numderiv, rtol=5e-5, atol=1e-8 * scale)
    away_from_0 = np.abs(varpar) > 0.01
    np.testing.assert_allclose(
        hessian[np.ix_(away_from_0, away_from_0)],
        numderiv[np.ix_(away_from_0, away_from_0)],
        rtol=1e-6,
        atol=1e-8 * scale,
    )
    for step in (0.05, 0.2):
        monkeypatch.setattr(inference, "_REL_STEP", step)
        np.testing.assert_allclose(ours(), hessian, rtol=1e-6, atol=1e-10 * scale)


def test_f_denominator_df_rules():
    assert _f_denominator_df([7.5]) == 7.5
    assert _f_denominator_df([10.0, 10.0]) == 10.0
    assert _f_denominator_df([10.0, 1.5]) == 2.0
    e = 10 / 8 + 20 / 18
    assert np.isclose(_f_denominator_df([10.0, 20.0]), 2 * e / (e - 2))


def test_ddf_argument():
    assert check_ddf("Kenward-Roger") == "kenward-roger"
    assert check_ddf("KR") == "kenward-roger"
    with pytest.raises(ValueError, match="ddf"):
        check_ddf("containment")


def test_kenward_roger_refuses_large_n(monkeypatch):
    _, ours, _ = fits("ss_lmer_int_reml")
    monkeypatch.setattr(kenward_roger, "MAX_OBSERVATIONS", 100)
    with pytest.raises(ValueError, match="Kenward-Roger needs dense 180 x 180"):
        ours.summary(ddf="kenward-roger")
    # Satterthwaite works from the cross-products at any size.
    assert ours.summary().coefficients["df"].notna().all()


def test_inference_is_recomputed_after_refit():
    ref, ours, _ = fits("ss_lmer_int_reml")
    first = ours.summary().coefficients["df"].to_numpy()
    df = ref["dataset"]
    from _lmer_fits import LOADERS

    data = LOADERS[df]()
    data = data[data["Days"] < 8]
    ours.fit(data[["Days", "Subject"]], data["Reaction"])
    second = ours.summary().coefficients["df"].to_numpy()
    assert not np.allclose(first, second)
    assert np.isclose(second[1], 18 * 8 - 2 - 17, rtol=1e-3)  # within-subject df


def test_models_without_random_effects_say_so():
    from skmixed import MixedLMRegressor
    from skmixed.datasets import load_sleepstudy

    df = load_sleepstudy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MixedLMRegressor("(1 | Subject)").fit(
            df[["Days"]].to_numpy(), df["Reaction"]
        )
    with pytest.raises(ValueError, match="without grouping factors"):
        m.summary()
    with pytest.raises(ValueError, match="no random effects"):
        m.r2_nakagawa()
