"""R-style number formatting, checked against R's own output.

tests/data/r_format_cases.json was made by tests/data/make_r_format_cases.R
(R 4.2.2): R's format(), format.pval() and printCoefmat() on random numbers.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from skmixed._format import (
    SIGNIF_LEGEND,
    coef_table_strings,
    format_c,
    format_pval,
    format_real,
    matrix_lines,
    named_vector_lines,
    r_round,
    r_signif,
)

CASES = json.loads((Path(__file__).parent / "data" / "r_format_cases.json").read_text())


def _nan(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


@pytest.mark.parametrize(
    "case", CASES["format"], ids=lambda c: f"{c['x']}-{c['digits']}"
)
def test_format_real_matches_r(case):
    assert format_real(case["x"], case["digits"][0]) == case["out"]


@pytest.mark.parametrize("case", CASES["format_pval"], ids=str)
def test_format_pval_matches_r(case):
    assert format_pval(case["p"], case["digits"][0]) == case["out"]


@pytest.mark.parametrize("case", CASES["coefmat"], ids=lambda c: str(len(c["out"])))
def test_coef_table_matches_printcoefmat(case):
    values = np.array([_nan(row) for row in case["values"]])
    if case["has_df"][0]:
        cells, legend = coef_table_strings(values, cs_ind=(0, 1), tst_ind=(3,))
    else:
        cells, legend = coef_table_strings(values)
    columns = list(case["colnames"]) + ([""] if legend else [])
    lines = matrix_lines(cells, case["rownames"], columns)
    if legend:
        lines += ["---", SIGNIF_LEGEND]
    assert lines == case["out"]


def test_nan_and_inf_are_shown_as_r_does():
    assert format_real([np.nan, 1.5, np.inf, -np.inf]) == [
        "  NA",
        " 1.5",
        " Inf",
        "-Inf",
    ]


def test_pvalue_floor_spacing_follows_r():
    # R: "<2e-16" when the other p-values are narrow, "< 2e-16" otherwise.
    assert format_pval([1e-20, 0.5]) == ["<2e-16", "0.5"]
    assert format_pval([1e-20, 0.000123]) == ["< 2e-16", "0.000123"]


def test_format_c_and_signif():
    assert format_c(71.46442059862449, 4) == "71.46"
    assert r_signif(30.99123390458598, 4) == 30.99


def test_named_vector_wraps_at_80_columns():
    lines = named_vector_lines(np.arange(30.0), [str(i) for i in range(30)], 4)
    assert len(lines) == 4
    assert all(len(line) <= 80 for line in lines)


def test_negative_zero_prints_as_r_prints_it():
    # round(-1e-4, 3) is -0.0; R prints 0.000, never -0.000.
    assert format_real([r_round(-1e-4, 3), 0.25], 7, nsmall=3) == ["0.000", "0.250"]
