"""A factor of one level in the fixed part, as R's lm and lmer treat it.

tests/data/one_level_factor/make.R (r.json): lm and lmer refuse a one-level
factor or character column ("contrasts can be applied only to factors with 2
or more levels"), with or without the intercept; a logical of one value
(``I(x > 100)`` where every x <= 100) is fitted with an NA coefficient.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skmixed

DATA = Path(__file__).parent / "data" / "one_level_factor"
R = json.loads((DATA / "r.json").read_text())


def _data():
    d = pd.read_csv(DATA / "data.csv")
    d["f"] = pd.Categorical(d["f"])
    return d


@pytest.mark.parametrize(
    ("case", "fit", "formula", "column"),
    [
        ("lm_factor", skmixed.lm, "y ~ x + f", "f"),
        ("lm_character", skmixed.lm, "y ~ x + h", "h"),
        ("lm_no_intercept", skmixed.lm, "y ~ 0 + x + f", "f"),
        ("lmer_factor", skmixed.lmer, "y ~ x + f + (1 | g)", "f"),
    ],
)
def test_one_level_factor_is_refused_as_in_r(case, fit, formula, column):
    assert R[case].startswith("contrasts can be applied only to factors")
    with pytest.raises(ValueError, match=f"factor '{column}' .* 1 level"):
        fit(formula, _data())


def test_one_valued_logical_is_fitted_aliased_as_in_r():
    assert R["lm_logical"] == "fit" and R["lm_logical_coef"] == "NA"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = skmixed.lm("y ~ x + I(x > 100)", _data())
    assert np.isnan(m.coef_[-1])
