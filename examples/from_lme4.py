"""From lme4 to skmixed: the same analyses written as R formulas
==================================================================

An R user's analyses, call for call. ``skmixed.lm`` and ``skmixed.lmer``
take R's formulas and a DataFrame and return fitted models whose summaries
are R's (``summary.lm``; lmerTest's ``summary(lmer(...))``). The fixed part
of a formula is read by formulaic, with R's treatment contrasts and R's
coefficient names, so categorical variables and interactions go straight
into the formula.

1. The sleepstudy tutorial's models, written as formulas.
2. The same models as scikit-learn estimators (``from_formula``), for
   pipelines and grid searches.
3. Oats (nlme): a split-plot design with a categorical fixed effect and the
   per-term type III F tests of lmerTest's ``anova(m)``.
4. Cake (lme4): a factorial fixed part, ``recipe * temperature``.

Every number printed here is the one R prints (lmerTest 3.1-3, lme4 1.1-31;
the tests compare them). Run it from the repository root::

    python examples/from_lme4.py
"""

import warnings

import pandas as pd
from sklearn.model_selection import GridSearchCV, GroupKFold

import skmixed
from skmixed import MixedLMRegressor
from skmixed.datasets import load_cake, load_oats, load_sleepstudy
from skmixed.metrics import marginal_log_likelihood


def heading(title):
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}")


def print_anova(table):
    """An F table with lmerTest's column names."""
    if table.attrs.get("heading"):
        print(table.attrs["heading"])
    shown = table.rename(
        columns={
            "sum_sq": "Sum Sq",
            "mean_sq": "Mean Sq",
            "num_df": "NumDF",
            "den_df": "DenDF",
            "F_value": "F value",
            "p_value": "Pr(>F)",
        }
    )
    options = ("display.width", 120, "display.max_columns", 20)
    with pd.option_context(*options, "display.precision", 4):
        print(shown)


# %%
# 1. The sleepstudy models as formulas
# ------------------------------------
# ``lm(Reaction ~ Days)``, ``lm(Reaction ~ Days + Subject)`` and the two
# mixed models of the tutorial. ``Subject`` is a categorical column, so in a
# formula's fixed part it gets R's treatment contrasts (``Subject309``, ...).
sleep = load_sleepstudy()

heading("lm(Reaction ~ Days)")
pooled = skmixed.lm("Reaction ~ Days", sleep)
print(pooled.summary())

heading("lm(Reaction ~ Days + Subject)")
per_subject = skmixed.lm("Reaction ~ Days + Subject", sleep)
print(per_subject.params_.head(4).round(3))
print(f"Multiple R-squared: {per_subject.rsquared_:.4f}")

heading("lmer(Reaction ~ Days + (1 | Subject))")
intercept = skmixed.lmer("Reaction ~ Days + (1 | Subject)", sleep)
print(intercept.summary())

heading("lmer(Reaction ~ Days + (Days | Subject))")
slope = skmixed.lmer("Reaction ~ Days + (Days | Subject)", sleep)
print(slope.summary())

heading("anova(m_intercept, m_slope): refitted with ML, as R does")
with pd.option_context("display.width", 120, "display.max_columns", 20):
    print(skmixed.anova(intercept, slope))

# %%
# 2. The same models as estimators
# --------------------------------
# ``from_formula`` splits the formula into the estimator's parameters; the
# model is an ordinary scikit-learn estimator. Here a grid search over the
# random part keeps the fixed part the formula stated.
heading("MixedLMRegressor.from_formula and a grid search over random effects")
model = MixedLMRegressor.from_formula("Reaction ~ Days + (1 | Subject)")
print(model)
search = GridSearchCV(
    model,
    {"random_effects": ["(1 | Subject)", "(Days | Subject)"]},
    cv=GroupKFold(n_splits=6),
    scoring=marginal_log_likelihood,
)
search.fit(sleep, sleep["Reaction"], groups=sleep["Subject"])
print("best random part:", search.best_params_["random_effects"])

# %%
# 3. Oats: a categorical fixed effect and its F test
# --------------------------------------------------
# Yates' split-plot experiment: varieties on plots within blocks, nitrogen
# on subplots. ``Variety`` is a fixed effect *and* part of the grouping
# factor ``Variety:Block`` (the plots), as in R.
heading("lmer(yield ~ nitro + Variety + (1 | Block/Variety))")
oats = load_oats()
m_oats = skmixed.lmer("yield ~ nitro + Variety + (1 | Block/Variety)", oats)
print(m_oats.summary())

heading("anova(m): one row per term, Satterthwaite's df")
print_anova(m_oats.anova())

heading("contest(m, ...): the Variety hypothesis, and one contrast")
print_anova(m_oats.contest("Variety"))
print_anova(m_oats.contest({"VarietyMarvellous": 1, "VarietyVictory": -1}))

# %%
# 4. Cake: a factorial fixed part
# -------------------------------
# Three recipes, six baking temperatures (a factor here: lme4's ordered
# factor would use polynomial contrasts), replicate batches within recipe.
# In ``recipe * temperature`` the type III test of ``recipe`` averages over
# the temperatures, as lmerTest's does; it is not the test of the recipe
# coefficients at the reference temperature.
heading("lmer(angle ~ recipe * temperature + (1 | recipe:replicate))")
cake = load_cake()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    m_cake = skmixed.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", cake)
print(f"REML criterion at convergence: {m_cake.reml_criterion_:.1f}")
print(m_cake.fixed_effects_.round(3).head(6))
print_anova(m_cake.anova())
print_anova(m_cake.anova(ddf="kenward-roger"))
