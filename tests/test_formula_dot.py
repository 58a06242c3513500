"""R's ``.`` in a formula: every column of the data but the response.

References: tests/data/formula_dot (make_formula_dot.R; R 4.2.2, lme4
1.1-31) on sleepstudy with a column z added.
"""

import json
from pathlib import Path

import pandas as pd
import pytest

import skmixed
from skmixed import MixedLMRegressor, PooledRegressor

HERE = Path(__file__).parent / "data" / "formula_dot"
REF = json.loads((HERE / "formula_dot.json").read_text())


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(HERE / "sleepstudy_z.csv", dtype={"Subject": str})


@pytest.mark.parametrize("case", REF["lm"], ids=lambda c: c["formula"])
def test_lm_with_dot_equals_r(case, data):
    m = skmixed.lm(case["formula"], data[case["columns"]])
    assert list(m.params_.index) == list(case["coef"])
    expected = pd.Series(case["coef"])
    pd.testing.assert_series_equal(
        m.params_, expected, check_names=False, check_index_type=False, rtol=1e-9
    )


@pytest.mark.parametrize("case", REF["lmer"], ids=lambda c: c["formula"])
def test_lmer_with_dot_equals_r(case, data):
    m = skmixed.lmer(case["formula"], data)
    fixed = pd.Series([m.intercept_, *m.coef_], index=list(case["fixef"]))
    pd.testing.assert_series_equal(
        fixed, pd.Series(case["fixef"]), check_names=False, rtol=1e-6
    )
    assert m.reml_criterion_ == pytest.approx(case["reml"], rel=1e-9)
    # lme4 prints the formula as written
    assert f"Formula: {case['formula']}" in str(m.summary())


def test_estimator_dot_reads_x_columns_and_predicts(data):
    # fixed_effects='.' on the estimator: every column of X (y is apart)
    case = REF["lmer"][0]
    X, y = data[["Days", "Subject", "z"]], data["Reaction"]
    m = MixedLMRegressor("(Days | Subject)", fixed_effects=". - Subject").fit(X, y)
    assert m.reml_criterion_ == pytest.approx(case["reml"], rel=1e-9)
    assert m.fixed_effects == ". - Subject"  # the parameter as given
    sugar = skmixed.lmer(case["formula"], data)
    pd.testing.assert_series_equal(
        pd.Series(m.predict(X.iloc[::7])), pd.Series(sugar.predict(data.iloc[::7]))
    )


def test_dot_leaves_out_a_column_named_as_y(data):
    # fit(df, df["Reaction"]): R's y ~ . reads every column but the response
    m = PooledRegressor(fixed_effects=". - Subject").fit(data, data["Reaction"])
    assert list(m.params_.index) == ["(Intercept)", "Days", "z"]


def test_dot_with_no_column_left_is_refused(data):
    with pytest.raises(ValueError, match=r"uses '\.', every column of the data but"):
        skmixed.lm("Reaction ~ .", data[["Reaction"]])


def test_dot_from_dask_is_the_pandas_fit(client, data):
    dd = pytest.importorskip("dask.dataframe")
    X, y = data[["Days", "Subject", "z"]], data["Reaction"]
    ddf = dd.from_pandas(data, npartitions=3)
    spec = dict(random_effects="(Days | Subject)", fixed_effects=". - Subject")
    memory = MixedLMRegressor(**spec).fit(X, y)
    lazy = MixedLMRegressor(**spec).fit(ddf[["Days", "Subject", "z"]], ddf["Reaction"])
    assert lazy.reml_criterion_ == pytest.approx(memory.reml_criterion_, rel=1e-10)
    assert lazy.coef_ == pytest.approx(memory.coef_, rel=1e-10)
    # lmer's sugar on a Dask frame: the response column is left out of '.'
    sugar = skmixed.lmer("Reaction ~ . - Subject + (Days | Subject)", ddf)
    assert sugar.coef_ == pytest.approx(memory.coef_, rel=1e-10)
