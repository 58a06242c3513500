"""A binomial response given as a factor of more than two levels.

R's binomial()$initialize turns a factor response into ``y != levels(y)[1]``:
the first level fails, every other level succeeds, so lme4's glmer fits a
three-level factor; a character response it refuses ("response must be
numeric or factor"). tests/data/glmer_factor_response/make.R made the data
(120 rows, 12 groups, levels a/b/c) and glmer's fit (glmer.json), with
glmerControl(tolPwrss = 1e-12): at its default PIRLS tolerance glmer stops
1.4e-4 short in logLik on these data (-73.818300 against -73.818164).

Asserted: logLik within 1e-6 of glmer's (and not below it by more than 1e-6),
β and θ within 1e-4; the same fit as the 0/1 response (a -> 0, b, c -> 1).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skmixed

DATA = Path(__file__).parent / "data" / "glmer_factor_response"


def _data():
    d = pd.read_csv(DATA / "data.csv")
    d["y"] = pd.Categorical(d["y"], categories=["a", "b", "c"])
    return d


def test_three_level_factor_response_fits_as_glmer():
    ref = json.loads((DATA / "glmer.json").read_text())
    m = skmixed.glmer("y ~ x + (1|g)", _data(), family="binomial")
    assert m.loglik_ == pytest.approx(ref["logLik"], abs=1e-6)
    assert m.loglik_ >= ref["logLik"] - 1e-6
    np.testing.assert_allclose(m.fixed_effects_, ref["fixef"], atol=1e-4)
    np.testing.assert_allclose(m.theta_, [ref["theta"]], atol=1e-4)


def test_factor_response_is_first_level_failure():
    d = _data()
    as_numbers = d.assign(y=(d["y"] != "a").astype(float))
    m = skmixed.glmer("y ~ x + (1|g)", d, family="binomial")
    n = skmixed.glmer("y ~ x + (1|g)", as_numbers, family="binomial")
    assert m.loglik_ == pytest.approx(n.loglik_, abs=1e-10)


def test_text_response_is_refused_as_in_glmer():
    ref = json.loads((DATA / "glmer.json").read_text())
    assert ref["character_response"] == "response must be numeric or factor"
    d = _data().assign(y=lambda t: t["y"].astype(str))
    with pytest.raises(ValueError, match="'y' is text"):
        skmixed.glmer("y ~ x + (1|g)", d, family="binomial")
