"""A NaN in the response is named by its column, as the features are.

Through ``lmer``/``glmer`` the response is a data column (``count``), not
"y": the message must say which column holds the NaN (tests/test_dask.py
checks that a Dask fit says the same).

A one-column DataFrame y is named by its column too, by every estimator,
in ``response_name_`` and in the summary's formula line.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import DataConversionWarning

import skmixed
from skmixed import MixedLMRegressor


def _data():
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.integers(0, 8, n).astype(str),
            "count": rng.poisson(2.0, n).astype(float),
        }
    )
    frame.loc[[5, 9], "count"] = np.nan
    return frame


@pytest.mark.parametrize(
    "fit",
    [
        lambda d: skmixed.lmer("count ~ x + (1 | g)", d),
        lambda d: skmixed.glmer("count ~ x + (1 | g)", d, family="poisson"),
        lambda d: MixedLMRegressor("(1 | g)").fit(d[["x", "g"]], d["count"]),
    ],
)
def test_nan_response_names_its_column(fit):
    with pytest.raises(ValueError, match="column 'count': NaN in 2 row"):
        fit(_data())


def test_unnamed_response_is_still_y():
    d = _data()
    with pytest.raises(ValueError, match=r"Input y contains NaN or inf \(y: NaN"):
        MixedLMRegressor("(1 | g)").fit(d[["x", "g"]], d["count"].to_numpy())


def _named_data():
    rng = np.random.default_rng(1)
    n = 150
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": rng.integers(0, 8, n)})
    frame["g"] = frame["g"].astype(str)
    effect = frame["g"].astype(int).to_numpy() * 0.25 - 0.9
    eta = 0.4 + 0.3 * frame["x"] + effect
    frame["count"] = rng.poisson(np.exp(eta)).astype(float)
    frame["yes"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return frame


@pytest.mark.parametrize(
    "estimator, column",
    [
        (skmixed.PooledRegressor(fixed_effects=["x"]), "count"),
        (skmixed.FixedEffectsRegressor(group="g"), "count"),
        (MixedLMRegressor("(1 | g)"), "count"),
        (skmixed.MixedGLMRegressor("(1 | g)", family="poisson"), "count"),
        (skmixed.MixedLogisticRegression("(1 | g)"), "yes"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else v,
)
@pytest.mark.parametrize("as_frame", [False, True], ids=["Series", "DataFrame"])
def test_response_is_named_by_its_column(estimator, column, as_frame):
    # A one-column DataFrame y names the response as a Series does, for
    # every estimator: in response_name_ and in the summary's formula line
    # (lm's "lm(formula = count ~ ...)", lme4's "Formula: count ~ ...").
    d = _named_data()
    y = d[[column]] if as_frame else d[column]
    with warnings.catch_warnings():
        # (a one-column DataFrame y warns as scikit-learn's column_or_1d does)
        warnings.simplefilter("ignore", DataConversionWarning)
        estimator.fit(d[["x", "g"]], y)
    assert estimator.response_name_ == column
    text = str(estimator.summary())
    assert f"{column} ~ x" in text
    assert "y ~ x" not in text
