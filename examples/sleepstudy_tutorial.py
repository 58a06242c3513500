"""Hierarchical linear models, the classic tutorial, end to end.
================================================================

The sleep deprivation study (lme4's ``sleepstudy``): 18 subjects, reaction
time measured on ten consecutive days of restricted sleep. We go from
aggregation and Simpson's paradox through pooled regression and fixed effects
per subject to random intercepts, random slopes and a three-level model —
each fit giving the numbers R's ``lm`` / ``lme4::lmer`` (with lmerTest and
performance) give.

Run it from the repository root::

    pip install -e ".[plot]" && python examples/sleepstudy_tutorial.py

The figures are saved as PNG files next to this script.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import skmixed
from skmixed import FixedEffectsRegressor, MixedLMRegressor, PooledRegressor
from skmixed.datasets import load_sleepstudy

HERE = Path(__file__).resolve().parent


def heading(title):
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}")


def fit_and_show_warnings(model, X, y, groups=None):
    """Fit, printing any warning (singular fits say so) as R would show it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y, groups=groups)
    for warning in caught:
        print(f"Warning ({warning.category.__name__}): {warning.message}")
    return model


# %%
# 1. Aggregation loses information: Simpson's paradox
# ----------------------------------------------------
# Three groups; within every group y rises with x (correlation +1), yet the
# group means fall (correlation -1). A regression on the aggregated data (the
# group means) or on all rows pooled tells the opposite of what happens inside
# each group.
heading("1. Aggregation and Simpson's paradox")
simpson = pd.DataFrame(
    {
        "x": np.r_[1:4, 2:5, 3:6].astype(float),
        "y": np.r_[4:7, 3:6, 2:5].astype(float),
        "group": np.repeat(["a", "b", "c"], 3),
    }
)
within = simpson.groupby("group")[["x", "y"]].apply(lambda d: d.x.corr(d.y))
means = simpson.groupby("group")[["x", "y"]].mean()
print("correlation of x and y within each group:", within.round(3).to_dict())
print(f"correlation of the group means: {means.x.corr(means.y):+.3f}")
pooled_simpson = PooledRegressor().fit(simpson[["x"]], simpson.y)
fixed_simpson = FixedEffectsRegressor(group="group").fit(
    simpson[["x", "group"]], simpson.y
)
aggregated = PooledRegressor().fit(means[["x"]], means.y)
print(f"slope fitted to the group means:         {aggregated.coef_[0]:+.3f}")
print(f"pooled slope (all rows, groups ignored): {pooled_simpson.coef_[0]:+.3f}")
print(f"slope with a fixed effect per group:      {fixed_simpson.coef_[0]:+.3f}")

# %%
# 2. Pooled regression: lm(Reaction ~ Days)
# -----------------------------------------
df = load_sleepstudy()
X = df[["Days", "Subject"]]  # Subject stays a column: it names the groups
y = df["Reaction"]

heading("2. Pooled regression: lm(Reaction ~ Days)")
pooled = PooledRegressor(group="Subject").fit(X, y)
print(pooled.summary())

# %%
# 3. Fixed effects per subject: lm(Reaction ~ Days + Subject)
# ------------------------------------------------------------
heading("3. Fixed effects: lm(Reaction ~ Days + Subject)")
fixed = FixedEffectsRegressor(group="Subject").fit(X, y)
print(fixed.summary())
print(f"R-squared: {fixed.rsquared_:.4f} (pooled: {pooled.rsquared_:.4f})")

# %%
# 4. Random intercept: lmer(Reaction ~ Days + (1 | Subject))
# -----------------------------------------------------------
heading("4. Random intercept: lmer(Reaction ~ Days + (1 | Subject))")
intercept = fit_and_show_warnings(MixedLMRegressor("(1 | Subject)"), X, y)
print(intercept.summary())
print("\nConditional modes (ranef), first five subjects:")
print(intercept.random_effects_["Subject"].head())
print("\nNakagawa R2:", intercept.r2_nakagawa())
print("ICC:", intercept.icc())

# %%
# 5. Random intercept and slope: lmer(Reaction ~ Days + (Days | Subject))
# ------------------------------------------------------------------------
heading("5. Random slope: lmer(Reaction ~ Days + (Days | Subject))")
slope = fit_and_show_warnings(MixedLMRegressor("(Days | Subject)"), X, y)
print(slope.summary())
print("\nConditional modes (ranef), first five subjects:")
print(slope.random_effects_["Subject"].head())
print("\nNakagawa R2:", slope.r2_nakagawa())
print("ICC:", slope.icc())

heading("Predictions: with the subject's random effects, and population level")
new = pd.DataFrame({"Days": [0.0, 9.0, 9.0], "Subject": ["308", "372", "NEW"]})
print(
    new.assign(
        conditional=slope.predict(new),  # predict(m, newdata, allow.new.levels=TRUE)
        population=slope.predict(new, include_random=False),  # re.form = NA
    )
)

heading("Likelihood-ratio test: anova(m_intercept, m_slope), refit with ML")
with pd.option_context("display.width", 120, "display.max_columns", 20):
    print(skmixed.anova(intercept, slope))

heading("Model table (sjPlot's tab_model): random intercept vs random slope")
print(skmixed.report(intercept, slope))

# %%
# 6. Three levels: subjects in schools
# ------------------------------------
# The schools are invented for teaching and carry no information, so their
# variance is estimated at zero: a singular (boundary) fit, as lme4 reports.
heading("6. Three levels: (1 | School) + (1 | Subject:School)")
df3 = load_sleepstudy(school=True)
X3 = df3[["Days", "Subject", "School"]]
three_int = fit_and_show_warnings(
    MixedLMRegressor("(1 | School) + (1 | Subject:School)"), X3, df3.Reaction
)
print(three_int.summary())
print(f"singular fit: {three_int.is_singular_}")

heading("6b. Three levels: (Days | School) + (1 | Subject:School)")
three_slope = fit_and_show_warnings(
    MixedLMRegressor("(Days | School) + (1 | Subject:School)"), X3, df3.Reaction
)
print(three_slope.summary())
print(f"singular fit: {three_slope.is_singular_}")


# %%
# 7. Figures
# ----------
def save_figures():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from skmixed import plotting
    except ImportError:
        print('\n(matplotlib is missing: pip install "scikit-mixed[plot]")')
        return
    heading("7. Figures")
    figures = {
        "sleepstudy_fits.png": plotting.plot_group_fits(
            {"pooled": pooled, "fixed": fixed, "random slope": slope},
            X,
            y,
            col_wrap=6,
        ),
        "sleepstudy_ranef.png": plotting.plot_random_effects(slope),
        "sleepstudy_residuals.png": plotting.plot_residuals(slope),
    }
    for name, figure in figures.items():
        figure = getattr(figure, "figure", figure)
        figure.savefig(HERE / name, dpi=110, bbox_inches="tight")
        plt.close(figure)
        print(f"saved {name}")


save_figures()
