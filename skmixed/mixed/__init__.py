"""The linear mixed model: lme4's ``lmer`` as ``MixedLMRegressor``."""

__all__ = ["MixedLMRegressor"]


def __getattr__(name):
    # on first access (see skmixed/__init__.py): the Dask fit's worker-side
    # module, skmixed.mixed.dask_fit, needs none of the estimator
    if name == "MixedLMRegressor":
        from skmixed.mixed.estimator import MixedLMRegressor

        return MixedLMRegressor
    raise AttributeError(f"module 'skmixed.mixed' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
