"""The linear mixed model: lme4's ``lmer`` as ``MixedLMRegressor``."""

from skmixed.mixed.estimator import MixedLMRegressor

__all__ = ["MixedLMRegressor"]
