"""MixedLMRegressor.summary() against lmerTest's printed summary.

tests/data/lmertest_summaries.json holds ``print(summary(m))`` of lmerTest
3.1-3 (R 4.2.2, lme4 1.1-31) for seven models, one line per element, made
by the R script stored in the file (``options(width = 200)`` so that R does
not wrap the title). At lme4's θ our text is R's, line for line, except the
``Data:`` line (we do not know the data frame's name) and lme4's
``optimizer (nloptwrap) convergence code`` line. At our own optimum the
printed numbers are those of the reference JSON of the case.
"""

import json
import re

import numpy as np
import pytest
from _lmer_fits import DATA, fits

from skmixed import MixedLMRegressor
from skmixed.datasets import load_pastes, load_sleepstudy
from skmixed.summary import r_abbreviate

SUMMARIES = json.loads((DATA / "lmertest_summaries.json").read_text())["summaries"]


def _r_lines(item):
    return [
        line
        for line in item["text"]
        if not line.startswith("   Data:") and not line.startswith("optimizer (")
    ]


def _case(item):
    return item["id"].removesuffix("_kr")


def _ddf(item):
    return "kenward-roger" if item["ddf"] == "Kenward-Roger" else "satterthwaite"


@pytest.mark.parametrize("item", SUMMARIES, ids=[s["id"] for s in SUMMARIES])
def test_text_is_lmertests_at_lme4_theta(item):
    _, _, at = fits(_case(item))
    at._results_at(np.atleast_1d(np.array(item["theta"], dtype=float)))
    ours = str(at.summary(_ddf(item))).split("\n")
    assert ours == _r_lines(item)


def _numbers(line):
    return [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", line)]


def test_printed_numbers_of_the_slope_model_match_the_reference():
    """Our own fit of (Days | Subject): every printed number against the JSON."""
    ref, ours, _ = fits("ss_lmer_slope_reml")
    text = str(ours.summary())
    lines = text.split("\n")

    def line_after(start, offset=0):
        return lines[
            [i for i, x in enumerate(lines) if x.startswith(start)][0] + offset
        ]

    def close(printed, value):
        # R's value rounded as printed, give or take one unit in the last
        # place: our optimum differs from lme4's by ~1e-5 relative, which can
        # move a value across a rounding boundary (612.094 vs 612.100).
        decimals = len(printed.split(".")[1]) if "." in printed else 0
        return abs(float(printed) - value) <= 10.0**-decimals + 2e-5 * abs(value)

    crit = line_after("REML criterion").split(": ")[1]
    assert close(crit, ref["REML_criterion"])
    q = ref["scaled_residual_quantiles"]
    printed = line_after("Scaled residuals", 2).split()
    for text_value, key in zip(
        printed, ["min", "q1", "median", "q3", "max"], strict=True
    ):
        assert close(text_value, q[key])
    vc = {(r["term1"], r["term2"]): r for r in ref["varcorr"]}
    intercept = line_after(" Subject").split()
    assert intercept[:2] == ["Subject", "(Intercept)"]
    assert close(intercept[2], vc["(Intercept)", None]["vcov"])
    assert close(intercept[3], vc["(Intercept)", None]["sdcor"])
    days = line_after(" Subject", 1).split()
    assert days[0] == "Days"
    assert close(days[1], vc["Days", None]["vcov"])
    assert close(days[2], vc["Days", None]["sdcor"])
    assert close(days[3], vc["(Intercept)", "Days"]["sdcor"])
    residual = line_after(" Residual").split()
    assert close(residual[1], ref["sigma"] ** 2) and close(residual[2], ref["sigma"])
    assert "Number of obs: 180, groups:  Subject, 18" in lines
    for row in ref["fixed_effects"]:
        cells = line_after(row["term"] + " ").split()
        name_len = len(row["term"].split())
        estimate, se, df, t = cells[name_len : name_len + 4]
        assert close(estimate, row["estimate"]) and close(se, row["std_error"])
        assert close(df, row["df"]) and close(t, row["t_value"])
    assert "< 2e-16" in line_after("(Intercept) ")
    assert "3.26e-06" in line_after("Days ")
    corr = ref["corr_fixef"]["matrix"][1][0]
    assert close(line_after("Correlation of Fixed Effects", 2).split()[1], corr)


def test_tables_are_dataframes():
    ref, ours, _ = fits("ss_lmer_slope_reml")
    s = ours.summary()
    assert list(s.coefficients.columns) == [
        "estimate",
        "std_error",
        "df",
        "t_value",
        "p_value",
    ]
    assert list(s.coefficients.index) == ["(Intercept)", "Days"]
    assert list(s.random_effects.columns) == [
        "group",
        "name",
        "variance",
        "std_dev",
        "corr_1",
    ]
    assert list(s.random_effects["group"]) == ["Subject", "Subject", "Residual"]
    assert np.isclose(s.random_effects["corr_1"].iloc[1], 0.0655512, atol=1e-4)
    assert np.allclose(
        s.correlation.to_numpy(), np.array(ref["corr_fixef"]["matrix"]), atol=1e-4
    )


def test_html():
    _, ours, _ = fits("ss_lmer_slope_reml")
    page = ours.summary()._repr_html_()
    assert page.startswith("<div>") and "<table>" in page
    assert "Satterthwaite" in page and "(Intercept)" in page and "Corr" in page


def test_singular_note_and_no_correlation_for_one_fixed_effect():
    _, ours, _ = fits("dyestuff2_lmer")
    text = str(ours.summary())
    assert text.endswith("boundary (singular) fit: see help('isSingular')\n")
    assert "Correlation of Fixed Effects" not in text


@pytest.mark.parametrize(
    ("name", "minlength", "expected"),
    [
        ("(Intercept)", 6, "(Intr)"),
        ("(Intercept)", 11, "(Intercept)"),
        ("Days", 6, "Days"),
        ("Temperature", 6, "Tmprtr"),
        ("age:SexMale", 6, "ag:SxM"),
        ("Days:Subject309", 6, "D:S309"),
        ("Days:Subject309", 11, "Dys:Sbjc309"),
        ("log(dose)", 6, "lg(ds)"),
    ],
)
def test_abbreviate_is_rs(name, minlength, expected):
    # Expected values from R 4.2.2: abbreviate(name, minlength).
    assert r_abbreviate(name, minlength) == expected


def test_formula_echoes_the_spec_spaced_as_lme4():
    df = load_pastes()
    m = MixedLMRegressor("(1|batch/cask)").fit(df[["batch", "cask"]], df["strength"])
    assert "Formula: strength ~ 1 + (1 | batch/cask)\n" in str(m.summary())


def _wide_model():
    df = load_sleepstudy()
    rng = np.random.default_rng(1)
    noise = {f"x{i}": rng.normal(size=len(df)) for i in range(1, 17)}
    X = df[["Days", "Subject"]].assign(**noise)
    return MixedLMRegressor("(1 | Subject)").fit(X, df["Reaction"])


def test_correlation_matrix_replaced_by_lme4s_note_above_12_coefficients():
    text = str(_wide_model().summary())
    assert "Correlation of Fixed Effects" not in text
    assert text.endswith(
        "\nCorrelation matrix not shown by default, as p = 18 > 12.\n"
        "Use print(m.summary(correlation=True))  or\n"
        "    m.vcov_        if you need it"
    )


def test_correlation_on_request_and_off_on_request():
    model = _wide_model()
    shown = str(model.summary(correlation=True))
    assert "Correlation of Fixed Effects:" in shown
    assert "not shown by default" not in shown
    df = load_sleepstudy()
    small = MixedLMRegressor("(1 | Subject)").fit(
        df[["Days", "Subject"]], df["Reaction"]
    )
    assert "Correlation of Fixed Effects:" in str(small.summary())
    hidden = str(small.summary(correlation=False))
    assert "Correlation" not in hidden


def test_correlation_of_a_zero_covariance_is_nan_as_lme4s():
    # (x1 | g) on 6 groups whose whole covariance is estimated as zero
    # (tests/data/zero_term, lme4 1.1-31): lme4 puts θ on the boundary and
    # prints the correlation as NaN. Our θ stopped at ~1e-21 (the same
    # criterion to rounding) and the correlation of those rounding-level
    # numbers was printed as 1.00.
    import pandas as pd

    folder = DATA / "zero_term"
    ref = json.loads((folder / "zero_term.json").read_text())
    d = pd.read_csv(folder / "zero_term.csv")
    with pytest.warns(UserWarning, match="singular"):
        m = MixedLMRegressor("(x1 | g)").fit(d[["x1", "g"]], d["y"])
    assert m.reml_criterion_ <= ref["reml"] + 1e-6
    vc = m.variance_components_
    np.testing.assert_allclose(vc["vcov"], ref["vcov"], atol=1e-10)
    np.testing.assert_allclose(
        vc["sdcor"][[0, 1, 3]],
        np.array(ref["sdcor"], dtype=float)[[0, 1, 3]],
        atol=1e-6,
    )
    assert ref["sdcor"][2] is None and np.isnan(vc["sdcor"][2])
    table = str(m.summary()).split("Random effects:")[1].split("Number of obs")[0]
    assert "1.00" not in table
    # lmerTest prints that row "          x1          1.543e-14 1.242e-07  NaN"
    assert re.search(r"\n +x1 +\S+ +\S+ +NaN\n", table)
