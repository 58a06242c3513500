"""Likelihood-ratio tests between nested models: R's ``anova(m1, m2, ...)``.

For mixed models this is lme4's ``anova.merMod``: REML fits are first
refitted by maximum likelihood (``refit=True``, lme4's default), because
REML criteria of models with different fixed effects are not comparable;
the models are ordered by their number of parameters and each is compared
with the one before it by the χ² statistic ``2 Δ logLik`` on ``Δ npar``
degrees of freedom. lm fits (:class:`~skmixed.PooledRegressor`,
:class:`~skmixed.FixedEffectsRegressor`) may take part with their ML
log-likelihood.

GLMMs (:class:`~skmixed.MixedGLMRegressor`,
:class:`~skmixed.MixedLogisticRegression`) are compared by their
log-likelihood with every normalising constant (``loglik_absolute_``). For
Laplace fits that is lme4's ``logLik``. For fits with ``nAGQ > 1`` lme4
reports a value relative to the saturated model, which makes its ``anova``
of a Laplace and an AGQ fit meaningless (lme4 issues #161, #567); on the
absolute scale they compare. Two GLMMs must share the family and the data;
a GLMM and a linear model cannot be compared.

With a single mixed model, ``anova(m)`` is lmerTest's type III F table
(:meth:`MixedLMRegressor.anova`), as in R.
"""

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils.validation import check_is_fitted

__all__ = ["anova"]

_COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "p_value"]


def _is_glmm(model):
    return hasattr(model, "family_") and hasattr(model, "loglik_absolute_")


def _is_mixed(model):
    """A MixedLMRegressor (the GLMMs are told apart by :func:`_is_glmm`)."""
    return (
        hasattr(model, "random_effects")
        and hasattr(model, "theta_")
        and not _is_glmm(model)
    )


def _formula(model):
    if _is_glmm(model) or _is_mixed(model):
        from skmixed.mixed.results import formula

        return formula(model)
    return getattr(model, "formula_", type(model).__name__)


def _criteria(model, refit):
    """(npar, logLik, nobs, refitted) on the scale the comparison uses."""
    check_is_fitted(model)
    if _is_glmm(model):
        return model.df_, model.loglik_absolute_, model.nobs_, False
    if _is_mixed(model) and model._criterion is not None:
        criterion = model._criterion
        npar = criterion.design.p + criterion.n_theta + 1
        if model.reml and refit:
            from skmixed.mixed.intervals import ml_theta

            ml, theta = ml_theta(model)
            return npar, -0.5 * ml(theta), model.nobs_, True
        return npar, model.loglik_, model.nobs_, False
    if not hasattr(model, "loglik_") or not hasattr(model, "aic_"):
        raise TypeError(
            f"anova compares fitted MixedLMRegressor, MixedGLMRegressor, "
            f"MixedLogisticRegression, PooledRegressor or FixedEffectsRegressor "
            f"models; got {type(model).__name__}."
        )
    # An lm fit: its logLik is ML already; AIC = -2 logLik + 2 npar.
    npar = int(round((model.aic_ + 2.0 * model.loglik_) / 2.0))
    return npar, model.loglik_, model.nobs_, False


def _responses(model):
    if getattr(model, "_dask_input", None) is not None:
        return None  # fitted from Dask partitions: the rows are not in memory
    if _is_glmm(model):
        return model._y * model._prior
    criterion = getattr(model, "_criterion", None)
    if criterion is not None:  # fitted to y - offset: y itself compared
        from skmixed.mixed.estimator import _plus_offset

        return _plus_offset(criterion.design.y, model._offset)
    if hasattr(model, "fittedvalues_") and hasattr(model, "residuals_"):
        return np.asarray(model.fittedvalues_) + np.asarray(model.residuals_)
    return None


def _check_same_family(models):
    """GLMMs only with GLMMs of the same family (and link-free: any link)."""
    families = {
        (m.family_ if _is_glmm(m) else "gaussian (linear model)") for m in models
    }
    if len(families) > 1:
        raise ValueError(
            "anova compares models of one response family; got "
            f"{sorted(families)}. Likelihoods of different families (or of a "
            "GLMM and a linear model) are not comparable."
        )


def _check_same_data(models):
    sizes = {m.nobs_ for m in models}
    if len(sizes) > 1:
        raise ValueError(
            f"models were not all fitted to the same size of dataset (nobs: "
            f"{[m.nobs_ for m in models]}); a likelihood-ratio test needs the "
            "same observations."
        )
    ys = [_responses(m) for m in models]
    ys = [y for y in ys if y is not None]
    if not ys:
        return
    # Rows may be in another order across fits; compare the sorted responses.
    ref = np.sort(ys[0])
    for y in ys[1:]:
        if not np.allclose(np.sort(y), ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max()):
            raise ValueError(
                "models were not fitted to the same response; a "
                "likelihood-ratio test needs the same data."
            )


def anova(*models, refit=True, names=None):
    """Likelihood-ratio tests between nested models, as R's ``anova``.

    Parameters
    ----------
    *models : fitted estimators
        Two or more ``MixedLMRegressor`` (or lm-type) fits to the same data,
        or two or more GLMMs of one family, or one ``MixedLMRegressor`` for
        its type III F table.
    refit : bool, default=True
        Refit REML fits by ML first (lme4's default). With False the REML
        criteria are compared as they are (only meaningful for models with
        the same fixed effects).
    names : list of str, optional
        Row labels, in the order the models are given (default ``m1``,
        ``m2``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per model, ordered by number of parameters, with columns
        ``npar, AIC, BIC, logLik, deviance, Chisq, Df, p_value``; the first
        row's test columns are NaN. ``.attrs["formulas"]`` has each model's
        formula and ``.attrs["refitted"]`` whether it was refitted by ML.

    Examples
    --------
    >>> import skmixed
    >>> from skmixed import MixedLMRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> X, y = df[["Days", "Subject"]], df["Reaction"]
    >>> m0 = MixedLMRegressor("(1 | Subject)").fit(X, y)
    >>> m1 = MixedLMRegressor("(Days | Subject)").fit(X, y)
    >>> skmixed.anova(m0, m1).round(2)
        npar      AIC      BIC  logLik  deviance  Chisq   Df  p_value
    m1     4  1802.08  1814.85 -897.04   1794.08    NaN  NaN      NaN
    m2     6  1763.94  1783.10 -875.97   1751.94  42.14  2.0      0.0
    """
    if len(models) == 1 and _is_glmm(models[0]):
        raise ValueError(
            "anova of a single GLMM is not available: compare nested GLMMs "
            "with anova(m0, m1), or test a fixed effect with its Wald z in "
            "m.summary()."
        )
    if len(models) == 1 and _is_mixed(models[0]):
        return models[0].anova()
    if len(models) < 2:
        raise ValueError("anova needs two or more fitted models to compare.")
    if names is None:
        names = [f"m{i + 1}" for i in range(len(models))]
    names = [str(n) for n in names]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError("names must give one distinct label per model.")
    rows = [_criteria(m, refit) for m in models]
    _check_same_family(models)
    _check_same_data(models)
    order = sorted(range(len(models)), key=lambda i: rows[i][0])
    npar = np.array([rows[i][0] for i in order], dtype=float)
    loglik = np.array([rows[i][1] for i in order], dtype=float)
    nobs = rows[0][2]
    deviance = -2.0 * loglik
    chisq = np.concatenate([[np.nan], 2.0 * np.maximum(0.0, np.diff(loglik))])
    df = np.concatenate([[np.nan], np.diff(npar)])
    with np.errstate(invalid="ignore"):
        p_value = np.where(
            df > 0, stats.chi2.sf(chisq, np.where(df > 0, df, 1)), np.nan
        )
    table = pd.DataFrame(
        {
            "npar": npar.astype(int),
            "AIC": deviance + 2.0 * npar,
            "BIC": deviance + np.log(nobs) * npar,
            "logLik": loglik,
            "deviance": deviance,
            "Chisq": chisq,
            "Df": df,
            "p_value": p_value,
        },
        index=pd.Index([names[i] for i in order], dtype=object),
    )[_COLUMNS]
    table.attrs["formulas"] = {names[i]: _formula(models[i]) for i in order}
    table.attrs["refitted"] = {names[i]: rows[i][3] for i in order}
    return table
