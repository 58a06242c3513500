"""Numerical robustness (issue 7): awkward data against lme4, scale equivariance.

The awkward data sets and their lme4 references are in tests/data/robustness
(``make_data.py`` simulated them, ``make_refs.R`` fitted them with lme4
1.1.31). test_mixed_estimator.py checks them loosely; here every reported
number is checked, each to the tolerance the shape of the optimum allows:

- ``pairs_10k``, ``one_big_group``: a sharp optimum; both fits stop within
  1e-9 of it and agree to ~1e-7.
- ``corr_slopes`` (|ρ| = 0.99): the criterion is flat along the ridge of
  strongly correlated θ; ours is 6e-9 *lower* than lme4's, and θ, the SDs
  and the SEs differ by up to 2e-5 (θ) / 3e-6 (relative) as a result.
- ``zero_slope_var`` (singular): the slope SD (0.015) sits on a flat
  boundary direction; it agrees to 1.5e-4 relative, everything else to 1e-5.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from skmixed import FixedEffectsRegressor, MixedLMRegressor, PooledRegressor
from skmixed.datasets import load_sleepstudy

ROBUSTNESS = Path(__file__).parent / "data" / "robustness"

# case -> (relative tolerance of SEs, σ and SDs; absolute of θ and correlations)
TOLERANCES = {
    "pairs_10k": (1e-7, 1e-7),
    "one_big_group": (1e-6, 1e-6),
    "corr_slopes": (1e-5, 5e-5),
    "zero_slope_var": (2e-4, 5e-5),
}


@pytest.fixture(scope="module", params=list(TOLERANCES))
def case(request):
    name = request.param
    ref = json.loads((ROBUSTNESS / f"{name}.json").read_text())
    frame = pd.read_csv(ROBUSTNESS / f"{name}.csv", dtype={"g": str})
    spec = ref["formula"].split("x + ")[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MixedLMRegressor(spec, reml=ref["REML"]).fit(
            frame[["x", "g"]], frame["y"]
        )
    return name, ref, model, [str(w.message) for w in caught]


def test_criterion_is_lme4s_or_lower(case):
    _, ref, model, _ = case
    assert model.reml_criterion_ - ref["criterion"] <= 1e-6


def test_fixed_effects_and_standard_errors(case):
    name, ref, model, _ = case
    rel, _ = TOLERANCES[name]
    se_ref = np.array(list(ref["se"].values()))
    beta_ref = np.array(list(ref["fixef"].values()))
    # β moves with θ only through the flat direction: within 1e-6 SE
    diff = np.abs(model.fixed_effects_.to_numpy() - beta_ref)
    assert np.all(diff <= 1e-6 * se_ref)
    np.testing.assert_allclose(np.sqrt(np.diag(model.vcov_)), se_ref, rtol=rel)


def test_sigma_theta_and_variance_components(case):
    name, ref, model, _ = case
    rel, absolute = TOLERANCES[name]
    assert model.sigma_ == pytest.approx(ref["sigma"], rel=rel)
    np.testing.assert_allclose(model.theta_, np.atleast_1d(ref["theta"]), atol=absolute)
    table = model.variance_components_
    expected = pd.DataFrame(ref["varcorr"])
    assert table["group"].tolist() == expected["grp"].tolist()
    is_corr = table["var2"].notna().to_numpy()
    np.testing.assert_allclose(
        table["sdcor"][~is_corr], expected["sdcor"][~is_corr], rtol=rel
    )
    np.testing.assert_allclose(
        table["sdcor"][is_corr], expected["sdcor"][is_corr], atol=absolute
    )


def test_singular_flag_and_warning(case):
    _, ref, model, messages = case
    assert model.is_singular_ == ref["is_singular"]
    singular = [m for m in messages if "boundary (singular) fit" in m]
    assert bool(singular) == ref["is_singular"]
    if ref["is_singular"]:
        assert singular == [ref["messages"].strip()]
    # a correct fit, singular or not, has nothing else to say
    assert len(messages) == len(singular)


# -- Dyestuff2-like data: no between-group variance --------------------------------
def test_dyestuff2_like_singular_fit_is_the_pooled_fit():
    """Six batches of five with the between-batch mean square below the
    within: the REML estimate of the batch variance is 0 (θ = 0, singular,
    lme4's warning) and the fit *is* the pooled least-squares fit."""
    rng = np.random.default_rng(2)
    batch = np.repeat(np.arange(6), 5)
    e = rng.normal(5.0, 3.7, 30)
    means = np.bincount(batch, e)[batch] / 5
    y = e - 0.9 * (means - e.mean())  # shrink the batch means together
    X = pd.DataFrame({"Batch": [f"{chr(65 + b)}" for b in batch]})
    with pytest.warns(UserWarning, match=r"boundary \(singular\) fit"):
        model = MixedLMRegressor("(1 | Batch)").fit(X, y)
    assert model.is_singular_ and model.theta_.tolist() == [0.0]
    n = len(y)
    assert model.intercept_ == pytest.approx(y.mean(), rel=1e-12)
    sigma2 = np.sum((y - y.mean()) ** 2) / (n - 1)
    assert model.sigma_ == pytest.approx(np.sqrt(sigma2), rel=1e-12)
    # the REML criterion of lm(y ~ 1): (n - 1)(1 + log 2πσ²) + log n
    expected = (n - 1) * (1 + np.log(2 * np.pi * sigma2)) + np.log(n)
    assert model.reml_criterion_ == pytest.approx(expected, rel=1e-12)
    assert model.variance_components_["sdcor"].iloc[0] == 0.0


# -- scale equivariance ----------------------------------------------------------------
@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy()


def _lm_table(model):
    return model.summary().coefficients


@pytest.mark.parametrize("c", [1e12, 1e-12])
@pytest.mark.parametrize("estimator", [PooledRegressor, FixedEffectsRegressor])
def test_lm_scaling_y_scales_coefficients_and_keeps_t(sleep, estimator, c):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    base = estimator(group="Subject").fit(X, y)
    scaled = estimator(group="Subject").fit(X, y * c)
    a, b = _lm_table(base), _lm_table(scaled)
    np.testing.assert_allclose(b["estimate"] / c, a["estimate"], rtol=1e-10)
    np.testing.assert_allclose(b["std_error"] / c, a["std_error"], rtol=1e-10)
    np.testing.assert_allclose(b["t_value"], a["t_value"], rtol=1e-10)
    assert scaled.sigma_ / c == pytest.approx(base.sigma_, rel=1e-10)


@pytest.mark.parametrize("c", [1e12, 1e-12, 1e6])
@pytest.mark.parametrize("estimator", [PooledRegressor, FixedEffectsRegressor])
def test_lm_scaling_a_predictor_divides_its_coefficient(sleep, estimator, c):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    base = estimator(group="Subject").fit(X, y)
    scaled = estimator(group="Subject").fit(X.assign(Days=X["Days"] * c), y)
    assert scaled.coef_[0] * c == pytest.approx(base.coef_[0], rel=1e-10)
    assert _lm_table(scaled)["t_value"]["Days"] == pytest.approx(
        _lm_table(base)["t_value"]["Days"], rel=1e-10
    )
    np.testing.assert_allclose(scaled.fittedvalues_, base.fittedvalues_, rtol=1e-10)


@pytest.mark.parametrize("c", [1e12, 1e-12])
def test_mixed_scaling_y_is_equivariant(sleep, c):
    """β, SDs, σ scale by c; correlations, θ and t values do not move.

    Tolerance: θ is scale-free, but the criterion (shifted by 2 (n - p) log c)
    is evaluated in other floating-point numbers, so BOBYQA takes another
    path to the same optimum and stops within its step tolerance: θ agrees
    to 2e-7 (measured), the SDs and σ to ~1e-8 relative.
    """
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    base = MixedLMRegressor("(Days | Subject)").fit(X, y)
    scaled = MixedLMRegressor("(Days | Subject)").fit(X, y * c)
    np.testing.assert_allclose(
        scaled.fixed_effects_ / c, base.fixed_effects_, rtol=1e-9
    )
    assert scaled.sigma_ / c == pytest.approx(base.sigma_, rel=1e-7)
    np.testing.assert_allclose(scaled.theta_, base.theta_, atol=1e-6)
    sd_base, sd_scaled = base.variance_components_, scaled.variance_components_
    is_corr = sd_base["var2"].notna().to_numpy()
    np.testing.assert_allclose(
        sd_scaled["sdcor"][~is_corr] / c, sd_base["sdcor"][~is_corr], rtol=1e-6
    )
    np.testing.assert_allclose(
        sd_scaled["sdcor"][is_corr], sd_base["sdcor"][is_corr], atol=1e-6
    )
    t_base = base.fixed_effects_ / np.sqrt(np.diag(base.vcov_))
    t_scaled = scaled.fixed_effects_ / np.sqrt(np.diag(scaled.vcov_))
    np.testing.assert_allclose(t_scaled, t_base, rtol=1e-6)
    # the criterion moves by exactly the Jacobian of y -> c y
    shift = 2 * (len(y) - 2) * np.log(c)
    assert scaled.reml_criterion_ - shift == pytest.approx(
        base.reml_criterion_, abs=1e-6
    )


@pytest.mark.parametrize("c", [1e12, 1e-12, 1e3, 1e-6])
def test_mixed_scaling_a_fixed_only_predictor(sleep, c):
    """Days only in the fixed part, (1 | Subject): its coefficient is 1/c."""
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    base = MixedLMRegressor("(1 | Subject)").fit(X, y)
    scaled = MixedLMRegressor("(1 | Subject)").fit(X.assign(Days=X["Days"] * c), y)
    assert scaled.coef_[0] * c == pytest.approx(base.coef_[0], rel=1e-9)
    # θ and σ are untouched up to the stopping rule (1.2e-8 at c = 1e-12)
    np.testing.assert_allclose(scaled.theta_, base.theta_, rtol=1e-6)
    assert scaled.sigma_ == pytest.approx(base.sigma_, rel=1e-7)
    # REML: X -> X diag(1, c) adds log c² to log|R_X|²
    assert scaled.reml_criterion_ == pytest.approx(
        base.reml_criterion_ + 2 * np.log(c), abs=1e-6
    )


@pytest.mark.parametrize("scale", [1e3, 1e-6, 1e12, 1e-12])
def test_mixed_random_slope_scale_equivariance(sleep, scale):
    """Days * c in (Days | Subject): the same model, so the equivariant
    transform of the well-scaled fit -- θ is optimised through the
    standardised slope column (before, 1e3 and 1e-6 stopped at wrong optima
    without a word and 1e12 raised a LinAlgError)."""
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    base = MixedLMRegressor("(Days | Subject)").fit(X, y)
    moved_X = X.assign(Days=X["Days"] * scale)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged, not singular: no warning
        moved = MixedLMRegressor("(Days | Subject)").fit(moved_X, y)
    assert moved.reml_criterion_ == pytest.approx(
        base.reml_criterion_ + 2 * np.log(scale), abs=1e-6
    )
    assert moved.coef_[0] * scale == pytest.approx(base.coef_[0], rel=1e-6)
    assert moved.sigma_ == pytest.approx(base.sigma_, rel=1e-5)
    sd, sd_base = (
        moved.variance_components_["sdcor"],
        base.variance_components_["sdcor"],
    )
    assert sd[0] == pytest.approx(sd_base[0], rel=1e-5)
    assert sd[1] * scale == pytest.approx(sd_base[1], rel=1e-5)
    assert sd[2] == pytest.approx(sd_base[2], abs=1e-4)
    assert not moved.is_singular_
    np.testing.assert_allclose(moved.predict(moved_X), base.predict(X), rtol=1e-6)


@pytest.mark.parametrize("scale, shift", [(1.0, 1e4), (1e6, 1e9)])
def test_mixed_shifted_random_slope_equivariance(sleep, scale, shift):
    """Days * s + c in (Days | Subject) and in the fixed part: the same model.

    Before, the cross-products of the data's own scale lost most digits (lme4's
    'Downdated VtV' territory) and the fit stopped short (criterion 6.2 and
    9e-5 too high) with a ConvergenceWarning; now it is fitted through the
    centred slope column and mapped back. With x = s d + c, the user's
    parameters are those of d under B = [[1, -c/s], [0, 1/s]] (β = B β_d,
    Σ = B Σ_d Bᵀ, b = B b_d); mapped to d's scale they must equal the
    well-scaled fit's.

    Tolerances: the criterion agrees to 2e-11 (measured; asserted 1e-8);
    BOBYQA takes another path to the same optimum, so θ-dependent numbers
    agree to its step tolerance: fitted values 7e-6 absolute (values ~300),
    SDs 1e-7 relative (asserted 1e-5 / 1e-6); β and SEs in d's scale 1e-7.
    """
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    base = MixedLMRegressor("(Days | Subject)").fit(X, y)
    moved_X = X.assign(Days=X["Days"] * scale + shift)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged, not singular: no warning
        moved = MixedLMRegressor("(Days | Subject)").fit(moved_X, y)
    assert moved.converged_ and not moved.is_singular_
    # x -> s x: log|R_X|² moves by 2 log s; the shift moves nothing
    assert moved.reml_criterion_ == pytest.approx(
        base.reml_criterion_ + 2 * np.log(scale), abs=1e-8
    )
    assert moved.sigma_ == pytest.approx(base.sigma_, rel=1e-6)
    np.testing.assert_allclose(moved.fittedvalues_, base.fittedvalues_, atol=1e-4)
    np.testing.assert_allclose(moved.predict(moved_X), base.predict(X), atol=1e-4)
    # back to d's scale: Binv = [[1, c], [0, s]] (x = s d + c)
    Binv = np.array([[1.0, shift], [0.0, scale]])
    np.testing.assert_allclose(
        Binv @ moved.fixed_effects_.to_numpy(), base.fixed_effects_, rtol=1e-7
    )
    vcov = Binv @ moved.vcov_.to_numpy() @ Binv.T
    # the small covariance (-1.45 next to 46.6) differs by 3e-6 (measured)
    target = base.vcov_.to_numpy()
    np.testing.assert_allclose(vcov, target, rtol=1e-6, atol=1e-6 * target.max())
    sdcor = moved.variance_components_["sdcor"].to_numpy()
    sd, cor = sdcor[:2], sdcor[2]
    cov = np.diag(sd) @ np.array([[1.0, cor], [cor, 1.0]]) @ np.diag(sd)
    cov_d = Binv @ cov @ Binv.T
    sd_base = base.variance_components_["sdcor"].to_numpy()
    np.testing.assert_allclose(np.sqrt(np.diag(cov_d)), sd_base[:2], rtol=1e-5)
    assert cov_d[0, 1] / np.sqrt(cov_d[0, 0] * cov_d[1, 1]) == pytest.approx(
        sd_base[2], abs=1e-5
    )
    # θ_ is lme4's θ of the user's columns: Λθ Λθᵀ σ² is the covariance above
    lam = np.array([[moved.theta_[0], 0.0], [moved.theta_[1], moved.theta_[2]]])
    np.testing.assert_allclose(
        moved.sigma_**2 * lam @ lam.T, cov, rtol=1e-9, atol=1e-9 * cov[0, 0]
    )
    b = moved.random_effects_["Subject"].to_numpy() @ Binv.T
    np.testing.assert_allclose(b, base.random_effects_["Subject"], atol=1e-4)
    cond = Binv @ moved.random_effects_cov_["Subject"] @ Binv.T
    np.testing.assert_allclose(cond, base.random_effects_cov_["Subject"], rtol=1e-5)


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger"])
def test_mixed_shifted_slope_tests_match_the_centred_model(sleep, ddf):
    """The t and F tests of a shifted fixed + random slope column are run on
    the centred fit (the data's own cross-products gave Satterthwaite df 161
    for 17): the slope's test is invariant, so it equals the well-scaled
    fit's (1e-5: df is a ratio of numerical derivatives)."""
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    base = MixedLMRegressor("(Days | Subject)").fit(X, y)
    moved = MixedLMRegressor("(Days | Subject)").fit(X.assign(Days=X["Days"] + 1e4), y)
    t_base = base.summary(ddf=ddf).coefficients.loc["Days"]
    t_moved = moved.summary(ddf=ddf).coefficients.loc["Days"]
    np.testing.assert_allclose(
        t_moved.to_numpy(dtype=float), t_base.to_numpy(dtype=float), rtol=1e-5
    )
    f_base, f_moved = base.anova(ddf=ddf), moved.anova(ddf=ddf)
    np.testing.assert_allclose(
        f_moved.to_numpy(dtype=float), f_base.to_numpy(dtype=float), rtol=1e-5
    )
    # the intercept is now the mean at x = 0: the contrast (1, c) is the old one
    # (p ~ 1e-17 there: relative differences grow 20-fold in that tail)
    row = moved.contest({"(Intercept)": 1.0, "Days": 1e4}, ddf=ddf)
    old = base.contest({"(Intercept)": 1.0}, ddf=ddf)
    np.testing.assert_allclose(
        row.to_numpy(dtype=float), old.to_numpy(dtype=float), rtol=1e-3
    )
    np.testing.assert_allclose(
        row.to_numpy(dtype=float)[0, :-1], old.to_numpy(dtype=float)[0, :-1], rtol=1e-5
    )


def test_mixed_shifted_slope_profile_intervals_refuse(sleep):
    """Profiles of the shifted fit have no centred counterpart: a clear error
    (Wald intervals, from the mapped vcov_, are available)."""
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    moved = MixedLMRegressor("(Days | Subject)").fit(X.assign(Days=X["Days"] + 1e4), y)
    with pytest.raises(NotImplementedError, match="centre that column"):
        moved.conf_int(method="profile")
    assert np.isfinite(moved.conf_int(method="wald").to_numpy()).all()


def test_mixed_shifted_uncorrelated_slope_keeps_the_old_path(sleep):
    """(Days || Subject): centring the random slope would change the model,
    so it is not done (the term takes the data's own column, as before);
    only the fixed part's copy of Days is centred, which keeps the model."""
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moved = MixedLMRegressor("(Days || Subject)").fit(
            X.assign(Days=X["Days"] + 1e4), y
        )
    assert not moved._centred.slopes_centred
    assert moved._centred.M[0, 1] == pytest.approx(-X["Days"].mean() - 1e4)


def test_mixed_one_shifted_slope_among_two(sleep):
    """(Days + D2 | Subject), only Days shifted by 1e4: the 3 x 3 covariance
    is mapped through A with one centred column.

    Measured: criterion 6e-11 from the well-scaled fit's, fitted values
    5e-5 (BOBYQA's step tolerance on the flatter 6-parameter surface),
    Satterthwaite df of Days 3e-6 relative.
    """
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    X = X.assign(D2=np.random.default_rng(0).normal(size=len(y)))
    spec = "(Days + D2 | Subject)"
    base = MixedLMRegressor(spec).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moved = MixedLMRegressor(spec).fit(X.assign(Days=X["Days"] + 1e4), y)
    assert moved.reml_criterion_ == pytest.approx(base.reml_criterion_, abs=1e-8)
    np.testing.assert_allclose(moved.fittedvalues_, base.fittedvalues_, atol=1e-3)
    np.testing.assert_allclose(moved.coef_, base.coef_, rtol=1e-5)
    row, row_base = (
        m.summary().coefficients.loc["Days"].to_numpy(dtype=float)
        for m in (moved, base)
    )
    np.testing.assert_allclose(row[:4], row_base[:4], rtol=1e-4)
    # the slope SDs and their correlation do not move; σ neither
    sd, sd_base = (m.variance_components_["sdcor"].to_numpy() for m in (moved, base))
    np.testing.assert_allclose(sd[[1, 2, 5, 6]], sd_base[[1, 2, 5, 6]], rtol=1e-4)


@pytest.mark.parametrize(
    "spec, key", [("(1|g)", "intercept"), ("(x1||g)", "uncorrelated")]
)
def test_mixed_shifted_fixed_column_matches_lme4(spec, key):
    """A fixed-effect column far from 0 (x1 = 1e4 + N(0, 1)) that is not a
    correlated random slope: XᵀX loses ~8 digits at the data's scale, so the
    fit goes through the centred column (β mapped back).

    Before, the criterion moved by 2e-7 relative and θ by 1e-3 when the rows
    were permuted, and (x1 || g) stopped off the boundary with a
    ConvergenceWarning. Reference: lme4 (tests/data/far_from_zero), whose own
    criterion moves by 2e-7 absolute and θ by 2e-5 under permutations; ours
    agree to 1e-11 (asserted 1e-9) across permutations.
    """
    data = Path(__file__).parent / "data" / "far_from_zero"
    df = pd.read_csv(data / "far_from_zero.csv")
    ref = json.loads((data / "far_from_zero.json").read_text())[key]
    fits = []
    for seed in (None, 1, 2):
        d = df if seed is None else df.sample(frac=1.0, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.filterwarnings("ignore", "boundary", UserWarning)
            fits.append(MixedLMRegressor(spec).fit(d[["x1", "g"]], d["y"]))
    criteria = [m.reml_criterion_ for m in fits]
    assert np.ptp(criteria) < 1e-9 * criteria[0]
    model = fits[0]
    assert model.reml_criterion_ == pytest.approx(ref["reml"], abs=1e-6)
    np.testing.assert_allclose(model.theta_, ref["theta"], rtol=5e-5, atol=1e-6)
    np.testing.assert_allclose(model.fixed_effects_, ref["fixef"], rtol=1e-6)
    assert model.is_singular_ == ref["singular"]
    se = np.sqrt(np.diag(model.vcov_.to_numpy()))
    np.testing.assert_allclose(se, ref["se"], rtol=1e-5)


@pytest.mark.parametrize("reml", [True, False])
def test_response_far_from_zero_is_the_same_model(reml):
    """y = Reaction + 1e8 is Reaction's model with β0 + 1e8 (lme4 fits it
    from the rows, by QR, to the unshifted fit's numbers). Its own [X y]ᵀ[X y]
    lost y's digits: θ 0.972 for 0.967, σ 25.55 for 25.59 and a spurious
    ConvergenceWarning; on other data θ wrong by 50% without one. The fit
    subtracts a constant from y where the intercept absorbs it."""
    df = load_sleepstudy()
    X = df[["Days", "Subject"]]
    spec = "(Days | Subject)"
    plain = MixedLMRegressor(spec, reml=reml).fit(X, df["Reaction"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        shifted = MixedLMRegressor(spec, reml=reml).fit(X, df["Reaction"] + 1e8)
    assert shifted.loglik_ == pytest.approx(plain.loglik_, rel=1e-10)
    np.testing.assert_allclose(shifted.theta_, plain.theta_, rtol=1e-7)
    assert shifted.sigma_ == pytest.approx(plain.sigma_, rel=1e-9)
    beta = shifted.fixed_effects_.to_numpy() - [1e8, 0.0]
    np.testing.assert_allclose(beta, plain.fixed_effects_.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(shifted.vcov_, plain.vcov_, rtol=1e-7)
    np.testing.assert_allclose(
        shifted.random_effects_["Subject"], plain.random_effects_["Subject"], rtol=1e-6
    )
    np.testing.assert_allclose(shifted.predict(X) - 1e8, plain.predict(X), atol=1e-6)
    if reml:
        ref = json.loads(
            (Path(__file__).parent / "data" / "ss_lmer_slope_reml.json").read_text()
        )
        np.testing.assert_allclose(shifted.theta_, ref["theta"]["values"], rtol=5e-5)
    # Satterthwaite's tests on the centred fit, about the user's β0
    got, want = shifted.summary().coefficients, plain.summary().coefficients
    np.testing.assert_allclose(
        got["estimate"] - [1e8, 0.0], want["estimate"], rtol=1e-9
    )
    np.testing.assert_allclose(got["df"], want["df"], rtol=1e-5)
    np.testing.assert_allclose(got["std_error"], want["std_error"], rtol=1e-7)
    # profiles need the data's own cross-products: refused, not wrong
    with pytest.raises(NotImplementedError, match="y is far from 0"):
        shifted.conf_int(method="profile")


def test_response_moderately_far_from_zero_keeps_its_profiles():
    # y = Reaction + 1e4 (37 times its range) is fitted through y less a
    # constant too; its own cross-products keep enough digits for profiles
    df = load_sleepstudy()
    X = df[["Days", "Subject"]]
    plain = MixedLMRegressor("(Days | Subject)").fit(X, df["Reaction"])
    shifted = MixedLMRegressor("(Days | Subject)").fit(X, df["Reaction"] + 1e4)
    np.testing.assert_allclose(shifted.theta_, plain.theta_, rtol=1e-9)
    got = shifted.conf_int(method="profile")
    want = plain.conf_int(method="profile")
    want.loc["(Intercept)"] += 1e4
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_response_far_from_zero_is_no_exact_fit():
    # y = 1e8 + x1 + N(0, 1): its own [X y]ᵀ[X y] called y a combination of
    # X's columns (an error) or gave σ 2.6 for 1.0; the fit equals that of
    # y - 1e8
    rng = np.random.default_rng(1)
    g = rng.integers(0, 150, 600)
    X = pd.DataFrame({"x1": rng.normal(size=600), "g": g})
    noise = X["x1"] + rng.normal(size=600)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "boundary", UserWarning)
        plain = MixedLMRegressor("(1 | g)").fit(X, noise)
        shifted = MixedLMRegressor("(1 | g)").fit(X, 1e8 + noise)
    assert shifted.sigma_ == pytest.approx(plain.sigma_, rel=1e-7)
    assert shifted.loglik_ == pytest.approx(plain.loglik_, rel=1e-9)
    np.testing.assert_allclose(shifted.theta_, plain.theta_, atol=1e-6)


@pytest.mark.parametrize(
    "reml, loglik, theta",
    [
        # lme4 1.1 (bobyqa, rhoend 1e-10) on these data, written as CSV
        (True, -9996.29567514805, [0.0133433982, 0.0886396774, 0.0]),
        (False, -9989.30905955829, [0.0132800260, 0.0878446375, 0.0]),
    ],
)
def test_degenerate_stop_restarts_toward_a_rank_one_covariance(reml, loglik, theta):
    # a slope variance ~1e-4 of the residual's on 2,300 levels: BOBYQA from
    # lme4's start and from the ridge stopped with λ00 = 0 (the slope's
    # variance alone) 0.056 below lme4's logLik, silently; lme4's optimum is
    # the rank-one covariance with both variances (λ11 = 0)
    rng = np.random.default_rng(12)
    n, m = 7000, 2300
    g = rng.integers(0, m, n)
    x1 = rng.normal(size=n)
    b = rng.normal(size=m) * 0.3
    rng.normal(size=n)
    y = 3.0 + x1 + rng.normal(size=n) + b[g] * 0.02
    X = pd.DataFrame({"x1": x1, "g": np.char.add("L", g.astype(str))})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "boundary", UserWarning)
        model = MixedLMRegressor("(x1 | g)", reml=reml).fit(X, y)
    assert model.loglik_ >= loglik - 1e-7
    np.testing.assert_allclose(model.theta_, theta, atol=1e-5)


def _no_intercept_data(offset):
    # y = 2 x + b_g + e (60 groups of 10) plus an offset; fitted as lme4's
    # y ~ 0 + x + (1 | g), where no fixed intercept can absorb the offset
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(60), 10)
    x = rng.normal(size=600)
    y = 2 * x + 2 * rng.normal(size=60)[g] + rng.normal(size=600) + offset
    return pd.DataFrame({"x": x, "g": [f"g{i}" for i in g]}), y


def test_precision_lost_to_random_intercepts_of_a_vast_variance_is_said():
    # y ~ x + (1 | g) with intercepts of sd 1e6 (σ 1): yᵀy is ~1e12 times
    # the penalised RSS, which the cross-products then keep to ~3 digits
    # (lme4, from the rows, stops with a gradient warning at σ 0.9975; its
    # RX loses the same digits to the intercept). The warning says how few
    # digits are left and names the random effects
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(60), 10)
    x = rng.normal(size=600)
    y = 2 * x + 1e6 * rng.normal(size=60)[g] + rng.normal(size=600)
    X = pd.DataFrame({"x": x, "g": [f"g{i}" for i in g]})
    with pytest.warns(UserWarning, match="lost precision.*random effects"):
        MixedLMRegressor("(1 | g)").fit(X, y)


def test_a_response_near_zero_keeps_its_precision_silently():
    # y ~ 0 + x + (1 | g) at an offset of 1e4: the cross-products kept ~8
    # digits (2946.283177 for lme4's 2946.283132); r² formed from the rows
    # keeps them all, silently (offsets to 1e8: test_no_intercept_far.py)
    X, y = _no_intercept_data(1e4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MixedLMRegressor("(1 | g)", fit_intercept=False).fit(X, y)
    assert model.reml_criterion_ == pytest.approx(2946.28313226619, rel=1e-12)
