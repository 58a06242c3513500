"""Profile-likelihood confidence intervals (lme4's ``confint(method="profile")``).

As lme4 does, the profile is that of the ML deviance (a REML fit is first
refitted by ML) and the parameters are on the scale a user reads: the
standard deviations and correlations of the random effects, the residual
standard deviation σ, and the fixed effects. For a parameter ``φ`` held at
``c`` the deviance is minimised over everything else, and the signed root

    ζ(c) = sign(c − φ̂) √(dev(c) − dev(φ̂))

is compared with the normal quantile: the interval is ``{c : |ζ(c)| ≤ z}``.
lme4 evaluates ζ on a grid and inverts an interpolating spline; we find the
two crossings directly with a bracketing root finder, so the endpoints are
exact up to the inner optimisations' accuracy. Where the profile stays below
``z`` all the way to a boundary (a standard deviation at 0, a correlation at
±1) the boundary is the endpoint, as lme4 reports it.

Each constrained minimisation works in θ (the relative covariance factors):

- a fixed effect β_j = c: for fixed θ the penalised residual sum of squares
  is a quadratic in β, so holding β_j at c adds ``(c − β̂_j(θ))² / V_jj(θ)``
  with ``V = (R_XᵀR_X)⁻¹``, and σ is profiled out in closed form;
- σ = c: the unprofiled deviance at σ = c, minimised over θ;
- the standard deviation of component i of a term, ``σ‖λ_i‖ = c`` (λ_i the
  i-th row of the term's factor): σ follows as ``c / ‖λ_i‖``;
- the correlation of components a < i, the cosine of the angle between λ_a
  and λ_i: λ_i is written as a multiple of λ_a's direction plus a free
  orthogonal part, the multiple fixed by the correlation.
"""

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from skmixed.mixed.criterion import lower_triangle_indices
from skmixed.mixed.optimize import is_singular

try:  # optional, as for the fit: a C implementation of BOBYQA
    import nlopt
except ImportError:  # pragma: no cover - depends on the environment
    nlopt = None

_LOG_2PI = np.log(2.0 * np.pi)
_MAX_EXPANSIONS = 40
# Returned for infeasible points: finite, so that line searches back off.
_INFEASIBLE = 1e100


@dataclass(frozen=True)
class Parameter:
    """One parameter of the model on lme4's reporting scale.

    Attributes
    ----------
    name : str
        lme4's name (``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``,
        ``sigma`` or the fixed-effect name).
    kind : {"sd", "cor", "sigma", "beta"}
    term : int
        Random-effects term (in θ order) for ``sd`` and ``cor``.
    row, col : int
        Component(s) of the term: ``row`` for an sd; ``row > col`` for a
        correlation.
    index : int
        Position of a fixed effect in β.
    """

    name: str
    kind: str
    term: int = -1
    row: int = -1
    col: int = -1
    index: int = -1


def parameters(criterion, fixef_names):
    """All parameters in lme4's order: per term sd/cor, then sigma, then β.

    Within a term the order is that of θ (lower triangle, column-major):
    ``sd_1, cor_21, cor_31, ..., sd_2, cor_32, ...``.
    """
    out = []
    for t, term in enumerate(criterion.design.terms):
        rows, cols = lower_triangle_indices(term.k)
        group = term.factor
        for i, j in zip(rows, cols, strict=True):
            if i == j:
                out.append(Parameter(f"sd_{term.names[i]}|{group}", "sd", t, i, j))
            else:
                name = f"cor_{term.names[i]}.{term.names[j]}|{group}"
                out.append(Parameter(name, "cor", t, i, j))
    out.append(Parameter("sigma", "sigma"))
    for j, name in enumerate(fixef_names):
        out.append(Parameter(str(name), "beta", index=j))
    return out


def parameter_values(criterion, params, theta, sigma, beta):
    """Values of ``params`` at (θ, σ, β): standard deviations, correlations...

    A correlation with a zero standard deviation is reported as 0 (lme4
    converts those NaN to 0 as well).
    """
    lambdas = criterion.lambdas(np.asarray(theta, dtype=float))
    out = np.empty(len(params))
    for k, par in enumerate(params):
        if par.kind == "sd":
            out[k] = sigma * np.linalg.norm(lambdas[par.term][par.row])
        elif par.kind == "cor":
            out[k] = _correlation(lambdas[par.term], par.row, par.col)
        elif par.kind == "sigma":
            out[k] = sigma
        else:
            out[k] = beta[par.index]
    return out


def _correlation(lam, i, j):
    ni, nj = np.linalg.norm(lam[i]), np.linalg.norm(lam[j])
    if ni == 0 or nj == 0:
        return 0.0
    return float(np.clip(lam[i] @ lam[j] / (ni * nj), -1.0, 1.0))


class _Deviance:
    """ML deviance of one design, with σ given or profiled, β_j optionally held."""

    def __init__(self, criterion):
        self.criterion = criterion
        self.n = criterion.design.n
        self.n_calls = 0

    def __call__(self, theta, sigma=None, beta_fixed=None):
        self.n_calls += 1
        try:
            parts = self.criterion.decompose(theta)
        except np.linalg.LinAlgError:
            return np.inf
        pwrss = parts.pwrss
        if beta_fixed is not None:
            j, value = beta_fixed
            unit = np.zeros(len(parts.beta))
            unit[j] = 1.0
            # V_jj = ||R_X^-T e_j||^2, since V = (R_XᵀR_X)⁻¹.
            row = np.linalg.solve(parts.RX.T, unit)
            pwrss = pwrss + (value - parts.beta[j]) ** 2 / (row @ row)
        n = self.n
        if sigma is None:
            if not pwrss > 0:
                return np.inf
            return parts.logdet_L + n * (1.0 + _LOG_2PI + np.log(pwrss / n))
        if not sigma > 0:
            return np.inf
        return parts.logdet_L + pwrss / sigma**2 + n * (_LOG_2PI + 2 * np.log(sigma))


class _Constrained:
    """Minimise the deviance over θ with one parameter held at a value.

    Subclasses map a free vector ``x`` (and the held value ``c``) to
    ``(θ, σ or None, β_j held or None)``, give bounds for ``x`` and a start
    from a previous optimum θ.
    """

    def __init__(self, profiler, par):
        self.profiler = profiler
        self.par = par
        self.lower = profiler.criterion.theta_lower

    # defaults: x is θ itself
    def free(self, c):
        return np.arange(len(self.lower))

    def start(self, theta, sigma, c):
        return theta[self.free(c)].copy()

    def bounds(self, c):
        """Lower bounds of the free vector (no parameter has an upper one)."""
        return self.lower[self.free(c)]

    def map(self, x, c):
        raise NotImplementedError

    def solve(self, c, theta0, sigma0):
        """(deviance, θ, σ) at the constrained optimum."""
        deviance = self.profiler.deviance
        x0 = self.start(theta0, sigma0, c)

        def objective(x):
            mapped = self.map(x, c)
            if mapped is None:
                return _INFEASIBLE
            theta, sigma, beta_fixed = mapped
            value = deviance(theta, sigma, beta_fixed)
            return value if np.isfinite(value) else _INFEASIBLE

        best = x0 if x0.size == 0 else _minimize(objective, x0, self.bounds(c))
        theta, sigma, beta_fixed = self.map(best, c)
        value = deviance(theta, sigma, beta_fixed)
        if sigma is None:
            sigma = self.profiler.sigma_at(theta, beta_fixed)
        return value, theta, sigma


class _Beta(_Constrained):
    def map(self, x, c):
        return x, None, (self.par.index, c)


class _Sigma(_Constrained):
    def map(self, x, c):
        return x, c, None


class _Sd(_Constrained):
    """σ‖λ_i‖ = c: σ follows from θ (or, at c = 0, row i is held at 0)."""

    def __init__(self, profiler, par):
        super().__init__(profiler, par)
        self.row_idx = profiler.row_index(par.term, par.row)

    def free(self, c):
        all_idx = np.arange(len(self.lower))
        if c == 0:
            return np.setdiff1d(all_idx, self.row_idx)
        return all_idx

    def start(self, theta, sigma, c):
        theta = theta.copy()
        if c > 0:
            norm = np.linalg.norm(theta[self.row_idx])
            target = c / sigma
            if norm > 0:
                theta[self.row_idx] *= target / norm
            else:
                theta[self.row_idx[-1]] = target
        return theta[self.free(c)].copy()

    def map(self, x, c):
        if c == 0:
            theta = np.zeros(len(self.lower))
            theta[self.free(c)] = x
            return theta, None, None
        norm = np.linalg.norm(x[self.row_idx])
        if norm == 0:
            return None
        return x, c / norm, None


class _Cor(_Constrained):
    """cos∠(λ_i, λ_a) = c: λ_i = α·u_a + w with w ⟂ u_a, α fixed by c."""

    def __init__(self, profiler, par):
        super().__init__(profiler, par)
        self.row_idx = profiler.row_index(par.term, par.row)  # λ_i, length i+1
        self.col_idx = profiler.row_index(par.term, par.col)  # λ_a, length a+1
        others = np.setdiff1d(np.arange(len(self.lower)), self.row_idx)
        self.others = others
        a, i = par.col, par.row
        # With a = 0, u_a = e_1 and the first coordinate of w is always 0.
        self.w_positions = np.arange(1, i + 1) if a == 0 else np.arange(i + 1)

    def _n_tail(self, c):
        return 1 if abs(c) == 1 else len(self.w_positions)

    def start(self, theta, sigma, c):
        row = theta[self.row_idx]
        if abs(c) == 1:
            tail = np.array([np.linalg.norm(row)])
        else:
            tail = row[self.w_positions].copy()
            if np.linalg.norm(tail) == 0:
                tail[-1] = 1e-3
        return np.concatenate([theta[self.others], tail])

    def bounds(self, c):
        lower = self.lower[self.others]
        if abs(c) == 1:
            return np.append(lower, 0.0)
        tail = np.full(len(self.w_positions), -np.inf)
        tail[-1] = 0.0  # the diagonal element of λ_i
        return np.concatenate([lower, tail])

    def map(self, x, c):
        n_others = len(self.others)
        theta = np.zeros(len(self.lower))
        theta[self.others] = x[:n_others]
        tail = x[n_others:]
        a = self.par.col
        base = theta[self.col_idx]
        norm = np.linalg.norm(base)
        if norm == 0:
            return None
        u = base / norm
        row = np.zeros(self.par.row + 1)
        if abs(c) == 1:
            row[: a + 1] = np.sign(c) * tail[0] * u
        else:
            w = np.zeros(self.par.row + 1)
            w[self.w_positions] = tail
            w[: a + 1] -= (w[: a + 1] @ u) * u
            alpha = c * np.linalg.norm(w) / np.sqrt(1.0 - c * c)
            row = w
            row[: a + 1] += alpha * u
        theta[self.row_idx] = row
        return theta, None, None


def _minimize(objective, x0, lower):
    """Minimise from a warm start (the optimum at a nearby held value).

    BOBYQA (NLopt) with a small first trust region when it is installed,
    which needs about half the evaluations of L-BFGS-B with finite-difference
    gradients; L-BFGS-B otherwise. Returns the best point seen.
    """
    best = {"f": np.inf, "x": x0}

    def tracked(x, grad=None):
        value = objective(x)
        if value < best["f"]:
            best["f"], best["x"] = value, np.array(x, dtype=float)
        return value

    x0 = np.maximum(x0, lower)
    if nlopt is not None:
        opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
        opt.set_lower_bounds(lower)
        opt.set_upper_bounds(np.full(len(x0), np.inf))
        opt.set_min_objective(tracked)
        opt.set_xtol_abs(1e-9)
        opt.set_ftol_abs(1e-11)
        opt.set_maxeval(20_000)
        opt.set_initial_step(np.maximum(0.05 * np.abs(x0), 0.01))
        try:
            opt.optimize(x0)
        except nlopt.RoundoffLimited:
            pass
    else:  # pragma: no cover - depends on the environment
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
        optimize.minimize(
            tracked,
            x0,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000},
        )
    return best["x"]


_KINDS = {"beta": _Beta, "sigma": _Sigma, "sd": _Sd, "cor": _Cor}


class Profiler:
    """Signed-root profiles of the ML deviance of a fitted design.

    Parameters
    ----------
    criterion : ProfiledCriterion
        An ML criterion (``reml=False``).
    theta : ndarray
        The ML estimate of θ.
    fixef_names : list of str
    """

    def __init__(self, criterion, theta, fixef_names):
        if criterion.reml:
            raise ValueError("Profiles are computed on the ML deviance.")
        self.criterion = criterion
        self.deviance = _Deviance(criterion)
        self.theta_hat = np.asarray(theta, dtype=float)
        parts = criterion.decompose(self.theta_hat)
        n = criterion.design.n
        self.sigma_hat = float(np.sqrt(parts.pwrss / n))
        self.beta_hat = np.asarray(parts.beta, dtype=float)
        self.dev_min = self.deviance(self.theta_hat)
        self.params = parameters(criterion, fixef_names)
        self.estimates = parameter_values(
            criterion, self.params, self.theta_hat, self.sigma_hat, self.beta_hat
        )
        rx_inv = np.linalg.inv(parts.RX)
        self.se_beta = self.sigma_hat * np.sqrt(np.sum(rx_inv**2, axis=1))
        self._row_cache = {}
        #: Restart every constrained fit from lme4's start as well (the
        #: profile surface of a singular fit has several local minima).
        self.multistart = is_singular(self.theta_hat, criterion.theta_lower)

    def row_index(self, term, row):
        """Positions in θ of row ``row`` of term ``term``'s factor."""
        key = (term, row)
        if key not in self._row_cache:
            slices = np.cumsum(
                [0] + [t.k * (t.k + 1) // 2 for t in self.criterion.design.terms]
            )
            k = self.criterion.design.terms[term].k
            rows, cols = lower_triangle_indices(k)
            pos = np.flatnonzero(rows == row)
            pos = pos[np.argsort(cols[pos])]
            self._row_cache[key] = slices[term] + pos
        return self._row_cache[key]

    def sigma_at(self, theta, beta_fixed=None):
        parts = self.criterion.decompose(theta)
        pwrss = parts.pwrss
        if beta_fixed is not None:
            j, value = beta_fixed
            rx_inv = np.linalg.inv(parts.RX)
            pwrss += (value - parts.beta[j]) ** 2 / np.sum(rx_inv[j] ** 2)
        return float(np.sqrt(pwrss / self.criterion.design.n))

    def interval(self, k, level=0.95):
        """(lower, upper) of parameter ``k`` at ``level``."""
        par = self.params[k]
        problem = _KINDS[par.kind](self, par)
        target = float(stats.norm.ppf(0.5 + level / 2.0))
        return tuple(
            self._crossing(problem, k, direction, target) for direction in (-1, 1)
        )

    def _limits(self, par):
        if par.kind in ("sd", "sigma"):
            return 0.0, np.inf
        if par.kind == "cor":
            return -1.0, 1.0
        return -np.inf, np.inf

    def _first_step(self, par, k):
        est = self.estimates[k]
        if par.kind == "beta":
            return self.se_beta[par.index]
        if par.kind == "sigma":
            return est / np.sqrt(2.0 * self.criterion.design.n)
        if par.kind == "sd":
            return max(0.25 * est, 0.05 * self.sigma_hat)
        return 0.25

    def _crossing(self, problem, k, direction, target):
        """Where ζ crosses ±target on one side of the estimate (or the limit)."""
        par = problem.par
        est = self.estimates[k]
        limit = self._limits(par)[0 if direction < 0 else 1]
        if est == limit:
            return limit
        cache = [(est, self.theta_hat, self.sigma_hat)]

        def zeta(c):
            _, theta0, sigma0 = min(cache, key=lambda e: abs(e[0] - c))
            dev, theta, sigma = problem.solve(c, theta0, sigma0)
            if self.multistart:
                # Boundary fits have several basins: also start from lme4's
                # θ start (1 on the diagonal, 0 elsewhere), keep the best.
                start = self.criterion.theta_start
                other = problem.solve(c, start, self.sigma_hat)
                if other[0] < dev:
                    dev, theta, sigma = other
            cache.append((c, theta, sigma))
            diff = max(dev - self.dev_min, 0.0)
            return np.sign(c - est) * np.sqrt(diff)

        step = self._first_step(par, k)
        inner = est
        for _ in range(_MAX_EXPANSIONS):
            c = est + direction * step
            if par.kind == "cor" and abs(c) >= 1:
                c = limit
            elif par.kind == "sd" and c <= 1e-12 * est:
                # est − 4 x step can round to 2e-16 instead of 0: there
                # σ = c / |λ_i| sends the constrained fit to σ ~ 1e-9
                c = 0.0
            elif par.kind == "sigma" and c <= 0:
                c = inner / 2.0
            value = zeta(c)
            if abs(value) >= target:
                return optimize.brentq(
                    lambda v: zeta(v) - direction * target,
                    min(inner, c),
                    max(inner, c),
                    xtol=1e-9 * max(1.0, abs(c)),
                    rtol=1e-9,
                )
            if c == limit:
                return limit
            inner = c
            # ζ is close to linear in c: aim a little beyond the crossing.
            growth = 1.15 * target / abs(value) if value != 0 else 4.0
            step = abs(c - est) * min(max(growth, 1.2), 4.0)
        return np.nan
