"""PooledRegressor against R's lm (tests/data/ss_lm_days.json from the shared
reference set; tests/data/lm_extra.json made by tests/data/make_lm_extra.R)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from _lm_reference import check_case_file, check_extra_case, close, extra, extra_x, load
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmixed import GroupsMissingWarning, IgnoredColumnsWarning, PooledRegressor
from skmixed.datasets import load_sleepstudy


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    df["x"] = extra_x()
    return df


@parametrize_with_checks([PooledRegressor(), PooledRegressor(fit_intercept=False)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_matches_r_lm_days(sleep):
    model = PooledRegressor().fit(sleep[["Days"]], sleep["Reaction"])
    check_case_file(model, load("ss_lm_days"))
    assert model.intercept_ == model.params_["(Intercept)"]
    np.testing.assert_array_equal(model.coef_, model.params_[["Days"]].to_numpy())
    assert model.formula_ == "Reaction ~ Days"


def test_numpy_input_gives_the_same_fit(sleep):
    frame = PooledRegressor().fit(sleep[["Days"]], sleep["Reaction"])
    array = PooledRegressor().fit(
        sleep[["Days"]].to_numpy(), sleep["Reaction"].to_numpy()
    )
    np.testing.assert_allclose(array.params_.to_numpy(), frame.params_.to_numpy())
    assert list(array.params_.index) == ["(Intercept)", "x0"]
    assert array.formula_ == "y ~ x0"


def test_no_intercept_matches_r(sleep):
    model = PooledRegressor(fit_intercept=False).fit(sleep[["Days"]], sleep["Reaction"])
    check_extra_case(model, extra("no_intercept"))
    assert model.intercept_ == 0.0


def test_rank_deficient_column_is_dropped_with_warning_as_r_na(sleep):
    X = sleep[["Days", "x"]].assign(Days2=2 * sleep["Days"])[["Days", "Days2", "x"]]
    with pytest.warns(
        UserWarning, match=r"not defined because of singularities.*Days2"
    ):
        model = PooledRegressor().fit(X, sleep["Reaction"])
    check_extra_case(model, extra("aliased"))
    assert model.aliased_ == ["Days2"]
    assert np.isnan(model.coef_[1])
    # Predictions use the other coefficients, as R's predict.lm does.
    np.testing.assert_allclose(model.predict(X), model.fittedvalues_)


def test_missing_drop_matches_r_na_omit(sleep):
    y = sleep["Reaction"].copy()
    y.iloc[[2, 49, 100]] = np.nan
    with pytest.raises(ValueError, match=r"NaN in 3 row"):
        PooledRegressor().fit(sleep[["Days"]], y)
    with pytest.warns(UserWarning, match="dropped 3 row"):
        model = PooledRegressor(missing="drop").fit(sleep[["Days"]], y)
    check_extra_case(model, extra("missing"))
    assert model.n_dropped_ == 3


def test_cluster_robust_matches_sandwich_vcovcl(sleep):
    ref = extra("cluster")
    model = PooledRegressor(cov_type="cluster", group="Subject")
    model.fit(sleep[["Days", "x", "Subject"]], sleep["Reaction"])
    table = model.summary().coefficients
    for column in ("estimate", "std_error", "t_value", "p_value"):
        close(table[column].to_numpy(), ref[column])
    close(model.vcov_.to_numpy(), ref["vcov"])
    close(model.fvalue_, ref["fvalue"])
    close(model.f_pvalue_, ref["f_pvalue"])
    close(model.conf_int()[["lower", "upper"]].to_numpy(), ref["confint"])
    assert model.n_groups_ == 18
    # The same through groups= (the Subject column of X is then absent).
    other = PooledRegressor(cov_type="cluster").fit(
        sleep[["Days", "x"]], sleep["Reaction"], groups=sleep["Subject"]
    )
    np.testing.assert_allclose(other.vcov_.to_numpy(), model.vcov_.to_numpy())
    assert other.cluster_name_ == "Subject"


def test_cluster_wald_f_is_undefined_with_fewer_clusters_than_slopes(sleep):
    # Three slopes, three clusters: the CR1 covariance has rank <= G - 1 = 2
    # (R: qr(V)$rank == 2), so the robust Wald F is not defined. lmtest's
    # waldtest returned -2.7e9 here (rounding noise); ours was a huge or
    # negative F with p = 0 or 1. The standard errors are sandwich's.
    import json
    from pathlib import Path

    ref = json.loads(
        (Path(__file__).parent / "data/cluster_few/cluster_few.json").read_text()
    )
    d = sleep[sleep["Subject"].isin(["308", "309", "310"])]
    model = PooledRegressor.from_formula(
        "Reaction ~ Days + I(Days^2) + I(Days^3)", cov_type="cluster", group="Subject"
    ).fit(d, d["Reaction"])
    table = model.summary().coefficients
    assert list(table.index) == ref["coef_names"]
    for column in ("estimate", "std_error", "t_value", "p_value"):
        close(table[column].to_numpy(), ref[column])
    assert ref["rank_V"] == 2
    assert np.isnan(model.fvalue_) and np.isnan(model.f_pvalue_)
    text = str(model.summary())
    assert "F-statistic" not in text
    assert "3 slopes" in text and "3 clusters" in text


def test_cluster_needs_groups_and_two_clusters(sleep):
    X, y = sleep[["Days"]], sleep["Reaction"]
    with (
        pytest.warns(GroupsMissingWarning),
        pytest.raises(ValueError, match="needs the clusters"),
    ):
        PooledRegressor(cov_type="cluster").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        PooledRegressor(cov_type="cluster").fit(X, y, groups=np.zeros(len(y)))
    with pytest.raises(ValueError, match="'cov_type' parameter .* must be a str"):
        PooledRegressor(cov_type="HC3").fit(X, y)


def test_groups_accepted_and_ignored_without_clustering(sleep):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = PooledRegressor(group="Subject").fit(X, y)
        plain = PooledRegressor().fit(sleep[["Days"]], y, groups=sleep["Subject"])
        # Predicting without the group column is fine: the model needs none.
        named.predict(sleep[["Days"]].assign(Subject=sleep["Subject"]))
    assert list(named.params_.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(named.params_.to_numpy(), plain.params_.to_numpy())


def test_non_numeric_column_is_ignored_with_its_name(sleep):
    # R ignores the columns a model does not use (issue 10); it used to fail.
    with pytest.warns(IgnoredColumnsWarning, match=r"\['Subject'\].*fixed_effects="):
        model = PooledRegressor().fit(sleep[["Days", "Subject"]], sleep["Reaction"])
    alone = PooledRegressor().fit(sleep[["Days"]], sleep["Reaction"])
    pd.testing.assert_series_equal(model.params_, alone.params_)


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.array([[1.0], [np.inf], [3.0]]), [1.0, 2.0, 3.0], r"inf in 1 row"),
        (np.ones((3, 1)), [1.0, 2.0], r"X has 3 rows but y has 2"),
        (np.ones((3, 0)), [1.0, 2.0, 3.0], r"0 feature\(s\) \(shape=\(3, 0\)\)"),
    ],
)
def test_bad_input_messages(X, y, message):
    with pytest.raises(ValueError, match=message):
        PooledRegressor().fit(X, y)


def test_conf_int_level(sleep):
    model = PooledRegressor().fit(sleep[["Days"]], sleep["Reaction"])
    narrow, wide = model.conf_int(0.5), model.conf_int(0.99)
    assert (wide["upper"] > narrow["upper"]).all()
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        model.conf_int(95)


def test_score_is_r_squared(sleep):
    model = PooledRegressor().fit(sleep[["Days"]], sleep["Reaction"])
    assert model.score(sleep[["Days"]], sleep["Reaction"]) == pytest.approx(
        model.rsquared_
    )
    assert isinstance(model.params_, pd.Series)
