"""skmixed.report (sjPlot tab_model-style table) against the reference numbers."""

import numpy as np
import pytest
from _lmer_fits import fits, reference
from scipy import stats

import skmixed
from skmixed import PooledRegressor
from skmixed.datasets import load_sleepstudy


def test_mixed_model_numbers():
    ref, ours, at = fits("ss_lmer_slope_reml")
    rep = skmixed.report(at)
    coefs = rep.coefficients.set_index("term")
    for row in ref["fixed_effects"]:
        got = coefs.loc[row["term"]]
        half = stats.t.ppf(0.975, row["df"]) * row["std_error"]
        assert abs(got["estimate"] - row["estimate"]) < 1e-6
        assert abs(got["ci_lower"] - (row["estimate"] - half)) < 1e-4
        assert abs(got["ci_upper"] - (row["estimate"] + half)) < 1e-4
        assert abs(got["p_value"] - row["p_value"]) <= 1e-3 * row["p_value"]
    s = rep.statistics["Reaction"]
    vc = {(r["term1"], r["term2"]): r for r in ref["varcorr"]}
    assert np.isclose(s["σ²"], ref["sigma"] ** 2, rtol=1e-6)
    assert np.isclose(s["τ00 Subject"], vc["(Intercept)", None]["vcov"], rtol=1e-6)
    assert np.isclose(s["τ11 Subject.Days"], vc["Days", None]["vcov"], rtol=1e-6)
    assert np.isclose(s["ρ01 Subject"], vc["(Intercept)", "Days"]["sdcor"], rtol=1e-6)
    perf = ref["nakagawa"]["performance"]
    assert abs(s["ICC"] - perf["ICC_adjusted"]) < 1e-5
    assert abs(s["Marginal R²"] - perf["R2_marginal"]) < 1e-5
    assert abs(s["Conditional R²"] - perf["R2_conditional"]) < 1e-5
    assert s["N Subject"] == 18 and s["Observations"] == 180


def test_text_layout():
    _, ours, _ = fits("ss_lmer_slope_reml")
    lines = str(skmixed.report(ours)).split("\n")
    assert lines[0].strip() == "Reaction"
    assert lines[1].split() == ["Predictors", "Estimates", "CI", "p"]
    assert lines[3].split()[:2] == ["(Intercept)", "251.41"]
    assert "<0.001" in lines[3]
    labels = [line.split("  ")[0] for line in lines]
    assert labels.index("Random Effects") < labels.index("σ²")
    assert (
        labels.index("ICC") < labels.index("N Subject") < labels.index("Observations")
    )
    assert lines[-2].startswith("Marginal R² / Conditional R²")
    assert "0.279 / 0.799" in lines[-2]


def test_residual_df_option_is_sjplots_default():
    ref, _, at = fits("ss_lmer_slope_reml")
    rep = skmixed.report(at, ddf="residual")
    df = ref["nobs"] - ref["logLik"]["df"]  # n - number of parameters = 174
    row = ref["fixed_effects"][1]
    got = rep.coefficients.set_index("term").loc["Days"]
    half = stats.t.ppf(0.975, df) * row["std_error"]
    assert abs(got["ci_upper"] - (row["estimate"] + half)) < 1e-4
    p = 2 * stats.t.sf(abs(row["t_value"]), df)
    assert abs(got["p_value"] - p) <= 1e-3 * p


def test_lm_and_several_models_side_by_side():
    lm_ref = reference("ss_lm_days")
    df = load_sleepstudy()
    lm = PooledRegressor().fit(df[["Days"]], df["Reaction"])
    _, small, _ = fits("ss_lmer_int_reml")
    _, big, _ = fits("ss_lmer_slope_reml")
    rep = skmixed.report(lm, small, big, names=["lm", "intercept", "slope"])
    frame = rep.to_frame()
    assert list(frame.columns.get_level_values(0).unique()) == [
        "lm",
        "intercept",
        "slope",
    ]
    assert list(frame.columns.get_level_values(1)[:3]) == ["Estimates", "CI", "p"]
    assert frame.loc["Days", ("lm", "Estimates")] == "10.47"
    ci = lm_ref["confint"][1]
    assert frame.loc["Days", ("lm", "CI")] == f"{ci['lower']:.2f} – {ci['upper']:.2f}"
    assert frame.loc["τ11 Subject.Days", ("intercept", "Estimates")] == ""
    assert rep.statistics.loc["R²", "lm"] == pytest.approx(lm_ref["r_squared"])
    assert rep.statistics.loc["R² adjusted", "lm"] == pytest.approx(
        lm_ref["adj_r_squared"]
    )
    assert np.isnan(rep.statistics.loc["ICC", "lm"])
    assert set(rep.coefficients["model"]) == {"lm", "intercept", "slope"}
    page = rep._repr_html_()
    assert page.count("<th colspan='3'") == 3 and "Random Effects" in page


def test_default_names_number_repeated_responses():
    _, small, _ = fits("ss_lmer_int_reml")
    _, big, _ = fits("ss_lmer_slope_reml")
    assert skmixed.report(small, big).names == ["Reaction (1)", "Reaction (2)"]


def test_singular_fit_reports_na_icc():
    _, ours, _ = fits("dyestuff2_lmer")
    text = str(skmixed.report(ours))
    assert "ICC" in text and "NA" in text


def test_arguments_are_checked():
    _, ours, _ = fits("ss_lmer_int_reml")
    with pytest.raises(ValueError, match="at least one"):
        skmixed.report()
    with pytest.raises(ValueError, match="ddf"):
        skmixed.report(ours, ddf="containment")
    with pytest.raises(ValueError, match="distinct"):
        skmixed.report(ours, ours, names=["a", "a"])
    with pytest.raises(TypeError):
        skmixed.report(object())


def test_model_fitted_without_groups_is_refused_with_the_reason():
    df = load_sleepstudy()
    with pytest.warns(skmixed.GroupsMissingWarning):
        pooled_fit = skmixed.MixedLMRegressor("(1 | Subject)").fit(
            df[["Days"]].to_numpy(), df["Reaction"]
        )
    with pytest.raises(ValueError, match="fitted without grouping factors"):
        skmixed.report(pooled_fit)
