"""Parsing lme4's random-effects syntax (skmixed.mixed.terms)."""

import pytest

from skmixed import MixedLMRegressor
from skmixed.datasets import load_sleepstudy
from skmixed.mixed.terms import (
    format_random_effects,
    grouping_columns,
    parse_random_effects,
)


def _summary(spec):
    return [(t.factor, t.components, t.names) for t in parse_random_effects(spec)]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("(1 | g)", [("g", ("g",), ["(Intercept)"])]),
        ("(x | g)", [("g", ("g",), ["(Intercept)", "x"])]),
        ("(1 + x | g)", [("g", ("g",), ["(Intercept)", "x"])]),
        ("(0 + x | g)", [("g", ("g",), ["x"])]),
        ("(-1 + x | g)", [("g", ("g",), ["x"])]),
        ("(x - 1 | g)", [("g", ("g",), ["x"])]),
        ("(x1 + x2 | g)", [("g", ("g",), ["(Intercept)", "x1", "x2"])]),
        (
            "(x || g)",
            [("g", ("g",), ["(Intercept)"]), ("g", ("g",), ["x"])],
        ),
        (
            "(x1 + x2 || g)",
            [
                ("g", ("g",), ["(Intercept)"]),
                ("g", ("g",), ["x1"]),
                ("g", ("g",), ["x2"]),
            ],
        ),
        ("(0 + x || g)", [("g", ("g",), ["x"])]),
        (
            "(1 | a) + (1 | b)",
            [("a", ("a",), ["(Intercept)"]), ("b", ("b",), ["(Intercept)"])],
        ),
        (
            "(1 | Subject:School)",
            [("Subject:School", ("Subject", "School"), ["(Intercept)"])],
        ),
        (
            "(1 | batch/cask)",
            [
                ("batch", ("batch",), ["(Intercept)"]),
                ("cask:batch", ("cask", "batch"), ["(Intercept)"]),
            ],
        ),
        (
            "(1 | a/b/c)",
            [
                ("a", ("a",), ["(Intercept)"]),
                ("b:a", ("b", "a"), ["(Intercept)"]),
                ("c:(b:a)", ("c", "b", "a"), ["(Intercept)"]),
            ],
        ),
        ("(1 + `my x` | g)", [("g", ("g",), ["(Intercept)", "my x"])]),
        ("  ( Days|Subject )  ", [("Subject", ("Subject",), ["(Intercept)", "Days"])]),
    ],
)
def test_parse(spec, expected):
    assert _summary(spec) == expected


def test_slopes_and_grouping_columns():
    terms = parse_random_effects("(x1 + x2 | g) + (1 | a/b)")
    assert terms[0].slopes == ("x1", "x2") and terms[0].intercept
    assert grouping_columns(terms) == ["g", "a", "b"]
    assert str(terms[0]) == "(1 + x1 + x2 | g)"
    assert str(parse_random_effects("(0 + x | g)")[0]) == "(0 + x | g)"


@pytest.mark.parametrize(
    "spec, message, pointed",
    [
        ("", "at least one term", None),
        ("1 | g", "opening a term", "1 | g"),
        ("(1 | g", "unbalanced", None),
        ("(x |)", "no grouping factor", None),
        ("( | g)", "nothing left of the bar", None),
        ("(x | g) +", "a term after '+'", None),
        ("(x + | g)", "missing after", None),
        ("(x y | g)", "missing '+' before 'y'", "y"),
        ("(1 | g) (1 | h)", "'+' between terms", None),
        ("(x | g | h)", "more than one bar", None),
        ("(0 | g)", "no columns", None),
        ("(x - y | g)", "only the intercept", "y"),
        ("(1 | a::b)", "grouping column name is missing", None),
        ("(1 | 3a)", "'3a' is not a grouping column name", "3a"),
        ("(x + x | g)", "given twice", None),
    ],
)
def test_bad_specs_point_at_the_problem(spec, message, pointed):
    with pytest.raises(ValueError, match="Invalid random-effects spec") as info:
        parse_random_effects(spec)
    text = str(info.value)
    assert message in text
    quoted, caret = text.splitlines()[1:3]
    assert quoted.strip() == spec.strip() or quoted[2:] == spec
    if pointed is not None:
        start = caret.index("^")
        assert quoted[start : start + len(pointed)] == pointed


def test_not_a_string():
    with pytest.raises(ValueError, match="must be a string"):
        parse_random_effects(None)


@pytest.mark.parametrize(
    ("spec", "printed"),
    [
        ("(1|Block/Variety)", "(1 | Block/Variety)"),
        ("(Days||Subject)", "(Days || Subject)"),
        ("( 0+Days |Subject)", "(0 + Days | Subject)"),
        (
            "(1|School)+(Days|Subject : School)",
            "(1 | School) + (Days | Subject:School)",
        ),
        ("(1 + `Days^2` | Subject)", "(1 + `Days^2` | Subject)"),
    ],
)
def test_spec_printed_as_lme4_deparses_it(spec, printed):
    assert format_random_effects(spec) == printed


def test_a_name_that_needs_backticks_says_so():
    with pytest.raises(ValueError, match=r"written in backticks: `Days\^2`"):
        parse_random_effects("(Days^2 | Subject)")


def test_backticked_slope_column_fits():
    df = load_sleepstudy()
    X = df[["Days", "Subject"]].assign(**{"Days^2": df["Days"] ** 2})
    m = MixedLMRegressor("(1 + `Days^2` || Subject)").fit(X, df["Reaction"])
    assert list(m.random_effects_["Subject"].columns) == ["(Intercept)", "Days^2"]
    assert "(1 + `Days^2` || Subject)" in str(m.summary())
