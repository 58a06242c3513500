"""Models without fixed effects (p = 0), as lme4 fits them.

References (tests/data/glmer_edge, made by make_glmer_edge.R on
tests/data/glmer_formula/sim.csv): glmer run to convergence for
``count ~ 0 + offset(log(exposure)) + (1 | g)`` (Poisson, Laplace and
nAGQ = 5) and ``resp ~ 0 + (1 | g)`` (binomial), and lmer for
``s ~ 0 + (1 | g)`` (REML and ML: with p = 0 lme4 fits ML either way, the
same criterion). Each gives logLik, θ, the conditional modes with their
conditional variances, predictions on newdata.csv (a level g99 unseen:
the offset alone) and the first fitted values.

Measured: logLik within 8e-11 of glmer's (at or above it), θ within
4.3e-7, modes within 2.4e-7, predictions within 1.8e-7 relative.
Asserted: logLik within 1e-8 below and 1e-6 above; θ, modes within 1e-5;
predictions within 1e-5 relative.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skmixed
from skmixed import MixedGLMRegressor

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "glmer_edge" / "glmer_edge.json").read_text())
# resp "no"/"yes" as the factor R made of it (text is refused, as by glmer)
SIM = pd.read_csv(DATA / "glmer_formula" / "sim.csv", dtype={"resp": "category"})
NEW = pd.read_csv(DATA / "glmer_edge" / "newdata.csv")
OFFSET_ONLY = "count ~ 0 + offset(log(exposure)) + (1 | g)"

CALLS = {
    "offset_only": lambda: skmixed.glmer(OFFSET_ONLY, SIM, family="poisson"),
    "offset_only_agq": lambda: skmixed.glmer(
        OFFSET_ONLY, SIM, family="poisson", nAGQ=5
    ),
    "binary": lambda: skmixed.glmer("resp ~ 0 + (1 | g)", SIM),
    "lmer_reml": lambda: skmixed.lmer("s ~ 0 + (1 | g)", SIM),
    "lmer_ml": lambda: skmixed.lmer("s ~ 0 + (1 | g)", SIM, REML=False),
}


@pytest.mark.parametrize("case", list(CALLS))
def test_no_fixed_effects_match_lme4(case):
    m, ref = CALLS[case](), REF[case]
    assert -1e-8 < m.loglik_ - ref["loglik"] < 1e-6
    np.testing.assert_allclose(m.theta_, ref["theta"], atol=1e-5)
    assert len(m.fixed_effects_) == ref["n_fixef"] == 0
    modes = m.random_effects_["g"].iloc[:, 0]
    assert list(modes.index.astype(str)) == list(ref["ranef"])
    np.testing.assert_allclose(modes, list(ref["ranef"].values()), atol=1e-5)
    np.testing.assert_allclose(m.predict(NEW), ref["predict"], rtol=1e-5)
    np.testing.assert_allclose(m.predict(SIM.head(5)), ref["fitted"], rtol=1e-5)
    text = str(m.summary())
    assert "No fixed effect coefficients" in text
    # lme4 reports a REML fit without fixed effects as ML (the same criterion)
    assert ref["REML"] is False and "REML criterion" not in text
    assert "logLik" in text and f"{ref['loglik']:.1f}" in text


def test_offset_only_estimator_forms():
    """The estimator without fixed effects, as lme4's ``0 + offset(...)``."""
    formula = skmixed.glmer(OFFSET_ONLY, SIM, family="poisson")
    by_list = MixedGLMRegressor(
        "(1 | g)",
        fixed_effects=[],
        fit_intercept=False,
        offset="log(exposure)",
        family="poisson",
    ).fit(SIM, SIM["count"])
    by_formula = MixedGLMRegressor(
        "(1 | g)", fixed_effects="0", offset="log(exposure)", family="poisson"
    ).fit(SIM, SIM["count"])
    for m in (by_list, by_formula):
        assert m.loglik_ == pytest.approx(formula.loglik_, abs=1e-9)
        assert m.coef_.shape == (0,) and m.intercept_ == 0.0
        assert m.vcov_.shape == (0, 0)
    assert by_formula.conf_int().shape == (0, 2)  # Wald: the fixed effects
