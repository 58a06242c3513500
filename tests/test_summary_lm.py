"""The lm summary against R's printed summary.lm, line by line.

R's text is in tests/data/lm_extra.json (``summary_text``: capture.output of
print(summary(m)), made by tests/data/make_lm_extra.R). Everything from
"Residuals:" on must be identical; the Call lines differ by design (ours name
the estimator and the equivalent lm call).
"""

import numpy as np
import pandas as pd
import pytest
from _lm_reference import extra, extra_x

from skmixed import FixedEffectsRegressor, PooledRegressor
from skmixed.datasets import load_sleepstudy
from skmixed.summary import CoefTable, LMSummary, StringTable, Summary


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    df["x"] = extra_x()
    df["Days2"] = 2 * df["Days"]
    return df


def _fe(features, **params):
    def fit(df):
        model = FixedEffectsRegressor(group="Subject", method="dummy", **params)
        return model.fit(df[[*features, "Subject"]], df["Reaction"])

    return fit


def _pooled(features, **params):
    def fit(df):
        return PooledRegressor(**params).fit(df[features], df["Reaction"])

    return fit


def _with_missing(df):
    y = df["Reaction"].copy()
    y.iloc[[2, 49, 100]] = np.nan
    return PooledRegressor(missing="drop").fit(df[["Days"]], y)


FITS = {
    "days": _pooled(["Days"]),
    "days_subject": _fe(["Days"]),
    "days_x_subject": _fe(["Days"], group_slopes="Days"),
    "days_x_cov_subject": _fe(["Days", "x"]),
    "slopes_cov": _fe(["Days", "x"], group_slopes="Days"),
    "reference_350": _fe(["Days"], reference="350"),
    "no_intercept": _pooled(["Days"], fit_intercept=False),
    "aliased": _pooled(["Days", "Days2", "x"]),
    "missing": _with_missing,
    "few_df": lambda df: _pooled(["Days"])(df.iloc[:6]),
}


def _from_residuals(lines):
    return lines[lines.index("Residuals:") :]


def _last_digit_apart(a, b):
    """Same printed number but for one unit in the last digit."""
    try:
        decimals = len(a.split(".")[1]) if "." in a else 0
        return len(a) == len(b) and abs(float(a) - float(b)) <= 1.0001 * 10**-decimals
    except ValueError:
        return False


def assert_same_text(ours, theirs):
    """Lines equal, except a number that sits on a rounding tie.

    Our estimates differ from R's in the last bits (LAPACK's QR, not
    LINPACK's); a value like -126.90085 then rounds to ...9009 here and
    ...9008 in R. Such a token may differ by one unit in its last digit.
    """
    assert len(ours) == len(theirs), "\n".join(ours)
    for mine, ref in zip(ours, theirs, strict=True):
        if mine == ref:
            continue
        pairs = list(zip(mine.split(), ref.split(), strict=True))
        assert len(mine) == len(ref), (mine, ref)
        assert all(x == y or _last_digit_apart(x, y) for x, y in pairs), (mine, ref)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", list(FITS))
def test_text_matches_r_summary_lm(sleep, case):
    summary = FITS[case](sleep).summary()
    ours = str(summary).split("\n")
    assert_same_text(
        _from_residuals(ours), _from_residuals(extra(case)["summary_text"])
    )
    assert ours[:2] == ["", "Call:"]
    assert ours[3].startswith("lm(formula = Reaction ~ ")


def test_intercept_only_layout_matches_r():
    # An intercept-only fit is built directly (the estimators refuse an empty
    # X); R prints no R-squared and no F-statistic for it.
    ref = extra("intercept_only")
    y = load_sleepstudy()["Reaction"].to_numpy()
    table = pd.DataFrame(
        {
            "estimate": [ref["estimate"]],
            "std_error": [ref["std_error"]],
            "t_value": [ref["t_value"]],
            "p_value": [ref["p_value"]],
        },
        index=["(Intercept)"],
    )
    summary = LMSummary(
        call=["lm(formula = Reaction ~ 1)"],
        coefficients=table,
        residuals=y - y.mean(),
        df_resid=179,
        sigma=ref["sigma"],
        rsquared=0.0,
        rsquared_adj=0.0,
        fstatistic=None,
    )
    ours = str(summary).split("\n")
    assert _from_residuals(ours) == _from_residuals(ref["summary_text"])


def test_coefficients_frame_and_html(sleep):
    with pytest.warns(UserWarning):
        summary = FITS["aliased"](sleep).summary()
    frame = summary.coefficients
    assert list(frame.columns) == ["estimate", "std_error", "t_value", "p_value"]
    assert frame.loc["Days2"].isna().all()
    html = summary._repr_html_()
    assert html.startswith("<div>") and "<table>" in html
    assert '<td style="text-align:right;font-family:monospace">NA</td>' in html
    assert "Residual standard error: 47.83 on 177 degrees of freedom" in html
    assert repr(summary) == str(summary)


def test_within_summary_notes_the_absorbed_groups(sleep):
    model = FixedEffectsRegressor(group="Subject", method="within")
    text = str(model.fit(sleep[["Days", "x", "Subject"]], sleep["Reaction"]).summary())
    assert "Absorbed (within transformation): 18 group intercepts of Subject" in text
    assert "F-statistic: 22.55 on 19 and 160 DF" in text


def test_cluster_summary_names_the_clusters(sleep):
    model = PooledRegressor(cov_type="cluster", group="Subject")
    text = str(model.fit(sleep[["Days", "Subject"]], sleep["Reaction"]).summary())
    assert "cluster-robust (CR1, as sandwich::vcovCL) by Subject, 18 clusters" in text


def test_summary_base_class_renders_blocks():
    class Tiny(Summary):
        def blocks(self):
            table = pd.DataFrame(
                [[1.5, 0.5, 3.0, 0.004]],
                index=["b"],
                columns=["Estimate", "Std. Error", "t value", "Pr(>|t|)"],
            )
            strings = StringTable([["1"]], ["Subject"], ["Var"], right=False)
            return ["Fixed effects:", CoefTable(table), "", strings]

    text = str(Tiny()).split("\n")
    assert text[0] == "Fixed effects:"
    assert text[2] == "b      1.5        0.5       3    0.004 **"
    assert text[-1] == "Subject 1  "
    assert Tiny()._repr_html_().count("<table>") == 2
