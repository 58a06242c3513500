"""The rows a formula's state and glmer's response check are taken from,
with missing='drop' (R's na.omit), against R's own output
(tests/data/rows_used, make_rows_used.R; R 4.2.2, lme4 1.1-31).

R's model.frame evaluates every variable on all rows of data, then drops
the rows missing any of them (response, formula columns, weights, offset,
grouping factors), then drops the factor levels left unused. So:

- a factor's levels (fixed-effect factor, ``factor(k)``, grouping factor)
  are those of the rows kept, also after rows dropped for the offset;
- glmer's checkResponse and a factor response's first level look at the
  rows kept;
- ``scale(x)`` and ``poly(x, 2)`` are computed on every row where x is
  present, rows missing y or another variable included; poly() refuses a
  missing x.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from _r_outputs import r_data, r_output

import skmixed
from skmixed import MixedGLMRegressor, MixedLogisticRegression

_R = r_output("rows_used", "rows_used")
_NEW = pd.DataFrame(
    {"x": [0, 1, 2.5, 4], "z": [-1, 0, 0.5, 1], "t": [1.0, 2, 3, 4], "g": "g1"}
)


@pytest.fixture
def data():
    return r_data("rows_used", "rows_used")


def _quiet(fit, *args, **kwargs):
    """A fit with missing='drop' (R's na.omit), its drop warning silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "missing='drop'")
        warnings.filterwarnings("ignore", "boundary .singular. fit")
        return fit(*args, missing="drop", **kwargs)


def _close(got, want, atol):
    assert list(got.index) == list(want)
    np.testing.assert_allclose(got, list(want.values()), atol=atol)


# -- 1. rows dropped for a missing offset hold no factor level -----------------------
@pytest.mark.parametrize(
    ("case", "fit", "formula", "kwargs", "atol"),
    [
        (
            "lmer_offset_term",
            skmixed.lmer,
            "y ~ x + f + (1 | g) + offset(log(t))",
            {},
            1e-6,
        ),
        (
            "lmer_offset_arg",
            skmixed.lmer,
            "y ~ x + f + (1 | g)",
            {"offset": "log(t)"},
            1e-6,
        ),
        (
            "glmer_offset_term",
            skmixed.glmer,
            "cnt ~ x + f + (1 | g) + offset(log(t))",
            {"family": "poisson"},
            1e-4,
        ),
        (
            "glmer_offset_arg",
            skmixed.glmer,
            "bin ~ x + f + (1 | g)",
            {"offset": "log(t)"},
            1e-5,
        ),
    ],
)
def test_level_only_on_rows_missing_the_offset_is_no_level(
    data, case, fit, formula, kwargs, atol
):
    # f's level c sits only on the rows whose t is missing: R has no fc
    # column, so no rank-deficiency message either
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _quiet(fit, formula, data, **kwargs)
    assert list(model.fixed_formula_.names) == ["x", "fb"]
    assert model.nobs_ == _R[case]["nobs"]
    _close(model.fixed_effects_, _R[case]["fixef"], atol)


@pytest.mark.parametrize(
    ("case", "fit", "kwargs"),
    [
        ("lmer_offset_one_level", skmixed.lmer, {}),
        ("glmer_offset_one_level", skmixed.glmer, {"family": "poisson"}),
    ],
)
def test_factor_with_one_level_once_offset_rows_go_is_refused(data, case, fit, kwargs):
    # f1 is b only on the rows whose t is missing: one level (a) is left
    assert _R[case].startswith("contrasts can be applied only to factors")
    response = "y" if fit is skmixed.lmer else "cnt"
    with pytest.raises(ValueError, match=r"'f1' .* 1 level\(s\) \['a'\]"):
        _quiet(fit, f"{response} ~ x + f1 + (1 | g) + offset(log(t))", data, **kwargs)


@pytest.mark.parametrize("offset", ["logt", "log(t)"])
def test_estimator_offset_drops_its_rows_before_the_levels(data, offset):
    # MixedGLMRegressor's own offset= (a column, or an expression of X's)
    X = data.drop(columns=["cnt"]).assign(logt=np.log(data["t"]))
    model = MixedGLMRegressor(
        "(1 | g)",
        fixed_effects="x + f1",
        family="poisson",
        offset=offset,
        missing="drop",
    )
    with pytest.raises(ValueError, match=r"'f1' .* 1 level\(s\) \['a'\]"):
        model.fit(X, data["cnt"])


@pytest.mark.parametrize(
    ("case", "fit", "formula", "kwargs"),
    [
        (
            "glmer_offset_group",
            skmixed.glmer,
            "cnt ~ x + (1 | k) + offset(log(t))",
            {"family": "poisson"},
        ),
        ("lmer_offset_group", skmixed.lmer, "y ~ x + (1 | k)", {"offset": "log(t)"}),
    ],
)
def test_group_level_only_on_rows_missing_the_offset_is_no_level(
    data, case, fit, formula, kwargs
):
    model = _quiet(fit, formula, data, **kwargs)
    assert list(model.random_effects_["k"].index) == _R[case]["levels"]  # no k9
    _close(model.fixed_effects_, _R[case]["fixef"], 1e-4)


# -- 2. glmer's checkResponse on the rows kept ---------------------------------------
@pytest.mark.parametrize(
    ("case", "formula", "family", "every"),
    [
        ("glmer_binomial_z", "bz ~ z + (1 | g)", "binomial", "0"),
        ("glmer_binomial_t", "bt ~ x + (1 | g) + offset(log(t))", "binomial", "0"),
        ("glmer_poisson_z", "pz ~ z + (1 | g)", "poisson", "2"),
        (
            "glmer_cbind_z",
            "cbind(pz, 6 - pz) ~ z + (1 | g)",
            "binomial",
            r"cbind\(2, 4\)",
        ),
    ],
)
def test_response_constant_on_the_rows_kept_is_refused(
    data, case, formula, family, every
):
    # its only other values sit on rows missing z (or the offset t)
    assert _R[case] == "Response is constant"
    with pytest.raises(
        ValueError, match=rf"constant \(every row {every} among the 57 rows"
    ):
        _quiet(skmixed.glmer, formula, data, family=family)


def test_response_varying_on_the_rows_kept_is_fitted(data):
    # bz's ones are on rows missing z, which this formula does not use
    assert _R["glmer_binomial_x"] == "fit"
    model = _quiet(skmixed.glmer, "bz ~ x + (1 | g)", data)
    assert model.nobs_ == 59  # only the row missing g goes


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_estimator_refuses_a_response_constant_on_the_rows_kept(data, family):
    y = data["bz"] if family == "binomial" else data["pz"]
    X = data[["z", "g"]]
    model = MixedGLMRegressor("(1 | g)", family=family, missing="drop")
    with pytest.raises(ValueError, match="Response is constant"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "missing='drop'")
            model.fit(X, y)
    clf = MixedLogisticRegression("(1 | g)", missing="drop")
    with pytest.raises(ValueError, match="needs samples of 2 classes"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "missing='drop'")
            clf.fit(X, data["bz"])


def test_proportions_equal_with_different_trials_are_constant(data):
    # glmer(y ~ ..., weights = n): unique(y) only; cbind compares the pairs
    data = data.dropna(subset=["x", "g"]).assign(p=0.5, n=2.0)
    data.loc[data.index[::2], "n"] = 4.0
    with pytest.raises(ValueError, match=r"constant \(every row 0.5 "):
        skmixed.glmer("p ~ x + (1 | g)", data, weights="n")
    data = data.assign(s=data["n"] / 2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "boundary .singular. fit")
        model = skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", data)
    assert np.isfinite(model.loglik_)


def test_factor_response_first_level_among_the_rows_kept(data):
    # fr's first level a sits only on rows missing z: R's failure is b
    data["fr"] = pd.Categorical(data["fr"])
    assert list(data["fr"].cat.categories) == ["a", "b", "c"]
    r = _R["glmer_factor_first_dropped"]
    model = _quiet(skmixed.glmer, "fr ~ z + (1 | g)", data)
    assert model.nobs_ == r["nobs"]
    _close(model.fixed_effects_, r["fixef"], 1e-5)


def test_factor_response_one_level_among_the_rows_kept_is_refused(data):
    data["fr"] = pd.Categorical(np.where(data["z"].isna(), "a", "b"))
    with pytest.raises(ValueError, match=r"1 level\(s\) \['b'\]"):
        _quiet(skmixed.glmer, "fr ~ z + (1 | g)", data)
