"""Choosing a grouped model by cross-validation
=============================================

Which model of the sleep deprivation study should we use: a pooled line, a
line per subject, or a mixed model -- and with a random intercept only, or a
random slope as well? Cross-validation answers, but only once we say which
prediction we care about, because the two questions need different splits
and different scores:

1. **New subjects.** Split by subject (``GroupKFold``): every test subject
   is unseen. Point predictions are then the population line for every
   model, so R² ties; the held-out *marginal log-likelihood* scores the
   covariance each model predicts within a new subject, and picks the model.
2. **Future days of known subjects.** Split in time within every subject:
   train on the days before day *d*, test on day *d*. Now each subject's
   own effects are used, and R² of the point predictions is the score.

All three estimators go into one grid: a ``Pipeline`` whose last step is a
grid parameter. Run it from the repository root::

    python examples/model_selection.py
"""

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skmixed import FixedEffectsRegressor, MixedLMRegressor, PooledRegressor
from skmixed.datasets import load_sleepstudy
from skmixed.metrics import (
    conditional_log_likelihood,
    make_grouped_scorer,
    marginal_log_likelihood,
)

STRUCTURES = ["(1 | Subject)", "(Days | Subject)"]


def model_name(params):
    """A short name for one grid point."""
    model = params["model"]
    name = type(model).__name__.replace("Regressor", "")
    if isinstance(model, MixedLMRegressor):
        return f"MixedLM {params['model__random_effects']}"
    if isinstance(model, FixedEffectsRegressor) and model.group_slopes:
        return f"{name} (slopes)"
    return name


def results_table(search, columns):
    """cv_results_ as a table: one row per model, mean scores across folds."""
    results = pd.DataFrame(search.cv_results_)
    table = pd.DataFrame(
        {label: results[f"mean_test_{key}"] for key, label in columns.items()}
    )
    table.index = [model_name(p) for p in results["params"]]
    return table.round(3)


df = load_sleepstudy()
X, y, subject = df[["Days", "Subject"]], df["Reaction"], df["Subject"]

# %%
# New subjects: GroupKFold and the marginal log-likelihood
# --------------------------------------------------------
# The grouping column stays in ``X``: it then reaches every model and every
# scorer on every scikit-learn path. The ColumnTransformer scales ``Days``
# and passes ``Subject`` through under its own name, as a pandas column.
# ``FixedEffectsRegressor`` needs ``handle_unknown="mean"`` to predict a
# subject it has not seen (with the average subject effect).

prep = ColumnTransformer(
    [("scale", StandardScaler(), ["Days"])],
    remainder="passthrough",
    verbose_feature_names_out=False,
).set_output(transform="pandas")
grid = [
    {"model": [PooledRegressor(group="Subject")]},
    {"model": [FixedEffectsRegressor(group="Subject", handle_unknown="mean")]},
    {"model": [MixedLMRegressor()], "model__random_effects": STRUCTURES},
]
new_subjects = GridSearchCV(
    Pipeline([("prep", prep), ("model", MixedLMRegressor())]),
    grid,
    cv=GroupKFold(6),
    scoring={"loglik": marginal_log_likelihood, "r2": "r2"},
    refit="loglik",
).fit(X, y, groups=subject)

print(results_table(new_subjects, {"loglik": "marginal loglik", "r2": "R2"}))
print("best:", model_name(new_subjects.best_params_))

# %%
# R² is the same for all four models: for a new subject each predicts the
# population line, and on these balanced data the lines coincide. The
# marginal log-likelihood ranks them: the mixed models beat the pooled line
# because they know that a subject's days are correlated, and the random
# slope beats the random intercept because subjects also differ in how fast
# they tire. The fixed-effects model comes last: its residual spread leaves
# out the differences between subjects altogether.
#
# The same search with ``groups=`` instead of an ``X`` column needs
# metadata routing; skmixed's estimators and scorers request ``groups``
# without any ``set_*_request`` call, and ``make_grouped_scorer`` turns R²
# into a scorer that receives them too. The numbers are the same.

with sklearn.config_context(enable_metadata_routing=True):
    routed = GridSearchCV(
        MixedLMRegressor(),
        {"random_effects": STRUCTURES},
        cv=GroupKFold(6),
        scoring={
            "loglik": marginal_log_likelihood,
            "r2": make_grouped_scorer(r2_score),
        },
        refit="loglik",
    ).fit(df[["Days"]], y, groups=subject)
routed_loglik = routed.cv_results_["mean_test_loglik"]
print("marginal loglik with routed groups:", np.round(routed_loglik, 3))
print("best:", routed.best_params_["random_effects"])

# %%
# Future days of known subjects: a per-subject time split and R²
# --------------------------------------------------------------
# For day ``d`` = 3 ... 9, train on every subject's days before ``d`` and
# test on day ``d``: one-day-ahead forecasts for the same 18 subjects. Any
# list of (train, test) index pairs is a valid ``cv``. The fixed-effects
# model with a slope per subject (``group_slopes``) joins the grid: it fits
# every subject alone, without pooling.


def one_day_ahead(days, first=3):
    """Per-subject time split: train on the days before d, test on day d."""
    days = np.asarray(days)
    return [
        (np.flatnonzero(days < d), np.flatnonzero(days == d))
        for d in range(first, int(days.max()) + 1)
    ]


grid = [
    {
        "model": [
            PooledRegressor(group="Subject"),
            FixedEffectsRegressor(group="Subject"),
            FixedEffectsRegressor(group="Subject", group_slopes=["Days"]),
        ]
    },
    {"model": [MixedLMRegressor()], "model__random_effects": STRUCTURES},
]
known_subjects = GridSearchCV(
    Pipeline([("model", MixedLMRegressor())]),
    grid,
    cv=one_day_ahead(df["Days"]),
    scoring={
        "r2": "r2",
        "mse": "neg_mean_squared_error",
        "loglik": conditional_log_likelihood,
    },
    refit="r2",
).fit(X, y)

table = results_table(
    known_subjects, {"r2": "R2", "mse": "MSE", "loglik": "conditional loglik"}
)
table["MSE"] = -table["MSE"]  # scikit-learn maximises the negated MSE
print(table)
print("best:", model_name(known_subjects.best_params_))

# %%
# With the subjects known, point predictions differ and R² picks the random
# slope model: it borrows strength across subjects (partial pooling) and
# forecasts better than a line fitted to each subject alone. The conditional
# log-likelihood ranks differently: it plugs in the fitted residual σ and
# ignores the uncertainty of each subject's conditional modes, so it
# penalises a model whose forecasts are less certain than it claims.
