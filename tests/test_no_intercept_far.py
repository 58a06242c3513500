"""A model with no fixed intercept and y far from 0 (``y ~ 0 + x + (1 | g)``
with y moved by 1e4 .. 1e8) gives lme4's numbers.

No intercept can absorb y's offset, so the random intercepts take it (θ
grows with the offset) and yᵀy dwarfs the penalised residual sum of squares:
formed as a difference of the cross-products [Z X y]ᵀ[Z X y] it lost its
digits (REML 3498.710 for lme4's 3498.902 at 1e6, 6356.84 for 4051.522 at
1e8, σ 9.61 for 0.997; 2946.283177 for 2946.283132 at 1e4, silently).
lme4 forms the residuals from the rows; so does the fit now.

References (tests/data/no_intercept): ``no_intercept.json`` from lme4
1.1.31 (``make_refs.R``): its fit, and "polished", lme4's own criterion
minimised again from there in asinh θ (at 1e6 and 1e8 lme4's optimiser
stops short: its σ 2e-5 off at 1e8, and on the crossed, slope and weighted
models up to 7,000 above the optimum). ``exact.json`` (``make_exact.py``):
the one-term models' optimum in 60-digit arithmetic, which ours meet to
~1e-15 in the criterion and ~1e-8 in θ at every offset, where lme4's own
evaluation is 2.5e-7 off at 1e8.
"""

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skmixed import MixedLMRegressor

DATA = Path(__file__).parent / "data" / "no_intercept"
FRAME = pd.read_csv(DATA / "no_intercept.csv")
REFS = json.loads((DATA / "no_intercept.json").read_text())
EXACT = json.loads((DATA / "exact.json").read_text())
SPECS = {
    "int": "(1 | g)",
    "weighted": "(1 | g)",
    "slope": "(1 + x | g)",
    "crossed": "(1 | g) + (1 | h)",
    "none": "(1 | g)",
}


def _fit(key):
    ref = REFS[key]
    y = FRAME[ref["response"]] + ref["offset"]
    weights = FRAME["w"].to_numpy() if ref["weights"] else None
    columns = ["x", "g", "h"] if ref["model"] == "crossed" else ["x", "g"]
    model = MixedLMRegressor(SPECS[ref["model"]], fit_intercept=False, reml=ref["reml"])
    if ref["model"] == "none":  # y ~ 0 + (1 | g)
        model.set_params(fixed_effects=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(FRAME[columns], y, sample_weight=weights)
    return model


def _criterion(model):
    return model.reml_criterion_ if model.reml else model.deviance_


def _assert_matches(model, ref, rtol_theta, rtol):
    np.testing.assert_allclose(model.theta_, ref["theta"], rtol=rtol_theta)
    assert model.sigma_ == pytest.approx(ref["sigma"], rel=rtol)
    np.testing.assert_allclose(model.coef_, ref["fixef"], rtol=rtol)
    se = np.sqrt(np.diag(model.vcov_.to_numpy()))
    np.testing.assert_allclose(se, ref["se"], rtol=rtol)


def test_lme4_numbers_at_an_offset_of_1e4_to_1e8():
    # the user's call, lme4's REML criterion and σ (the issue's numbers)
    for offset, reml, sigma in [
        (1e4, 2946.283132, 0.99697),
        (1e6, 3498.902064, 0.99697),
        (1e8, 4051.522471, 0.99697),
    ]:
        X = FRAME[["x", "g"]]
        y = FRAME["y0"] + offset
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = MixedLMRegressor("(1 | g)", fit_intercept=False).fit(X, y)
        assert model.reml_criterion_ == pytest.approx(reml, rel=1e-9)
        assert model.sigma_ == pytest.approx(sigma, rel=1e-5)
        # a pickled fit evaluates the same criterion (from the rows)
        again = pickle.loads(pickle.dumps(model))
        assert again._criterion(again.theta_) == model.reml_criterion_


@pytest.mark.parametrize("key", sorted(EXACT))
def test_one_term_fits_meet_the_exact_optimum(key):
    # y ~ 0 + x + (1 | g), unweighted and weighted, REML and ML, offsets 0,
    # 1e4, 1e6, 1e8; lme4 (polished) is within 1e-10 (criterion) and 2e-5
    # (θ) of the same, its fit within 2e-4 in θ (σ 945 for 1.109 weighted,
    # REML, 1e8). y ~ 0 + (1 | g) (no fixed effect: an IndexError before)
    # at 0 and 1e4, where lme4's REML criterion is 1.0 off the exact one in
    # some runs (its θ and σ are right)
    model, exact = _fit(key), EXACT[key]
    assert _criterion(model) == pytest.approx(exact["criterion"], rel=1e-13)
    _assert_matches(model, exact, rtol_theta=1e-7, rtol=1e-8)
    if REFS[key]["model"] == "none":
        ref = REFS[key]
        np.testing.assert_allclose(model.theta_, ref["theta"], rtol=1e-6)
        assert model.sigma_ == pytest.approx(ref["sigma"], rel=1e-7)
    if "polished" not in REFS[key]:
        return
    lme4 = REFS[key]["polished"]
    assert _criterion(model) == pytest.approx(lme4["criterion"], rel=1e-10)
    _assert_matches(model, lme4, rtol_theta=2e-5, rtol=2e-6)


@pytest.mark.parametrize("reml", ["reml", "ml"])
@pytest.mark.parametrize(
    "model_offset, rtol_theta, rtol",
    [
        # θ and the rest to what lme4's own evaluation resolves: its
        # criterion is ~1e-12 relative off the rows' at 1e6, ~1e-10 at 1e8
        (("crossed", "0e+00"), 1e-6, 1e-7),
        (("crossed", "1e+04"), 2e-6, 2e-7),
        (("crossed", "1e+06"), 2e-5, 1e-6),
        (("crossed", "1e+08"), 2e-4, 1e-5),
        (("slope", "0e+00"), 1e-6, 1e-7),
        # a random slope's correlation with an intercept of ~1e4 leaves β
        # and λ10 a nearly flat direction (lme4's fit 0.023 short of it)
        (("slope", "1e+04"), 2e-5, 2e-5),
    ],
)
def test_several_terms_and_slopes_meet_lme4s_optimum(
    model_offset, rtol_theta, rtol, reml
):
    key = f"{model_offset[0]}_{model_offset[1]}_{reml}"
    model, ref = _fit(key), REFS[key]
    lme4 = ref["polished"]
    # not above lme4's optimum, beyond its evaluation's rounding
    noise = 1e-10 * abs(lme4["criterion"]) if ref["offset"] < 1e8 else 1e-6
    assert _criterion(model) == pytest.approx(lme4["criterion"], abs=noise)
    _assert_matches(model, lme4, rtol_theta, rtol)
    # where lme4's fit stopped at its optimum (every offset 0 fit, and
    # some at 1e4), also its own numbers
    at_optimum = abs(ref["criterion"] - lme4["criterion"]) < 1e-10 * lme4["criterion"]
    assert at_optimum or ref["offset"] > 0.0
    if at_optimum:
        assert _criterion(model) == pytest.approx(ref["criterion"], rel=1e-10)
        _assert_matches(model, ref, 10 * rtol_theta, 10 * rtol)


@pytest.mark.parametrize(
    "key", ["slope_1e+06_reml", "slope_1e+06_ml", "slope_1e+08_ml"]
)
def test_a_random_slope_far_from_zero_meets_lme4s_optimum(key):
    # (1 + x | g) where the intercepts take an offset of 1e6 / 1e8: β and
    # λ10 trade along a nearly flat ridge (λ10 / λ00 ≈ −0.086), which
    # lme4's fit left up to 1,000 above its optimum and ours, before a
    # restart from its first stop, 3.0 above at 1e8 (ML); both now within
    # lme4's evaluation noise of it, θ and β to the ridge's 3e-4
    model, lme4 = _fit(key), REFS[key]["polished"]
    assert _criterion(model) == pytest.approx(lme4["criterion"], abs=2e-6)
    _assert_matches(model, lme4, rtol_theta=5e-4, rtol=5e-4)


def test_a_random_slope_at_1e8_reml_goes_below_lme4s_stop():
    # lme4's REML fit at 1e8 stopped 1,650 above, and polishing it from
    # there ends on another point of the ridge (λ10 = −175 where the ML fit
    # and every lower offset have λ10 / λ00 ≈ −0.086): 2.97 above ours
    model, lme4 = _fit("slope_1e+08_reml"), REFS["slope_1e+08_reml"]["polished"]
    assert _criterion(model) < lme4["criterion"] - 2.9
    assert model.theta_[1] / model.theta_[0] == pytest.approx(-0.0861, abs=1e-3)


@pytest.mark.parametrize("offset", ["0e+00", "1e+04", "1e+06", "1e+08"])
def test_satterthwaite_df_as_lmertest(offset):
    # lmerTest 542.87 at 0, 539.0 at 1e4; from 1e6 on both it and ours find
    # the θ direction of the deviance Hessian "close to zero" (~1/θ²),
    # warn, and drop it (599)
    model, ref = _fit(f"int_{offset}_reml"), REFS[f"int_{offset}_reml"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Model may not have converged")
        df = model.summary().coefficients["df"].to_numpy(dtype=float)
    np.testing.assert_allclose(df, ref["df"], rtol=1e-7)


def test_ml_refit_of_a_far_fit_is_the_ml_fit():
    # anova's refit (lme4's refitML) of the REML fit: the ML optimum, whose
    # rows-formed criterion meets the exact one
    from skmixed import anova

    reml = _fit("int_1e+06_reml")
    smaller = MixedLMRegressor("(1 | g)", fit_intercept=False, fixed_effects=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smaller.fit(FRAME[["x", "g"]], FRAME["y0"] + 1e6)
        table = anova(smaller, reml)
    assert -2.0 * table["logLik"].iloc[1] == pytest.approx(
        EXACT["int_1e+06_ml"]["criterion"], rel=1e-13
    )


def test_bootstrap_says_it_cannot():
    model = _fit("int_1e+04_reml")
    with pytest.raises(NotImplementedError, match="far from 0.*method='profile'"):
        model.conf_int(method="boot")


@pytest.mark.parametrize(
    "key",
    ["int_1e+04_reml", "int_1e+06_reml", "crossed_0e+00_reml", "crossed_1e+04_reml"],
)
def test_profile_intervals_as_lme4(key):
    # the profiles evaluate the ML criterion from the rows as the fit does:
    # lme4's confint(method = "profile") (its spline) to 2e-5, as at offset 0
    # (lme4's profile of crossed at 1e6 stops with an error)
    model, expected = _fit(key), REFS[key]["confint_profile"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = model.conf_int(method="profile")
    np.testing.assert_allclose(table["lower"], expected["lower"], rtol=5e-5)
    np.testing.assert_allclose(table["upper"], expected["upper"], rtol=5e-5)
