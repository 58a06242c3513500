"""Models written as R formulas, fitted through formulaic, against R.

lmerTest references (tests/data/formula_refs.json, make_formula_refs.R):
nlme's Oats ``yield ~ nitro + Variety + (1 | Block/Variety)`` and with
``nitro * Variety``, lme4's cake ``angle ~ recipe * temperature +
(1 | recipe:replicate)``; lm references: the shared cases
``Reaction ~ Days + Subject`` and ``Reaction ~ Days * Subject``
(tests/data/ss_lm_days_*.json), Oats and cake with ``lm``.

As in tests/_lmer_fits.py, each mixed model is checked twice: moved to
lme4's θ (our computation, tight) and at our own optimum (θ agrees with
lme4's to ~1e-6 here; the Satterthwaite df and F move with it).
"""

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import skmixed
from skmixed import FixedEffectsRegressor, MixedLMRegressor, PooledRegressor
from skmixed.datasets import load_cake, load_oats, load_sleepstudy

DATA = Path(__file__).parent / "data"
REFS = json.loads((DATA / "formula_refs.json").read_text())
LMER = {
    "oats": ("yield ~ nitro + Variety + (1 | Block/Variety)", load_oats),
    "oats_interaction": ("yield ~ nitro * Variety + (1 | Block/Variety)", load_oats),
    "cake": ("angle ~ recipe * temperature + (1 | recipe:replicate)", load_cake),
}
AT_LME4, OURS = 1e-6, 1e-4


def relative(a, b):
    """Largest relative difference; entries that are zero to rounding error
    (a covariance of 1e-14 next to 65) are compared on the scale of the largest."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(b), 1e-6 * np.max(np.abs(b)))
    return float(np.max(np.abs(a - b) / np.where(scale == 0, 1.0, scale)))


_FITS = {}


def fits(case):
    """(reference, our fit, our fit moved to lme4's θ): fresh copies."""
    if case not in _FITS:
        formula, load = LMER[case]
        ref = REFS["lmer"][case]
        assert ref["formula"] == formula  # the formula exactly as R fitted it
        ours = skmixed.lmer(formula, load())
        at = copy.deepcopy(ours)
        at._results_at(np.atleast_1d(np.array(ref["theta"]["values"], dtype=float)))
        _FITS[case] = (ref, ours, at)
    return tuple(copy.deepcopy(x) for x in _FITS[case])


def check(get, ours, at, expected, tol_ours=OURS):
    assert relative(get(at), expected) <= AT_LME4, (get(at), expected)
    assert relative(get(ours), expected) <= tol_ours, (get(ours), expected)


@pytest.mark.parametrize("case", list(LMER))
def test_lmer_formula_fit_matches_lmertest(case):
    ref, ours, at = fits(case)
    assert list(ours.fixed_effects_.index) == ref["fixef_names"]
    check(lambda m: m.reml_criterion_, ours, at, ref["REML_criterion"], 1e-9)
    check(lambda m: m.sigma_, ours, at, ref["sigma"])
    check(lambda m: m.theta_, ours, at, np.atleast_1d(ref["theta"]["values"]))
    check(lambda m: m.vcov_.to_numpy(), ours, at, ref["vcov_fixef"])
    table = pd.DataFrame(ref["fixed_effects"]).set_index("term")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lmerTest's Hessian notes, if any
        for column in ["estimate", "std_error", "df", "t_value", "p_value"]:
            check(
                lambda m, c=column: m.summary().coefficients[c].to_numpy(),
                ours,
                at,
                table[column].to_numpy(),
            )


@pytest.mark.parametrize("case", list(LMER))
@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger"])
def test_anova_has_one_row_per_term_as_lmertest(case, ddf):
    ref, ours, at = fits(case)
    key = "anova_type3_" + ddf.replace("-", "_")
    expected = pd.DataFrame(ref[key]).set_index("term")
    assert list(ours.anova(ddf).index) == list(expected.index)
    assert ours.anova(ddf)["num_df"].tolist() == expected["num_df"].tolist()
    for column in ["sum_sq", "mean_sq", "den_df", "F_value", "p_value"]:
        check(
            lambda m, c=column: m.anova(ddf)[c].to_numpy(),
            ours,
            at,
            expected[column].to_numpy(),
        )


def test_oats_variety_test_is_lmertests():
    # lmerTest: Variety F 1.4853 on 2 and 10 df, p 0.2724
    _, ours, _ = fits("oats")
    row = ours.anova().loc["Variety"]
    assert row["num_df"] == 2
    assert round(row["F_value"], 4) == 1.4853
    assert round(row["den_df"], 4) == 10.0
    assert round(row["p_value"], 4) == 0.2724


def test_contest_rows_carry_labels():
    ref, ours, at = fits("oats")
    expected = ref["contest_variety"]
    names = list(ours.fixed_effects_.index)
    L = np.zeros((2, len(names)))
    L[0, names.index("VarietyMarvellous")] = L[1, names.index("VarietyVictory")] = 1
    for model in (ours, at):
        table = model.contest(L)
        assert list(table.index) == ["VarietyMarvellous; VarietyVictory"]
    check(lambda m: m.contest(L)["F_value"].iloc[0], ours, at, expected["F_value"])
    by_term = ours.contest("Variety")
    assert list(by_term.index) == ["Variety"]
    np.testing.assert_allclose(by_term.to_numpy(), ours.contest(L).to_numpy())
    difference = ours.contest({"VarietyMarvellous": 1, "VarietyVictory": -1})
    assert list(difference.index) == ["VarietyMarvellous - VarietyVictory"]
    with pytest.raises(ValueError, match="Unknown term 'Varieti'"):
        ours.contest("Varieti")


def test_summary_prints_the_formula_and_tables_as_lmertest():
    ref, ours, _ = fits("oats")
    text = str(ours.summary()).splitlines()
    r_text = ref["summary_text"]
    # lmerTest's first line wraps at 80 characters in R; the rest is equal
    assert text[1] == "Formula: yield ~ nitro + Variety + (1 | Block/Variety)"
    start = r_text.index("Formula: yield ~ nitro + Variety + (1 | Block/Variety)")
    assert text[1 : 1 + len(r_text[start:])] == r_text[start:]


def test_conf_int_uses_r_names():
    _, ours, _ = fits("cake")
    assert list(ours.conf_int().index) == list(ours.fixed_effects_.index)
    assert "recipeB:temperature185" in ours.conf_int().index


@pytest.mark.parametrize("case", ["ss_lm_days_subject", "ss_lm_days_x_subject"])
@pytest.mark.parametrize("how", ["lm", "pooled", "fixed"])
def test_shared_lm_cases_through_their_formula(case, how):
    ref = json.loads((DATA / f"{case}.json").read_text())
    formula, df = ref["formula"], load_sleepstudy()
    if how == "lm":
        model = skmixed.lm(formula, df)
    elif how == "pooled":
        model = PooledRegressor.from_formula(formula).fit(df, df["Reaction"])
    else:
        model = FixedEffectsRegressor.from_formula(formula, method="dummy")
        model.fit(df, df["Reaction"])
    assert list(model.params_.index) == ref["coef_names"]
    table = pd.DataFrame(ref["coefficients"]).set_index("term")
    ours = model.summary().coefficients
    for column in ["estimate", "std_error", "t_value"]:
        assert relative(ours[column], table[column]) < 1e-9
    assert relative(model.sigma_, ref["sigma"]) < 1e-12
    assert relative(model.rsquared_, ref["r_squared"]) < 1e-12
    assert model.formula_ == formula
    assert str(model.summary()).splitlines()[2] == f"lm(formula = {formula})"


@pytest.mark.parametrize("case", ["oats", "cake"])
def test_lm_summary_is_rs(case):
    ref = REFS["lm"][case]
    df = load_oats() if case == "oats" else load_cake()
    model = skmixed.lm(ref["formula"], df)
    assert list(model.params_.index) == ref["coef_names"]
    assert str(model.summary()).split("\n") == ref["summary_text"]


def test_from_formula_stores_parameters_and_clones():
    m = MixedLMRegressor.from_formula(
        "yield ~ nitro + Variety + (1|Block/Variety)", reml=False
    )
    assert m.get_params()["fixed_effects"] == "nitro + Variety"
    assert m.get_params()["random_effects"] == "(1 | Block/Variety)"
    assert m.reml is False
    df = load_oats()
    twin = clone(m).fit(df, df["yield"])
    m.fit(df, df["yield"])
    assert twin.deviance_ == m.deviance_
    # another random part: the printed formula follows the parameters
    m.set_params(random_effects="(1 | Block)").fit(df, df["yield"])
    assert m.summary().formula == "yield ~ nitro + Variety + (1 | Block)"


def test_unseen_fixed_level_at_predict_is_an_error():
    df = load_oats()
    m = skmixed.lmer("yield ~ nitro + Variety + (1 | Block)", df)
    new = df.head(2).assign(Variety=["Golden Rain", "Sun II"])
    with pytest.raises(ValueError, match=r"Column 'Variety' .*\['Sun II'\]"):
        m.predict(new)
    np.testing.assert_allclose(m.predict(df.head(3)), m.fittedvalues_[:3])


def test_missing_value_in_a_formula_column_is_named_as_that_column():
    # A NaN in the factor Variety made every design column NaN on that row,
    # and the error blamed 'nitro' (which is complete) and the dummy columns;
    # an inf in nitro was reported as a NaN. The message names the data
    # column and what it holds, at fit and at predict.
    df = load_oats()
    bad = df.assign(Variety=df["Variety"].astype(object).where(df.index != 3))
    with pytest.raises(ValueError, match="Variety") as info:
        skmixed.lmer("yield ~ nitro + Variety + (1 | Block)", bad)
    assert "nitro" not in str(info.value)
    assert "missing in 1 row(s)" in str(info.value)
    inf = df.assign(nitro=df["nitro"].where(df.index != 5, np.inf))
    with pytest.raises(ValueError, match=r"column 'nitro': inf in 1 row\(s\)\)"):
        skmixed.lm("yield ~ nitro + Variety", inf)
    m = skmixed.lmer("yield ~ nitro + Variety + (1 | Block)", df)
    with pytest.raises(ValueError, match=r"column 'Variety': missing in 1 row"):
        m.predict(bad.head(5))
    with pytest.warns(UserWarning, match="dropped 1 row"):
        dropped = skmixed.lmer(
            "yield ~ nitro + Variety + (1 | Block)", bad, missing="drop"
        )
    assert dropped.nobs_ == len(df) - 1


def test_fixed_effects_formula_with_fit_intercept_false_is_refused():
    df = load_oats()
    with pytest.raises(ValueError, match="0 \\+"):
        MixedLMRegressor("(1 | Block)", fixed_effects="nitro", fit_intercept=False).fit(
            df, df["yield"]
        )
    m = MixedLMRegressor("(1 | Block)", fixed_effects="0 + nitro + Variety")
    m.fit(df, df["yield"])
    assert list(m.fixed_effects_.index) == [
        "nitro",
        "VarietyGolden Rain",
        "VarietyMarvellous",
        "VarietyVictory",
    ]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: MixedLMRegressor.from_formula("y ~ x"), "no random-effects term"),
        (lambda: PooledRegressor.from_formula("y ~ x + (1|g)"), "random-effects"),
        (
            lambda: MixedLMRegressor.from_formula("y ~ x + (1|g)", fixed_effects="x"),
            "takes",
        ),
        (lambda: MixedLMRegressor.from_formula("log(y) ~ x + (1|g)"), "one column"),
        (
            lambda: skmixed.lmer("Reactio ~ Days + (1 | Subject)", load_sleepstudy()),
            "'Reactio' .* not a column",
        ),
    ],
)
def test_formula_errors_name_the_problem(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_likelihood_ratio_test_between_formula_models():
    # R: anova(lmer(yield ~ nitro + (1|Block/Variety)), lmer(yield ~ nitro +
    # Variety + (1|Block/Variety))), both refitted with ML
    expected = REFS["lmer"]["oats"]["lrt_without_variety"]
    oats = load_oats()
    small = skmixed.lmer("yield ~ nitro + (1 | Block/Variety)", oats)
    _, big, _ = fits("oats")
    table = skmixed.anova(small, big)
    assert table["npar"].tolist() == expected["npar"]
    assert relative(table["deviance"], expected["deviance"]) < 1e-8
    assert relative(table["Chisq"].iloc[1], expected["Chisq"]) < 1e-5
    assert relative(table["p_value"].iloc[1], expected["p_value"]) < 1e-5
