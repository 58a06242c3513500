"""GLMMs with an offset: lme4's ``glmer(y ~ x + (1 | g) + offset(log(e)))``.

``offset="log_exposure"`` names a column of X added to the linear predictor
with coefficient 1; it is not a feature and travels with X through
predict, score and cross-validation.

References (tests/data/glmer_offset, made by make_glmer_offset.R): glmer
run to convergence ("tight": tolPwrss = 1e-14, nloptwrap xtol_abs = 1e-12)
on simulated Poisson counts with exposures (600 rows, 30 groups) and
binary events in a time at risk (500 rows, 25 groups; the cloglog, logit
and probit links). At the same (θ, β) glmer's deviance function and ours
agree to 5e-10. Measured differences: (1 | g) Poisson logLik 8e-11,
θ 1.3e-7, β 1.2e-6, Hessian SEs 4e-7 relative; nAGQ = 10 logLik 5e-10,
θ 1.7e-6; cloglog / logit / probit logLik 5e-9 / 4e-9 / 2.5e-8 above
glmer's, θ 2e-6, SEs 2e-5; (1 + x | g): glmer's optimiser stops 9.5e-7
below our maximum (θ 9e-5 apart, SEs 6e-5 relative). Asserted: our logLik
at most 1e-8 below glmer's and at most 2e-6 above, and the tolerances of
_TOL.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score

from skmixed import GroupsMissingWarning, MixedGLMRegressor, MixedLogisticRegression
from skmixed.metrics import marginal_log_likelihood

DATA = Path(__file__).parent / "data" / "glmer_offset"
REF = json.loads((DATA / "glmer_offset.json").read_text())
COUNTS = pd.read_csv(DATA / "counts.csv")
EVENTS = pd.read_csv(DATA / "events.csv")
NEW = pd.read_csv(DATA / "newdata.csv")

# case -> (estimator, X columns, y, new-data columns)
_POISSON = ["x", "log_exposure", "g"]
_EVENTS = ["x", "log_time", "h"]
_TOL = {  # θ (abs), β (in SEs), SEs (rel), link predictions and modes (abs)
    "pois_int": dict(theta=1e-6, beta=1e-4, se=1e-5, pred=1e-5),
    "pois_agq": dict(theta=1e-5, beta=1e-4, se=1e-5, pred=1e-5),
    "pois_slope": dict(theta=3e-4, beta=1e-3, se=2e-4, pred=2e-4),
    "cloglog": dict(theta=1e-5, beta=1e-4, se=1e-4, pred=1e-5),
    "logit": dict(theta=1e-5, beta=1e-4, se=1e-4, pred=1e-5),
    "probit": dict(theta=1e-5, beta=1e-4, se=1e-4, pred=1e-5),
}


def _case(name):
    if name == "pois_int":
        model = MixedGLMRegressor("(1 | g)", family="poisson", offset="log_exposure")
    elif name == "pois_agq":
        model = MixedGLMRegressor(
            "(1 | g)", family="poisson", offset="log_exposure", nAGQ=10
        )
    elif name == "pois_slope":
        model = MixedGLMRegressor(
            "(1 + x | g)", family="poisson", offset="log_exposure"
        )
    else:
        link = name
        model = MixedLogisticRegression("(1 | h)", link=link, offset="log_time")
        return model, EVENTS[_EVENTS], EVENTS["y"], NEW[_EVENTS]
    return model, COUNTS[_POISSON], COUNTS["y"], NEW[_POISSON]


_FITS = {}


def _fitted(name):
    if name not in _FITS:
        model, X, y, X_new = _case(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ConvergenceWarning, nor other
            model.fit(X, y)
        _FITS[name] = (model, X, y, X_new)
    return _FITS[name]


def _predictions(model, X_new, include_random):
    if isinstance(model, MixedLogisticRegression):
        link = model.decision_function(X_new, include_random=include_random)
        response = model.predict_proba(X_new, include_random=include_random)[:, 1]
        return link, response
    return (
        model.predict(X_new, type="link", include_random=include_random),
        model.predict(X_new, include_random=include_random),
    )


@pytest.mark.parametrize("name", list(_TOL))
def test_offset_fit_matches_glmer(name):
    model, _, _, X_new = _fitted(name)
    ref, tol = REF[name]["tight"], _TOL[name]
    assert -1e-8 < model.loglik_ - ref["loglik"] < 2e-6
    assert model.aic_ == pytest.approx(ref["aic"], abs=5e-6)
    assert model.bic_ == pytest.approx(ref["bic"], abs=5e-6)
    assert model.deviance_ == pytest.approx(ref["deviance"], rel=2e-6)
    np.testing.assert_allclose(model.theta_, np.ravel(ref["theta"]), atol=tol["theta"])
    assert list(model.fixed_effects_.index) == ref["beta_names"]
    se_ref = np.sqrt(np.diagonal(np.array(ref["vcov"])))
    beta = model.fixed_effects_.to_numpy()
    np.testing.assert_array_less(np.abs(beta - ref["beta"]) / se_ref, tol["beta"])
    se = np.sqrt(np.diagonal(model.vcov_.to_numpy()))
    np.testing.assert_allclose(se, se_ref, rtol=tol["se"])
    se_rx = np.sqrt(np.diagonal(model.vcov("rx").to_numpy()))
    se_rx_ref = np.sqrt(np.diagonal(np.array(ref["vcov_rx"])))
    np.testing.assert_allclose(se_rx, se_rx_ref, rtol=tol["se"])
    # conditional modes and SDs of the first three levels, fitted values
    factor = list(model.random_effects_)[0]
    modes = model.random_effects_[factor]
    assert list(modes.index[:3]) == ref["ranef_levels"]
    k = modes.shape[1]
    np.testing.assert_allclose(
        modes.to_numpy()[:3],
        np.reshape(ref["ranef"], (3, k)),
        atol=tol["pred"],
    )
    np.testing.assert_allclose(
        model.random_effects_sd_[factor].to_numpy()[:3],
        np.reshape(ref["ranef_sd"], (k, 3)).T if k == 1 else ref["ranef_sd"],
        atol=tol["pred"],
    )
    np.testing.assert_allclose(
        model.fittedvalues_[:5], ref["fitted_head"], rtol=10 * tol["pred"]
    )
    # predict(m, newdata): the new rows' offsets, seen levels and a new one
    for include_random, suffix in ((True, ""), (False, "_population")):
        link, response = _predictions(model, X_new, include_random)
        np.testing.assert_allclose(
            link, ref["predict"][f"link{suffix}"], atol=tol["pred"]
        )
        np.testing.assert_allclose(
            response, ref["predict"][f"response{suffix}"], rtol=10 * tol["pred"]
        )


def test_offset_profile_intervals_r2_and_summary():
    model = _fitted("pois_int")[0]
    ref = REF["pois_int"]
    # glmer interpolates a spline through its profile; ours are the roots
    ci = model.conf_int(method="profile")
    assert list(ci.index) == ref["profile"]["term"]
    np.testing.assert_allclose(ci["lower"], ref["profile"]["lower"], atol=2e-3)
    np.testing.assert_allclose(ci["upper"], ref["profile"]["upper"], atol=2e-3)
    # performance::r2_nakagawa: the null model keeps the offset (insight's)
    with pytest.warns(UserWarning, match="too close to zero"):
        r2 = model.r2_nakagawa()
    assert r2["marginal"] == pytest.approx(ref["r2"]["marginal"], rel=1e-6)
    assert r2["conditional"] == pytest.approx(ref["r2"]["conditional"], rel=1e-6)
    text = str(model.summary())
    assert "Formula: y ~ x + (1 | g) + offset(log_exposure)" in text


def test_offset_glm_without_groups_matches_glm():
    """No grouping column reached fit: R's glm(y ~ x + offset(log_exposure))."""
    ref = REF["glm"]
    with pytest.warns(GroupsMissingWarning):
        model = MixedGLMRegressor(family="poisson", offset="log_exposure")
        model.fit(COUNTS[["x", "log_exposure"]], COUNTS["y"])
    np.testing.assert_allclose(model.fixed_effects_, ref["beta"], rtol=1e-8)
    assert model.loglik_ == pytest.approx(ref["loglik"], abs=1e-8)
    assert model.deviance_ == pytest.approx(ref["deviance"], rel=1e-10)
    np.testing.assert_allclose(model.vcov_, ref["vcov"], rtol=1e-6)
    assert model.objective() == pytest.approx(-2 * ref["loglik"], abs=1e-8)
    with pytest.warns(GroupsMissingWarning):
        link = model.predict(NEW[["x", "log_exposure"]], type="link")
    np.testing.assert_allclose(link, ref["predict"]["link"], atol=1e-8)


def test_offset_travels_with_x_and_is_not_a_feature():
    model, X, y, _ = _fitted("pois_int")
    assert list(model.fixed_effects_.index) == ["(Intercept)", "x"]
    assert list(model.feature_names_in_) == _POISSON
    # a Poisson rate: doubling every exposure doubles every prediction
    doubled = X.assign(log_exposure=X["log_exposure"] + np.log(2.0))
    np.testing.assert_allclose(model.predict(doubled), 2 * model.predict(X))
    np.testing.assert_allclose(model.predict(X), model.fittedvalues_, rtol=1e-12)
    # the held-out likelihood scores the rows with their offsets too
    assert marginal_log_likelihood(model, X, y) == pytest.approx(
        model.loglik_, abs=1e-8
    )


def test_offset_in_cross_validation_and_grid_search():
    X, y, g = COUNTS[_POISSON], COUNTS["y"], COUNTS["g"]
    cv = GroupKFold(n_splits=3)
    model = MixedGLMRegressor("(1 | g)", family="poisson", offset="log_exposure")
    scores = cross_val_score(model, X, y, groups=g, cv=cv)
    # each fold: the offset of the test rows enters their predictions
    for (train, test), score in zip(cv.split(X, y, g), scores, strict=True):
        fold = MixedGLMRegressor("(1 | g)", family="poisson").fit(
            X.iloc[train][["x", "g"]].assign(e=X["log_exposure"].iloc[train]),
            y.iloc[train],
        )
        assert "e" in fold.fixed_effects_.index  # without offset=: a feature
        fitted = MixedGLMRegressor(
            "(1 | g)", family="poisson", offset="log_exposure"
        ).fit(X.iloc[train], y.iloc[train])
        assert fitted.score(X.iloc[test], y.iloc[test]) == pytest.approx(score)
        mu = np.exp(X["log_exposure"].iloc[test] + fitted.intercept_)
        mu *= np.exp(fitted.coef_[0] * X["x"].iloc[test])  # new groups: no b
        np.testing.assert_allclose(fitted.predict(X.iloc[test]), mu, rtol=1e-12)
    search = GridSearchCV(
        model, {"random_effects": ["(1 | g)", "(1 + x | g)"]}, cv=cv
    ).fit(X, y, groups=g)
    best = search.best_estimator_
    assert best.offset == "log_exposure"
    assert list(best.fixed_effects_.index) == ["(Intercept)", "x"]


def test_offset_by_position_in_a_numpy_x():
    model = _fitted("pois_int")[0]
    X = COUNTS[["x", "log_exposure"]].to_numpy()
    by_position = MixedGLMRegressor("(1 | g)", family="poisson", offset=1)
    by_position.fit(X, COUNTS["y"], groups=COUNTS["g"].to_numpy())
    assert list(by_position.fixed_effects_.index) == ["(Intercept)", "x0"]
    np.testing.assert_allclose(
        by_position.fixed_effects_, model.fixed_effects_, rtol=1e-9
    )
    X_new = NEW[["x", "log_exposure"]].to_numpy()
    np.testing.assert_allclose(
        by_position.predict(X_new, groups=NEW["g"].to_numpy()),
        model.predict(NEW[_POISSON]),
        rtol=1e-8,
    )


def test_offset_with_columns_far_from_zero():
    """Centring of a far column (and a standardised slope) keeps the offset."""
    model = _fitted("pois_int")[0]
    X = COUNTS[_POISSON].assign(x=COUNTS["x"] + 1e4)
    far = MixedGLMRegressor("(1 | g)", family="poisson", offset="log_exposure")
    far.fit(X, COUNTS["y"])
    assert far.loglik_ == pytest.approx(model.loglik_, abs=1e-7)
    assert far.coef_[0] == pytest.approx(model.coef_[0], rel=1e-6)
    assert far.intercept_ == pytest.approx(
        model.intercept_ - 1e4 * model.coef_[0], rel=1e-6
    )
    slope = _fitted("pois_slope")[0]
    far_slope = MixedGLMRegressor(
        "(1 + x | g)", family="poisson", offset="log_exposure"
    ).fit(X, COUNTS["y"])
    assert far_slope.loglik_ == pytest.approx(slope.loglik_, abs=1e-6)
    np.testing.assert_allclose(far_slope.fittedvalues_, slope.fittedvalues_, rtol=1e-4)


def test_offset_errors_name_the_column():
    X, y = COUNTS[_POISSON], COUNTS["y"]

    def model(**kw):
        return MixedGLMRegressor("(1 | g)", family="poisson", **kw)

    with pytest.raises(
        ValueError, match="offset column 'log_exposur' .*'log_exposure'"
    ):
        model(offset="log_exposur").fit(X, y)
    with pytest.raises(ValueError, match="offset=5 is not a column position"):
        model(offset=5).fit(X.to_numpy()[:, :2], y, groups=COUNTS["g"])
    with pytest.raises(ValueError, match="'g' is a grouping factor"):
        model(offset="g").fit(X, y)
    with pytest.raises(ValueError, match="offset column 'log_exposure' of X is not"):
        model(offset="log_exposure").fit(X.astype({"log_exposure": str}), y)
    with pytest.raises(ValueError, match="offset must be the name"):
        model(offset=True).fit(X, y)
    bad = X.copy()
    bad.loc[[3, 7], "log_exposure"] = [np.nan, np.inf]
    with pytest.raises(
        ValueError, match=r"offset column\) .*'log_exposure': NaN in 1 row\(s\) and"
    ):
        model(offset="log_exposure").fit(bad, y)
    fitted = _fitted("pois_int")[0]
    with pytest.raises(ValueError, match="X has no column 'log_exposure', the offset"):
        fitted.predict(NEW[["x", "g"]])
    with pytest.raises(ValueError, match="'log_exposure': inf in 1 row"):
        fitted.predict(bad.iloc[5:10])
    # missing='drop' drops those rows, as R's na.omit
    with pytest.warns(UserWarning, match="dropped 2 row"):
        dropped = model(offset="log_exposure", missing="drop").fit(bad, y)
    assert dropped.n_dropped_ == 2
    keep = ~X.index.isin([3, 7])
    direct = model(offset="log_exposure").fit(X[keep], y[keep])
    np.testing.assert_allclose(dropped.fixed_effects_, direct.fixed_effects_)
    assert dropped.loglik_ == direct.loglik_


def test_offset_listed_in_fixed_effects_is_also_a_feature():
    """Listed, the offset column is a feature too: R's
    ``y ~ x + log_e + offset(log_e)``, whose log_e coefficient is that of
    ``y ~ x + log_e`` minus 1 (the same likelihood)."""
    X, y = COUNTS[_POISSON], COUNTS["y"]
    listed = MixedGLMRegressor(
        "(1 | g)",
        family="poisson",
        offset="log_exposure",
        fixed_effects=["x", "log_exposure"],
    ).fit(X, y)
    free = MixedGLMRegressor(
        "(1 | g)", family="poisson", fixed_effects=["x", "log_exposure"]
    ).fit(X, y)
    assert list(listed.fixed_effects_.index) == ["(Intercept)", "x", "log_exposure"]
    assert listed.loglik_ == pytest.approx(free.loglik_, abs=1e-7)
    assert listed.coef_[1] == pytest.approx(free.coef_[1] - 1.0, abs=1e-4)


def test_columns_an_offset_expression_reads_are_no_features():
    # offset="log(exposure)" with the default fixed_effects: exposure is the
    # offset's input, as a column named by offset= is -- not a feature too
    X = COUNTS[["x", "g"]].assign(exposure=np.exp(COUNTS["log_exposure"]))
    y = COUNTS["y"]
    by_name = MixedGLMRegressor("(1 | g)", family="poisson", offset="log_exposure")
    by_name.fit(COUNTS[_POISSON], y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor is it said to be ignored
        for fixed in (None, ["x"]):
            model = MixedGLMRegressor(
                "(1 | g)", family="poisson", offset="log(exposure)", fixed_effects=fixed
            ).fit(X, y)
            assert list(model.fixed_effects_.index) == ["(Intercept)", "x"]
            assert model.loglik_ == pytest.approx(by_name.loglik_, abs=1e-9)
    # listed, it is a feature as well (R's y ~ x + exposure + offset(log(exposure)))
    both = MixedGLMRegressor(
        "(1 | g)",
        family="poisson",
        offset="log(exposure)",
        fixed_effects=["x", "exposure"],
    ).fit(X, y)
    assert list(both.fixed_effects_.index) == ["(Intercept)", "x", "exposure"]


def test_offset_term_in_a_fixed_effects_formula_is_explained():
    # lme4 users write offset(...) in the formula: the estimator's
    # fixed_effects takes none; the error says where it goes instead (not
    # "uses column(s) not in X: 'offset'")
    X, y = COUNTS[_POISSON], COUNTS["y"]
    model = MixedGLMRegressor(
        "(1 | g)", family="poisson", fixed_effects="x + offset(log_exposure)"
    )
    with pytest.raises(ValueError, match=r"offset\(\.\.\.\).*offset="):
        model.fit(X, y)


def test_an_offset_expression_keeps_the_callers_feature_metadata():
    # scikit-learn's n_features_in_ / feature_names_in_ are the caller's X:
    # the column computed for offset="log(exposure)" is not one of them
    X = COUNTS[["x", "g"]].assign(exposure=np.exp(COUNTS["log_exposure"]))
    model = MixedGLMRegressor("(1 | g)", family="poisson", offset="log(exposure)")
    model.fit(X, COUNTS["y"])
    assert model.n_features_in_ == 3
    assert list(model.feature_names_in_) == ["x", "g", "exposure"]
    assert "log(exposure)" not in X.columns  # the caller's X is left as it was
    np.testing.assert_allclose(model.predict(X), model.fittedvalues_, rtol=1e-12)
    # a numpy X has no names to compute the expression from: said plainly
    with pytest.raises(ValueError, match=r"log\(exposure\).*pandas DataFrame"):
        model.predict(X.to_numpy())
