"""Profile-likelihood confidence intervals of a GLMM (lme4's ``"profile"``).

For a parameter x_j of (θ, β), the profile of -2 log L (the Laplace or AGQ
objective the model was fitted on) is ``f(v) = min f(x)`` over the other
parameters with ``x_j = v``. The ``level`` interval holds the v with
``f(v) - f(x̂) <= χ²₁(level)``; each end is found by Brent's method on that
equation, every step re-optimising the other parameters (BOBYQA, warm
started from the previous step, β scaled by its standard errors). A
standard deviation whose profile stays below the cut-off down to 0 gets
the lower end 0, as in lme4.

The profiles are taken in the fitted coordinates: where fixed-effect
columns were centred or scaled (β = T β̃, T = M S, see
:mod:`skmixed.mixed.centring`), a slope is a multiple of a coordinate of
β̃, and the user's intercept the linear function ``β0 = (T β̃)_0``: its
profile fixes that function (β̃0 follows from the slopes), the slopes
scaled by their standard errors given it and moved along their
regression on it. At the data's scale the other parameters' steps moved η
by the columns' distance from 0 (x = 1e4 + N(0, 1): the profile of β0
overflowed exp(η); lme4's gives NA there).

lme4 interpolates a spline through a grid of profile points; the roots here
are of the profile itself, so the two agree to that interpolation's
accuracy. Only models whose random-effects terms are all scalar are
handled: their θ are the standard deviations themselves.
"""

import numpy as np
import pandas as pd
from scipy import optimize, stats

from skmixed.glmm.reporting import _check_level, require_random

try:
    import nlopt
except ImportError:  # pragma: no cover - nlopt is a dependency
    nlopt = None

_INNER_XTOL = 1e-6
_MAX_INNER_EVAL = 5_000


def parameter_names(model):
    """lme4's names (``oldNames = FALSE``): ``sd_(Intercept)|herd`` ..., then β."""
    names = [f"sd_{d.names[0]}|{d.factor}" for d in model._designs]
    return names + list(model.fixed_effects_.index)


class _Profiler:
    """Profiles of the objective along each parameter of (θ, β)."""

    def __init__(self, model):
        self.model = model
        self.n_theta = n_theta = len(model.theta_)
        centring = model._centring
        n_beta = len(model._beta)
        # x: (θ̃, β̃) of the fitted problem; the user's parameters are A x
        # (scalar terms only: a standardised slope's θ = a θ̃)
        self.x_hat = np.concatenate([model._theta_fit, model._beta_fit])
        self.A = np.eye(n_theta + n_beta)
        self.A[:n_theta, :n_theta] = np.diag(model._slopes.theta_scales())
        self.A[n_theta:, n_theta:] = centring.T
        self.lower = np.concatenate([model._lower, np.full(n_beta, -np.inf)])
        cov_fit = model._vcov_rx_fit()
        self.cov = np.zeros((n_theta + n_beta,) * 2)
        self.cov[n_theta:, n_theta:] = cov_fit
        se_fit = np.sqrt(np.diagonal(cov_fit))
        se_user = np.sqrt(np.diagonal(centring.covariance(cov_fit)))
        self.scale = np.concatenate([np.full(n_theta, 0.1), se_fit])
        self.user_hat = self.A @ self.x_hat
        self.user_scale = np.concatenate([np.full(n_theta, 0.1), se_user])
        self.f_hat = self.objective(self.x_hat)

    def objective(self, x):
        model = self.model
        try:
            return float(model._objective_fit(x[: self.n_theta], x[self.n_theta :]))
        except (FloatingPointError, np.linalg.LinAlgError, ValueError):
            return np.inf

    def _given(self, j, free):
        """Scales of the free coordinates and their regression on the
        user's parameter j, where that is not a coordinate itself."""
        a = self.A[j]
        if not np.any(a[free]):  # x_j itself: as it always was
            return self.scale[free], np.zeros(free.size)
        cov_a = self.cov[free] @ a
        var_a = float(a @ self.cov @ a)
        conditional = np.diagonal(self.cov)[free] - cov_a**2 / var_a
        scale = np.where(
            conditional > 0.0, np.sqrt(np.maximum(conditional, 0.0)), self.scale[free]
        )
        return scale, cov_a / var_a

    def profile(self, j, value, start):
        """``(f, x)``: the minimum of the objective with ``(A x)_j = value``."""
        free = np.flatnonzero(np.arange(len(self.x_hat)) != j)
        a_free = self.A[j, free]
        scale, slope = self._given(j, free)
        x = start.copy()
        # the free coordinates follow their regression on the fixed value
        x[free] += slope * (value - self.A[j] @ start)
        pivot = self.A[j, j]  # 1, or the column's scale
        x[j] = (value - a_free @ x[free]) / pivot
        if not free.size:
            return self.objective(x), x
        origin = x[free].copy()

        def fun(z, grad=None):
            x[free] = origin + z * scale
            x[j] = (value - a_free @ x[free]) / pivot
            f = self.objective(x)
            return f if np.isfinite(f) else 1e300

        opt = nlopt.opt(nlopt.LN_BOBYQA, free.size)
        bounds = (self.lower[free] - origin) / scale
        opt.set_lower_bounds(np.where(np.isfinite(bounds), bounds, -1e300))
        opt.set_upper_bounds(np.full(free.size, 1e300))
        opt.set_min_objective(fun)
        opt.set_xtol_abs(_INNER_XTOL)
        opt.set_initial_step(np.full(free.size, 0.1))
        opt.set_maxeval(_MAX_INNER_EVAL)
        try:
            z = opt.optimize(np.zeros(free.size))
        except nlopt.RoundoffLimited:
            z = np.zeros(free.size)
        best = fun(z)
        return best, x.copy()

    def end(self, j, cutoff, side):
        """The interval's end on one side (-1: lower, +1: upper)."""
        state = {"x": self.x_hat.copy()}

        root = np.sqrt(cutoff)

        # the search runs in the fitted coordinate's units (the user's
        # value divided by its column's scale), where Brent's tolerances
        # suit it; the same as the user's for a column not scaled
        pivot = self.A[j, j]

        def excess(value):
            # |ζ| - its cut-off, ζ the signed square root of the profile's
            # rise: nearly linear in the parameter, so Brent's method needs
            # few profile fits.
            f, x = self.profile(j, value * pivot, state["x"])
            state["x"] = x
            return np.sqrt(max(f - self.f_hat, 0.0)) - root

        hat, scale = self.user_hat[j] / pivot, self.user_scale[j] / pivot
        if j >= self.n_theta:  # about where a quadratic profile crosses
            step = 1.1 * root * scale
        else:
            step = max(2.0 * scale, 0.25 * abs(hat), 0.05)
        inner = hat
        outer = inner + side * step
        for _ in range(40):
            if side < 0 and outer <= self.lower[j]:
                outer = self.lower[j]
                if excess(outer) < 0:
                    return outer
                break
            if excess(outer) > 0:
                break
            inner, outer = outer, outer + side * step
            step *= 2.0
        else:
            return np.inf * side
        lo, hi = sorted((inner, outer))
        return pivot * optimize.brentq(excess, lo, hi, xtol=1e-7, rtol=1e-9)


def profile_intervals(model, level=0.95, parm=None):
    """Profile-likelihood intervals of the parameters of a fitted GLMM.

    Parameters
    ----------
    model : MixedGLMRegressor or MixedLogisticRegression
        Fitted.
    level : float, default=0.95
    parm : str or list of str, optional
        Parameter names (see :func:`parameter_names`), ``"theta_"`` or
        ``"beta_"``; all by default.

    Returns
    -------
    pandas.DataFrame
        Columns ``lower`` and ``upper``.
    """
    _check_level(level)
    require_random(model)
    if any(d.k > 1 for d in model._designs):
        raise ValueError(
            "Profile intervals of a GLMM are available when every "
            "random-effects term is scalar ((1 | g), (0 + x | g), (x || g)); "
            f"{model.random_effects!r} has a correlated term. Use "
            "method='wald' for the fixed effects."
        )
    names = parameter_names(model)
    n_theta = len(model.theta_)
    if parm is None:
        chosen = list(range(len(names)))
    elif parm == "theta_":
        chosen = list(range(n_theta))
    elif parm == "beta_":
        chosen = list(range(n_theta, len(names)))
    else:
        wanted = [parm] if isinstance(parm, str) else list(parm)
        unknown = [p for p in wanted if p not in names]
        if unknown:
            raise ValueError(f"Unknown parameter(s) {unknown}; the model has {names}.")
        chosen = [names.index(p) for p in wanted]
    cutoff = float(stats.chi2.ppf(level, 1))
    profiler = _Profiler(model)
    try:
        rows = [
            (profiler.end(j, cutoff, -1), profiler.end(j, cutoff, +1)) for j in chosen
        ]
    finally:
        # leave PIRLS's warm start at the estimates
        model._restore_modes()
    return pd.DataFrame(
        rows,
        columns=["lower", "upper"],
        index=pd.Index([names[j] for j in chosen], dtype=object),
    )
