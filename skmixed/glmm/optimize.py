"""lme4's two-stage optimisation of a GLMM, and its checks.

Stage 1 (lme4's nAGQ = 0) minimises over θ alone, β following the
conditional modes inside PIRLS. Stage 2 minimises the Laplace (or AGQ)
approximation of -2 log L over (θ, β) jointly, starting from stage 1. Both
use BOBYQA (NLopt); lme4 uses BOBYQA then Nelder-Mead. In stage 2 the
optimiser sees β through ``β = β₁ + R_X⁻¹ δ`` (R_X from stage 1), so that
one unit of δ is about one standard error in every direction: BOBYQA's
trust region then fits the problem's scale, and it stops within a small
fraction of a standard error of the optimum.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular

try:
    import nlopt
except ImportError:  # pragma: no cover - nlopt is a dependency
    nlopt = None

from skmixed.glmm.agq import agq_minus2_loglik

SINGULAR_TOL = 1e-4


@dataclass
class StageResult:
    """Where one stage stopped."""

    x: np.ndarray
    fun: float
    n_evaluations: int
    converged: bool
    message: str


class _Tracked:
    """An objective with an evaluation count and the best point seen."""

    def __init__(self, fun):
        self.fun = fun
        self.count = 0
        self.best_f = math.inf
        self.best_x = None

    def __call__(self, x, grad=None):
        self.count += 1
        try:
            value = float(self.fun(np.asarray(x, dtype=np.float64)))
        except (FloatingPointError, np.linalg.LinAlgError, ValueError):
            value = math.inf
        if value < self.best_f:
            self.best_f, self.best_x = value, np.array(x, dtype=np.float64)
        return value if math.isfinite(value) else 1e300


def bobyqa(fun, x0, lower, *, step=None, xtol=1e-7, max_eval=10_000):
    """Minimise ``fun`` from x0 subject to ``x >= lower`` with BOBYQA."""
    x0 = np.asarray(x0, dtype=np.float64)
    lower = np.asarray(lower, dtype=np.float64)
    tracked = _Tracked(fun)
    if nlopt is None:  # pragma: no cover
        from scipy.optimize import minimize

        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
        res = minimize(tracked, x0, method="Powell", bounds=bounds)
        return StageResult(
            tracked.best_x, tracked.best_f, tracked.count, res.success, res.message
        )
    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(np.full(len(x0), np.inf))
    opt.set_min_objective(tracked)
    opt.set_xtol_abs(xtol)
    opt.set_maxeval(int(max_eval))
    if step is not None:
        opt.set_initial_step(np.asarray(step, dtype=np.float64))
    start = np.maximum(x0, lower)
    try:
        opt.optimize(start)
    except nlopt.RoundoffLimited:
        pass
    code = opt.last_optimize_result()
    converged = code == nlopt.ROUNDOFF_LIMITED or (
        code > 0 and code != nlopt.MAXEVAL_REACHED
    )
    message = (
        f"reached max_iter={max_eval} evaluations"
        if code == nlopt.MAXEVAL_REACHED
        else f"nlopt status {code}"
    )
    return StageResult(
        tracked.best_x, tracked.best_f, tracked.count, converged, message
    )


def objective(problem, theta, beta, n_agq=1):
    """-2 log L at (θ, β): Laplace (``n_agq=1``) or AGQ, absolute scale."""
    result = problem.modes(theta, beta)
    if n_agq > 1:
        return agq_minus2_loglik(problem, result, n_agq)
    return result.laplace


@dataclass
class FitResult:
    """The two stages' outcome."""

    theta: np.ndarray
    beta: np.ndarray
    fun: float
    n_evaluations: int
    converged: bool
    message: str
    stage1: StageResult


def fit_two_stages(problem, theta0, lower, beta0, *, n_agq=1, max_iter=10_000):
    """lme4's default: θ on the nAGQ = 0 objective, then (θ, β) together."""
    state = {"beta": np.asarray(beta0, dtype=np.float64)}

    def fast(theta):
        value, beta = problem.fast_objective(theta, state["beta"])
        if np.all(np.isfinite(beta)):
            state["beta"] = beta
        return value

    n_theta = len(theta0)
    stage1 = bobyqa(
        fast, theta0, lower, step=np.full(n_theta, 0.25), xtol=1e-4, max_eval=max_iter
    )
    result, RX = problem.joint_modes(stage1.x, state["beta"])
    beta1 = result.beta
    p = len(beta1)

    def to_params(x):
        delta = x[n_theta:]
        return x[:n_theta], beta1 + solve_triangular(RX, delta, lower=False)

    def stage2_fun(x):
        theta, beta = to_params(x)
        return objective(problem, theta, beta, n_agq)

    x0 = np.concatenate([stage1.x, np.zeros(p)])
    lower2 = np.concatenate([lower, np.full(p, -np.inf)])
    step = np.concatenate([np.full(n_theta, 0.1), np.full(p, 0.5)])
    stage2 = bobyqa(stage2_fun, x0, lower2, step=step, xtol=1e-7, max_eval=max_iter)
    theta, beta = to_params(stage2.x)
    theta, beta, fun, extra = _check_boundary(
        problem, theta, beta, stage2.fun, lower, n_agq
    )
    return FitResult(
        theta,
        beta,
        fun,
        stage1.n_evaluations + stage2.n_evaluations + extra,
        stage2.converged,
        stage2.message,
        stage1,
    )


def _check_boundary(problem, theta, beta, fun, lower, n_agq, tol=1e-5):
    """θ elements within tol of their bound tried on it (lme4's check)."""
    near = np.isfinite(lower) & (theta - lower < tol) & (theta != lower)
    if not near.any():
        return theta, beta, fun, 0
    trial = theta.copy()
    trial[near] = lower[near]
    value = objective(problem, trial, beta, n_agq)
    if value <= fun:
        return trial, beta, value, 1
    return theta, beta, fun, 1


def is_singular(theta, lower, tol=SINGULAR_TOL):
    """lme4's ``isSingular``: a diagonal element of Λ within tol of 0."""
    bounded = np.isfinite(lower)
    return bool(np.any(theta[bounded] < tol))


def finite_difference_hessian(fun, x, fx, lower=None, delta=1e-4):
    """lme4's ``deriv12``: central-difference gradient and Hessian.

    Steps are clipped at the lower bounds (a θ on its bound is differenced
    one-sidedly there); the off-diagonal elements use four points.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    lower = np.full(n, -np.inf) if lower is None else np.asarray(lower)
    grad = np.zeros(n)
    hess = np.zeros((n, n))
    for i in range(n):
        add, sub = x.copy(), x.copy()
        add[i] = x[i] + delta
        sub[i] = max(x[i] - delta, lower[i])
        f_add, f_sub = fun(add), fun(sub)
        half = (add[i] - sub[i]) / 2.0
        hess[i, i] = (f_add - 2.0 * fx + f_sub) / half**2
        grad[i] = (f_add - f_sub) / (add[i] - sub[i])
        for j in range(i):
            aa, as_, sa, ss = add.copy(), add.copy(), sub.copy(), sub.copy()
            aa[j] = sa[j] = x[j] + delta
            as_[j] = ss[j] = max(x[j] - delta, lower[j])
            width = (aa[j] - as_[j]) * (add[i] - sub[i])
            hess[i, j] = hess[j, i] = (fun(aa) - fun(as_) - fun(sa) + fun(ss)) / width
    return grad, hess


def convergence_problems(grad, hess, tol=2e-3):
    """lme4's ``checkConv``: scaled gradient ``|H⁻¹ g| < tol``, H positive."""
    problems = []
    try:
        np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return [
            "Model failed to converge: the Hessian is not positive definite "
            "(degenerate or not at a minimum)"
        ]
    scaled = np.linalg.solve(hess, grad)
    worst = float(np.max(np.abs(scaled))) if len(scaled) else 0.0
    if worst > tol:
        problems.append(
            f"Model failed to converge with max|grad| = {worst:.6g} (tol = {tol}, "
            "component scaled by the Hessian)"
        )
    return problems
