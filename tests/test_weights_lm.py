"""sample_weight for PooledRegressor and FixedEffectsRegressor: R's lm(weights=).

References: tests/data/lm_weights.json, made by tests/data/make_lm_weights.R
(weights w = 1 + Days %% 3; four of them set to 0 in the zero-weight cases).
"""

import numpy as np
import pandas as pd
import pytest
import sklearn
from _lm_reference import close, extra_x, load
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_validate
from sklearn.pipeline import make_pipeline

from skmixed import FixedEffectsRegressor, PooledRegressor
from skmixed.datasets import load_sleepstudy

RTOL = 1e-8


@pytest.fixture(scope="module")
def ref():
    return load("lm_weights")


@pytest.fixture(scope="module")
def sleep(ref):
    df = load_sleepstudy()
    df["x"] = extra_x()
    df["w"] = ref["weights"]
    df["wz"] = ref["zero_weights"]
    return df


def _check(model, case):
    table = model.summary().coefficients
    # jsonlite unboxes a single name or value: np.ravel boxes them again
    names = np.ravel(case["coef_names"]).tolist()
    assert list(model.params_.index) == names
    for column in ("estimate", "std_error", "t_value", "p_value"):
        close(table[column].to_numpy(), np.ravel(case[column]), RTOL)
    close(model.sigma_, case["sigma"], RTOL)
    assert model.df_resid_ == case["df_residual"]
    assert model.rank_ == case["rank"]
    assert model.nobs_ == case["nobs"]
    close(model.rsquared_, case["r_squared"], RTOL)
    close(model.rsquared_adj_, case["adj_r_squared"], RTOL)
    if case.get("fstatistic") is not None:
        close(model.fvalue_, case["fstatistic"][0], RTOL)
        close(model.f_pvalue_, case["f_pvalue"], 1e-6)
    close(model.loglik_, case["logLik"], RTOL)
    close(model.aic_, case["AIC"], RTOL)
    close(model.bic_, case["BIC"], RTOL)
    vcov = np.array(case["vcov"], dtype=float).reshape(len(names), len(names))
    close(model.vcov_.to_numpy(), vcov, RTOL, atol=1e-12 * np.nanmax(np.abs(vcov)))
    ci = model.conf_int()
    close(ci["lower"].to_numpy(), np.ravel(case["confint_lower"]), RTOL)
    close(ci["upper"].to_numpy(), np.ravel(case["confint_upper"]), RTOL)
    scale = np.max(np.abs(case["fitted"]))
    close(model.fittedvalues_, case["fitted"], RTOL, atol=RTOL * scale)
    close(model.residuals_, case["residuals"], 0, atol=RTOL * scale)
    weighted = np.sqrt(model._summary_weights) * model.residuals_
    quantiles = np.quantile(weighted, [0, 0.25, 0.5, 0.75, 1])
    close(quantiles, case["weighted_residual_quantiles"], 0, atol=RTOL * scale)


def _pooled(df, features, weights="w", **params):
    return PooledRegressor(**params).fit(
        df[features], df["Reaction"], sample_weight=df[weights]
    )


def _fe(df, features, method, weights="w", **params):
    model = FixedEffectsRegressor(group="Subject", method=method, **params)
    return model.fit(
        df[[*features, "Subject"]], df["Reaction"], sample_weight=df[weights]
    )


@pytest.mark.parametrize(
    ("case", "features", "params"),
    [
        ("days", ["Days"], {}),
        ("days_x", ["Days", "x"], {}),
        ("no_intercept", ["Days"], {"fit_intercept": False}),
    ],
)
def test_pooled_weighted_matches_r(sleep, ref, case, features, params):
    _check(_pooled(sleep, features, **params), ref["cases"][case])


@pytest.mark.parametrize("method", ["dummy", "within"])
@pytest.mark.parametrize(
    ("case", "features", "params"),
    [
        ("days_subject", ["Days"], {}),
        ("days_x_subject", ["Days"], {"group_slopes": "Days"}),
        ("days_cov_subject", ["Days", "x"], {}),
    ],
)
def test_fixed_effects_weighted_matches_r(sleep, ref, method, case, features, params):
    model = _fe(sleep, features, method, **params)
    expected = ref["cases"][case]
    if method == "dummy":
        _check(model, expected)
        return
    # The within method reports the features only; the fit statistics are
    # those of the full model.
    names = [n for n in expected["coef_names"] if n in model.params_.index]
    position = [expected["coef_names"].index(n) for n in names]
    table = model.summary().coefficients
    for column in ("estimate", "std_error", "t_value", "p_value"):
        close(
            table.loc[names, column].to_numpy(),
            np.array(expected[column])[position],
            1e-7,
        )
    for attr, key in (
        ("sigma_", "sigma"),
        ("rsquared_", "r_squared"),
        ("rsquared_adj_", "adj_r_squared"),
        ("loglik_", "logLik"),
        ("aic_", "AIC"),
        ("bic_", "BIC"),
    ):
        close(getattr(model, attr), expected[key], RTOL)
    assert model.df_resid_ == expected["df_residual"]
    scale = np.max(np.abs(expected["fitted"]))
    close(model.fittedvalues_, expected["fitted"], 0, atol=1e-9 * scale)


def test_zero_weights_are_left_out_of_the_fit_as_in_r(sleep, ref):
    _check(_pooled(sleep, ["Days"], weights="wz"), ref["cases"]["zero_weights"])
    case = ref["cases"]["zero_weights_subject"]
    _check(_fe(sleep, ["Days"], "dummy", weights="wz"), case)
    within = _fe(sleep, ["Days"], "within", weights="wz")
    close(within.params_["Days"], case["estimate"][1], 1e-9)
    close(within.loglik_, case["logLik"], RTOL)
    assert within.nobs_ == case["nobs"] == 176
    scale = np.max(np.abs(case["fitted"]))
    close(within.fittedvalues_, case["fitted"], 0, atol=1e-9 * scale)


def test_weighted_summary_prints_as_r(sleep, ref):
    text = str(_pooled(sleep, ["Days"]).summary()).splitlines()
    expected = ref["cases"]["days"]["summary_text"]
    start = expected.index("Weighted Residuals:")
    ours = text[text.index("Weighted Residuals:") :]
    # R's capture.output ends with an empty line
    assert [line.rstrip() for line in ours] == [
        line.rstrip() for line in expected[start:-1]
    ]


def test_weighted_cluster_covariance_matches_sandwich(sleep, ref):
    case = ref["cases"]["cluster"]
    model = PooledRegressor(cov_type="cluster", group="Subject").fit(
        sleep[["Days", "x", "Subject"]], sleep["Reaction"], sample_weight=sleep["w"]
    )
    table = model.summary().coefficients
    for column in ("estimate", "std_error", "t_value", "p_value"):
        close(table[column].to_numpy(), case[column], RTOL)
    close(model.vcov_.to_numpy(), case["vcov"], RTOL)
    close(model.fvalue_, case["fvalue"], RTOL)
    close(model.f_pvalue_, case["f_pvalue"], 1e-6)
    ci = np.array(case["confint"])
    close(model.conf_int().to_numpy(), ci, RTOL)


def test_cluster_covariance_refuses_zero_weights(sleep):
    model = PooledRegressor(cov_type="cluster", group="Subject")
    with pytest.raises(ValueError, match="zero weights.*Drop the rows"):
        model.fit(
            sleep[["Days", "Subject"]], sleep["Reaction"], sample_weight=sleep["wz"]
        )


def test_within_refuses_a_group_with_only_zero_weights(sleep):
    w = sleep["w"].to_numpy().copy()
    w[sleep["Subject"].astype(str) == "309"] = 0.0
    model = FixedEffectsRegressor(group="Subject", method="within")
    with pytest.raises(ValueError, match=r"'Subject'.*only rows of weight 0.*309"):
        model.fit(sleep[["Days", "Subject"]], sleep["Reaction"], sample_weight=w)
    # the dummy method gives R's aliased (NA) coefficient instead
    with pytest.warns(UserWarning, match="Subject309"):
        dummy = FixedEffectsRegressor(group="Subject", method="dummy").fit(
            sleep[["Days", "Subject"]], sleep["Reaction"], sample_weight=w
        )
    assert np.isnan(dummy.params_["Subject309"])


@pytest.mark.parametrize("method", ["dummy", "within"])
def test_integer_weights_equal_repeated_rows(sleep, method):
    """Frequency and precision weights give the same least-squares estimates."""
    w = sleep["w"].to_numpy().astype(int)
    repeated = sleep.loc[sleep.index.repeat(w)]
    weighted = _fe(sleep, ["Days", "x"], method, group_slopes="Days")
    plain = FixedEffectsRegressor(
        group="Subject", method=method, group_slopes="Days"
    ).fit(repeated[["Days", "x", "Subject"]], repeated["Reaction"])
    np.testing.assert_allclose(weighted.coef_, plain.coef_, rtol=1e-9)
    np.testing.assert_allclose(
        weighted.group_intercepts_, plain.group_intercepts_, rtol=1e-9
    )
    np.testing.assert_allclose(weighted.group_slopes_, plain.group_slopes_, rtol=1e-9)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones(179), "179 weights but X has 180 rows"),
        (np.r_[np.nan, np.ones(179)], "NaN in 1 row"),
        (np.r_[np.inf, np.ones(179)], "inf in 1 row"),
        (np.r_[-1.0, np.ones(179)], "negative weight.*row 0"),
        (np.zeros(180), "zero .* for every row"),
        (np.ones((180, 2)), "1-D"),
        (2.0, "not a scalar"),
        (np.array(["a"] * 180), "numeric"),
    ],
)
@pytest.mark.parametrize("estimator", [PooledRegressor, FixedEffectsRegressor])
def test_bad_weights_get_a_clear_error(sleep, estimator, weights, message):
    X = sleep[["Days", "Subject"]]
    model = estimator(group="Subject")
    with pytest.raises(ValueError, match=message):
        model.fit(X, sleep["Reaction"], sample_weight=weights)


def test_missing_drop_drops_the_weights_of_dropped_rows(sleep):
    y = sleep["Reaction"].copy()
    y.iloc[[2, 49]] = np.nan
    w = sleep["w"].to_numpy(dtype=float)
    w[100] = np.nan  # a missing weight is a missing value, as in na.omit
    with pytest.warns(UserWarning, match="dropped 3 row"):
        dropped = PooledRegressor(missing="drop").fit(
            sleep[["Days"]], y, sample_weight=w
        )
    keep = np.ones(180, dtype=bool)
    keep[[2, 49, 100]] = False
    expected = PooledRegressor().fit(
        sleep[["Days"]][keep], y[keep], sample_weight=w[keep]
    )
    np.testing.assert_allclose(dropped.params_, expected.params_, rtol=1e-12)
    assert dropped.nobs_ == 177


def test_missing_drop_with_a_missing_group_label_drops_its_weight(sleep):
    df = sleep.copy()
    df["Subject"] = df["Subject"].astype(object)
    df.loc[5, "Subject"] = None
    with pytest.warns(UserWarning, match="dropped 1 row"):
        model = FixedEffectsRegressor(group="Subject", missing="drop").fit(
            df[["Days", "Subject"]], df["Reaction"], sample_weight=df["w"]
        )
    keep = df["Subject"].notna()
    expected = FixedEffectsRegressor(group="Subject").fit(
        df.loc[keep, ["Days", "Subject"]],
        df.loc[keep, "Reaction"],
        sample_weight=df.loc[keep, "w"],
    )
    np.testing.assert_allclose(model.params_, expected.params_, rtol=1e-12)


def test_sample_weight_is_routed_through_pipeline_and_search(sleep):
    X, y, w = sleep[["Days", "Subject"]], sleep["Reaction"], sleep["w"]
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            make_pipeline(FixedEffectsRegressor(group="Subject")),
            {"fixedeffectsregressor__method": ["dummy", "within"]},
            cv=KFold(3, shuffle=True, random_state=0),
        )
        search.fit(X, y, sample_weight=w)
        scores = cross_validate(
            PooledRegressor(),
            sleep[["Days"]],
            y,
            cv=GroupKFold(3),
            params={"groups": sleep["Subject"], "sample_weight": w},
        )["test_score"]
    # the weighted fit and weighted R² of each fold, by hand
    folds = list(GroupKFold(3).split(X, y, sleep["Subject"]))
    for score, (train, test) in zip(scores, folds, strict=True):
        model = PooledRegressor().fit(
            sleep[["Days"]].iloc[train], y.iloc[train], sample_weight=w.iloc[train]
        )
        expected = model.score(
            sleep[["Days"]].iloc[test], y.iloc[test], sample_weight=w.iloc[test]
        )
        assert score == pytest.approx(expected, rel=1e-12)
    best = search.best_estimator_[-1]
    full = FixedEffectsRegressor(group="Subject").fit(X, y, sample_weight=w)
    np.testing.assert_allclose(best.coef_, full.coef_, rtol=1e-8)
    unweighted = FixedEffectsRegressor(group="Subject").fit(X, y)
    assert not np.allclose(best.coef_, unweighted.coef_, rtol=1e-6)


def test_weights_default_to_the_unweighted_fit(sleep):
    a = PooledRegressor().fit(sleep[["Days"]], sleep["Reaction"])
    b = PooledRegressor().fit(
        sleep[["Days"]], sleep["Reaction"], sample_weight=np.ones(180)
    )
    np.testing.assert_allclose(a.params_, b.params_, rtol=1e-12)
    assert a.loglik_ == pytest.approx(b.loglik_, rel=1e-12)
    assert "Weighted" not in str(b.summary())
    assert isinstance(a.params_, pd.Series)


def test_r_style_entry_points_take_weights_by_column_name(sleep):
    import skmixed

    model = skmixed.lm("Reaction ~ Days", sleep, weights="w")
    direct = PooledRegressor().fit(
        sleep[["Days"]], sleep["Reaction"], sample_weight=sleep["w"]
    )
    np.testing.assert_allclose(model.params_, direct.params_, rtol=1e-12)
    assert "weights = w)" in str(model.summary())
    same = skmixed.lm("Reaction ~ Days", sleep, weights=sleep["w"].to_numpy())
    np.testing.assert_allclose(same.params_, direct.params_, rtol=1e-12)
    with pytest.raises(ValueError, match="weights='wt' is not a column of data"):
        skmixed.lm("Reaction ~ Days", sleep, weights="wt")
