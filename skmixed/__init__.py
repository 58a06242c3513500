"""skmixed: hierarchical (mixed-effects) linear models for scikit-learn."""

import importlib

__version__ = "0.1.0.dev0"

#: Each public name and the module that defines it. Names and submodules
#: load on first access (``from skmixed import MixedLMRegressor``,
#: ``skmixed.datasets``), the way scipy loads its submodules: a Dask worker
#: that unpickles a task of ``skmixed.mixed.dask_fit`` then imports neither
#: the estimators nor scikit-learn (whose import alone takes ~1 s, paid by
#: every worker process), and plotting needs matplotlib only when used.
_PUBLIC = {
    "FixedEffectsRegressor": "skmixed.fixed",
    "GroupsMissingWarning": "skmixed._groups",
    "IgnoredColumnsWarning": "skmixed._inputs",
    "PooledRegressor": "skmixed.pooled",
    "MixedLMRegressor": "skmixed.mixed.estimator",
    "MixedGLMRegressor": "skmixed.glmm.estimator",
    "MixedLogisticRegression": "skmixed.glmm.estimator",
    "anova": "skmixed._anova",
    "glmer": "skmixed._model_formula",
    "hausman": "skmixed._hausman",
    "lm": "skmixed._model_formula",
    "lmer": "skmixed._model_formula",
    "report": "skmixed._report",
}
_SUBMODULES = ("datasets", "metrics", "plotting", "summary")

__all__ = list(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # looked up once
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"skmixed.{name}")
    raise AttributeError(f"module 'skmixed' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC) | set(_SUBMODULES))
