"""A random-effects term that the fixed part already spans is said, not fitted silently.

In ``y ~ x1 + f + (1 | f)`` the fixed effects fit every level of f, the
criterion does not depend on the term's variance, and θ and the standard
errors are arbitrary (lme4 fits it without a word or with a Hessian
warning).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import skmixed
from skmixed import MixedGLMRegressor, MixedLMRegressor
from skmixed.datasets import load_sleepstudy

SPANNED = "lie in the span of the fixed-effect columns"


def _data(seed=3, n_levels=8, size=20):
    rng = np.random.default_rng(seed)
    f = np.repeat([f"f{i}" for i in range(n_levels)], size)
    x1 = rng.normal(size=n_levels * size)
    effect = np.repeat(rng.normal(size=n_levels), size)
    y = 1.0 + 0.5 * x1 + effect + rng.normal(size=n_levels * size)
    school = [f"s{int(level[1:]) // 2}" for level in f]
    return pd.DataFrame({"y": y, "x1": x1, "f": f, "school": school})


def _spanned_warnings(record):
    return [str(w.message) for w in record if SPANNED in str(w.message)]


@pytest.mark.parametrize(
    ("formula", "columns"),
    [
        ("y ~ x1 + f + (1 | f)", "'(Intercept)'"),
        ("y ~ x1 + f + (x1 | f)", "'(Intercept)'"),
        ("y ~ x1 * f + (x1 | f)", "'(Intercept)', 'x1'"),
        # the random factor is coarser than a fixed one nested in it
        ("y ~ x1 + f + (1 | school)", "'(Intercept)'"),
    ],
)
def test_lmer_names_the_spanned_columns(formula, columns):
    with pytest.warns(UserWarning, match=SPANNED) as record:
        skmixed.lmer(formula, _data())
    (message,) = _spanned_warnings(record)
    assert f"column(s) {columns} lie" in message


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x1 + (x1 | f)",
        # the fixed factor is coarser: the random one still has its own part
        "y ~ x1 + school + (1 | f)",
    ],
)
def test_identifiable_terms_fit_silently(formula):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        skmixed.lmer(formula, _data())
    assert _spanned_warnings(record) == []


def test_sleepstudy_and_a_badly_scaled_column_are_not_flagged():
    df = load_sleepstudy()
    X = df[["Days", "Subject"]].assign(shifted=1e9 + df["Days"])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        MixedLMRegressor("(Days | Subject)", fixed_effects=["Days"]).fit(
            X, df["Reaction"]
        )
        MixedLMRegressor("(1 | Subject)", fixed_effects=["shifted"]).fit(
            X, df["Reaction"]
        )
    assert _spanned_warnings(record) == []


def test_weighted_fit_is_checked_too():
    d = _data()
    weights = np.linspace(0.5, 2.0, len(d))
    with pytest.warns(UserWarning, match=SPANNED):
        MixedLMRegressor("(1 | f)", fixed_effects="x1 + f").fit(
            d[["x1", "f"]], d["y"], sample_weight=weights
        )


def test_glmm_names_the_spanned_columns():
    d = _data()
    counts = np.round(np.exp(d["y"] / 3)).astype(int)
    with pytest.warns(UserWarning, match=SPANNED) as record:
        MixedGLMRegressor("(1 | f)", family="poisson", fixed_effects="x1 + f").fit(
            d[["x1", "f"]], counts
        )
    (message,) = _spanned_warnings(record)
    assert "random-effects term (1 | f): column(s) '(Intercept)'" in message
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        MixedGLMRegressor("(1 | f)", family="poisson", fixed_effects="x1").fit(
            d[["x1", "f"]], counts
        )
    assert _spanned_warnings(record) == []
