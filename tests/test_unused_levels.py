"""A categorical's unused categories are not levels of the fit, as R's
model.frame drops a factor's unused levels (lm, lmer): a subset of a pandas
categorical keeps every category of the whole."""

import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from _r_outputs import r_data, r_output

import skmixed
from skmixed import MixedLMRegressor, PooledRegressor

R = r_output("unused_levels", "unused_levels")


@pytest.fixture
def data():
    d = r_data("unused_levels", "unused_levels")
    # as a user's subset of a larger frame: "c" declared, in no row
    d["f"] = pd.Categorical(d["f"], categories=["a", "b", "c"])
    assert not (d["f"] == "c").any()
    return d


def _no_warnings(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


def test_lm_has_no_column_of_the_unused_level(data):
    m = _no_warnings(lambda: skmixed.lm("y ~ x + f", data))
    assert list(m.params_.index) == list(R["lm_coef"])
    np.testing.assert_allclose(m.params_, list(R["lm_coef"].values()), rtol=1e-10)
    assert "not defined because of singularities" not in str(m.summary())


def test_lmer_as_lme4(data):
    m = _no_warnings(lambda: skmixed.lmer("y ~ x + f + (1 | g)", data))
    assert list(m.fixed_effects_.index) == list(R["lmer_fixef"])
    np.testing.assert_allclose(
        m.fixed_effects_, list(R["lmer_fixef"].values()), rtol=1e-6
    )
    assert m.reml_criterion_ == pytest.approx(R["lmer_reml"], rel=1e-10)


def test_estimator_with_formula_fixed_effects(data):
    m = _no_warnings(
        lambda: MixedLMRegressor("(1 | g)", fixed_effects="x + f").fit(
            data[["x", "f", "g"]], data["y"]
        )
    )
    assert list(m.fixed_effects_.index) == list(R["lmer_fixef"])


def test_predicting_the_unused_level_is_a_new_level(data):
    m = skmixed.lm("y ~ x + f", data)
    new = pd.DataFrame(
        {"x": [1.0], "f": pd.Categorical(["c"], categories=["a", "b", "c"])}
    )
    # R: "factor f has new level c"
    with pytest.raises(ValueError, match=r"level\(s\) not seen at fit: \['c'\]"):
        m.predict(new)


def test_one_used_level_of_two_declared_is_refused(data):
    only_a = data[data["f"] == "a"]
    with pytest.raises(ValueError, match=r"'f'.*1 level\(s\) \['a'\]"):
        skmixed.lm("y ~ x + f", only_a)


def test_dask_fit_equals_pandas(client, data):
    ddf = dd.from_pandas(data, npartitions=3)
    on_dask = PooledRegressor(fixed_effects="x + f").fit(ddf[["x", "f"]], ddf["y"])
    in_memory = PooledRegressor(fixed_effects="x + f").fit(data[["x", "f"]], data["y"])
    assert list(on_dask.params_.index) == list(R["lm_coef"])
    np.testing.assert_allclose(on_dask.params_, in_memory.params_, rtol=1e-10)
