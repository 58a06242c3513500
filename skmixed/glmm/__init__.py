"""Generalized linear mixed models (lme4's ``glmer``)."""

from skmixed.glmm.estimator import MixedGLMRegressor, MixedLogisticRegression

__all__ = ["MixedGLMRegressor", "MixedLogisticRegression"]
