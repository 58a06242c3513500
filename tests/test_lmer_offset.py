"""Linear mixed models with an offset: lme4's ``lmer(y ~ x + (1 | g), offset = o)``.

lme4 fits ``y - offset``; ``fitted()`` and ``predict()`` add the offset
back (``predict(newdata)`` evaluates it on the new rows, ``re.form = NA``
too). ``offset=`` names a column of X (or is an R expression of X's
columns) that is not a feature, as for the GLMMs.

References (tests/data/lmer_offset, made by make_lmer_offset.R): lmer with
lme4's default control on simulated data (150 rows, 15 groups). Measured
differences (lme4 stops a little short of the REML optima): criteria 2e-11
relative, θ 2e-5, β 5e-7, SEs 2e-5 and Satterthwaite df 5e-5 relative,
predictions 6e-6, R² 1e-5 relative, profile limits 2e-6. Asserted:
criteria 1e-6 relative, θ and β 1e-4, the other numbers as stated at each
check.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, cross_val_score

import skmixed
from skmixed import GroupsMissingWarning, MixedLMRegressor
from skmixed.metrics import marginal_log_likelihood

DATA = Path(__file__).parent / "data" / "lmer_offset"
REF = json.loads((DATA / "lmer_offset.json").read_text())
RATES = pd.read_csv(DATA / "rates.csv")
NEW = pd.read_csv(DATA / "newdata.csv")


def _case(name):
    """The user's call for each of the R fits."""
    X, y = RATES[["x", "o", "g"]], RATES["y"]
    if name == "col_reml":
        return MixedLMRegressor("(1 | g)", offset="o").fit(X, y)
    if name == "col_ml":
        return MixedLMRegressor("(1 | g)", offset="o", reml=False).fit(X, y)
    if name == "slope_reml":
        return skmixed.lmer("y ~ x + (1 + x | g) + offset(o)", RATES)
    if name == "expr_reml":
        model = MixedLMRegressor.from_formula("y ~ x + offset(log(e)) + (1 | g)")
        return model.fit(RATES[["x", "e", "g"]], y)
    assert name == "sum_ml"
    formula = "y ~ x + offset(log(e)) + offset(o) + (1 | g)"
    return skmixed.lmer(formula, RATES, REML=False)


_FITS = {}


def _fitted(name):
    if name not in _FITS:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ConvergenceWarning, nor other
            _FITS[name] = _case(name)
    return _FITS[name]


_CASES = ["col_reml", "col_ml", "slope_reml", "expr_reml", "sum_ml"]


@pytest.mark.parametrize("name", _CASES)
def test_offset_fit_matches_lmer(name):
    model, ref = _fitted(name), REF[name]
    criterion = model.reml_criterion_ if model.reml else model.deviance_
    assert criterion == pytest.approx(ref["criterion"], rel=1e-6)
    assert model.aic_ == pytest.approx(ref["aic"], rel=1e-6)
    assert model.bic_ == pytest.approx(ref["bic"], rel=1e-6)
    np.testing.assert_allclose(model.theta_, np.ravel(ref["theta"]), atol=1e-4)
    assert list(model.fixed_effects_.index) == ref["beta_names"]
    np.testing.assert_allclose(model.fixed_effects_, ref["beta"], atol=1e-4)
    np.testing.assert_allclose(model.vcov_, ref["vcov"], rtol=1e-4, atol=1e-6)
    assert model.sigma_ == pytest.approx(ref["sigma"], rel=1e-5)
    table = model.summary().coefficients
    np.testing.assert_allclose(table["df"], ref["df"], rtol=1e-4)
    np.testing.assert_allclose(table["t_value"], ref["t"], rtol=1e-4)
    np.testing.assert_allclose(table["p_value"], ref["p"], rtol=1e-3)
    modes = model.random_effects_["g"]
    assert list(modes.index[:3]) == ref["ranef_levels"]
    np.testing.assert_allclose(
        modes.to_numpy()[:3].ravel(), np.ravel(ref["ranef"]), atol=1e-4
    )
    # fitted() and residuals(): the offset is in the fitted values
    np.testing.assert_allclose(model.fittedvalues_[:5], ref["fitted_head"], atol=1e-4)
    np.testing.assert_allclose(model.residuals_[:5], ref["resid_head"], atol=1e-4)
    scaled = np.quantile(model.summary().scaled_residuals, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(scaled, ref["scaled_resid"], atol=1e-4)
    # predict(m, newdata): the new rows' own offsets, seen levels and a new
    # one (for col_*: R's predictions of the offset(o) term, see the R script)
    X_new = NEW[["x", "o", "g"]] if name.startswith("col") else NEW
    np.testing.assert_allclose(
        model.predict(X_new), ref["predict"]["conditional"], atol=1e-4
    )
    np.testing.assert_allclose(
        model.predict(X_new, include_random=False),
        ref["predict"]["population"],
        atol=1e-4,
    )
    # performance::r2_nakagawa: the variance of Xβ, without the offset
    r2 = model.r2_nakagawa()
    assert r2["marginal"] == pytest.approx(ref["r2"]["R2_marginal"], rel=1e-4)
    assert r2["conditional"] == pytest.approx(ref["r2"]["R2_conditional"], rel=1e-4)
    # lme4's formula line, the offset last for a column named by offset=
    text = str(model.summary()).splitlines()[1]
    assert text == "Formula: " + REF["formulas"][name] + (
        " + offset(o)" if name.startswith("col") else ""
    )


def test_offset_intervals_and_tests_match_lmer():
    model, ref = _fitted("col_reml"), REF["col_reml"]
    wald = model.conf_int()
    np.testing.assert_allclose(wald["lower"], ref["confint_wald"]["lower"], atol=1e-4)
    np.testing.assert_allclose(wald["upper"], ref["confint_wald"]["upper"], atol=1e-4)
    # lmerTest's type III anova
    table = model.anova()
    assert table["sum_sq"].iloc[0] == pytest.approx(ref["anova3"]["sum_sq"], rel=1e-4)
    assert table["den_df"].iloc[0] == pytest.approx(ref["anova3"]["den_df"], rel=1e-4)
    assert table["F_value"].iloc[0] == pytest.approx(ref["anova3"]["F"], rel=1e-4)
    # anova(m0, m): both refitted with ML, the same offset in both
    null = MixedLMRegressor("(1 | g)", offset="o", fixed_effects=[])
    null.fit(RATES[["x", "o", "g"]], RATES["y"])
    lrt = skmixed.anova(null, model)
    np.testing.assert_allclose(lrt["logLik"], ref["lrt"]["loglik"], rtol=1e-6)
    assert lrt["Chisq"].iloc[1] == pytest.approx(ref["lrt"]["chisq"], rel=1e-5)
    # profile intervals on the ML fit (lme4 interpolates a spline; ours are roots)
    profile = _fitted("col_ml").conf_int(method="profile")
    prof = REF["col_ml"]["confint_profile"]
    assert list(profile.index) == prof["names"]
    np.testing.assert_allclose(profile["lower"], prof["lower"], atol=1e-4)
    np.testing.assert_allclose(profile["upper"], prof["upper"], atol=1e-4)


def test_offset_travels_with_x_and_is_not_a_feature():
    model = _fitted("expr_reml")
    X, y = RATES[["x", "e", "g"]], RATES["y"]
    # e is read by the offset only: neither a feature nor said to be ignored;
    # scikit-learn's metadata is the caller's X
    assert list(model.fixed_effects_.index) == ["(Intercept)", "x"]
    assert model.n_features_in_ == 3
    assert list(model.feature_names_in_) == ["x", "e", "g"]
    np.testing.assert_allclose(model.predict(X), model.fittedvalues_, rtol=1e-12)
    np.testing.assert_allclose(model.fittedvalues_ + model.residuals_, y, rtol=1e-12)
    # doubling every e adds log(2) to every prediction
    doubled = X.assign(e=2 * X["e"])
    np.testing.assert_allclose(model.predict(doubled), model.predict(X) + np.log(2))
    assert model.score(X, y) == pytest.approx(
        1 - np.sum(model.residuals_**2) / np.sum((y - y.mean()) ** 2), rel=1e-12
    )
    # the held-out likelihood scores the rows with their offsets too
    ml = _fitted("sum_ml")
    assert marginal_log_likelihood(ml, RATES, y) == pytest.approx(ml.loglik_, abs=1e-8)
    # a numpy X: the offset by position (an expression needs column names)
    col = _fitted("col_reml")
    by_position = MixedLMRegressor("(1 | g)", offset=1)
    by_position.fit(RATES[["x", "o"]].to_numpy(), y, groups=RATES["g"].to_numpy())
    np.testing.assert_allclose(by_position.fixed_effects_, col.fixed_effects_)
    assert by_position.n_features_in_ == 2
    with pytest.raises(ValueError, match="'log\\(e\\)' is an R expression .* pandas"):
        MixedLMRegressor("(1 | g)", offset="log(e)").fit(
            X.to_numpy()[:, :2], y, groups=RATES["g"]
        )


def test_offset_in_cross_validation():
    X, y, g = RATES[["x", "o", "g"]], RATES["y"], RATES["g"]
    cv = GroupKFold(n_splits=3)
    model = MixedLMRegressor("(1 | g)", offset="o")
    scores = cross_val_score(model, X, y, groups=g, cv=cv)
    for (train, test), score in zip(cv.split(X, y, g), scores, strict=True):
        fold = clone(model).fit(X.iloc[train], y.iloc[train])
        # new groups: Xβ + o
        expected = (
            fold.intercept_ + fold.coef_[0] * X["x"].iloc[test] + X["o"].iloc[test]
        )
        np.testing.assert_allclose(fold.predict(X.iloc[test]), expected, rtol=1e-12)
        assert fold.score(X.iloc[test], y.iloc[test]) == pytest.approx(score)


def test_offset_without_groups_is_lm_of_y_minus_offset():
    X, y = RATES[["x", "o"]], RATES["y"]
    with pytest.warns(GroupsMissingWarning):
        model = MixedLMRegressor(offset="o").fit(X, y)
    ols = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X["x"]]), y - X["o"])[0]
    np.testing.assert_allclose(model.fixed_effects_, ols, rtol=1e-10)
    np.testing.assert_allclose(
        model.fittedvalues_, ols[0] + ols[1] * X["x"] + X["o"], rtol=1e-10
    )


def test_offset_errors_name_the_column():
    X, y = RATES[["x", "o", "g"]], RATES["y"]

    def model(**kw):
        return MixedLMRegressor("(1 | g)", **kw)

    with pytest.raises(ValueError, match="offset column 'oo' .*Did you mean 'o'"):
        model(offset="oo").fit(X, y)
    with pytest.raises(ValueError, match="offset column 'o' of X is not numeric"):
        model(offset="o").fit(X.astype({"o": str}), y)
    bad = X.copy()
    bad.loc[[3, 7], "o"] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"offset column\) .*'o': NaN in 1 row"):
        model(offset="o").fit(bad, y)
    with pytest.raises(ValueError, match=r"uses column\(s\) not in data: \['e'\]"):
        skmixed.lmer("y ~ x + offset(log(e)) + (1 | g)", RATES.drop(columns="e"))
    fitted = _fitted("col_reml")
    with pytest.raises(ValueError, match="X has no column 'o', the offset"):
        fitted.predict(NEW[["x", "g"]])
    with pytest.warns(UserWarning, match="dropped 2 row"):
        dropped = model(offset="o", missing="drop").fit(bad, y)
    keep = ~X.index.isin([3, 7])
    direct = model(offset="o").fit(X[keep], y[keep])
    assert dropped.reml_criterion_ == direct.reml_criterion_


def test_lmer_offset_argument_and_formula_agree():
    formula = skmixed.lmer("y ~ x + offset(o) + (1 | g)", RATES)
    argument = skmixed.lmer("y ~ x + (1 | g)", RATES, offset="o")
    assert argument.offset == "o"
    assert formula.reml_criterion_ == pytest.approx(REF["col_reml"]["criterion"])
    assert argument.reml_criterion_ == formula.reml_criterion_
    np.testing.assert_allclose(argument.predict(NEW), formula.predict(NEW))
