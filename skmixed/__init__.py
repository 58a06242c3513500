"""skmixed: hierarchical (mixed-effects) linear models for scikit-learn."""

import importlib

from skmixed._anova import anova
from skmixed._groups import GroupsMissingWarning
from skmixed._hausman import hausman
from skmixed._inputs import IgnoredColumnsWarning
from skmixed._model_formula import lm, lmer
from skmixed._report import report
from skmixed.fixed import FixedEffectsRegressor
from skmixed.glmm import MixedGLMRegressor, MixedLogisticRegression
from skmixed.mixed import MixedLMRegressor
from skmixed.pooled import PooledRegressor

__version__ = "0.1.0.dev0"

__all__ = [
    "FixedEffectsRegressor",
    "GroupsMissingWarning",
    "IgnoredColumnsWarning",
    "PooledRegressor",
    "MixedLMRegressor",
    "MixedGLMRegressor",
    "MixedLogisticRegression",
    "anova",
    "hausman",
    "lm",
    "lmer",
    "report",
]

# Submodules load on first attribute access (``import skmixed;
# skmixed.datasets``), as scikit-learn's and scipy's do: plotting needs
# matplotlib, and nothing else should pay for what it does not use.
_SUBMODULES = ("datasets", "metrics", "plotting", "summary")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"skmixed.{name}")
    raise AttributeError(f"module 'skmixed' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
