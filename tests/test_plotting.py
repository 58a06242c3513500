"""Figures of skmixed.plotting: what is drawn, checked artist by artist.

The stand-in models below are built from lme4's own fit of sleepstudy
(tests/data/*.json): their conditional modes, conditional variances, fitted
values and per-subject coefficients are R's, so the figures are checked
against lme4's numbers without needing our estimators. Tests with the real
estimators run once those exist.
"""

import json
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import skmixed
from skmixed.datasets import load_sleepstudy
from skmixed.plotting import (
    _plotting_positions,
    plot_group_fits,
    plot_random_effects,
    plot_residuals,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class LmerFit:
    """A 'fitted mixed model' whose numbers are lme4's (from a reference JSON)."""

    def __init__(self, case):
        ref = json.loads((DATA / f"{case}.json").read_text())
        self.ref = ref
        self.random_effects_ = {}
        self.random_effects_cov_ = {}
        for block in ref["ranef_condvar_blocks"]:
            name = block["grpvar"]
            self.random_effects_[name] = pd.DataFrame(
                block["condval"], index=block["levels"], columns=block["terms"]
            )
            self.random_effects_cov_[name] = np.array(block["condvar"])
        self.fittedvalues_ = np.array(ref["fitted"])
        self.residuals_ = np.array(ref["residuals"])
        per_level = ref["coef_per_level"][0]
        self.factor = per_level["grpvar"]
        self.coef = pd.DataFrame(
            per_level["values"], index=per_level["levels"], columns=per_level["terms"]
        )

    def _group_names(self):
        return [self.factor]

    def predict(self, X, groups=None):
        labels = X[self.factor] if groups is None else pd.Series(np.asarray(groups))
        coef = self.coef.loc[labels.astype(str).to_numpy()]
        return coef["(Intercept)"].to_numpy() + coef["Days"].to_numpy() * X[
            "Days"
        ].to_numpy(dtype=float)


class PooledLine:
    """Same line for every group; predict ignores groups (like PooledRegressor)."""

    def __init__(self, intercept, slope):
        self.intercept, self.slope = intercept, slope

    def predict(self, X, groups=None):
        return self.intercept + self.slope * np.asarray(X["Days"], dtype=float)


@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy()


@pytest.fixture(scope="module")
def slope_fit():
    return LmerFit("ss_lmer_slope_reml")


# -- plot_group_fits -----------------------------------------------------------
def test_group_fits_names_the_y_axis_by_a_one_column_frame(sleep, slope_fit):
    # y as a one-column DataFrame labels the axis by its column, as a Series
    ax = plot_group_fits(slope_fit, sleep[["Days", "Subject"]], sleep[["Reaction"]])
    assert ax.get_ylabel() == "Reaction"


def test_group_fits_one_axis_draws_points_and_line_per_group(sleep, slope_fit):
    ax = plot_group_fits(slope_fit, sleep[["Days", "Subject"]], sleep["Reaction"])
    assert len(ax.collections) == 18  # one scatter per subject
    assert len(ax.lines) == 18  # one fitted line per subject
    assert all(len(c.get_offsets()) == 10 for c in ax.collections)
    assert ax.get_xlabel() == "Days"
    assert ax.get_ylabel() == "Reaction"
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "Subject"
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == list(sleep["Subject"].cat.categories)
    # Lines and points of a group share its colour; groups differ in colour.
    colors = [tuple(line.get_color()) for line in ax.lines]
    assert len(set(colors)) == 18
    np.testing.assert_allclose(ax.collections[0].get_facecolor()[0][:3], colors[0][:3])


def test_group_fits_lines_are_the_model_predictions_sorted_by_feature(sleep, slope_fit):
    shuffled = sleep.sample(frac=1.0, random_state=0)
    ax = plot_group_fits(slope_fit, shuffled[["Days", "Subject"]], shuffled["Reaction"])
    line_308 = ax.lines[0]
    days = line_308.get_xdata()
    assert np.all(np.diff(days) >= 0)  # joined in order of the feature
    b0, b1 = slope_fit.coef.loc["308"]
    # lme4's coef(m)$Subject for subject 308: 253.66 + 19.67 * Days
    np.testing.assert_allclose(line_308.get_ydata(), b0 + b1 * days, rtol=1e-12)
    assert b0 == pytest.approx(253.6637, abs=1e-3)


def test_group_fits_facets_one_panel_per_group(sleep, slope_fit):
    fig = plot_group_fits(
        slope_fit, sleep[["Days", "Subject"]], sleep["Reaction"], col_wrap=6
    )
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 18
    assert [ax.get_title() for ax in panels] == list(sleep["Subject"].cat.categories)
    assert all(len(ax.lines) == 1 and len(ax.collections) == 1 for ax in panels)
    assert fig.get_supxlabel() == "Days"
    assert fig.get_supylabel() == "Reaction"
    # Shared axes: every panel has the same limits.
    assert len({ax.get_ylim() for ax in panels}) == 1


def test_group_fits_facets_hide_unused_panels(sleep, slope_fit):
    fig = plot_group_fits(
        slope_fit, sleep[["Days", "Subject"]], sleep["Reaction"], col_wrap=5
    )
    assert len(fig.axes) == 20  # 4 rows of 5
    assert sum(ax.get_visible() for ax in fig.axes) == 18


def test_group_fits_groups_argument_equals_x_column(sleep, slope_fit):
    from_x = plot_group_fits(slope_fit, sleep[["Days", "Subject"]], sleep["Reaction"])
    from_arg = plot_group_fits(
        slope_fit, sleep[["Days"]], sleep["Reaction"], groups=sleep["Subject"]
    )
    for a, b in zip(from_x.lines, from_arg.lines, strict=True):
        np.testing.assert_array_equal(a.get_ydata(), b.get_ydata())


def test_group_fits_pooled_model_draws_the_same_line_everywhere(sleep):
    model = PooledLine(251.405, 10.467)
    ax = plot_group_fits(model, sleep[["Days"]], sleep["Reaction"], sleep["Subject"])
    first = ax.lines[0].get_ydata()
    assert len(ax.lines) == 18
    assert all(np.allclose(line.get_ydata(), first) for line in ax.lines)


def test_group_fits_sklearn_model_without_groups_in_predict(sleep):
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(sleep[["Days"]], sleep["Reaction"])
    ax = plot_group_fits(model, sleep[["Days"]], sleep["Reaction"], sleep["Subject"])
    np.testing.assert_allclose(
        ax.lines[0].get_ydata()[[0, -1]],
        model.intercept_ + model.coef_[0] * np.array([0.0, 9.0]),
    )


def test_group_fits_draws_on_given_axis_and_numpy_input(sleep):
    _, given = plt.subplots()
    X = sleep[["Days"]].to_numpy()
    ax = plot_group_fits(
        _ArrayLine(250.0, 10.0),
        X,
        sleep["Reaction"].to_numpy(),
        sleep["Subject"].to_numpy(),
        ax=given,
    )
    assert ax is given
    assert ax.get_xlabel() == "x0" and ax.get_ylabel() == "y"
    assert ax.get_legend().get_title().get_text() == "group"


class _ArrayLine:
    def __init__(self, intercept, slope):
        self.intercept, self.slope = intercept, slope

    def predict(self, X, groups=None):
        return self.intercept + self.slope * np.asarray(X, dtype=float)[:, 0]


def test_group_fits_nested_columns_use_the_finest_level():
    df = load_sleepstudy(school=True)
    model = PooledLine(250.0, 10.0)
    ax = plot_group_fits(
        model, df[["Days"]], df["Reaction"], groups=df[["School", "Subject"]]
    )
    # Subject determines School, so the lines are per Subject.
    assert len(ax.lines) == 18
    assert ax.get_legend().get_title().get_text() == "Subject"


def test_group_fits_crossed_columns_use_the_interaction():
    df = pd.DataFrame(
        {
            "x": np.tile([0.0, 1.0], 8),
            "a": np.repeat(["p", "q"], 8),
            "b": np.tile(np.repeat(["u", "v"], 2), 4),
        }
    )
    ax = plot_group_fits(
        _FrameLine(), df[["x"]], np.arange(16.0), groups=df[["a", "b"]]
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "p:u",
        "p:v",
        "q:u",
        "q:v",
    ]


class _FrameLine:
    def predict(self, X, groups=None):
        return np.asarray(X["x"], dtype=float)


def test_group_fits_many_groups_have_no_legend():
    n = 30
    df = pd.DataFrame({"x": np.tile([0.0, 1.0], n), "g": np.repeat(np.arange(n), 2)})
    ax = plot_group_fits(_FrameLine(), df[["x"]], df["x"], groups=df["g"])
    assert len(ax.lines) == n
    assert ax.get_legend() is None
    assert len({tuple(line.get_color()) for line in ax.lines}) == n


def test_group_fits_compares_several_models(sleep, slope_fit):
    models = {"pooled": PooledLine(251.405, 10.467), "mixed": slope_fit}
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    ax = plot_group_fits(models, X, y)
    assert len(ax.lines) == 36  # two lines per subject
    assert len(ax.collections) == 18  # the points are drawn once
    assert {line.get_linestyle() for line in ax.lines[0::2]} == {"-"}
    assert {line.get_linestyle() for line in ax.lines[1::2]} == {"--"}
    (styles,) = [a for a in ax.artists if hasattr(a, "get_texts")]
    assert [t.get_text() for t in styles.get_texts()] == ["pooled", "mixed"]
    assert ax.get_legend().get_title().get_text() == "Subject"
    fig = plot_group_fits(models, X, y, col_wrap=6)
    panels = [a for a in fig.axes if a.get_visible()]
    assert all(len(a.lines) == 2 for a in panels)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["pooled", "mixed"]
    # The mixed model's line in subject 308's panel is lme4's coef(m) line.
    b0, b1 = slope_fit.coef.loc["308"]
    mixed_308 = panels[0].lines[1]
    np.testing.assert_allclose(
        mixed_308.get_ydata(), b0 + b1 * mixed_308.get_xdata(), rtol=1e-12
    )


def test_group_fits_errors(sleep, slope_fit):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="col_wrap.*ax"):
        plot_group_fits(slope_fit, X, y, col_wrap=3, ax=ax)
    with pytest.raises(ValueError, match="positive integer"):
        plot_group_fits(slope_fit, X, y, col_wrap=0)
    with pytest.raises(ValueError, match="needs the groups"):
        plot_group_fits(PooledLine(0, 1), sleep[["Days"]], y)
    with pytest.raises(ValueError, match="empty dict"):
        plot_group_fits({}, X, y)
    with pytest.raises(ValueError, match="same number of rows"):
        plot_group_fits(PooledLine(0, 1), sleep[["Days"]], y[:10], sleep["Subject"])


# -- plot_random_effects -------------------------------------------------------
def _points(ax):
    """The line of markers (the conditional modes) in a caterpillar panel."""
    (line,) = [line for line in ax.lines if line.get_marker() == "o"]
    return line


def test_random_effects_one_panel_per_term_sorted_by_mode(slope_fit):
    fig = plot_random_effects(slope_fit)
    assert [ax.get_title() for ax in fig.axes] == ["(Intercept)", "Days"]
    assert fig.get_suptitle() == "Random effects of Subject"
    modes = slope_fit.random_effects_["Subject"]
    for ax, term in zip(fig.axes, modes.columns, strict=True):
        x = _points(ax).get_xdata()
        assert len(x) == 18
        assert np.all(np.diff(x) >= 0)
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert ticks == list(modes[term].sort_values(kind="stable").index)
    # lme4: subject 337 has the largest intercept, 308 the largest Days slope.
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "337"
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()][-1] == "308"


def test_random_effects_intervals_match_lme4_condsd(slope_fit):
    fig = plot_random_effects(slope_fit, level=0.95)
    condsd = {
        (r["term"], r["level"]): r["condsd"]
        for r in slope_fit.ref["ranef"]
        if r["grpvar"] == "Subject"
    }
    z = stats.norm.ppf(0.975)
    for ax in fig.axes:
        term = ax.get_title()
        (bars,) = ax.containers
        segments = bars.lines[2][0].get_segments()
        labels = [t.get_text() for t in ax.get_yticklabels()]
        widths = np.array([seg[1, 0] - seg[0, 0] for seg in segments])
        expected = np.array([2 * z * condsd[(term, lab)] for lab in labels])
        np.testing.assert_allclose(widths, expected, rtol=1e-10)
    # lme4's conditional sd of the intercept is 12.07 for every subject.
    assert condsd[("(Intercept)", "308")] == pytest.approx(12.0709, abs=1e-4)


def test_random_effects_without_intervals(slope_fit):
    fig = plot_random_effects(slope_fit, level=None)
    assert all(len(ax.containers) == 0 for ax in fig.axes)
    assert fig.get_supxlabel() == "Conditional mode"
    fig = plot_random_effects(slope_fit, level=0.9)
    assert fig.get_supxlabel() == "Conditional mode +/- 90% interval"


def test_random_effects_choose_factor():
    fit = LmerFit("ss3_lmer_school_slope")
    default = plot_random_effects(fit)
    first = next(iter(fit.random_effects_))
    assert default.get_suptitle() == f"Random effects of {first}"
    school = plot_random_effects(fit, factor="School")
    assert [ax.get_title() for ax in school.axes] == ["(Intercept)", "Days"]
    assert len(_points(school.axes[0]).get_xdata()) == 3
    with pytest.raises(ValueError, match="No grouping factor 'Class'"):
        plot_random_effects(fit, factor="Class")


def test_random_effects_many_levels_drop_labels():
    n = 100
    modes = pd.DataFrame(
        {"(Intercept)": np.linspace(-1, 1, n)}, index=map(str, range(n))
    )

    class Fit:
        random_effects_ = {"g": modes}

    fig = plot_random_effects(Fit())
    assert len(fig.axes[0].get_yticks()) == 0
    assert len(_points(fig.axes[0]).get_xdata()) == n


def test_random_effects_errors(slope_fit):
    with pytest.raises(ValueError, match="random_effects_"):
        plot_random_effects(PooledLine(0, 1))
    with pytest.raises(ValueError, match="level"):
        plot_random_effects(slope_fit, level=95)


# -- plot_residuals ---------------------------------------------------------
def test_plotting_positions_are_rs_ppoints():
    # R: ppoints(5) and ppoints(12)
    np.testing.assert_allclose(
        _plotting_positions(5), [0.1190476, 0.3095238, 0.5, 0.6904762, 0.8809524], 1e-6
    )
    np.testing.assert_allclose(
        _plotting_positions(12)[:2], [0.04166667, 0.125], rtol=1e-6
    )


def test_residuals_mixed_model_panels(slope_fit):
    fig = plot_residuals(slope_fit)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "Residuals vs fitted",
        "Normal QQ: residuals",
        "Normal QQ: (Intercept) | Subject",
        "Normal QQ: Days | Subject",
    ]
    scatter = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(scatter[:, 0], slope_fit.fittedvalues_)
    np.testing.assert_allclose(scatter[:, 1], slope_fit.residuals_)
    assert fig.axes[0].get_xlabel() == "Fitted values"
    assert fig.axes[0].get_ylabel() == "Residuals"
    qq = fig.axes[1].collections[0].get_offsets()
    assert len(qq) == 180
    np.testing.assert_allclose(qq[:, 1], np.sort(slope_fit.residuals_))
    assert len(fig.axes[2].collections[0].get_offsets()) == 18
    assert fig.axes[2].get_ylabel() == "Conditional modes"


def test_residuals_qq_line_through_quartiles(slope_fit):
    fig = plot_residuals(slope_fit)
    ax = fig.axes[1]
    (line,) = ax.lines
    q1, q3 = np.quantile(slope_fit.residuals_, [0.25, 0.75])
    n1, n3 = stats.norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (n3 - n1)
    xy1 = np.asarray(line._xy1, dtype=float)
    assert line._slope == pytest.approx(slope)
    assert xy1[1] + slope * (n1 - xy1[0]) == pytest.approx(q1)


def test_residuals_three_level_model_has_a_panel_per_term():
    fig = plot_residuals(LmerFit("ss3_lmer_school_slope"))
    assert len(fig.axes) == 5
    assert "Normal QQ: Days | School" in [ax.get_title() for ax in fig.axes]


def test_residuals_linear_model_has_two_panels():
    class Fit:
        fittedvalues_ = np.arange(20.0)
        residuals_ = np.sin(np.arange(20.0))

    fig = plot_residuals(Fit())
    assert len(fig.axes) == 2


def test_residuals_errors():
    with pytest.raises(ValueError, match="fittedvalues_"):
        plot_residuals(PooledLine(0, 1))


def test_missing_matplotlib_names_the_extra(monkeypatch, sleep, slope_fit):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "scikit-mixed\[plot\]"'):
        plot_residuals(slope_fit)


# -- with the real estimators ----------------------------------------------------
needs = {
    name: pytest.mark.skipif(
        not hasattr(skmixed, name), reason=f"skmixed.{name} not written yet"
    )
    for name in ("PooledRegressor", "FixedEffectsRegressor", "MixedLMRegressor")
}


@needs["MixedLMRegressor"]
def test_real_mixed_model_caterpillar_matches_lme4(sleep, slope_fit):
    model = skmixed.MixedLMRegressor("(Days | Subject)").fit(
        sleep[["Days", "Subject"]], sleep["Reaction"]
    )
    fig = plot_random_effects(model)
    reference = slope_fit.random_effects_["Subject"]
    for ax in fig.axes:
        term = ax.get_title()
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == list(reference[term].sort_values(kind="stable").index)
        # Conditional modes to 1e-3 of their scale, as the estimator tests.
        scale = reference[term].abs().max()
        np.testing.assert_allclose(
            _points(ax).get_xdata(), reference[term].loc[labels], atol=1e-3 * scale
        )


@needs["MixedLMRegressor"]
def test_real_mixed_model_residuals_and_group_fits(sleep, slope_fit):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    model = skmixed.MixedLMRegressor("(Days | Subject)").fit(X, y)
    fig = plot_residuals(model)
    assert len(fig.axes) == 4
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 0], slope_fit.fittedvalues_, rtol=1e-5)
    ax = plot_group_fits(model, X, y)
    np.testing.assert_allclose(
        ax.lines[0].get_ydata(), slope_fit.fittedvalues_[:10], rtol=1e-5
    )


@needs["MixedLMRegressor"]
@needs["PooledRegressor"]
@needs["FixedEffectsRegressor"]
def test_real_estimators_side_by_side(sleep):
    X, y = sleep[["Days", "Subject"]], sleep["Reaction"]
    models = {
        "pooled": skmixed.PooledRegressor(group="Subject").fit(X, y),
        "fixed": skmixed.FixedEffectsRegressor(group="Subject").fit(X, y),
        "mixed": skmixed.MixedLMRegressor("(1 | Subject)").fit(X, y),
    }
    fig = plot_group_fits(models, X, y, col_wrap=6)
    panels = [a for a in fig.axes if a.get_visible()]
    assert len(panels) == 18 and all(len(a.lines) == 3 for a in panels)
    slopes = []
    for panel in panels:
        for line in panel.lines:
            days, fitted = line.get_xdata(), line.get_ydata()
            slopes.append((fitted[-1] - fitted[0]) / (days[-1] - days[0]))
    # All three share the common slope 10.467 here (balanced design, no
    # random slope); they differ in the intercepts only.
    np.testing.assert_allclose(slopes, 10.467286, rtol=1e-5)
    pooled_308, fixed_308, mixed_308 = (line.get_ydata()[0] for line in panels[0].lines)
    # Partial pooling: the mixed intercept lies between pooled and fixed.
    assert min(pooled_308, fixed_308) < mixed_308 < max(pooled_308, fixed_308)
    residual_fig = plot_residuals(models["fixed"])
    assert len(residual_fig.axes) == 2  # no random effects to QQ-plot
