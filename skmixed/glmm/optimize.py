"""lme4's two-stage optimisation of a GLMM, and its checks.

Stage 1 (lme4's nAGQ = 0) minimises over θ alone, β following the
conditional modes inside PIRLS. Stage 2 minimises the Laplace (or AGQ)
approximation of -2 log L over (θ, β) jointly, starting from stage 1.

lme4 uses BOBYQA then Nelder-Mead, derivative-free. Here both stages of a
Laplace fit use L-BFGS-B (scipy) with the analytic gradient of the
objective (:mod:`skmixed.glmm.gradient`): on binary-100k ``(1 + x1 | g)``
that takes ~30 evaluations where BOBYQA took 231, and it stops where the
projected gradient vanishes, at lme4's optimum or a lower one (every
reference case is a test). BOBYQA (NLopt) remains for AGQ (nAGQ > 1, no
gradient here), for random-effects systems too large for the gradient's
dense inverse block, and as the fallback when L-BFGS-B fails. In stage 2
the optimiser sees β through ``β = β₁ + R_X⁻¹ δ`` (R_X from stage 1), so
that one unit of δ is about one standard error in every direction: the
problem is then well scaled for both methods.
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
from skmixed.glmm.gradient import (
    fast_gradient,
    gradient_available,
    laplace_gradient,
)
from skmixed.mixed.criterion import _theta_layout
from skmixed.mixed.first_term import lower_triangle_indices
from skmixed.mixed.optimize import (
    SINGULAR_TOL,
    _Counted,
    _CountedGradient,
    _inward_probe,
    is_singular,
)

# L-BFGS-B stops on the projected gradient: loosely in stage 1 (a start
# for stage 2; its PIRLS also stops at a looser step), tightly in stage 2,
# where the gradient is in scaled coordinates (see lbfgsb) and 1e-5 leaves
# the objective within ~1e-10 of the optimum.
STAGE1_GTOL, STAGE1_STEP_TOL = 1e-1, 1e-5
STAGE2_GTOL = 1e-5
# Stage 1 on a subsample of groups above this many rows (see
# _stage1_on_subsample).
SUBSAMPLE_ABOVE, SUBSAMPLE_ROWS = 60_000, 25_000


@dataclass
class StageResult:
    """Where one stage stopped."""

    x: np.ndarray
    fun: float
    n_evaluations: int
    converged: bool
    message: str


# A failed evaluation (PIRLS or a factorisation breaking down) is read as
# +inf, so that the optimiser steps back, as lme4 does.
_FAILURES = (FloatingPointError, np.linalg.LinAlgError, ValueError)


def _value_or_inf(fun):
    """``fun`` with a failed evaluation read as +inf."""

    def value(x):
        try:
            return float(fun(np.asarray(x, dtype=np.float64)))
        except _FAILURES:
            return math.inf

    return value


def _pair_or_inf(fun_grad):
    """``fun_grad`` with a failed evaluation, or a non-finite gradient, read
    as a value of +inf (not recorded as a best point)."""

    def pair(x):
        try:
            value, grad = fun_grad(x)
            value = float(value)
        except _FAILURES:
            return math.inf, None
        if not np.all(np.isfinite(grad)):
            return math.inf, None
        return value, grad

    return pair


def bobyqa(fun, x0, lower, *, step=None, xtol=1e-7, max_eval=10_000):
    """Minimise ``fun`` from x0 subject to ``x >= lower`` with BOBYQA."""
    x0 = np.asarray(x0, dtype=np.float64)
    lower = np.asarray(lower, dtype=np.float64)
    tracked = _Counted(_value_or_inf(fun))
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


def lbfgsb(
    fun_grad, x0, lower, *, curvature=None, gtol=1e-6, ftol=1e-15, max_eval=10_000
):
    """Minimise ``fun_grad`` (value and gradient) from x0, ``x >= lower``.

    ``curvature`` gives each coordinate's second derivative where known
    and NaN where it is to be estimated (a forward difference of the
    gradient at x0, one gradient per coordinate). The optimiser then sees
    every coordinate scaled to curvature 1: L-BFGS-B's first steps assume
    a unit Hessian, and with θ's curvature thousands of times β's it spent
    a dozen line-search steps learning the scale. ``gtol`` applies to the
    scaled gradient, so the objective is then within about ``gtol² / 2``
    of the optimum.

    Returns None when no finite point was found (the caller falls back to
    BOBYQA). L-BFGS-B stopping because its line search cannot improve
    further ("ABNORMAL_TERMINATION_IN_LNSRCH") is rounding-limited
    convergence, as NLopt's ROUNDOFF_LIMITED.
    """
    from scipy.optimize import minimize

    pair = _pair_or_inf(fun_grad)
    tracked = _CountedGradient(lambda x: pair(x)[0], pair)
    evaluate = tracked.both
    lower = np.asarray(lower, dtype=np.float64)
    start = np.maximum(np.asarray(x0, dtype=np.float64), lower)
    scale = np.ones(len(start))
    first = None
    if curvature is not None:
        first = (start, *evaluate(start))
        scale = 1.0 / np.sqrt(_curvature(evaluate, start, first[2], curvature))
    memo = {}
    if first is not None:
        memo.update(z=start / scale, f=first[1], g=first[2])

    def scaled(z):
        if "z" not in memo or not np.array_equal(z, memo["z"]):
            value, grad = evaluate(z * scale)
            memo.update(z=z.copy(), f=value, g=grad)
        return memo["f"], memo["g"] * scale

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower / scale]

    def run(x):
        return minimize(
            scaled,
            x / scale,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={
                "maxfun": max(int(max_eval) - tracked.count, 1),
                "maxiter": int(max_eval),
                "ftol": ftol,
                "gtol": gtol,
                "maxcor": 20,
            },
        )

    res = run(start)
    if tracked.best_x is None:
        return None
    # The objective is even in a scalar term's θ, so its gradient vanishes
    # at θ = 0: a first step clipped to the bound "converged" there, far
    # from an interior optimum (17 of 40 random-intercept fits ended up to
    # 15 log-likelihood units below lme4's). Probe inside and restart.
    inward = _inward_probe(tracked, tracked.best_x, tracked.best_f, lower)
    if inward is not None and tracked.count < max_eval:
        res = run(inward)
    message = str(res.message)
    limited = "ABNORMAL" in message.upper()
    converged = bool(res.success or limited) and tracked.count < max_eval
    if tracked.count >= max_eval:
        message = f"reached max_iter={max_eval} evaluations"
    return StageResult(
        tracked.best_x, tracked.best_f, tracked.count, converged, message
    )


def _curvature(fun_grad, x, grad, curvature, step=1e-3):
    """Second derivatives: given ones, NaN ones by differencing the gradient.

    A difference that is not positive (or not finite) gives 1.
    """
    out = np.asarray(curvature, dtype=np.float64).copy()
    for i in np.flatnonzero(np.isnan(out)):
        shifted = x.copy()
        shifted[i] += step
        value, other = fun_grad(shifted)
        out[i] = (other[i] - grad[i]) / step if value < 1e300 else np.nan
    return np.where(np.isfinite(out) & (out > 0), out, 1.0)


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
    """lme4's default: θ on the nAGQ = 0 objective, then (θ, β) together.

    With a gradient (Laplace), L-BFGS-B runs both stages. A bounded
    quasi-Newton method stops at the first boundary point where the
    gradient points outwards, and the objective can have such a local
    optimum on the boundary next to a better interior one (sleepstudy's
    slow reactions, one GroupKFold split of ``(Days | Subject)``: 133.95
    on the boundary, 132.56 inside). So a singular result of L-BFGS-B is
    checked by lme4's derivative-free route (BOBYQA, both stages), and the
    lower of the two is kept.
    """
    use_gradient = gradient_available(problem.system) and n_agq == 1
    fit = _two_stages(problem, theta0, lower, beta0, n_agq, max_iter, use_gradient)
    if use_gradient and is_singular(fit.theta, lower):
        other = _two_stages(problem, theta0, lower, beta0, n_agq, max_iter, False)
        fit = _lower_of(fit, other)
    if use_gradient:
        for restart in (_rank_one_start, _flipped_column_start):
            start = restart(problem, fit, lower)
            if start is not None:
                other = _two_stages(problem, start, lower, fit.beta, 1, max_iter, True)
                fit = _lower_of(fit, other)
    return fit


def _lower_of(fit, other):
    """The better of two fits, counting both fits' evaluations."""
    count = fit.n_evaluations + other.n_evaluations
    fit = other if other.fun < fit.fun else fit
    fit.n_evaluations = count
    return fit


def _rank_one_start(problem, fit, lower, eps=1e-2):
    """A start off a vector term that ended with Λ = 0, or None.

    Near Σ = 0 the objective is f(0) + tr(G Σ) to first order. Coordinate
    probes of Λ's diagonal see only G's diagonal, so when both are positive
    and G still has a negative eigenvalue (a rank-one covariance, slopes
    and intercepts perfectly correlated), every method here stopped at 0
    while lme4's Nelder-Mead found the lower point (2 of 30 simulated
    ``(x | g)`` glmers, up to 4e-3 in deviance). At Λ = εI the θ-gradient
    is 2εG (column-major lower triangle), which gives G whole; its lowest
    eigenvector v, as Λ's first column, is the direction to restart from.
    """
    ks = problem.system.ks
    slices, _ = _theta_layout(tuple(ks))
    zero = [
        (k, block)
        for k, block in zip(ks, slices, strict=True)
        if k > 1 and np.all(np.abs(fit.theta[block]) < SINGULAR_TOL)
    ]
    if not zero:
        return None
    probe = fit.theta.copy()
    for k, block in zero:
        rows, cols = lower_triangle_indices(k)
        probe[block] = np.where(rows == cols, eps, 0.0)
    try:
        grad = laplace_gradient(problem, problem.modes(probe, fit.beta))
    except _FAILURES:
        return None
    start, found = fit.theta.copy(), False
    for k, block in zero:
        rows, cols = lower_triangle_indices(k)
        G = np.zeros((k, k))
        G[rows, cols] = grad[block] / (2.0 * eps)
        G = np.tril(G) + np.tril(G, -1).T
        values, vectors = np.linalg.eigh(G)
        if values[0] < 0 and values[0] < -1e-8 * np.max(np.abs(values)):
            v = vectors[:, 0] * np.sign(vectors[0, 0] or 1.0)
            start[block] = np.where(cols == 0, eps * v[rows], 0.0)  # Λ's 1st column
            found = True
    return np.maximum(start, lower) if found else None


def _flipped_column_start(problem, fit, lower, eps=1e-3):
    """A start with Λ's column j below the diagonal negated where Λ_jj = 0.

    With Λ_jj = 0 the sign of the column below it does not change Σ, but
    it decides on which side Σ's correlations grow when Λ_jj does: the
    optimiser, on one side, saw the objective rise with Λ_jj, while on
    the other it falls (1 of 30 simulated ``(x | g)`` glmers ended 1.6e-4
    in deviance above lme4 this way). Where the gradient in Λ_jj is
    negative at ε with the column flipped, or the objective already lower
    there, restart from there.
    """
    ks = problem.system.ks
    slices, _ = _theta_layout(tuple(ks))
    theta, start, found = fit.theta, fit.theta.copy(), False
    for k, block in zip(ks, slices, strict=True):
        rows, cols = lower_triangle_indices(k)
        index = np.arange(block.start, block.stop)
        for j in range(k - 1):
            diagonal = index[(rows == j) & (cols == j)][0]
            below = index[(rows > j) & (cols == j)]
            if theta[diagonal] >= SINGULAR_TOL or np.all(
                np.abs(theta[below]) < SINGULAR_TOL
            ):
                continue
            trial = theta.copy()
            trial[below] = -trial[below]
            trial[diagonal] = eps
            try:
                mode = problem.modes(trial, fit.beta)
                grad = laplace_gradient(problem, mode)
            except _FAILURES:
                continue
            if grad[diagonal] < 0 or mode.laplace < fit.fun:
                start[below], start[diagonal] = trial[below], eps
                found = True
    return np.maximum(start, lower) if found else None


def _two_stages(problem, theta0, lower, beta0, n_agq, max_iter, use_gradient):
    stage1 = None
    if use_gradient and problem.n > SUBSAMPLE_ABOVE:
        stage1, beta_start = _stage1_on_subsample(
            problem, theta0, lower, beta0, max_iter
        )
    if stage1 is None:
        stage1, beta_start = _stage1(
            problem, theta0, lower, beta0, max_iter, use_gradient
        )
    result, RX = problem.joint_modes(stage1.x, beta_start)
    beta1 = result.beta
    n_theta, p = len(theta0), len(beta1)

    def to_params(x):
        delta = x[n_theta:]
        return x[:n_theta], beta1 + solve_triangular(RX, delta, lower=False)

    def stage2_fun(x):
        theta, beta = to_params(x)
        return objective(problem, theta, beta, n_agq)

    def stage2_fun_grad(x):
        theta, beta = to_params(x)
        mode = problem.modes(theta, beta)
        grad = laplace_gradient(problem, mode)
        # β = β₁ + R_X⁻¹ δ, so d/dδ = R_X⁻ᵀ d/dβ
        grad[n_theta:] = solve_triangular(RX, grad[n_theta:], lower=False, trans="T")
        return mode.laplace, grad

    x0 = np.concatenate([stage1.x, np.zeros(p)])
    lower2 = np.concatenate([lower, np.full(p, -np.inf)])
    stage2 = None
    if use_gradient:
        # δ is in standard errors: curvature ~2 for -2 log L
        curvature = np.concatenate([np.full(n_theta, np.nan), np.full(p, 2.0)])
        stage2 = lbfgsb(
            stage2_fun_grad,
            x0,
            lower2,
            curvature=curvature,
            gtol=STAGE2_GTOL,
            max_eval=max_iter,
        )
    if stage2 is None:
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


def _stage1_on_subsample(problem, theta0, lower, beta0, max_iter):
    """Stage 1 on the rows of a random part of the first factor's levels.

    On large data stage 1 dominated the fit (two thirds of binary-1m's
    time: ~18 evaluations of the joint PIRLS over (u, β), each a few passes
    over every row). Its θ is only stage 2's start, and stage 2 reaches
    the full data's optimum from any nearby start. So stage 1 runs on about
    SUBSAMPLE_ROWS rows: whole groups of the first factor, drawn with a
    fixed seed (the fit stays deterministic). Returns (None, None) when
    that stage fails or ends singular (a start on the boundary is a poor
    one); the caller then runs stage 1 on all rows.
    """
    first = problem.system.terms[0]
    fraction = SUBSAMPLE_ROWS / problem.n
    chosen = np.random.default_rng(0).random(first.m) < fraction
    rows = np.flatnonzero(chosen[first.codes])
    if len(rows) < problem.p + 2 or chosen.sum() < 10:
        return None, None
    try:
        sub = problem.subset(rows)
        stage1, _ = _stage1(sub, theta0, lower, beta0, max_iter, True)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return None, None
    if not np.all(np.isfinite(stage1.x)) or is_singular(stage1.x, lower):
        return None, None
    # β at the subsample's θ on all rows (one joint PIRLS: stage 2 needs it)
    result, _ = problem.joint_modes(stage1.x, beta0, step_tol=STAGE1_STEP_TOL)
    return stage1, result.beta


def _stage1(problem, theta0, lower, beta0, max_iter, use_gradient):
    """θ on lme4's nAGQ = 0 objective; returns (StageResult, last β)."""
    state = {"beta": np.asarray(beta0, dtype=np.float64)}

    def remember(beta):
        if np.all(np.isfinite(beta)):
            state["beta"] = beta

    def fast(theta):
        value, beta = problem.fast_objective(theta, state["beta"])
        remember(beta)
        return value

    def fast_grad(theta):
        result, _ = problem.joint_modes(theta, state["beta"], step_tol=STAGE1_STEP_TOL)
        remember(result.beta)
        return result.laplace, fast_gradient(problem, result)

    stage1 = None
    if use_gradient:
        # a start only: stage 2 refines θ with β, so a loose stop suffices
        stage1 = lbfgsb(
            fast_grad,
            theta0,
            lower,
            gtol=STAGE1_GTOL,
            max_eval=max_iter,
        )
    if stage1 is None:
        step = np.full(len(theta0), 0.25)
        stage1 = bobyqa(fast, theta0, lower, step=step, xtol=1e-4, max_eval=max_iter)
    return stage1, state["beta"]


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
