"""Bounded minimisation of the profiled criterion over θ, and lme4's checks.

The default is BOBYQA (Powell's bound-constrained quadratic-model method,
lme4's and MixedModels.jl's default) from NLopt when the ``nlopt`` package
is installed; scipy's L-BFGS-B with central-difference gradients otherwise.
After the optimiser stops, θ elements within ``1e-5`` of their bound are
tried on the bound, as lme4's ``check.boundary`` does.
"""

import math
import operator
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from skmixed.mixed.small import newton_minimize

try:  # optional: a C implementation of BOBYQA
    import nlopt
except ImportError:  # pragma: no cover - depends on the environment
    nlopt = None

SINGULAR_TOL = 1e-4
_BOUNDARY_TOL = 1e-5
# how far inside a bound the gradient is probed after L-BFGS-B
_INWARD_STEP = 1e-2
# BOBYQA's step tolerance when Newton's polish follows (see _polish): the
# polish takes 1e-5 to rounding level in two steps; the same criteria on
# every reference case for ~15% fewer evaluations than 1e-7 (1e-4 left one
# short of a positive definite Hessian)
_BOBYQA_XTOL = 1e-5
# Newton from a close start (_newton_near): at most this many steps; the
# last one taken unevaluated when it leaves less than this error (relative
# to θ); an optimum closer than this to a bound is left to the optimiser;
_NEAR_STEPS = 8
_NEAR_ERROR = 1e-12
_NEAR_BOUND = 1e-3
# chord steps contracting slower than this get a fresh Hessian
_NEAR_CONTRACTION = 1e-2


class _BlasPin:
    """Pin BLAS to one thread while any fit runs; restore it after the last.

    The thread count of BLAS is a property of the whole process, so
    concurrent fits (threads) share one pin: the first to enter sets it,
    the last to leave restores the original limits. Each fit restoring its
    own snapshot would restore out of order and leave BLAS pinned.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._blas = None
        self._restore = []
        self._depth = 0

    def enter(self):
        with self._lock:
            if self._depth == 0:
                if self._blas is None:
                    # Finding the BLAS libraries reads the process's memory
                    # map: slow, so done once.
                    controller = ThreadpoolController().select(user_api="blas")
                    self._blas = controller.lib_controllers
                # Each library's own get/set (threadpoolctl's limit() builds
                # an info dict of every library at each call: 9 us a fit).
                self._restore = [
                    (lib, n) for lib in self._blas if (n := lib.get_num_threads()) != 1
                ]
                for lib, _ in self._restore:
                    lib.set_num_threads(1)
            self._depth += 1

    def leave(self):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lib, n in self._restore:
                    if n is not None:
                        lib.set_num_threads(n)
                self._restore = []


_BLAS_PIN = _BlasPin()


@contextmanager
def blas_single_thread():
    """Context manager pinning BLAS to one thread (thread-safe, re-entrant).

    The optimiser runs many operations on small matrices, where waking (and
    spinning) BLAS worker threads costs more than the work.
    """
    _BLAS_PIN.enter()
    try:
        yield
    finally:
        _BLAS_PIN.leave()


@dataclass
class OptimumTheta:
    """Where the optimiser stopped.

    ``gradient`` is the analytic gradient at ``x`` when the criterion has
    one (None otherwise); ``n_evaluations`` counts criterion values and
    value-and-gradient evaluations alike.
    """

    x: np.ndarray
    fun: float
    n_evaluations: int
    converged: bool
    message: str
    method: str
    gradient: np.ndarray | None = None


class _Counted:
    """The objective with an evaluation counter and the best point seen."""

    def __init__(self, fun):
        self.fun = fun
        self.count = 0
        self.best_x = None
        self.best_f = math.inf

    def __call__(self, x, grad=None):
        self.count += 1
        value = self.fun(x)
        if value < self.best_f:
            self.best_f, self.best_x = value, np.array(x, dtype=np.float64)
        return value if math.isfinite(value) else 1e300


class _CountedGradient(_Counted):
    """The value and its gradient, counted with the values (one counter).

    The last evaluation is kept: Newton's polish starts where L-BFGS-B
    stopped, which is usually the point L-BFGS-B evaluated last.
    """

    def __init__(self, fun, value_and_gradient):
        super().__init__(fun)
        self.value_and_gradient = value_and_gradient
        self._last = (None, None)
        # (θ, gradient) of every finite evaluation, for the polish's Hessian
        self.history = []

    def both(self, x):
        x = np.array(x, dtype=np.float64)
        last_x, result = self._last
        if last_x is not None and np.array_equal(x, last_x):
            return result
        self.count += 1
        value, grad = self.value_and_gradient(x)
        if value < self.best_f:
            self.best_f, self.best_x = value, x
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            result = 1e300, np.zeros(len(x))
        else:
            result = value, grad
        self._last = (x, result)
        if result[0] < 1e300:
            self.history.append((x, np.array(result[1], dtype=np.float64)))
        return result


def _bobyqa(fun, x0, lower, max_iter):
    polished = isinstance(fun, _CountedGradient)
    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(np.full(len(x0), np.inf))
    opt.set_min_objective(fun)
    # lme4's nloptwrap stops at xtol_abs = ftol_abs = 1e-8. The f tolerances
    # stop BOBYQA whenever one step gains little, which on some data is far
    # from the optimum (2.5e-6 short on strongly correlated slopes with
    # ftol_abs = 1e-8, 1.1e-5 on nested-200k with ftol_rel = 1e-12). A step
    # tolerance alone reached within 1e-8 of the optimum on every reference,
    # robustness and benchmark case, for about 15% more evaluations.
    opt.set_xtol_abs(_BOBYQA_XTOL if polished else 1e-7)
    opt.set_maxeval(max_iter)
    try:
        opt.optimize(np.asarray(x0, dtype=np.float64))
    except nlopt.RoundoffLimited:
        pass
    code = opt.last_optimize_result()
    # Stopping because roundoff prevents progress is success at our tolerances.
    converged = code == nlopt.ROUNDOFF_LIMITED or (
        code > 0 and code != nlopt.MAXEVAL_REACHED
    )
    messages = {nlopt.MAXEVAL_REACHED: f"reached max_iter={max_iter} evaluations"}
    return converged, messages.get(code, f"nlopt status {code}")


def _lbfgsb(fun, x0, lower, max_iter, first_step=None):
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    if isinstance(fun, _CountedGradient):
        # the analytic gradient; Newton's polish (see _polish) follows, so
        # L-BFGS-B need only come close: |∇| <= 1e-3 (a criterion ~n
        # resolves no finer gradient by its values: the line search then
        # retried rounding-level steps, 11 evaluations on a singular
        # crossed-100k fit). Its first step is -∇ (initial Hessian I), of
        # length ~n at lme4's start: from a start known to be close the
        # criterion is scaled so that this step is first_step long (the
        # gradient tolerance stays 1e-3 unscaled).
        scale = 1.0
        if first_step is not None:
            _, g0 = fun.both(x0)
            largest = float(np.max(np.abs(g0), initial=0.0))
            if 0.0 < largest < math.inf:
                scale = first_step / largest

        def scaled(x):
            value, grad = fun.both(x)
            return scale * value, scale * grad

        result = minimize(
            scaled,
            x0,
            method="L-BFGS-B",
            jac=True,
            bounds=bounds,
            options={"maxfun": max_iter, "ftol": 1e-10, "gtol": 1e-3 * scale},
        )
        return bool(result.success), str(result.message)
    result = minimize(
        fun,
        x0,
        method="L-BFGS-B",
        jac="3-point",
        bounds=bounds,
        options={"maxfun": max_iter, "ftol": 1e-14, "gtol": 1e-7},
    )
    return bool(result.success), str(result.message)


def _scipy(method):
    def run(fun, x0, lower, max_iter):
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
        options = {"maxfev": max_iter} if method == "Nelder-Mead" else {}
        if method == "COBYQA":
            options = {"maxfev": max_iter, "final_tr_radius": 1e-9}
        if method == "Nelder-Mead":
            options.update(xatol=1e-9, fatol=1e-11)
        result = minimize(fun, x0, method=method, bounds=bounds, options=options)
        return bool(result.success), str(result.message)

    return run


_METHODS = {
    "bobyqa": _bobyqa,
    "lbfgsb": _lbfgsb,
    "cobyqa": _scipy("COBYQA"),
    "nelder-mead": _scipy("Nelder-Mead"),
}


def available_methods():
    """Names accepted by ``minimize_theta``'s ``method``."""
    return [m for m in _METHODS if m != "bobyqa" or nlopt is not None]


def minimize_theta(
    fun,
    x0,
    lower,
    *,
    method="auto",
    max_iter=10_000,
    value_and_gradient=None,
    prefer_gradient=False,
    batch=None,
    first_step=None,
    close_start=None,
    hessian=None,
):
    """Minimise ``fun`` over θ subject to ``θ >= lower``.

    With ``value_and_gradient`` the optimum is polished by Newton steps on
    the analytic gradient (:func:`_polish`), so that it is the criterion's
    stationary point to rounding error: two fits of the same data whose
    rows come in another order agree to ~1e-12, not to the optimiser's
    tolerance.

    Parameters
    ----------
    fun : callable
        θ -> float (``inf`` where undefined).
    x0, lower : ndarray of shape (n_theta,)
    method : {"auto", "bobyqa", "lbfgsb", "cobyqa", "nelder-mead"}
        ``"auto"``: L-BFGS-B on the analytic gradient when
        ``prefer_gradient`` (an evaluation is dominated by a large later
        block, where the gradient costs ~3 values), BOBYQA otherwise.
    max_iter : int
        Maximum number of evaluations.
    value_and_gradient : callable, optional
        θ -> (value, gradient).
    prefer_gradient : bool, default=False
    batch : callable, optional
        ``(s, n_theta)`` stack of θ -> values and gradients
        (:class:`skmixed.mixed.small.BatchCriterion`, for small one-factor
        models). With ``"auto"``, bounded Newton steps on it
        (:func:`skmixed.mixed.small.newton_minimize`) replace BOBYQA and the
        polish; should they not converge, BOBYQA runs as without it.
    first_step : float, optional
        With L-BFGS-B on the analytic gradient, the length of its first
        step (for a start close to the optimum, such as a moment estimate);
        ``|∇|`` at ``x0`` when None.
    close_start : ndarray of shape (n_theta,), optional
        With ``"auto"`` and ``value_and_gradient``, a start known to be
        close to an optimum inside the bounds (a moment estimate, see
        :func:`skmixed.mixed.start.interior_start`): Newton steps from it
        (:func:`_newton_near`) replace the optimiser and the polish; where
        they do not converge inside the bounds, the optimiser runs from
        ``x0`` as without it.
    hessian : callable, optional
        θ -> (value, gradient, Hessian), for the Newton steps from
        ``close_start`` (instead of forward differences of the gradient).

    Returns
    -------
    OptimumTheta

    Examples
    --------
    >>> import numpy as np
    >>> from skmixed.mixed.optimize import minimize_theta
    >>> res = minimize_theta(lambda t: (t[0] - 2.0) ** 2 + 1.0, np.ones(1),
    ...                      np.zeros(1))
    >>> round(float(res.x[0]), 4), res.converged
    (2.0, True)
    """
    spent = 0  # θ points of a Newton run that handed over to BOBYQA
    if method == "auto" and batch is not None:
        opt, spent = _minimize_small(fun, x0, lower, batch, max_iter)
        if opt is not None:
            return opt
    elif method == "auto" and close_start is not None and value_and_gradient:
        opt, spent = _newton_near(
            fun, value_and_gradient, close_start, lower, hessian=hessian
        )
        if opt is not None:
            return opt
    if method == "auto":
        gradient_first = prefer_gradient and value_and_gradient is not None
        method = "bobyqa" if nlopt is not None and not gradient_first else "lbfgsb"
    if method not in _METHODS or (method == "bobyqa" and nlopt is None):
        raise ValueError(
            f"optimizer must be one of {['auto'] + available_methods()}; "
            f"got {method!r}."
        )
    if value_and_gradient is None:
        counted = _Counted(fun)
    else:
        counted = _CountedGradient(fun, value_and_gradient)
    x0 = np.asarray(x0, dtype=np.float64)
    gradient = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        extra = {"first_step": first_step} if method == "lbfgsb" else {}
        budget = max(max_iter - spent, 1)
        converged, message = _METHODS[method](counted, x0, lower, budget, **extra)
        if counted.best_x is None:
            raise FloatingPointError(
                "The criterion could not be evaluated at any θ tried."
            )
        x, f = counted.best_x, counted.best_f
        x, f = _check_boundary(counted, x, f, lower)
        if method == "lbfgsb" and value_and_gradient is not None:
            inward = _inward_probe(counted, x, f, lower)
            if inward is not None:
                step = 0.1 * max(1.0, float(np.max(np.abs(x))))
                _lbfgsb(counted, inward, lower, budget, first_step=step)
                x, f = _check_boundary(counted, counted.best_x, counted.best_f, lower)
        if value_and_gradient is not None and math.isfinite(f):
            # after L-BFGS-B, its last gradients near the optimum give the
            # polish its Hessian (see _secant_hessian)
            history = counted.history if method == "lbfgsb" else None
            x, f, gradient = _polish(counted.both, x, lower, history=history)
    count = counted.count + spent
    return OptimumTheta(x, f, count, converged, message, method, gradient)


def _minimize_small(fun, x0, lower, batch, max_iter):
    """Newton on a batch criterion (see :mod:`skmixed.mixed.small`), and the
    θ points it evaluated; None for the optimum where Newton failed or
    stopped on a degenerate boundary (the caller then runs BOBYQA)."""
    x0 = np.asarray(x0, dtype=np.float64)
    # numpy's warnings on θ where the factorisation fails (NaN, inf values)
    with np.errstate(all="ignore"):
        # from moment estimates where there are some (~2 passes fewer than
        # from the best scaling of lme4's start); where that ends on a
        # degenerate boundary, or fails, from that scaling too (its 25
        # starts found lower optima there), keeping the better. On a
        # boundary that is not degenerate (a zero variance, a rank-one
        # covariance) they found the same optimum in every case of a
        # 3,000-fit sweep (~300 such fits), so it is kept as it is.
        start, result = batch.moment_start(), None
        if start is not None:
            result = newton_minimize(
                batch,
                np.maximum(start, lower),
                lower,
                max_points=max_iter,
                scaled_starts=False,
            )
            if result.status == "converged" and not batch.degenerate(result.x):
                start = None  # done
        if start is not None or result is None:
            spent = 0 if result is None else result.n_points
            budget = max(max_iter - spent, 1)
            other = newton_minimize(batch, x0, lower, max_points=budget)
            other.n_points += spent
            if result is None or _better(other, result, batch):
                result = other
            else:
                result.n_points = other.n_points
        if result.status == "failed" or (
            result.status == "converged" and batch.degenerate(result.x)
        ):
            # BOBYQA's steps move the zero diagonal element and the
            # elements it frees together, where Newton's stopped short
            return None, result.n_points
        counted = _Counted(fun)
        x, f = _check_boundary(counted, result.x, result.fun, lower)
    gradient = result.gradient if x is result.x else None
    converged = result.status == "converged"
    if converged:
        message = f"converged in {result.n_passes} Newton passes"
    else:
        message = f"reached max_iter={max_iter} evaluations"
    opt = OptimumTheta(
        x, f, result.n_points + counted.count, converged, message, "newton", gradient
    )
    return opt, opt.n_evaluations


def _newton_near(
    fun, value_and_gradient, x0, lower, max_steps=_NEAR_STEPS, hessian=None
):
    """Newton steps from a start close to an optimum inside the bounds.

    The Hessian is a forward difference of the analytic gradient, kept for
    the next steps (chord steps) while they contract fast (each at most
    ``_NEAR_CONTRACTION`` times the one before), formed afresh where they
    do not: from ~1e-4 away the first step lands within ~1e-8 and the next
    one gains about as much again. A step whose remaining error (estimated
    from the last two steps' contraction) is below ``_NEAR_ERROR`` is the
    last, taken without evaluating it (θ is then a function of the data,
    as after :func:`_polish`). Used where an evaluation is expensive (a
    million levels): ~5 values and gradients against BOBYQA's ~55 values
    and the polish's ~5.

    Returns ``(OptimumTheta, evaluations)``, or ``(None, evaluations)``
    where the Hessian is not positive definite, a step raises the
    criterion, heads for a bound or ends within ``_NEAR_BOUND`` of one, or
    the steps do not converge: the caller's optimiser then runs as
    without this start (it handles the boundary, lme4's way).

    With ``hessian`` (θ -> value, gradient and Hessian) a fresh Hessian is
    that evaluation's, counted as one.
    """
    counted = _CountedGradient(fun, value_and_gradient)
    x = np.asarray(x0, dtype=np.float64).copy()
    bounded = np.isfinite(lower)
    every = np.arange(len(x))

    def inside(theta):
        return bool(np.all(theta[bounded] - lower[bounded] >= _NEAR_BOUND))

    def with_hessian(theta):
        """(value, gradient, Hessian) at θ: analytic, or forward differences."""
        if hessian is None:
            value, grad = counted.both(theta)
            if not value < 1e300:
                return value, grad, None
            return value, grad, _forward_hessian(counted.both, theta, grad, every)
        counted.count += 1
        value, grad, H = hessian(theta)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e300, grad, None
        if value < counted.best_f:
            counted.best_f, counted.best_x = value, np.array(theta, dtype=np.float64)
        return value, grad, H

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        f, g, H = with_hessian(x)
        if not (f < 1e300 and inside(x)):
            return None, counted.count
        previous = None  # the length of the chord step before
        for steps in range(1, max_steps + 1):
            try:
                chol = np.linalg.cholesky(0.5 * (H + H.T))
            except np.linalg.LinAlgError:
                return None, counted.count
            step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g))
            new = x + step
            if not inside(new):
                return None, counted.count
            scale = max(1.0, float(np.max(np.abs(x))))
            size = float(np.max(np.abs(step)))
            # chord steps contract by ~size / previous: what is left after
            # this one is ~size² / previous
            if size <= 1e-11 * scale or (
                previous is not None
                and size <= 1e-6 * scale
                and size * size <= _NEAR_ERROR * scale * previous
            ):
                # the last step: the quadratic model's value and gradient
                Hd = H @ step
                f = f + float(g @ step) + 0.5 * float(Hd @ step)
                message = f"converged in {steps} Newton steps from a close start"
                opt = OptimumTheta(
                    new, f, counted.count, True, message, "newton", g + Hd
                )
                return opt, counted.count
            # slow chord steps (a start farther off): a fresh Hessian there
            fresh = previous is not None and size > _NEAR_CONTRACTION * previous
            if fresh and hessian is not None:
                f_new, g_new, H_new = with_hessian(new)
            else:
                f_new, g_new = counted.both(new)
            if not f_new <= f + 1e-11 * max(1.0, abs(f)):
                return None, counted.count
            x, f, g = new, f_new, g_new
            if fresh:
                if hessian is None:
                    H_new = _forward_hessian(counted.both, x, g, every)
                H, previous = H_new, None
            else:
                previous = size
    return None, counted.count


def _better(a, b, batch):
    """Whether Newton result a is to be kept rather than b: converged off a
    degenerate boundary before anything else, then the lower value."""

    def rank(r):
        usable = r.status != "failed" and math.isfinite(r.fun)
        return (not usable, batch.degenerate(r.x), r.fun if usable else math.inf)

    return rank(a) < rank(b)


def _polish(value_and_gradient, x, lower, max_steps=5, history=None):
    """Newton steps from a converged θ to the criterion's stationary point.

    The Hessian (of the free elements: those off their bound, or on it with
    the gradient pointing inside) is a forward difference of the analytic
    gradient, formed once: from an optimiser's ~1e-7 the first step lands
    within ~1e-13, and the next steps (chord steps, the same Hessian) make
    the result a function of the data alone. With ``history`` (the
    optimiser's evaluated θ and gradients) the Hessian comes from its last
    gradients near θ instead, where they determine it
    (:func:`_secant_hessian`): no evaluation, at the price of a chord step
    more. A step that raises the criterion beyond rounding is refused;
    without a positive definite Hessian (a flat or degenerate optimum) θ is
    left as it was.

    Returns (θ, value, gradient at θ).
    """
    f, g = value_and_gradient(x)
    free = ~((x <= lower) & (g >= 0.0))
    if not free.any() or not math.isfinite(f):
        return x, f, g
    index = np.flatnonzero(free)
    H = _secant_hessian(history, x, g, index) if history else None
    secant = H is not None
    if not secant:
        H = _forward_hessian(value_and_gradient, x, g, index)
    tolerance = 1e-11 * max(1.0, abs(f))
    steps = 0
    while steps < max_steps:
        try:
            chol = np.linalg.cholesky(0.5 * (H + H.T))
        except np.linalg.LinAlgError:
            if not secant:
                break
            chol = None
        if chol is not None:
            step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g[index]))
            new = x.copy()
            new[index] = np.maximum(x[index] + step, lower[index])
            if np.max(np.abs(new - x)) <= 1e-11 * max(1.0, np.max(np.abs(x))):
                # a step at rounding level: taken without evaluating it, so
                # that θ is a function of the data, not of where we came from
                x = new
                break
            f_new, g_new = value_and_gradient(new)
            steps += 1
            accepted = f_new <= f + tolerance
            slow = accepted and (
                np.max(np.abs(g_new[index])) > 0.1 * np.max(np.abs(g[index]))
            )
            if accepted:
                x, f, g = new, f_new, g_new
                if np.any(x[index] <= lower[index]):
                    break  # the free set changed: its Hessian no longer applies
            if not accepted and not secant:
                break
            if not (secant and (slow or not accepted)):
                continue
        # the history's Hessian was not positive definite, or its step was
        # refused or shrank the gradient less than tenfold: a forward
        # difference one from here (once)
        H = _forward_hessian(value_and_gradient, x, g, index)
        secant, steps = False, 0
    return x, f, g


def _forward_hessian(value_and_gradient, x, g, index):
    """Forward differences of the gradient in the free elements ``index``."""
    H = np.empty((len(index), len(index)))
    for col, j in enumerate(index):
        h = 1e-6 * max(1.0, abs(x[j]))
        trial = x.copy()
        trial[j] += h
        _, gj = value_and_gradient(trial)
        H[:, col] = (gj[index] - g[index]) / h
    return H


def _secant_hessian(history, x, g, index, radius=0.05, max_condition=1e3):
    """The Hessian on the free elements ``index`` from gradients near x.

    Each evaluated ``θ_i`` within ``radius`` (relative to θ's scale) of x,
    and equal to x off the free elements, gives ``H (θ_i − x) ≈ ∇_i − ∇``;
    H is their least-squares solution, symmetrised. None unless the steps
    span the free elements (condition number below ``max_condition``).
    The caller's Cholesky factorisation rejects an H that is not positive
    definite. Near an optimum reached by L-BFGS-B the last steps are short,
    and H is within ~1% of the forward-difference one (crossed designs):
    the chord steps then converge as fast, after one more of them.
    """
    reach = radius * max(1.0, float(np.max(np.abs(x))))
    fixed = np.setdiff1d(np.arange(len(x)), index)
    steps, changes = [], []
    for xi, gi in history:
        d = xi - x
        if not np.any(d[index]) or np.max(np.abs(d)) > reach:
            continue
        if np.any(d[fixed]):
            continue
        steps.append(d[index])
        changes.append(gi[index] - g[index])
    if len(steps) < len(index):
        return None
    S, Y = np.array(steps), np.array(changes)
    if np.linalg.cond(S) > max_condition:
        return None
    Ht = np.linalg.lstsq(S, Y, rcond=None)[0]  # S Hᵀ = Y
    return 0.5 * (Ht + Ht.T)


def _inward_probe(counted, x, f, lower, step=_INWARD_STEP):
    """A restart off the bounds where the criterion falls inward, or None.

    The criterion is even in a scalar term's θ, so its gradient vanishes
    at θ = 0 whatever the curvature there: L-BFGS-B, started at or led to
    0, stops on the bound although a small positive θ is lower (crossed
    fits with a variance component ~5% of the residual's stopped up to 3.8
    above BOBYQA's criterion). At ``step`` inside the bound the gradient
    shows the curvature's sign: where it falls inward, restart from there.
    """
    if not math.isfinite(f):
        return None
    at_bound = np.flatnonzero(np.isfinite(lower) & (x - lower < step))
    if not len(at_bound):
        return None
    trial = x.copy()
    trial[at_bound] = lower[at_bound] + step
    value, grad = counted.both(trial)
    falling = at_bound[grad[at_bound] < 0]
    if not len(falling) and not value < f:
        return None
    start = x.copy()
    start[falling] = lower[falling] + step
    return trial if value < f and not len(falling) else start


def _check_boundary(fun, x, f, lower):
    """Move θ elements within 1e-5 of their bound onto it where that is better."""
    # in Python floats: a few elements, where numpy's calls cost more
    gaps = map(operator.sub, np.asarray(x).tolist(), np.asarray(lower).tolist())
    near = [i for i, gap in enumerate(gaps) if 0.0 < gap < _BOUNDARY_TOL]
    for i in near:
        trial = x.copy()
        trial[i] = lower[i]
        value = fun(trial)
        if value < f:
            x, f = trial, value
    return x, f


def is_singular(theta, lower, tol=SINGULAR_TOL):
    """lme4's ``isSingular``: any θ element with lower bound 0 below ``tol``.

    The one rule for every singularity test in skmixed (LMM and GLMM fits,
    profiles, performance's r2/icc with their own tolerance): lme4's
    ``any(theta[lower == 0] < tol)``. Off-diagonal elements (bound -inf)
    never count.
    """
    # in Python floats: a few elements, where numpy's calls cost more
    pairs = zip(np.asarray(theta).tolist(), np.asarray(lower).tolist(), strict=True)
    return any(bound == 0.0 and value < tol for value, bound in pairs)


def finite_difference_derivatives(fun, x, fx, delta=1e-4, *, plus=None, minus=None):
    """Central-difference gradient and Hessian, as lme4's ``deriv12``.

    ``plus`` and ``minus`` (values at ``x ± delta e_j``) are reused if given.
    """
    n = len(x)
    if plus is None:
        _, plus, minus = finite_difference_gradient(fun, x, delta)
    grad = (plus - minus) / (2.0 * delta)
    hess = np.empty((n, n))
    for j in range(n):
        hess[j, j] = (plus[j] - 2.0 * fx + minus[j]) / delta**2
        e = np.zeros(n)
        e[j] = delta
        for i in range(j):
            d = np.zeros(n)
            d[i] = delta
            fpp, fmm = fun(x + e + d), fun(x - e - d)
            fpm, fmp = fun(x + d - e), fun(x - d + e)
            hess[i, j] = hess[j, i] = (fpp - fpm - fmp + fmm) / (4.0 * delta**2)
    return grad, hess


def finite_difference_gradient(fun, x, delta=1e-4):
    """Central-difference gradient; also the values at ``x ± delta e_j``."""
    n = len(x)
    plus, minus = np.empty(n), np.empty(n)
    for j in range(n):
        e = np.zeros(n)
        e[j] = delta
        plus[j], minus[j] = fun(x + e), fun(x - e)
    return (plus - minus) / (2.0 * delta), plus, minus


def check_convergence(fun, x, fx, tol=2e-3, gradient=None):
    """lme4's gradient check at the optimum; list of problems (empty if none).

    lme4 flags ``max(min(|scaled gradient|, |gradient|)) > tol``; where the
    plain gradient is already below ``tol`` the Hessian is not needed, which
    saves ``n(n-1)/2 * 4`` evaluations in the usual case. ``gradient``, the
    analytic gradient at ``x`` when known, replaces lme4's central
    differences (``2 n`` evaluations) for that first test.
    """
    # (in Python floats: a few elements; NaN fails the test, as in numpy)
    if gradient is not None and all(abs(g) <= tol for g in np.ravel(gradient).tolist()):
        return []
    grad, plus, minus = finite_difference_gradient(fun, x)
    if np.max(np.abs(grad)) <= tol:
        return []
    grad, hess = finite_difference_derivatives(fun, x, fx, plus=plus, minus=minus)
    return convergence_problems(grad, hess, tol)


def convergence_problems(grad, hess, tol=2e-3):
    """lme4's ``checkConv`` on gradient and Hessian; list of messages."""
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return ["unable to evaluate scaled gradient (Hessian not positive definite)"]
    scaled = np.linalg.solve(chol.T, grad)
    worst = np.minimum(np.abs(scaled), np.abs(grad))
    if np.max(worst) > tol:
        return [
            f"Model failed to converge with max|grad| = {np.max(worst):.6g} "
            f"(tol = {tol:g}, component {int(np.argmax(worst)) + 1})"
        ]
    return []
