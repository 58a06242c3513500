"""A NaN in the response is named by its column, as the features are.

Through ``lmer``/``glmer`` the response is a data column (``count``), not
"y": the message must say which column holds the NaN (tests/test_dask.py
checks that a Dask fit says the same).
"""

import numpy as np
import pandas as pd
import pytest

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
