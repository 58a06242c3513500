"""The summary's lines of lme4's call under the formula: summary(glmer)
prints "Weights: <the weights argument>" when glmer was given weights=, and
not for the trials of cbind(s, f) (they are the response's); lmer and
glmer print " Offset: <the offset argument>" for offset= (an offset(...)
term stays in the formula line). tests/data/summary_call_lines
(make_summary_call_lines.R) holds R's headers for each way of giving
trials, prior weights and offsets.
"""

import warnings

import numpy as np
import pytest
from _r_outputs import r_data, r_output

import skmixed
from skmixed import MixedGLMRegressor, MixedLogisticRegression

_R = r_output("summary_call_lines", "weights_line")


@pytest.fixture(scope="module")
def data():
    return r_data("summary_call_lines", "weights_line")


def _header(model):
    """The summary's lines before the criteria table, as R's header."""
    lines = str(model.summary()).splitlines()
    criteria = ("AIC", "REML criterion")
    return lines[
        : next(i for i, line in enumerate(lines) if line.strip().startswith(criteria))
    ]


def _line(lines, start):
    """The one line that starts with ``start`` (None when there is none)."""
    found = [line for line in lines if line.startswith(start)]
    assert len(found) <= 1
    return found[0] if found else None


def _r_line(case, start):
    return _line(_R[case]["header"], start)


def _our_line(model, start):
    return _line(_header(model), start)


@pytest.mark.parametrize(
    "case, call",
    [
        ("cbind", lambda d: skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", d)),
        (
            "proportion_weights",
            lambda d: skmixed.glmer("p ~ x + (1 | g)", d, weights="n"),
        ),
        (
            "poisson_weights",
            lambda d: skmixed.glmer("count ~ x + (1 | g)", d, "poisson", weights="w"),
        ),
        (
            "poisson_offset_term",
            lambda d: skmixed.glmer(
                "count ~ x + (1 | g) + offset(log(e))", d, "poisson"
            ),
        ),
    ],
)
def test_weights_line_as_glmer_prints_it(data, case, call):
    model = call(data)
    assert _our_line(model, "Weights:") == _r_line(case, "Weights:")
    # the same fit as R's (glmer with tight PIRLS: measured within 2e-9)
    assert model.loglik_ == pytest.approx(_R[case]["logLik"], abs=1e-7)


def test_estimator_names_the_weights_by_the_series(data):
    # MixedGLMRegressor(...).fit(X, p, sample_weight=d["n"]) is glmer's
    # weights = n: the line names the Series, as lmer's summary does
    X = data[["x", "g"]]
    model = MixedGLMRegressor("(1 | g)").fit(X, data["p"], sample_weight=data["n"])
    assert _our_line(model, "Weights:") == _r_line("proportion_weights", "Weights:")
    unnamed = MixedGLMRegressor("(1 | g)").fit(
        X, data["p"], sample_weight=data["n"].to_numpy()
    )
    assert _our_line(unnamed, "Weights:") == "Weights: sample_weight"
    plain = MixedGLMRegressor("(1 | g)").fit(X, data["p"].round())
    assert _our_line(plain, "Weights:") is None


def test_classifier_prints_its_weights_too(data):
    X = data[["x", "g"]]
    y = np.where(data["s"] > data["n"] / 2, "more", "fewer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a singular fit is fine here
        model = MixedLogisticRegression("(1 | g)").fit(X, y, sample_weight=data["w"])
    assert _our_line(model, "Weights:") == "Weights: w"


@pytest.mark.parametrize(
    "case, call",
    [
        (
            "poisson_offset_arg",
            lambda d: skmixed.glmer(
                "count ~ x + (1 | g)", d, "poisson", offset="log(e)"
            ),
        ),
        (
            "poisson_offset_term",
            lambda d: skmixed.glmer(
                "count ~ x + (1 | g) + offset(log(e))", d, "poisson"
            ),
        ),
        (
            "lmer_offset_arg",
            lambda d: skmixed.lmer("yc ~ x + (1 | g)", d, offset="log(e)"),
        ),
        (
            "lmer_offset_term",
            lambda d: skmixed.lmer("yc ~ x + (1 | g) + offset(log(e))", d),
        ),
    ],
)
def test_offset_line_as_lme4_prints_it(data, case, call):
    # lme4 prints offset= as an " Offset:" line under the formula, and an
    # offset(...) term in the formula only
    model = call(data)
    assert _our_line(model, " Offset:") == _r_line(case, " Offset:")
    formula = next(line for line in _R[case]["header"] if line.startswith("Formula:"))
    assert formula in _header(model)
    assert model.loglik_ == pytest.approx(_R[case]["logLik"], abs=1e-6)


def test_cbind_with_weights_is_refused_naming_its_equivalent(data):
    # R's glmer takes them (the weights multiply the trials, and its logLik
    # sums w * log dbinom(s, n)); the message's equivalent has R's estimates
    with pytest.raises(ValueError, match=r"do not pass weights.*w \* \(s \+ f\)"):
        skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", data, weights="w")
    same = skmixed.glmer(
        "I(s / n) ~ x + (1 | g)", data.assign(wn=data["w"] * data["n"]), weights="wn"
    )
    fixef = list(_R["cbind_weights"]["fixef"].values())
    np.testing.assert_allclose(same.fixed_effects_, fixef, atol=1e-5)
