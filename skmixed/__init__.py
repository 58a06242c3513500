"""skmixed: hierarchical (mixed-effects) linear models for scikit-learn."""

from skmixed import metrics  # noqa: F401  (skmixed.metrics after import skmixed)
from skmixed._anova import anova
from skmixed._groups import GroupsMissingWarning
from skmixed._hausman import hausman
from skmixed._report import report
from skmixed.fixed import FixedEffectsRegressor
from skmixed.mixed import MixedLMRegressor
from skmixed.pooled import PooledRegressor

__version__ = "0.1.0.dev0"

__all__ = [
    "FixedEffectsRegressor",
    "GroupsMissingWarning",
    "PooledRegressor",
    "MixedLMRegressor",
    "anova",
    "hausman",
    "report",
]
