"""skmixed.anova (likelihood-ratio tests, lme4's anova.merMod) and skmixed.hausman.

Every ``lrt`` entry of the lmer references is reproduced: both models
fitted as R fitted them, then ``anova(small, big, refit=...)``. Chisq to
1e-5 absolute (issue 4); npar exactly; AIC, BIC, logLik and deviance to
1e-6 absolute (our optima are equal to lme4's or lower by < 1e-7).
"""

import json
import warnings

import numpy as np
import pytest
from _lmer_fits import DATA, fit_formula, fits, lmer_cases, reference

import skmixed
from skmixed import FixedEffectsRegressor, MixedLMRegressor, PooledRegressor
from skmixed.datasets import load_sleepstudy


def _lrt_items():
    items = []
    for case in lmer_cases():
        ref = reference(case)
        for k, item in enumerate(ref.get("lrt") or []):
            items.append(pytest.param(ref["dataset"], item, id=f"{case}-{k}"))
    return items


@pytest.mark.parametrize(("dataset", "item"), _lrt_items())
def test_likelihood_ratio_tests_match_lme4(dataset, item):
    reml = item["models_fit_with_REML"]
    small = fit_formula(item["small"], dataset, reml)
    big = fit_formula(item["big"], dataset, reml)
    table = skmixed.anova(big, small, refit=item["refit"], names=["big", "small"])
    assert list(table.index) == ["small", "big"]  # ordered by npar, as R
    for row in item["table"]:
        ours = table.loc[row["model"]]
        assert ours["npar"] == row["npar"]
        for column in ("AIC", "BIC", "logLik", "deviance"):
            assert abs(ours[column] - row[column]) < 1e-6, column
        if row["Chisq"] is None:
            assert np.isnan(ours["Chisq"]) and np.isnan(ours["p_value"])
            continue
        assert abs(ours["Chisq"] - row["Chisq"]) < 1e-5
        assert ours["Df"] == row["Df"]
        assert abs(ours["p_value"] - row["p_value"]) <= 1e-4 * row["p_value"]
    assert set(table.attrs["formulas"]) == {"small", "big"}
    refitted = item["refit"] and item["models_fit_with_REML"]
    assert all(v == refitted for v in table.attrs["refitted"].values())


def test_lm_and_mixed_model_together():
    """lm(Reaction ~ Days) vs lmer(Reaction ~ Days + (1 | Subject), REML=FALSE)."""
    lm_ref = reference("ss_lm_days")
    mixed_ref = reference("ss_lmer_int_ml")
    df = load_sleepstudy()
    lm = PooledRegressor().fit(df[["Days"]], df["Reaction"])
    _, mixed, _ = fits("ss_lmer_int_ml")
    table = skmixed.anova(lm, mixed, names=["lm", "lmer"])
    assert list(table["npar"]) == [lm_ref["logLik"]["df"], 4]
    assert abs(table.loc["lm", "logLik"] - lm_ref["logLik"]["value"]) < 1e-8
    expected = 2 * (-0.5 * mixed_ref["deviance"] - lm_ref["logLik"]["value"])
    assert abs(table.loc["lmer", "Chisq"] - expected) < 1e-5


def test_single_model_gives_the_type3_table():
    _, ours, _ = fits("ss_lmer_slope_reml")
    table = skmixed.anova(ours)
    assert list(table.columns) == [
        "sum_sq",
        "mean_sq",
        "num_df",
        "den_df",
        "F_value",
        "p_value",
    ]
    assert table.attrs["heading"].startswith("Type III Analysis of Variance")


def test_models_must_share_the_data():
    df = load_sleepstudy()
    X, y = df[["Days", "Subject"]], df["Reaction"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = MixedLMRegressor("(1 | Subject)").fit(X, y)
        part = MixedLMRegressor("(1 | Subject)").fit(X.iloc[:170], y.iloc[:170])
        other = MixedLMRegressor("(1 | Subject)").fit(X, y + df["Days"])
    with pytest.raises(ValueError, match="same size"):
        skmixed.anova(full, part)
    with pytest.raises(ValueError, match="same response"):
        skmixed.anova(full, other)
    with pytest.raises(ValueError, match="two or more"):
        skmixed.anova()
    with pytest.raises(ValueError, match="distinct label"):
        skmixed.anova(full, full, names=["a", "a"])
    with pytest.raises(TypeError):
        skmixed.anova(full, object())


def test_refit_false_compares_reml_criteria():
    _, small, _ = fits("ss_lmer_int_reml")
    _, big, _ = fits("ss_lmer_slope_reml")
    table = skmixed.anova(small, big, refit=False)
    assert np.allclose(table["deviance"], [small.reml_criterion_, big.reml_criterion_])


# -- Hausman ------------------------------------------------------------------
def _unbalanced():
    """The rows used by tests/data/ss_hausman_unbalanced.json's R script."""
    df = load_sleepstudy()
    return df[df["Days"] <= df["Subject"].cat.codes % 4 + 6]


def test_hausman_matches_r():
    ref = json.loads((DATA / "ss_hausman_unbalanced.json").read_text())
    df = _unbalanced()
    assert len(df) == ref["nobs"]
    X, y = df[["Days", "Subject"]], df["Reaction"]
    fe = FixedEffectsRegressor(group="Subject").fit(X, y)
    re = MixedLMRegressor("(1 | Subject)").fit(X, y)
    result = skmixed.hausman(fe, re)
    assert result.df == 1
    assert abs(result.coefficients.loc["Days", "fixed"] - ref["fixed_days"]) < 1e-8
    assert abs(result.coefficients.loc["Days", "random"] - ref["random_days"]) < 1e-5
    assert abs(result.statistic - ref["statistic"]) <= 1e-3 * ref["statistic"]
    assert abs(result.p_value - ref["p_value"]) <= 1e-3 * ref["p_value"]
    assert not result.notes
    text = str(result)
    assert "Hausman Test" in text and "df = 1" in text


def test_hausman_notes_a_covariance_difference_that_is_not_positive_definite():
    """Balanced sleepstudy: both slopes equal, V_FE - V_RE ~ 0 or negative."""
    df = load_sleepstudy()
    X, y = df[["Days", "Subject"]], df["Reaction"]
    fe = FixedEffectsRegressor(group="Subject").fit(X, y)
    re = MixedLMRegressor("(1 | Subject)").fit(X, y)
    result = skmixed.hausman(fe, re)
    v = fe.vcov_.loc["Days", "Days"] - re.vcov_.loc["Days", "Days"]
    if v <= 0:
        assert result.df == 0 and result.notes
    else:
        assert result.statistic < 1e-6 and result.p_value > 0.99


def test_hausman_notes_random_slopes_and_checks_inputs():
    df = _unbalanced()
    X, y = df[["Days", "Subject"]], df["Reaction"]
    fe = FixedEffectsRegressor(group="Subject").fit(X, y)
    slopes = MixedLMRegressor("(Days | Subject)").fit(X, y)
    assert any("random slopes" in n for n in skmixed.hausman(fe, slopes).notes)
    with pytest.raises(TypeError, match="FixedEffectsRegressor"):
        skmixed.hausman(slopes, fe)
    other = MixedLMRegressor("(1 | Subject)").fit(X.iloc[:100], y.iloc[:100])
    with pytest.raises(ValueError, match="different numbers of rows"):
        skmixed.hausman(fe, other)
