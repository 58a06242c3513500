"""Confidence intervals of a fitted mixed model: Wald, profile, bootstrap.

The methods of lme4's ``confint.merMod``:

- ``"wald"``: ``β̂ ± z·se`` for the fixed effects (normal quantile, as
  lme4); lme4 reports NA for the variance parameters, we leave them out;
- ``"profile"``: profile-likelihood intervals of every parameter
  (:mod:`skmixed.mixed.profile`), on the ML deviance as lme4 computes them;
- ``"bootstrap"``: percentile intervals from a parametric bootstrap
  (:mod:`skmixed.mixed.bootstrap`).

Parameters are named as lme4 names them with ``oldNames = FALSE``:
``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, ``sigma``,
then the fixed effects.
"""

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from skmixed.mixed.bootstrap import percentile_interval, simulate_and_refit
from skmixed.mixed.criterion import ProfiledCriterion
from skmixed.mixed.optimize import minimize_theta
from skmixed.mixed.profile import Profiler, parameters
from skmixed.mixed.rows import RowsCriterion, minimize_in_asinh

METHODS = ("wald", "profile", "bootstrap")


def _check_level(level):
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level!r}.")


def _select(params, parm):
    """Parameters named by ``parm`` (None: all; "beta_"/"theta_": groups)."""
    if parm is None:
        return params
    if isinstance(parm, str):
        if parm == "beta_":
            return [p for p in params if p.kind == "beta"]
        if parm == "theta_":
            return [p for p in params if p.kind != "beta"]
        parm = [parm]
    names = [p.name for p in params]
    unknown = [p for p in parm if p not in names]
    if unknown:
        raise ValueError(f"Unknown parameter(s) {unknown}; the model has {names}.")
    return [p for p in params if p.name in parm]


def _frame(names, lower, upper):
    return pd.DataFrame(
        {"lower": lower, "upper": upper}, index=pd.Index(names, dtype=object)
    )


def wald(model, level=0.95, parm=None):
    """Wald intervals of the fixed effects.

    Parameters
    ----------
    model : MixedLMRegressor
        Fitted.
    level : float, default=0.95
    parm : list of str, optional
        Fixed effects to include (all by default).

    Returns
    -------
    pandas.DataFrame
        Columns ``lower`` and ``upper``.
    """
    _check_level(level)
    beta = model.fixed_effects_
    se = np.sqrt(np.diag(model.vcov_.to_numpy()))
    z = stats.norm.ppf(0.5 + level / 2.0)
    table = _frame(list(beta.index), beta.to_numpy() - z * se, beta.to_numpy() + z * se)
    if parm is not None and parm != "beta_":
        parm = [parm] if isinstance(parm, str) else list(parm)
        unknown = [p for p in parm if p not in table.index]
        if unknown:
            raise ValueError(
                f"Unknown fixed effect(s) {unknown}; Wald intervals exist for "
                f"{list(table.index)}."
            )
        table = table.loc[parm]
    return table


def _check_not_centred(model):
    """Profiles and refits need the data's own cross-products, which lose
    their digits for a shifted random-slope column (the point estimates are
    fitted through centred columns instead, but the sds being profiled --
    e.g. of the intercept at x = 0 -- have no counterpart in the centred fit).
    """
    centred = getattr(model, "_centred", None)
    if centred is not None and centred.slopes_centred:
        raise NotImplementedError(
            "Profile and bootstrap intervals are not available when a "
            "random-slope column is far from 0 relative to its spread (the "
            "model was fitted through centred columns): centre that column "
            "(x - mean) yourself and refit, or use method='wald'."
        )
    if centred is not None and centred.y_far:
        raise NotImplementedError(
            "Profile intervals, bootstrap intervals and ML refits are not "
            "available when y is far from 0 relative to its spread (more "
            "than 1000 times its range: the model was fitted to y less a "
            "constant, as y's own cross-products lose its digits): subtract "
            "a constant from y yourself and refit, or use method='wald'."
        )


def _check_not_from_rows(model):
    """The bootstrap's refits evaluate the criterion from the cross-products:
    with y far from 0 and no intercept they lose its digits (the fit, its ML
    refit and the profiles form r² from the rows, see rows.py)."""
    if isinstance(getattr(model, "_criterion", None), RowsCriterion):
        raise NotImplementedError(
            "Bootstrap intervals are not available when y is far from 0 "
            "relative to its range in a model without a fixed intercept (more "
            "than 10 times its range: the fit forms the residual sum of "
            "squares from the rows, which the bootstrap's refits do not): use "
            "method='profile' or 'wald', or fit the intercept."
        )


def ml_theta(model):
    """θ̂ of the ML fit of the model (the model's own θ̂ if it is an ML fit).

    A REML fit is refitted from its θ̂ and from lme4's start (1 on the
    diagonal, 0 elsewhere), keeping the better optimum: on singular fits the
    ML surface can have another basin near the REML optimum.
    """
    _check_not_centred(model)
    criterion = model._criterion
    if not criterion.reml:
        return criterion, np.asarray(model.theta_, dtype=float)
    ml = ProfiledCriterion(criterion.design, reml=False)
    method = getattr(model, "optimizer", "auto")
    if isinstance(criterion, RowsCriterion):  # y far from 0, no intercept
        ml = RowsCriterion(ml)
        return ml, minimize_in_asinh(ml, (model.theta_, ml.theta_start), method)
    best = None
    for start in (model.theta_, ml.theta_start):
        opt = minimize_theta(ml, start, ml.theta_lower, method=method)
        if best is None or opt.fun < best.fun:
            best = opt
    return ml, best.x


def profile(model, level=0.95, parm=None):
    """Profile-likelihood intervals (lme4's ``confint(method = "profile")``).

    Parameters
    ----------
    model : MixedLMRegressor
        Fitted (a REML fit is profiled on its ML refit, as lme4 does).
    level : float, default=0.95
    parm : str or list of str, optional
        Parameter names, or ``"theta_"`` (variance parameters) or
        ``"beta_"`` (fixed effects); all by default.

    Returns
    -------
    pandas.DataFrame
        Columns ``lower`` and ``upper``.
    """
    _check_level(level)
    criterion, theta = ml_theta(model)
    profiler = Profiler(criterion, theta, list(model.fixed_effects_.index))
    wanted = {p.name for p in _select(profiler.params, parm)}
    names, lower, upper = [], [], []
    for k, par in enumerate(profiler.params):
        if par.name not in wanted:
            continue
        lo, hi = profiler.interval(k, level)
        names.append(par.name)
        lower.append(lo)
        upper.append(hi)
    return _frame(names, lower, upper)


def bootstrap(
    model, level=0.95, parm=None, n_boot=1000, random_state=None, progress="auto"
):
    """Parametric-bootstrap percentile intervals (lme4's ``method = "boot"``).

    Parameters
    ----------
    model : MixedLMRegressor
        Fitted.
    level : float, default=0.95
    parm : str or list of str, optional
        As for :func:`profile`.
    n_boot : int, default=1000
        Number of simulated responses refitted.
    random_state : int, RandomState instance or None, default=None
    progress : {"auto", True, False}, default="auto"
        Print a progress line on stderr (``"auto"``: for runs longer than
        two seconds, in a terminal).

    Returns
    -------
    pandas.DataFrame
        Columns ``lower`` and ``upper``; the replicates are in
        ``.attrs["replicates"]`` (a DataFrame, one row per refit).
    """
    _check_level(level)
    if int(n_boot) != n_boot or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2; got {n_boot!r}.")
    _check_not_centred(model)
    _check_not_from_rows(model)
    params = _select(
        parameters(model._criterion, list(model.fixed_effects_.index)), parm
    )
    samples = simulate_and_refit(model, params, int(n_boot), random_state, progress)
    bounds = [percentile_interval(samples[:, j], level) for j in range(len(params))]
    names = [p.name for p in params]
    table = _frame(names, [b[0] for b in bounds], [b[1] for b in bounds])
    table.attrs["replicates"] = pd.DataFrame(samples, columns=names)
    return table


def conf_int(model, level=0.95, method="wald", parm=None, **bootstrap_options):
    """Dispatch to :func:`wald`, :func:`profile` or :func:`bootstrap`."""
    key = str(method).lower()
    key = {"boot": "bootstrap"}.get(key, key)
    if key not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    if key != "bootstrap" and bootstrap_options:
        raise TypeError(
            f"{sorted(bootstrap_options)} only apply to method='bootstrap'."
        )
    if key == "wald":
        return wald(model, level, parm)
    # Thousands of small factorisations: threaded BLAS only adds contention.
    with threadpool_limits(limits=1, user_api="blas"):
        if key == "profile":
            return profile(model, level, parm)
        return bootstrap(model, level, parm, **bootstrap_options)
