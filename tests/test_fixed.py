"""FixedEffectsRegressor against R's lm(y ~ x + g) and lm(y ~ x * g).

References: tests/data/ss_lm_days_subject.json and ss_lm_days_x_subject.json
(the shared R reference set); tests/data/lm_extra.json (made by
tests/data/make_lm_extra.R) for an extra covariate and another reference level.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from _lm_reference import check_case_file, check_extra_case, close, extra, extra_x, load
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmixed import FixedEffectsRegressor, GroupsMissingWarning, PooledRegressor
from skmixed.datasets import load_sleepstudy


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    df["x"] = extra_x()
    return df


def _fit(df, features, method="dummy", **params):
    model = FixedEffectsRegressor(group="Subject", method=method, **params)
    return model.fit(df[[*features, "Subject"]], df["Reaction"])


@parametrize_with_checks(
    [FixedEffectsRegressor(), FixedEffectsRegressor(method="within")]
)
def test_sklearn_compatible(estimator, check):
    # The checks pass no groups: the pooled model, with a GroupsMissingWarning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GroupsMissingWarning)
        check(estimator)


def test_days_plus_subject_matches_r(sleep):
    model = _fit(sleep, ["Days"])
    check_case_file(model, load("ss_lm_days_subject"))
    assert model.method_ == "dummy"
    assert model.formula_ == "Reaction ~ Days + Subject"
    assert model.intercept_ == model.params_["(Intercept)"]
    close(
        model.group_intercepts_["309"],
        model.params_[["(Intercept)", "Subject309"]].sum(),
    )


def test_days_times_subject_matches_r(sleep):
    model = _fit(sleep, ["Days"], group_slopes=["Days"])
    check_case_file(model, load("ss_lm_days_x_subject"))
    assert model.formula_ == "Reaction ~ Days * Subject"
    slopes = model.group_slopes_["Days"]
    close(slopes["308"], model.params_["Days"])
    close(slopes["372"], model.params_[["Days", "Days:Subject372"]].sum())
    # Separate regressions per subject give the same lines.
    one = sleep[sleep["Subject"] == "335"]
    slope, intercept = np.polyfit(one["Days"], one["Reaction"], 1)
    close([model.group_intercepts_["335"], slopes["335"]], [intercept, slope], 1e-9)


def test_covariate_and_slopes_match_r(sleep):
    check_extra_case(_fit(sleep, ["Days", "x"]), extra("days_x_cov_subject"))
    check_extra_case(
        _fit(sleep, ["Days", "x"], group_slopes="Days"), extra("slopes_cov")
    )


def test_reference_level_matches_r_relevel(sleep):
    model = _fit(sleep, ["Days"], reference="350")
    check_extra_case(model, extra("reference_350"))
    assert model.reference_ == "350"
    with pytest.raises(ValueError, match=r"reference='999' is not a level"):
        _fit(sleep, ["Days"], reference="999")


@pytest.mark.parametrize("slopes", [None, ["Days"]])
def test_within_equals_dummy(sleep, slopes):
    dummy = _fit(sleep, ["Days", "x"], group_slopes=slopes)
    within = _fit(sleep, ["Days", "x"], method="within", group_slopes=slopes)
    assert within.method_ == "within"
    absorbed = list(within.params_.index)
    assert absorbed == (["Days", "x"] if slopes is None else ["x"])
    close(within.params_.to_numpy(), dummy.params_[absorbed].to_numpy(), 1e-8)
    close(within.vcov_.to_numpy(), dummy.vcov_.loc[absorbed, absorbed].to_numpy(), 1e-8)
    for name in (
        "sigma_",
        "rsquared_",
        "rsquared_adj_",
        "fvalue_",
        "f_pvalue_",
        "loglik_",
        "aic_",
        "bic_",
        "intercept_",
    ):
        close(getattr(within, name), getattr(dummy, name), 1e-8)
    assert within.df_resid_ == dummy.df_resid_
    assert within.df_model_ == dummy.df_model_
    close(within.coef_, dummy.coef_, 1e-8)
    close(within.group_intercepts_.to_numpy(), dummy.group_intercepts_.to_numpy(), 1e-8)
    if slopes:
        close(within.group_slopes_.to_numpy(), dummy.group_slopes_.to_numpy(), 1e-8)
    close(within.fittedvalues_, dummy.fittedvalues_, 1e-10)
    X = sleep[["Days", "x", "Subject"]]
    close(within.predict(X), dummy.predict(X), 1e-10)
    close(within.conf_int().to_numpy(), dummy.conf_int().loc[absorbed].to_numpy(), 1e-8)
    assert "Absorbed (within transformation): 18 group" in str(within.summary())


def test_auto_absorbs_many_groups():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 300, 3000)
    X = pd.DataFrame({"x": rng.standard_normal(3000), "g": g.astype(str)})
    y = 2 * X["x"] + g / 100 + rng.standard_normal(3000)
    auto = FixedEffectsRegressor(group="g").fit(X, y)
    dummy = FixedEffectsRegressor(group="g", method="dummy").fit(X, y)
    assert auto.method_ == "within" and auto.n_groups_ == 300
    close(auto.params_["x"], dummy.params_["x"], 1e-8)
    close(auto.vcov_.loc["x", "x"], dummy.vcov_.loc["x", "x"], 1e-8)


@pytest.mark.parametrize("method", ["dummy", "within"])
def test_feature_constant_within_groups_is_absorbed(sleep, method):
    age = sleep["Subject"].cat.codes.astype(float) * 3 + 20  # one value per subject
    X = sleep[["Days", "Subject"]].assign(age=age)
    model = FixedEffectsRegressor(group="Subject", method=method)
    with pytest.warns(UserWarning, match=r"singularities.*: age\."):
        model.fit(X, sleep["Reaction"])
    assert model.aliased_ == ["age"]
    assert np.isnan(model.coef_[list(X.columns.drop("Subject")).index("age")])
    close(model.sigma_, load("ss_lm_days_subject")["sigma"])


@pytest.mark.parametrize("method", ["dummy", "within"])
def test_unidentified_group_slope_takes_the_reference_slope(sleep, method):
    df = sleep.copy()
    df.loc[df["Subject"] == "309", "Days"] = 4.0  # Days constant for subject 309
    model = FixedEffectsRegressor(group="Subject", group_slopes="Days", method=method)
    with pytest.warns(UserWarning, match="Days:Subject309"):
        model.fit(df[["Days", "Subject"]], df["Reaction"])
    close(
        model.group_slopes_.loc["309", "Days"], model.group_slopes_.loc["308", "Days"]
    )
    one = df["Subject"] == "309"
    close(model.fittedvalues_[one], df.loc[one, "Reaction"].mean(), 1e-10)


def test_constant_slope_column_in_reference_level_is_an_error(sleep):
    df = sleep.copy()
    df.loc[df["Subject"] == "308", "Days"] = 0.0
    with pytest.raises(ValueError, match="constant within the reference level '308'"):
        _fit(df, ["Days"], group_slopes=["Days"])


@pytest.mark.parametrize("method", ["dummy", "within"])
def test_unseen_levels_at_predict(sleep, method):
    model = _fit(sleep, ["Days"], method=method, group_slopes=["Days"])
    new = pd.DataFrame({"Days": [1.0, 2.0], "Subject": ["308", "999"]})
    with pytest.raises(
        ValueError, match=r"1 level\(s\) of 'Subject' unseen at fit: \['999'\]"
    ):
        model.predict(new)
    model.set_params(handle_unknown="mean")
    pred = model.predict(new)
    close(
        pred[0], model.group_intercepts_["308"] + model.group_slopes_.loc["308", "Days"]
    )
    mean_line = model.group_intercepts_.mean() + 2 * model.group_slopes_["Days"].mean()
    close(pred[1], mean_line)


def test_predict_without_groups_warns_and_uses_the_mean_effect(sleep):
    model = FixedEffectsRegressor().fit(
        sleep[["Days"]], sleep["Reaction"], groups=sleep["Subject"]
    )
    with pytest.warns(GroupsMissingWarning):
        pred = model.predict(sleep[["Days"]])
    close(pred, model.group_intercepts_.mean() + model.coef_[0] * sleep["Days"])


def test_groups_argument_names_the_dummies(sleep):
    X, y = sleep[["Days"]], sleep["Reaction"]
    named = FixedEffectsRegressor().fit(X, y, groups=sleep["Subject"])
    assert named.params_.index[2] == "Subject309"
    unnamed = FixedEffectsRegressor().fit(X, y, groups=sleep["Subject"].to_numpy())
    assert unnamed.params_.index[2] == "group309"
    close(unnamed.params_.to_numpy(), named.params_.to_numpy())


def test_without_groups_fits_the_pooled_model(sleep):
    X, y = sleep[["Days"]], sleep["Reaction"]
    with pytest.warns(GroupsMissingWarning, match="at fit"):
        model = FixedEffectsRegressor().fit(X, y)
    pooled = PooledRegressor().fit(X, y)
    close(model.params_.to_numpy(), pooled.params_.to_numpy())
    assert model.n_groups_ == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning at predict
        close(model.predict(X), pooled.predict(X))


def test_bad_input_messages(sleep):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    with pytest.raises(ValueError, match="single level"):
        FixedEffectsRegressor().fit(sleep[["Days"]], y, groups=np.ones(len(y)))
    with pytest.raises(ValueError, match="not a numeric feature"):
        FixedEffectsRegressor(group="Subject", group_slopes=["Dayz"]).fit(X, y)
    with pytest.raises(ValueError, match="'method' parameter .* must be a str among"):
        FixedEffectsRegressor(method="lsdv").fit(X, y)
    with pytest.raises(ValueError, match="'handle_unknown' parameter .* among"):
        FixedEffectsRegressor(handle_unknown="ignore").fit(X, y)
    with pytest.raises(ValueError, match=r"Grouping factor 'Subject' contains missing"):
        FixedEffectsRegressor(group="Subject").fit(
            X.assign(Subject=X["Subject"].astype(object).where(X["Days"] > 0)), y
        )
    with pytest.raises(
        ValueError, match=r"Grouping column 'Subject' not found\..*passthrough"
    ):
        FixedEffectsRegressor(group="Subject").fit(
            sleep[["Days"]].assign(remainder__Subject=sleep["Subject"]), y
        )
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        with pytest.warns(GroupsMissingWarning):
            FixedEffectsRegressor().fit(np.ones((5, 0)), np.arange(5.0))


def test_group_only_model_is_one_way_anova(sleep):
    model = FixedEffectsRegressor(group="Subject").fit(
        sleep[["Subject"]], sleep["Reaction"]
    )
    means = sleep.groupby("Subject", observed=True)["Reaction"].mean()
    close(model.group_intercepts_.to_numpy(), means.to_numpy(), 1e-10)
    assert model.coef_.shape == (0,)


def test_cross_validation_with_the_group_column_in_x(sleep):
    from sklearn.model_selection import GroupKFold, cross_val_score

    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    model = FixedEffectsRegressor(group="Subject", handle_unknown="mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupsMissingWarning)
        scores = cross_val_score(model, X, y, cv=GroupKFold(3), groups=sleep["Subject"])
    # Every test subject is new: the mean group effect, the pooled line's R2.
    pooled = cross_val_score(
        PooledRegressor(), sleep[["Days"]], y, cv=GroupKFold(3), groups=sleep["Subject"]
    )
    close(scores, pooled, 1e-10)


def test_pipeline_keeps_the_group_column(sleep):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    scale = ColumnTransformer(
        [("scale", StandardScaler(), ["Days"])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    pipe = make_pipeline(scale, FixedEffectsRegressor(group="Subject"))
    pipe.fit(sleep[["Days", "Subject"]], sleep["Reaction"])
    model = pipe[-1]
    close(model.sigma_, load("ss_lm_days_subject")["sigma"])
    assert pipe.score(sleep[["Days", "Subject"]], sleep["Reaction"]) == pytest.approx(
        model.rsquared_
    )


def test_within_path_matches_r_directly(sleep):
    ref = load("ss_lm_days_subject")
    model = _fit(sleep, ["Days"], method="within")
    days = next(c for c in ref["coefficients"] if c["term"] == "Days")
    row = model.summary().coefficients.loc["Days"]
    for column in ("estimate", "std_error", "t_value", "p_value"):
        close(row[column], days[column])
    close(model.sigma_, ref["sigma"])
    close(model.rsquared_adj_, ref["adj_r_squared"])
    close(model.fvalue_, ref["fstatistic"]["value"])
    close(model.loglik_, ref["logLik"]["value"])
    close(model.fittedvalues_, ref["fitted"])
    ci = model.conf_int().loc["Days"]
    confint = next(c for c in ref["confint"] if c["term"] == "Days")
    close([ci["lower"], ci["upper"]], [confint["lower"], confint["upper"]])


def test_within_group_slopes_of_far_from_zero_y(sleep):
    """Reaction + 1e8 is the same model with group intercepts 1e8 higher:
    its group slopes are those of the same values less 1e8 (exactly). They
    were 2e-10 off (1e9: 2e-9): the group intercepts and slopes were
    recovered from y itself, not from y less intercept_shift."""
    far = sleep.assign(Reaction=sleep["Reaction"] + 1e8)
    near = far.assign(Reaction=far["Reaction"] - 1e8)
    fits = [
        _fit(data, ["Days", "x"], method="within", group_slopes=["Days"])
        for data in (near, far)
    ]
    pd.testing.assert_frame_equal(
        fits[1].group_slopes_, fits[0].group_slopes_, rtol=1e-10, atol=0
    )
    pd.testing.assert_series_equal(
        fits[1].group_intercepts_, fits[0].group_intercepts_ + 1e8, rtol=1e-15, atol=0
    )
