"""R's elementwise ``&``, ``|`` and ``!`` inside a formula's calls
(``ifelse(x > 0 & z < 1, 1, 0)``), with R's precedence (below the
comparisons: ``!x > 0`` is ``!(x > 0)``) and R's column names.

A logical term (``I(x > 0)``) is a factor, as in R's model.matrix: its
column is ``I(x > 0)TRUE``. References: tests/data/logical_ops
(make_logical_ops.R there): lm's and lmer's coefficients and names on 120
simulated rows. ``&&``/``||`` compare
one value in R (a warning in R 4.2, an error from R 4.3): refused here.
"""

import numpy as np
import pandas as pd
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


def test_logical_term_predicts_rows_of_one_value(data):
    # I(x > 0) is a factor with both levels whatever the rows (as R's
    # logical): rows that are all TRUE get the TRUE column
    model = skmixed.lm("y ~ z * I(x > 0)", data)
    new = pd.DataFrame({"x": [1.0, 2.0], "z": [0.0, 1.0]})
    beta = model.params_
    expected = [
        beta["(Intercept)"] + beta["I(x > 0)TRUE"],
        beta["(Intercept)"] + beta["z"] + beta["I(x > 0)TRUE"] + beta["z:I(x > 0)TRUE"],
    ]
    np.testing.assert_allclose(model.predict(new), expected, rtol=1e-12)


def test_logical_response_and_offset_are_numbers(data):
    # a response or offset I(...) is the logical as 0/1, as glmer reads it
    by_column = skmixed.glmer(
        "b ~ z + (1 | g)", data.assign(b=(data["y"] > 1) & (data["x"] > 0))
    )
    by_expression = skmixed.glmer("I(y > 1 & x > 0) ~ z + (1 | g)", data)
    assert by_expression.loglik_ == pytest.approx(by_column.loglik_, abs=1e-10)
    counts = data.assign(c=(data["y"] > 1) * 2)
    offset_logical = skmixed.glmer(
        "c ~ z + (1 | g) + offset(I(x > 0))", counts, family="poisson"
    )
    numbers = counts.assign(x0=1.0 * (data["x"] > 0))
    offset_numbers = skmixed.glmer("c ~ z + (1 | g) + offset(x0)", numbers, "poisson")
    assert offset_logical.loglik_ == pytest.approx(offset_numbers.loglik_, abs=1e-10)
