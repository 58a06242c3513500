"""``skmixed.glmer``: lme4's glmer calls, formula and all.

References (tests/data/glmer_formula, made by make_glmer_formula.R): glmer
run to convergence (tolPwrss = 1e-14, nloptwrap xtol_abs = 1e-12) on lme4's
cbpp and on simulated data (360 rows, 24 x 15 crossed groups):

- cbind:  cbind(incidence, size - incidence) ~ period + (1 | herd), binomial
- binary: resp ~ x * f + (1 | g) + (1 | h), binomial (resp "no"/"yes")
- offset: count ~ x + f + (1 | g) + offset(log(exposure)), poisson
- slope:  s/n ~ x + (1 + x | g), binomial, weights = n

Measured (load ~5 on 2 cores, which does not change numbers): our logLik
is at or above glmer's by 7.9e-9 / 1.8e-7 / 2.4e-8 / 2.5e-9; θ within
4e-6 / 1.7e-5 / 4.2e-6 / 2.5e-6; β within 1.5e-5 / 2.2e-5 / 1.6e-5 /
6.2e-6; Hessian SEs within 2.6e-5 / 5.3e-5 / 7.2e-6 / 2.3e-6 relative.
Asserted: logLik at most 1e-8 below glmer's and 1e-6 above; θ and β
within 1e-4; SEs within 3e-4 relative (the binary fit's likelihood is flat
in θ: 1.8e-7 of logLik moves θ by 1.7e-5).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import skmixed
from skmixed import MixedGLMRegressor

DATA = Path(__file__).parent / "data" / "glmer_formula"
REF = json.loads((DATA / "glmer_formula.json").read_text())
CBPP = pd.read_csv(DATA / "cbpp.csv", dtype={"herd": str, "period": str})
# resp "no"/"yes" is a factor, as make_glmer_formula.R makes it (glmer, and
# skmixed.glmer, refuse a text response)
SIM = pd.read_csv(DATA / "sim.csv", dtype={"resp": "category"})

CALLS = {
    "cbind": lambda: skmixed.glmer(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        CBPP,
        family="binomial",
    ),
    "binary": lambda: skmixed.glmer("resp ~ x * f + (1 | g) + (1 | h)", SIM),
    "offset": lambda: skmixed.glmer(
        "count ~ x + f + (1 | g) + offset(log(exposure))", SIM, family="poisson"
    ),
    "slope": lambda: skmixed.glmer("s/n ~ x + (1 + x | g)", SIM, weights="n"),
}


@pytest.fixture(scope="module")
def fits():
    return {case: call() for case, call in CALLS.items()}


@pytest.mark.parametrize("case", list(CALLS))
def test_matches_glmer(fits, case):
    m, ref = fits[case], REF[case]
    assert -1e-8 < m.loglik_ - ref["loglik"] < 1e-6
    np.testing.assert_allclose(m.theta_, ref["theta"], atol=1e-4)
    # β and SEs by R's coefficient names (treatment contrasts, x:fb, ...)
    assert list(m.fixed_effects_.index) == list(ref["beta"])
    np.testing.assert_allclose(m.fixed_effects_, list(ref["beta"].values()), atol=1e-4)
    se = np.sqrt(np.diag(m.vcov_.loc[list(ref["se"]), list(ref["se"])]))
    np.testing.assert_allclose(se, list(ref["se"].values()), rtol=3e-4)
    assert m.nobs_ == ref["nobs"]
    # the summary prints the formula as given, as lme4 does
    assert f"Formula: {ref['formula']}" in str(m.summary())


def test_same_fit_as_the_estimator(fits):
    """glmer's cbind and offset are the estimator's y, sample_weight, offset."""
    direct = MixedGLMRegressor(
        "(1 | herd)", fixed_effects="period", family="binomial"
    ).fit(CBPP, CBPP["incidence"] / CBPP["size"], sample_weight=CBPP["size"])
    np.testing.assert_allclose(direct.fixed_effects_, fits["cbind"].fixed_effects_)
    assert direct.loglik_ == pytest.approx(fits["cbind"].loglik_, abs=1e-12)
    X = SIM.assign(log_e=np.log(SIM["exposure"]))
    direct = MixedGLMRegressor(
        "(1 | g)", fixed_effects="x + f", offset="log_e", family="poisson"
    ).fit(X, SIM["count"])
    np.testing.assert_allclose(direct.fixed_effects_, fits["offset"].fixed_effects_)
    assert direct.loglik_ == pytest.approx(fits["offset"].loglik_, abs=1e-12)
    np.testing.assert_allclose(
        direct.predict(X.head(20)), fits["offset"].predict(SIM.head(20))
    )


def test_offset_computed_on_new_data(fits):
    """predict computes log(exposure) from the new rows, as lme4's predict."""
    m = fits["offset"]
    assert m.offset == "log(exposure)"
    new = SIM.head(5).assign(exposure=[1.0, 2.0, 4.0, 8.0, 16.0])
    eta = m.predict(new, type="link")
    base = m.predict(new.assign(exposure=1.0), type="link")
    np.testing.assert_allclose(eta - base, np.log(new["exposure"]), atol=1e-12)
    np.testing.assert_allclose(m.predict(SIM), m.fittedvalues_, rtol=1e-10)
    with pytest.raises(ValueError, match="exposure"):
        m.predict(SIM.drop(columns="exposure"))
    # the expression survives clone: a clone refits to the same model
    again = clone(m).fit(SIM, SIM["count"])
    np.testing.assert_allclose(again.fixed_effects_, m.fixed_effects_)


def test_responses_as_glmer_takes_them(fits):
    """A bool response, a proportion with weights, and cbind of two columns."""
    binary = SIM.assign(yes=SIM["resp"] == "yes", y01=(SIM["resp"] == "yes") * 1)
    ref = fits["binary"].loglik_
    for response in ("yes", "y01"):
        m = skmixed.glmer(f"{response} ~ x * f + (1 | g) + (1 | h)", binary)
        assert m.loglik_ == pytest.approx(ref, abs=1e-9)
    cbpp = CBPP.assign(
        fail=CBPP["size"] - CBPP["incidence"], p=CBPP["incidence"] / CBPP["size"]
    )
    ref = fits["cbind"].loglik_
    m = skmixed.glmer("cbind(incidence, fail) ~ period + (1 | herd)", cbpp)
    assert m.loglik_ == pytest.approx(ref, abs=1e-9)
    m = skmixed.glmer("p ~ period + (1 | herd)", cbpp, weights="size")
    assert m.loglik_ == pytest.approx(ref, abs=1e-9)
    # the offset= argument is the formula's offset(...) term
    m = skmixed.glmer("count ~ x + f + (1 | g)", SIM, "poisson", offset="log(exposure)")
    assert m.loglik_ == pytest.approx(fits["offset"].loglik_, abs=1e-9)


def test_formula_parts_as_lmer_takes_them(fits):
    """0 + (a cell-means coding), nAGQ and link go through to the estimator."""
    m = skmixed.glmer(
        "count ~ 0 + f + x + (1 | g) + offset(log(exposure))", SIM, "poisson"
    )
    assert list(m.fixed_effects_.index) == ["fa", "fb", "fc", "x"]
    assert m.loglik_ == pytest.approx(fits["offset"].loglik_, abs=1e-9)
    beta = fits["offset"].fixed_effects_
    assert m.fixed_effects_["fb"] == pytest.approx(
        beta["(Intercept)"] + beta["fb"], abs=1e-5
    )
    formula = "count ~ x + (1 | g) + offset(log(exposure))"
    agq = skmixed.glmer(formula, SIM, "poisson", nAGQ=5)
    direct = MixedGLMRegressor(
        "(1 | g)", fixed_effects="x", offset="log(exposure)", family="poisson", nAGQ=5
    ).fit(SIM, SIM["count"])
    assert agq.nAGQ == 5
    assert agq.loglik_ == pytest.approx(direct.loglik_, abs=1e-12)
    assert skmixed.glmer("resp ~ x + (1 | g)", SIM, link="probit").link_ == "probit"


def test_from_formula_is_an_ordinary_estimator():
    """Unfitted, it clones and takes set_params; the summary keeps the formula."""
    m = MixedGLMRegressor.from_formula(
        "count ~ x + (1 | g) + offset(log(exposure))", family="poisson"
    )
    assert (m.random_effects, m.fixed_effects, m.offset) == (
        "(1 | g)",
        "x",
        "log(exposure)",
    )
    fitted = clone(m).fit(SIM, SIM["count"].rename("count"))
    text = str(fitted.summary())
    assert "Formula: count ~ x + (1 | g) + offset(log(exposure))" in text
    # changed parameters: the formula printed is the model's, not the old text
    changed = clone(m).set_params(fixed_effects="x + f").fit(SIM, SIM["count"])
    assert "count ~ x + f + (1 | g) + offset(log(exposure))" in str(changed.summary())
    with pytest.raises(TypeError, match="offset"):
        MixedGLMRegressor.from_formula(
            "y ~ x + (1 | g) + offset(log(e))", offset="log_e"
        )


def test_offset_of_a_column_and_split():
    f = skmixed._model_formula.split_glmer_formula(
        "cbind(s, n-s) ~ offset(a) + x - 1 + (1|g) + offset(log(e))"
    )
    assert f.cbind == ("s", "n - s")
    assert f.offsets == ("a", "log(e)")
    assert f.model.fixed == "x - 1"
    assert f.model.random == "(1 | g)"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: skmixed.glmer("count ~ x + nope + (1 | g)", SIM, "poisson"),
            "nope",
        ),
        (lambda: skmixed.glmer("missing ~ x + (1 | g)", SIM), "response 'missing'"),
        (
            lambda: skmixed.glmer("cbind(s, s - n) ~ x + (1 | g)", SIM),
            "s - n is negative",
        ),
        (
            lambda: skmixed.glmer("count ~ x + (1 | g)", SIM, family="gaussian"),
            "use skmixed.lmer",
        ),
        (
            lambda: skmixed.glmer("count ~ x + (1 | g)", SIM, family="Gamma"),
            "not supported by glmer",
        ),
        (
            lambda: skmixed.glmer(
                "count ~ x + (1 | g) + offset(log(nope))", SIM, "poisson"
            ),
            "nope",
        ),
        (lambda: skmixed.glmer("count ~ x", SIM, "poisson"), "no random-effects"),
        (lambda: skmixed.glmer("f ~ x + (1 | g)", SIM), "'f' is text"),
        (
            # a factor of 3 levels fits as glmer (tests/test_glmer_factor_response);
            # one level has no failure/success split
            lambda: skmixed.glmer(
                "f ~ x + (1 | g)", SIM.assign(f=pd.Categorical(["a"] * len(SIM)))
            ),
            "1 level",
        ),
        (
            lambda: skmixed.glmer("cbind(s) ~ x + (1 | g)", SIM),
            "cbind\\(successes, failures\\)",
        ),
        (
            lambda: skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", SIM, weights="n"),
            "do not pass weights",
        ),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cbind_response_of_a_poisson_model_is_refused():
    # glmer(cbind(s, f) ~ ..., family = poisson) stops in R; the proportion
    # s / (s + f) with s + f as weights is no Poisson count
    with pytest.raises(ValueError, match="cbind.*binomial"):
        skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", SIM, family="poisson")
    from skmixed.glmm.families import Poisson

    with pytest.raises(ValueError, match="cbind.*binomial"):
        skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", SIM, family=Poisson())


def test_family_object_takes_a_factor_response():
    # family=Binomial() reads a two-level factor response as family="binomial"
    from skmixed.glmm.families import Binomial

    by_name = skmixed.glmer("resp ~ x + (1 | g)", SIM)
    by_object = skmixed.glmer("resp ~ x + (1 | g)", SIM, family=Binomial())
    assert by_object.loglik_ == pytest.approx(by_name.loglik_, abs=1e-10)


def test_offset_column_whose_name_is_not_a_plain_name():
    # a column named "log e": offset="log e" (glmer's argument) and the
    # formula's offset(`log e`) both read it, as offset(log(exposure)) does
    data = SIM.assign(**{"log e": np.log(SIM["exposure"])})
    expected = skmixed.glmer(
        "count ~ x + (1 | g) + offset(log(exposure))", data, "poisson"
    ).loglik_
    by_argument = skmixed.glmer("count ~ x + (1 | g)", data, "poisson", offset="log e")
    by_term = skmixed.glmer("count ~ x + (1 | g) + offset(`log e`)", data, "poisson")
    for m in (by_argument, by_term):
        assert m.loglik_ == pytest.approx(expected, abs=1e-9)
        assert list(m.fixed_effects_.index) == ["(Intercept)", "x"]
    assert by_term.predict(data.head(3)) == pytest.approx(
        by_argument.predict(data.head(3)), rel=1e-12
    )


def test_non_integer_responses_warn_as_r_does():
    # R: glmer's binomial family warns "non-integer #successes in a binomial
    # glm!" for proportions without weights; poisson's dpois warns
    # "non-integer x = 2.500000". The fits go on.
    data = SIM.assign(p=SIM["s"] / SIM["n"], half=SIM["count"] + 0.5)
    with pytest.warns(UserWarning, match="non-integer #successes in a binomial glm!"):
        skmixed.glmer("p ~ x + (1 | g)", data)
    with warnings.catch_warnings():  # with the trials as weights: whole numbers
        warnings.filterwarnings("error", message="non-integer")
        skmixed.glmer("p ~ x + (1 | g)", data, weights="n")
        # R's tolerance: successes within 0.001 of a whole number are whole
        skmixed.glmer("p ~ x + (1 | g)", data, weights=data["n"] * (1 + 1e-5))
    with pytest.warns(UserWarning, match=r"non-integer x = \d+\.500000"):
        counts = skmixed.glmer("half ~ x + (1 | g)", data, family="poisson")
    assert np.isfinite(counts.loglik_)
