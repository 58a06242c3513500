"""R's elementwise ``&``, ``|`` and ``!`` inside a formula's calls
(``ifelse(x > 0 & z < 1, 1, 0)``), with R's precedence (below the
comparisons: ``!x > 0`` is ``!(x > 0)``) and R's column names.

References: tests/data/logical_ops (make_logical_ops.R there): lm's and
lmer's coefficients and names on 120 simulated rows. ``&&``/``||`` compare
one value in R (a warning in R 4.2, an error from R 4.3): refused here.
"""

import numpy as np
import pytest
from _r_outputs import r_data, r_output

import skmixed

_R = r_output("logical_ops", "logical_ops")


@pytest.fixture(scope="module")
def data():
    return r_data("logical_ops", "logical_ops")


@pytest.mark.parametrize("case", _R["lm"], ids=lambda c: c["formula"])
def test_lm_matches_r(data, case):
    model = skmixed.lm(case["formula"], data)
    assert list(model.params_.index) == case["names"]
    # least squares on the same 0/1 (or -1/2) columns: rounding only
    np.testing.assert_allclose(model.params_, case["coef"], rtol=1e-10)


def test_lmer_matches_r(data):
    case = _R["lmer"]
    model = skmixed.lmer(case["formula"], data)
    assert list(model.fixed_effects_.index) == case["names"]
    np.testing.assert_allclose(model.fixed_effects_, case["coef"], atol=1e-6)
    assert f"Formula: {case['formula']}" in str(model.summary())


def test_bar_outside_a_call_is_still_a_random_term(data):
    # '|' inside ifelse(...) is R's 'or'; (1 | g) stays the grouping bar
    model = skmixed.lmer("y ~ ifelse(x > 0 | z < -1, 1, 0) + (1 | g)", data)
    assert list(model.fixed_effects_.index) == [
        "(Intercept)",
        "ifelse(x > 0 | z < -1, 1, 0)",
    ]
    assert model.n_groups_ == {"g": 10}


@pytest.mark.parametrize("op", ["&&", "||"])
def test_scalar_and_or_are_refused(data, op):
    assert "coercion to 'logical(1)'" in _R["and_and" if op == "&&" else "or_or"]
    formula = f"y ~ ifelse(x > 0 {op} z < 1, 1, 0)"
    with pytest.raises(ValueError, match=rf"'\{op[0]}\{op[1]}'.*one value.*'{op[0]}'"):
        skmixed.lm(formula, data)
