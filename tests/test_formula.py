"""FixedFormula: R's model.matrix through formulaic (names, coding, state).

References: tests/data/formula_refs.json (made by make_formula_refs.R):
R's ``model.matrix`` column names, term labels and column sums for a set of
right-hand sides on lme4's cake and nlme's Oats, and lmerTest's type III
tables.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skmixed._formula import FixedFormula, resolve_intercept
from skmixed.datasets import load_cake, load_oats

REFS = json.loads((Path(__file__).parent / "data" / "formula_refs.json").read_text())
# "a:b" without its margins: formulaic codes it full rank, R every cell
# (with one NA coefficient); documented in skmixed/_formula.py.
KNOWN_DIFFERENT = {"recipe:temperature"}


def _data_for(rhs):
    return load_oats() if ("nitro" in rhs or "Variety" in rhs) else load_cake()


@pytest.mark.parametrize(
    "case", REFS["model_matrices"], ids=[m["rhs"] for m in REFS["model_matrices"]]
)
def test_model_matrix_as_r_builds_it(case):
    rhs = case["rhs"]
    ff = FixedFormula(rhs)
    matrix, names = ff.fit_transform(_data_for(rhs))
    if rhs in KNOWN_DIFFERENT:
        assert matrix.shape[1] == len(case["colnames"]) - 2  # full rank: one less
        return
    offset = int("(Intercept)" in case["colnames"])
    assert ff.has_intercept == bool(offset)
    assert names == case["colnames"][offset:]
    assert list(ff.terms) == case["term_labels"]
    # R's assign: the term of each column (1-based, 0 = intercept)
    assign = np.empty(len(names), dtype=int)
    for k, columns in enumerate(ff.terms.values()):
        assign[columns] = k + 1
    assert assign.tolist() == case["assign"][offset:]
    np.testing.assert_allclose(
        matrix.sum(axis=0), case["col_sums"][offset:], rtol=1e-12, atol=1e-10
    )
    np.testing.assert_allclose(
        (matrix**2).sum(axis=0), case["col_sumsq"][offset:], rtol=1e-12
    )
    np.testing.assert_allclose(matrix[0], case["first_row"][offset:], atol=1e-12)


def test_state_learned_at_fit_is_reused_at_predict():
    df = load_cake()
    ff = FixedFormula("scale(temp) + poly(temp, 2) + recipe")
    matrix, _ = ff.fit_transform(df)
    # A few rows at predict: the centre, scale and basis of the fit.
    rows = [0, 17, 200]
    np.testing.assert_allclose(ff.transform(df.iloc[rows]), matrix[rows], rtol=1e-13)
    centre, scale = df.temp.mean(), df.temp.std()
    np.testing.assert_allclose(matrix[:, 0], (df.temp - centre) / scale)


def test_levels_from_fit_are_kept_at_predict():
    df = load_oats()
    ff = FixedFormula("Variety")
    ff.fit_transform(df)
    one_level = df[df.Variety == "Victory"].head(2)
    # a plain string column at predict: coded with the fitted levels
    plain = one_level.assign(Variety=one_level.Variety.astype(str))
    expected = [[0.0, 1.0], [0.0, 1.0]]
    assert ff.transform(plain).tolist() == expected
    assert ff.transform(one_level).tolist() == expected


def test_unseen_level_at_predict_names_column_and_level():
    df = load_oats()
    ff = FixedFormula("nitro + Variety")
    ff.fit_transform(df)
    new = pd.DataFrame({"nitro": [0.2], "Variety": ["Sun II"]})
    with pytest.raises(ValueError, match=r"Column 'Variety' .*\['Sun II'\]"):
        ff.transform(new)


def test_string_levels_sorted_as_r_and_categorical_order_kept():
    df = pd.DataFrame(
        {
            "g": ["10", "9", "100", "9", "10", "100"],
            "h": pd.Categorical(["b", "a", "b", "a", "b", "a"], categories=["b", "a"]),
            "flag": [True, False, True, True, False, False],
        }
    )
    _, names = FixedFormula("g + h + flag").fit_transform(df)
    # numeric labels numerically (9 is the reference), categories as given
    # (b is the reference), logicals as R's FALSE/TRUE
    assert names == ["g10", "g100", "ha", "flagTRUE"]


def test_integer_column_is_numeric_unless_factor():
    df = pd.DataFrame({"g": [1, 2, 3, 1, 2, 3], "x": np.arange(6.0)})
    assert FixedFormula("g").fit_transform(df)[1] == ["g"]
    ff = FixedFormula("factor(g) + x")
    matrix, names = ff.fit_transform(df)
    assert names == ["factor(g)2", "factor(g)3", "x"]
    assert list(ff.terms) == ["factor(g)", "x"]
    assert matrix[:3, :2].tolist() == [[0, 0], [1, 0], [0, 1]]


def test_chosen_reference_level_through_contrasts():
    df = load_oats()
    ff = FixedFormula('C(Variety, contr.treatment(base="Victory"))')
    _, names = ff.fit_transform(df)
    assert names == [
        'C(Variety, contr.treatment(base = "Victory"))Golden Rain',
        'C(Variety, contr.treatment(base = "Victory"))Marvellous',
    ]
    # the same as reordering the categories, R's relevel
    relevelled = df.assign(
        Variety=df.Variety.cat.reorder_categories(
            ["Victory", "Golden Rain", "Marvellous"]
        )
    )
    matrix_c, _ = ff.fit_transform(df)
    matrix_r, names_r = FixedFormula("Variety").fit_transform(relevelled)
    assert names_r == ["VarietyGolden Rain", "VarietyMarvellous"]
    np.testing.assert_array_equal(matrix_c, matrix_r)


def test_r_power_inside_functions_and_intercept():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    ff = FixedFormula("0 + x + I(x^2)")
    matrix, names = ff.fit_transform(df)
    assert names == ["x", "I(x^2)"] and not ff.has_intercept
    assert matrix[:, 1].tolist() == [1.0, 4.0, 9.0]
    assert FixedFormula("x - 1").has_intercept is False
    ones = FixedFormula("1")
    matrix, names = ones.fit_transform(df)
    assert ones.has_intercept and matrix.shape == (3, 0) and names == []


def test_columns_used_in_order_of_appearance():
    ff = FixedFormula("scale(temp) + recipe:temperature + log(temp)")
    assert ff.columns_used == ["temp", "recipe", "temperature"]
    assert FixedFormula('C(V, contr.treatment(base="b")) + x').columns_used == [
        "V",
        "x",
    ]


def test_missing_values_give_nan_rows_and_scale_from_every_value_present():
    # R's model.frame evaluates scale(x) on every row, then na.omit drops
    # rows: x = 2 counts for the scale though its g is missing
    # (tests/test_rows_used.py checks this against R)
    df = pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0, 5.0],
            "g": pd.Categorical(["a", None, "b", "b", "a"]),
        }
    )
    ff = FixedFormula("scale(x) + g")
    matrix, _ = ff.fit_transform(df)
    assert np.isnan(matrix[[1, 2]]).all()
    present = np.array([1.0, 2.0, 4.0, 5.0])
    expected = (present - present.mean()) / present.std(ddof=1)
    np.testing.assert_allclose(matrix[[0, 3, 4], 0], expected[[0, 2, 3]])
    assert matrix[[0, 3, 4], 1].tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "rhs, message",
    [
        ("y ~ x", "right-hand side of a formula only"),
        ("x + (1 | g)", "random_effects"),
        ("", "non-empty formula"),
        ("x + Dayz", r"'Dayz' \(did you mean 'Days'\?\)"),
    ],
)
def test_errors_name_the_problem(rhs, message):
    df = pd.DataFrame({"x": [1.0, 2.0], "Days": [0.0, 1.0]})
    with pytest.raises(ValueError, match=message):
        FixedFormula(rhs).fit_transform(df)


def test_formula_needs_a_dataframe():
    with pytest.raises(ValueError, match="pandas DataFrame"):
        FixedFormula("x").fit_transform(np.ones((3, 1)))


def test_column_that_changes_kind_at_predict():
    ff = FixedFormula("x")
    ff.fit_transform(pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="'x' was numeric at fit"):
        ff.transform(pd.DataFrame({"x": ["a", "b"]}))


def test_fit_intercept_false_contradicting_the_formula_is_an_error():
    assert resolve_intercept(FixedFormula("0 + x"), True, "M") is False
    assert resolve_intercept(FixedFormula("0 + x"), False, "M") is False
    assert resolve_intercept(FixedFormula("x"), True, "M") is True
    with pytest.raises(ValueError, match="write '0 \\+ x'"):
        resolve_intercept(FixedFormula("x"), False, "M")


def test_type3_hypotheses_without_containment_are_the_terms_columns():
    ff = FixedFormula("nitro + Variety")
    ff.fit_transform(load_oats())
    names = ["(Intercept)", "nitro", "VarietyMarvellous", "VarietyVictory"]
    hyp = ff.type3_hypotheses(names)
    assert list(hyp) == ["nitro", "Variety"]
    np.testing.assert_array_equal(hyp["Variety"], np.eye(4)[[2, 3]])


def test_type3_hypothesis_of_a_contained_factor_averages_over_the_other():
    # recipe in recipe * temperature: recipe means averaged over the six
    # temperatures, not the recipe effects at the reference temperature.
    ff = FixedFormula("recipe * temperature")
    _, names = ff.fit_transform(load_cake())
    hyp = ff.type3_hypotheses(["(Intercept)", *names])
    recipe = hyp["recipe"]
    assert recipe.shape == (2, 18)
    col = {n: j for j, n in enumerate(["(Intercept)", *names])}
    assert recipe[0, col["recipeB"]] == 1.0
    np.testing.assert_allclose(
        recipe[0, col["recipeB:temperature185"]], 1 / 6, atol=1e-7
    )
    assert recipe[0, col["recipeC"]] == 0.0
    assert hyp["temperature"].shape == (5, 18)
    assert hyp["recipe:temperature"].shape == (10, 18)


def test_poly_basis_does_not_depend_on_the_row_order():
    # R's alpha_0 is mean(x), correctly rounded; a sum in another order
    # moved it (and alpha_1) by a bit for x a million plus N(0, 1), and the
    # linear coefficient by 1e-9 relative
    from fractions import Fraction

    from skmixed import lm

    rng = np.random.default_rng(41)
    x = 1e6 + rng.normal(size=4000)
    df = pd.DataFrame({"x": x, "y": (x - 1e6) ** 2 + rng.normal(size=4000)})
    exact = float(sum(Fraction(v) for v in x.tolist()) / len(x))
    states = []
    for seed in range(4):
        order = np.random.default_rng(seed).permutation(len(df))
        model = lm("y ~ poly(x, 3)", df.iloc[order])
        (state,) = model.fixed_formula_._spec.transform_state.values()
        states.append([state["alpha"][j] for j in range(3)])
    assert states[0][0] == exact
    assert all(alpha == states[0] for alpha in states)
