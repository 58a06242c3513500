"""GLMMs fitted as a user writes them, against lme4's glmer on models the
other references do not reach: an uncorrelated random slope, a random
slope crossed with a random intercept, an interaction grouping factor on
nearly separated classes, and non-integer prior weights
(tests/data/glmer_user2, made by make_glmer_user2.R there)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skmixed
from skmixed import MixedLogisticRegression

_DATA = Path(__file__).parent / "data" / "glmer_user2"
_REF = json.loads((_DATA / "glmer_user2.json").read_text())
_BINARY = pd.read_csv(_DATA / "binary.csv")
_SEPARATED = pd.read_csv(_DATA / "separated.csv")

_CASES = {
    "uncorr": ("yb ~ x + z + (x || g)", _BINARY),
    "crossed": ("yb ~ x + (1 + x | g) + (1 | a)", _BINARY),
    "gxh": ("y ~ x + (1 | g:h)", _SEPARATED),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_hessian_standard_errors_as_glmer(case):
    # lme4's default vcov: the finite-difference Hessian of -2 log L in
    # (theta, beta) with steps of 1e-4, whose second differences divide
    # the objective's error by 1e-8. glmer's SEs here are within 4e-6 of
    # an accurate Hessian (steps of 5e-4 and 1e-3 agree to 2e-7); ours
    # were 2.2e-4 (uncorr), 1.2e-4 (crossed) and 3.0e-3 (gxh) off while
    # PIRLS stopped at a Newton step of 1e-10.
    formula, data = _CASES[case]
    ref = _REF[case]
    m = skmixed.glmer(formula, data)
    assert m.loglik_ >= ref["loglik"] - 1e-6 * abs(ref["loglik"])
    np.testing.assert_allclose(m.theta_, ref["theta"], rtol=2e-4)
    np.testing.assert_allclose(m.fixed_effects_, list(ref["beta"].values()), rtol=5e-5)
    assert m.vcov_source_ == "hessian"
    np.testing.assert_allclose(
        np.sqrt(np.diag(m.vcov_)), list(ref["se"].values()), rtol=3e-5
    )


@pytest.mark.parametrize("nagq", [1, 5])
def test_non_integer_weights_as_glmer(nagq):
    # Frequency-like weights of 0/1 outcomes that are not whole numbers
    # (every round(w) > 0): R warns, and its log-likelihood is
    # sum(w * log p) (lme4's binomial aic scales dbinom(round(w y),
    # round(w), mu) by w / round(w)). Ours counted round(w) trials: with
    # the Laplace approximation log L carried sum((round(w) - w) * log 0.5)
    # on top (-664.0483 against glmer's -639.4138); with nAGQ = 5, whose
    # objective is the per-row log-likelihood itself, the estimates moved
    # too (intercept -0.39244 against -0.39377, theta 0.71877 against
    # 0.71782; log L -660.1165 against -639.3026).
    ref = _REF["weighted" if nagq == 1 else "weighted_agq"]
    X = _BINARY[["x", "z", "g"]]
    with pytest.warns(UserWarning, match="non-integer #successes"):
        clf = MixedLogisticRegression("(1 | g)", nAGQ=nagq).fit(
            X, _BINARY["yb"], sample_weight=_BINARY["w"]
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = skmixed.glmer("yb ~ x + z + (1 | g)", _BINARY, weights="w", nAGQ=nagq)
    for fitted in (clf, m):
        np.testing.assert_allclose(fitted.loglik_, ref["loglik"], rtol=1e-8)
        np.testing.assert_allclose(fitted.aic_, ref["aic"], rtol=1e-8)
        np.testing.assert_allclose(fitted.bic_, ref["bic"], rtol=1e-8)
        np.testing.assert_allclose(fitted.theta_, ref["theta"], rtol=2e-5)
        np.testing.assert_allclose(
            fitted.fixed_effects_, list(ref["beta"].values()), rtol=2e-5
        )


def test_factor_in_a_random_term_names_its_indicator_columns():
    # lme4's (0 + h | g) with a factor h: not supported, and the message
    # said "give the fixed part as a formula", which glmer's formula already
    # is and which never reaches the random part. It now names the
    # indicator columns that fit lme4's model ((0 + hA + hB | g) gives
    # glmer's log L to 3e-9 on these data), as pd.get_dummies names them.
    data = _SEPARATED
    message = r"\['h'\].*random-effects term.*get_dummies.*\(0 \+ h<level 1> \+"
    with pytest.raises(ValueError, match=message):
        skmixed.glmer("y ~ x + (0 + h | g)", data)
    with pytest.raises(ValueError, match=message):
        MixedLogisticRegression("(0 + h | g)").fit(data[["x", "h", "g"]], data["y"])
    with pytest.raises(ValueError, match=message):
        MixedLogisticRegression("(0 + h | g)", fixed_effects="x").fit(
            data[["x", "h", "g"]], data["y"]
        )
    dummies = pd.get_dummies(data["h"], prefix="h", prefix_sep="", dtype=float)
    ref = _REF["factor_slope"]
    m = skmixed.glmer("y ~ x + (0 + hA + hB | g)", data.join(dummies))
    assert m.loglik_ >= ref["loglik"] - 1e-6 * abs(ref["loglik"])
