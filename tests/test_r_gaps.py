"""Formula and level details where skmixed followed R only in part, against
R's own output (tests/data/r_gaps, make_r_gaps.R; R 4.2.2, lme4 1.1-31):
levels of a factor among the rows R uses (after na.omit), factor() of a
one-valued column, glmer's constant response, R's labels of doubles
(``1e+05``) and ``!`` in formula terms."""

import warnings

import numpy as np
import pandas as pd
import pytest
from _r_outputs import r_data, r_output

import skmixed

_R = r_output("r_gaps", "r_gaps")


@pytest.fixture
def data():
    d = r_data("r_gaps", "r_gaps")
    d["f"] = np.tile([1e5, 2e5, 0.1 + 0.2], len(d) // 3)  # R's doubles
    return d


def _quiet(fit, *args, **kwargs):
    """A fit with missing='drop' (R's na.omit), its drop warning silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "missing='drop'")
        return fit(*args, missing="drop", **kwargs)


# -- R's labels of doubles: as.character's -------------------------------------------
def test_double_group_levels_are_r_labels(data):
    # R: rownames(ranef(lmer(y ~ x + (1 | g), d))$g)
    model = _quiet(skmixed.lmer, "y ~ x + (1 | g)", data)
    modes = model.random_effects_["g"]
    assert list(modes.index) == _R["ranef_levels"]  # "1e+05", "150000", ...
    np.testing.assert_allclose(modes.iloc[:, 0], _R["ranef"], atol=1e-5)
    np.testing.assert_allclose(
        model.fixed_effects_, list(_R["lmer_fixef"].values()), atol=1e-6
    )


def test_predict_finds_a_double_level(data):
    model = _quiet(skmixed.lmer, "y ~ x + (1 | g)", data)
    new = pd.DataFrame({"x": [0.0], "g": [1e5]})
    shift = model.predict(new) - model.predict(new, include_random=False)
    assert shift[0] == pytest.approx(_R["ranef"][1], abs=1e-5)


def test_factor_of_doubles_names_coefficients_as_r(data):
    # R: coef(lm(y ~ x + factor(f), d)), f in 1e5, 2e5, 0.1 + 0.2
    model = _quiet(skmixed.lm, "y ~ x + factor(f)", data)
    r = _R["lm_factor_double"]
    assert list(model.params_.index) == list(r)  # factor(f)1e+05, ...
    np.testing.assert_allclose(model.params_, list(r.values()), atol=1e-10)


# -- glmer: a constant response is refused, as lme4's checkResponse does ------------
@pytest.mark.parametrize(
    ("case", "column", "family", "match"),
    [
        ("glmer_factor_one_level", "yes", "binomial", r"1 level\(s\) \['yes'\]"),
        ("glmer_factor_one_used", "yes2", "binomial", r"1 level\(s\) \['yes'\]"),
        ("glmer_all_zero", "zero", "binomial", "is constant .every row 0"),
        ("glmer_poisson_zero", "zero", "poisson", "is constant .every row 0"),
    ],
)
def test_glmer_refuses_a_constant_response(data, case, column, family, match):
    assert _R[case] == "Response is constant"
    data = data.dropna()
    data["yes"] = pd.Categorical(["yes"] * len(data))
    data["yes2"] = pd.Categorical(["yes"] * len(data), categories=["no", "yes"])
    data["zero"] = 0.0
    with pytest.raises(ValueError, match=match) as caught:
        skmixed.glmer(f"{column} ~ x + (1 | g)", data, family=family)
    assert "Response is constant" in str(caught.value)


def test_glmer_refuses_a_constant_cbind_response(data):
    assert _R["glmer_cbind_constant"] == "Response is constant"
    data = data.dropna().assign(s=2.0, n=5.0)
    with pytest.raises(ValueError, match=r"constant .every row cbind\(2, 3\)"):
        skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", data)


def test_glmer_fits_a_response_of_two_values(data):
    data = data.dropna()
    data["yes"] = (data["y"] > data["y"].median()).astype(float)
    model = skmixed.glmer("yes ~ x + (1 | g)", data)
    assert np.isfinite(model.loglik_)


# -- a factor with one level among the rows R uses -----------------------------------
@pytest.mark.parametrize(
    ("case", "fit", "formula", "categorical"),
    [
        ("lm_text_one_used", skmixed.lm, "y ~ x + h", False),
        ("lm_factor_one_used", skmixed.lm, "y ~ x + h", True),
        ("lmer_factor_one_used", skmixed.lmer, "y ~ x + h + (1 | g)", True),
        ("lm_factor_call_one_used", skmixed.lm, "y ~ x + factor(h)", False),
    ],
)
def test_factor_with_one_level_among_complete_rows_is_refused(
    data, case, fit, formula, categorical
):
    # h has levels u and v; the rows of v miss x or y, so na.omit leaves u
    assert _R[case].startswith("contrasts can be applied only to factors")
    if categorical:
        data["h"] = pd.Categorical(data["h"])
    with pytest.raises(ValueError, match=r"'(factor\()?h\)?' .* 1 level\(s\) \['u'\]"):
        _quiet(fit, formula, data)


@pytest.mark.parametrize("call", ["factor", "C"])
def test_factor_call_of_one_valued_column_is_refused(data, call):
    assert _R["lm_factor_call_one"].startswith("contrasts can be applied only")
    with pytest.raises(ValueError, match=rf"'{call}\(one\)' .* 1 level\(s\) \['1'\]"):
        _quiet(skmixed.lm, f"y ~ x + {call}(one)", data)


def test_factor_call_of_a_number_seen_only_on_dropped_rows_is_refused(data):
    # factor(k): 0 on every row but the one whose y is missing
    data["k"] = np.where(data["y"].isna(), 1.0, 0.0)
    assert data["k"].nunique() == 2
    with pytest.raises(ValueError, match=r"'factor\(k\)' .* 1 level\(s\) \['0'\]"):
        _quiet(skmixed.lm, "y ~ x + factor(k)", data)


def test_factor_keeps_the_levels_of_complete_rows(data):
    # a third level w only on a row whose y is missing: R drops the level
    data.loc[data["y"].isna(), "h"] = "w"
    data.loc[:10, "h"] = "v"
    model = _quiet(skmixed.lm, "y ~ x + h", data)
    r = _R["lm_level_on_dropped_row"]
    assert list(model.params_.index) == list(r)  # no hw
    np.testing.assert_allclose(model.params_, list(r.values()), atol=1e-10)


# -- ! in formula terms, and a logical column inside a call ----------------------------
@pytest.mark.parametrize(
    ("case", "formula"),
    [
        ("lm_I_not", "y ~ x + I(!b)"),
        ("lm_ifelse_not", "y ~ x + ifelse(!b, 1, 0)"),
        ("lm_top_not", "y ~ x + !b"),
        ("lm_top_not_bracket", "y ~ x + (!b)"),
        ("lm_not_bracket_first", "y ~ (!b) + x"),
        ("lm_ifelse_logical", "y ~ x + ifelse(b, 1, 0)"),
        ("lm_and_logical", "y ~ x + I(b & x > 0)"),
        ("lm_logical_times", "y ~ x + I(b * 2)"),
        ("lm_logical_equals", "y ~ x + I(b == TRUE)"),
        ("lm_logical_minus", "y ~ x + I(1 - b)"),
        ("lm_logical_interaction", "y ~ b * x"),
    ],
)
@pytest.mark.parametrize("dtype", [bool, object])
def test_logical_column_in_formula_terms_as_r(data, case, formula, dtype):
    # b is a logical column: R's lm gives these coefficients and names
    data["b"] = data["b"].astype(dtype)
    model = _quiet(skmixed.lm, formula, data)
    r = _R[case]
    assert list(model.params_.index) == list(r)
    np.testing.assert_allclose(model.params_, list(r.values()), atol=1e-10)


def test_not_term_predicts_from_new_rows(data):
    model = _quiet(skmixed.lm, "y ~ x + !b", data)
    new = pd.DataFrame({"x": [0.0, 0.0], "b": [False, True]})
    r = _R["lm_top_not"]
    np.testing.assert_allclose(
        model.predict(new), [r["(Intercept)"] + r["!bTRUE"], r["(Intercept)"]]
    )


@pytest.mark.parametrize(
    ("formula", "read_as"),
    [("y ~ x + !b + one", r"!\(b \+ one\)"), ("y ~ x + !b:one", r"!\(b:one\)")],
)
def test_not_before_more_terms_is_refused(data, formula, read_as):
    # R: attr(terms(y ~ x + !b + one), "term.labels") is "x", "!b + one"
    assert _R["terms_not_then_plus"] == ["x", "!b + one"]
    with pytest.raises(ValueError, match=rf"R reads .* as {read_as}.*\(!b\)"):
        _quiet(skmixed.lm, formula, data)


def test_factor_of_doubles_r_spells_alike_is_one_level(data):
    # R: factor(c(0.1 + 0.2, 0.3, 1)) has the levels "0.3", "1"
    data["f3"] = np.tile([0.1 + 0.2, 0.3, 1.0], len(data) // 3)
    model = _quiet(skmixed.lm, "y ~ x + factor(f3)", data)
    r = _R["lm_factor_double_merged"]
    assert list(model.params_.index) == list(r)
    np.testing.assert_allclose(model.params_, list(r.values()), atol=1e-10)
    new = pd.DataFrame({"x": [0.0, 0.0], "f3": [0.3, 0.1 + 0.2]})
    assert model.predict(new)[0] == model.predict(new)[1]


def test_factor_levels_skip_rows_missing_a_random_slope(data):
    # z, a random slope, is missing on the rows of v, with x and y there:
    # lmer's model frame drops them, and h keeps one level
    assert _R["lmer_factor_slope_missing"].startswith("contrasts can be applied")
    data.loc[data["h"] == "v", ["x", "y"]] = 0.5
    data["z"] = np.where(data["h"] == "v", np.nan, data["x"])
    assert data[["x", "y"]].notna().all().all()
    assert data["h"].nunique() == 2
    with pytest.raises(ValueError, match=r"'h' .* 1 level\(s\) \['u'\]"):
        _quiet(skmixed.lmer, "y ~ x + h + (z | g)", data)
