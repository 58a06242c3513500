"""R expressions in formulas and offsets, through the public calls.

R's functions that formulaic lacks (``log1p``, ``log(x, base = 2)``,
``ifelse``) are evaluated as R does; R names with dots (``exp.time``) are
columns, inside expressions too. What cannot be evaluated is an error that
names the expression and what is available, never a function reported as a
missing column. A constant offset or term (``offset(2)``) is refused, as
R's model.frame refuses it ("variable lengths differ").
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skmixed
from skmixed import MixedGLMRegressor, MixedLMRegressor

SIM = pd.read_csv(Path(__file__).parent / "data" / "glmer_formula" / "sim.csv").head(
    120
)
DATA = SIM.assign(**{"exp.time": SIM["exposure"]})


def _poisson(offset_column, data=DATA):
    """The Poisson fit with a precomputed offset column: what R computes."""
    return MixedGLMRegressor(
        "(1 | g)", fixed_effects="x", offset=offset_column, family="poisson"
    ).fit(data, data["count"])


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("log1p(exposure)", np.log1p(SIM["exposure"])),
        ("log(exposure, base = 2)", np.log2(SIM["exposure"])),
        ("log(exp.time)", np.log(SIM["exposure"])),
        ("ifelse(x > 0, 1, 0)", (SIM["x"] > 0).astype(float)),
    ],
)
def test_offset_expressions_as_r_evaluates_them(expression, values):
    expected = _poisson("o", DATA.assign(o=values)).loglik_
    by_term = skmixed.glmer(
        f"count ~ x + (1 | g) + offset({expression})", DATA, family="poisson"
    )
    by_formula = MixedGLMRegressor.from_formula(
        f"count ~ x + (1 | g) + offset({expression})", family="poisson"
    ).fit(DATA, DATA["count"])
    by_argument = _poisson(expression)
    for m in (by_term, by_formula, by_argument):
        assert m.loglik_ == pytest.approx(expected, abs=1e-9)


def test_fixed_effect_expressions_keep_r_names():
    m = skmixed.lmer(
        "count ~ log1p(exposure) + log(exp.time, base = 2) + exp.time "
        "+ ifelse(x > 0, 1, 0) + (1 | g)",
        DATA,
    )
    assert list(m.fixed_effects_.index) == [
        "(Intercept)",
        "log1p(exposure)",
        "log(exp.time, base = 2)",
        "exp.time",
        "ifelse(x > 0, 1, 0)",
    ]
    computed = DATA.assign(
        a=np.log1p(DATA["exposure"]),
        b=np.log2(DATA["exposure"]),
        c=(DATA["x"] > 0).astype(float),
    )
    direct = MixedLMRegressor("(1 | g)", fixed_effects=["a", "b", "exposure", "c"])
    direct.fit(computed, computed["count"])
    np.testing.assert_allclose(m.fixed_effects_, direct.fixed_effects_, rtol=1e-8)
    again = MixedLMRegressor.from_formula("count ~ log(exp.time) + (1 | g)")
    assert list(again.fit(DATA, DATA["count"]).fixed_effects_.index) == [
        "(Intercept)",
        "log(exp.time)",
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # a function neither R-like here nor formulaic's: named as a function
        (
            lambda: skmixed.lmer("s ~ pnorm(x) + (1 | g)", DATA),
            r"'pnorm\(x\)' calls pnorm\(\), which .*log1p",
        ),
        (
            lambda: skmixed.glmer(
                "count ~ x + (1 | g) + offset(qlogis(x))", DATA, family="poisson"
            ),
            r"offset 'qlogis\(x\)' calls qlogis\(\)",
        ),
        (
            lambda: MixedGLMRegressor(
                "(1 | g)", family="poisson", offset="pnorm(x)"
            ).fit(DATA, DATA["count"]),
            r"offset 'pnorm\(x\)' calls pnorm\(\)",
        ),
        # constants: R's model.frame says "variable lengths differ"
        (
            lambda: skmixed.glmer(
                "count ~ x + (1 | g) + offset(2)", DATA, family="poisson"
            ),
            r"offset '2' .*constant.*variable lengths differ",
        ),
        (
            lambda: skmixed.lmer("s ~ x + I(2) + (1 | g)", DATA),
            r"'I\(2\)'.*constant.*variable lengths differ",
        ),
        (
            lambda: skmixed.lmer("s ~ max(x) + (1 | g)", DATA),
            r"'max\(x\)'.*one number, not one value per row",
        ),
        # a misspelt column is still a missing column, with the closest name
        (
            lambda: skmixed.lmer("s ~ log(exp.tme) + (1 | g)", DATA),
            r"'exp.tme' \(did you mean 'exp.time'\?\)",
        ),
    ],
)
def test_unsupported_expressions_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
