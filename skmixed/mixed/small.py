"""Small one-factor fits: the criterion at many θ at once, and Newton on it.

A model with a single random-effects term on few levels (sleepstudy's 18
subjects) costs microseconds of arithmetic per evaluation and much more in
per-call overhead: numpy's, and a derivative-free optimiser's ~50 calls. Here
the profiled criterion and its analytic gradient are computed for a *stack*
of θ in one pass of array operations, so that a gradient together with the
gradients at ``θ + h e_j`` (a forward-difference Hessian) costs little more
than one evaluation; a bounded Newton method on them needs ~3 such passes
from a moment estimate of θ where BOBYQA and the Newton polish of
:mod:`skmixed.mixed.optimize` need ~50 evaluations. Numpy's per-call
overhead is then what a fit costs, so the code counts numpy calls: no
stack of tiny matrices goes through ``@`` (BLAS once per matrix), and the
per-level tables are built from θ's few rows first. The optimum is the
criterion's stationary point to ~1e-10 (relative), as the polish makes it
(a function of the data, not of the rows' order).

Notation as in :mod:`skmixed.mixed.criterion`: per level j,
``A_j = λᵀ D_j λ + I`` and the weights ``M_j = λ A_j⁻¹ λᵀ``; the ``[X y]``
block is ``T = Bxx − Σ_j CX_jᵀ M_j CX_j = L Lᵀ``, and the criterion is
``Σ_j log|A_j| + Σ_i w_i log L_ii² + const``. Its gradient: the θ-derivatives
of ``log|A_j|`` and ``M_j`` from polynomial tables (:class:`BatchCriterion`),
and ``d(Σ_i w_i log L_ii²) = tr(dT Q)`` with ``Q = L⁻ᵀ diag(w) L⁻¹``.
"""

import math
import operator
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

# numpy's batched LAPACK kernels, which np.linalg.cholesky and inv call
# after checks that cost more than the kernels on a few 3 x 3 matrices (~9
# of a pass's ~50 us; the module is in every numpy this package supports).
# A matrix that is not positive definite gives NaN, in its own row only,
# instead of LinAlgError for the whole stack.
try:
    from numpy.linalg._umath_linalg import cholesky_lo as _cholesky_lo
    from numpy.linalg._umath_linalg import inv as _inv
except ImportError:  # pragma: no cover - a numpy that moved its kernels
    _cholesky_lo = _inv = None

from skmixed.mixed.first_term import coefficients
from skmixed.mixed.start import moment_start, ordinary_least_squares


def _cholesky(a):
    """Lower Cholesky factors of a stack of matrices (NaN where not PD)."""
    if _cholesky_lo is not None:
        return _cholesky_lo(a, signature="d->d")
    out = np.full(a.shape, np.nan)  # the public API, one matrix at a time
    for index in np.ndindex(a.shape[:-2]):
        try:
            out[index] = np.linalg.cholesky(a[index])
        except np.linalg.LinAlgError:
            pass
    return out


def _inverse(a):
    """Inverses of a stack of matrices."""
    if _inv is not None:
        return _inv(a, signature="d->d")
    return np.linalg.inv(a)


# Levels up to which a one-factor model takes the batched Newton path; beyond
# that an evaluation's arithmetic, not its overhead, dominates (and the
# one-factor kernels of criterion.py are tuned for it).
MAX_LEVELS = 2_000
# Passes (each: the value and gradient at a θ and at θ + h e_j) before
# giving up on Newton; the caller then runs its derivative-free optimiser.
_MAX_PASSES = 50
# A step this small relative to θ is rounding: taken without evaluating it,
# so that θ is a function of the data (as the polish of optimize.py does).
_ROUNDING_STEP = 1e-11
# A Newton step on a positive definite (forward-difference, ~1e-6 accurate)
# Hessian this short (relative to θ) lands within ~1e-12 of the stationary
# point: the last step is then taken without evaluating it.
_FINAL_STEP = 1e-6
# Where Newton converges quadratically, the distance left after a step of
# length s_k is ~ κ s_k² with κ ~ s_k / s_(k-1)² from the two last full
# steps: a step (no longer than _QUADRATIC_STEP relative to θ) that lands
# this close (relative to θ) is the last one, taken without evaluating it.
_QUADRATIC_STEP = 1e-4
_FINAL_ERROR = 1e-10
# Each pass also evaluates these fractions of its step: a line search that
# costs no extra call when the full step fails.
_BACKTRACK = (0.25, 0.0625)
# Scalings of the start's diagonal elements tried first (1: lme4's start).
_START_SCALES = (0.1, 0.2, 0.35, 0.6, 1.0)
# The moment start's relative variances are at least this (the smallest
# scaling above, squared) where the estimate is not positive, and at least
# the tiny one where it is.
_SMALLEST_VARIANCE = 0.01
_TINY_VARIANCE = 1e-6
# A symmetric 2 x 2 matrix's adjugate from its entries (00, 01, 10, 11).
_ADJUGATE = np.array([3, 1, 1, 0])
_ADJUGATE_SIGNS = np.array([1.0, -1.0, -1.0, 1.0])
# The powers of a one-column term's θ its tables are written on.
_POWERS = np.arange(3.0)


def batch_criterion(criterion):
    """A :class:`BatchCriterion` of ``criterion`` when it has one random-effects
    term of one or two columns on at most ``MAX_LEVELS`` levels (stored outer
    products); else None.

    Three or more columns stay with BOBYQA: their θ has degenerate
    boundaries (a zero diagonal element before the last frees the elements
    below it), where Newton stopped up to 0.65 above BOBYQA's criterion in
    a sweep of random small fits.
    """
    design = criterion.design
    if (
        len(design.terms) != 1
        or design.terms[0].k > 2
        or criterion.strategy != "outer"
        or design.terms[0].m > MAX_LEVELS
    ):
        return None
    return BatchCriterion(criterion)


@dataclass
class NewtonResult:
    """Where :func:`newton_minimize` stopped.

    ``status``: ``"converged"``; ``"max_points"`` (the budget of θ points
    ran out); ``"failed"`` (no finite value, or no convergence in
    ``_MAX_PASSES`` passes: the caller should use another optimiser).
    """

    x: np.ndarray
    fun: float
    gradient: np.ndarray
    n_points: int
    n_passes: int
    status: str


def newton_minimize(batch, x0, lower, max_points=10_000, scaled_starts=True):
    """Minimise a batch criterion over ``θ >= lower`` by projected Newton steps.

    Each pass evaluates, in one call of ``batch``, the value and gradient at
    a trial θ, the gradients at ``θ + h e_j`` (the Hessian is their forward
    difference), and the values at two shorter steps (a line search that
    costs no further call). Elements on their bound with the gradient
    pointing outwards are held there; on the others the step is Newton's
    (see :func:`_newton_step` where the Hessian is not positive definite),
    limited by a step bound that grows while the limited steps succeed. The
    iteration ends when the step is at rounding level relative to θ: the
    criterion's stationary point (or its bound) to rounding error.

    The vectors have a handful of elements: the iteration works in Python
    floats, where numpy's per-call overhead would cost more than the
    criterion's passes.

    Parameters
    ----------
    batch : BatchCriterion
        ``(s, n)`` array of θ -> values ``(s,)`` and gradients ``(s, n)``;
        ``batch.values`` gives the values alone.
    x0, lower : ndarray of shape (n,)
    max_points : int
        The most θ points to evaluate.
    scaled_starts : bool, default=True
        Start from the best of x0 and its scalings (:func:`_scaled_starts`,
        one call); False: from x0 itself (a start known to be close, such
        as :meth:`BatchCriterion.moment_start`).

    Returns
    -------
    NewtonResult
    """
    lower = np.asarray(lower, dtype=np.float64)
    x = np.maximum(np.asarray(x0, dtype=np.float64), lower)
    n = len(x)
    bounded = np.isfinite(lower)
    # the best of a few scalings of the start (one call): Newton then starts
    # nearer, mostly where the criterion is convex (from lme4's start of 1
    # its first steps overshoot: ~9.5 passes on sleepstudy-sized data
    # against ~5.5 so)
    used = 0
    if scaled_starts:
        starts = _scaled_starts(tuple(x.tolist()), tuple(bounded.tolist()))
        values = batch.values(starts)
        values = np.where(np.isfinite(values), values, np.inf)
        best = int(values.argmin())
        if values[best] < np.inf:
            x = starts[best]
        used = len(starts)
    x, lower = x.tolist(), lower.tolist()
    # the elements with a bound (the diagonal of Λ), as (index, bound)
    bounds = [(j, lower[j]) for j in np.flatnonzero(bounded).tolist()]
    h = [1e-6 * max(1.0, abs(xi)) for xi in x]
    f, g, H = _derivatives(batch, x, h, [])[0]
    used, passes, limit, fresh = used + n + 1, 1, 1.0, True
    per_pass = n + 1 + len(_BACKTRACK)
    status = "failed"
    previous = None  # the length of the last full Newton step, else None
    while math.isfinite(f) and passes < _MAX_PASSES:
        at_bound = [j for j, lo in bounds if x[j] <= lo]
        held = ()
        if at_bound:
            # held on the bound where the gradient points out (not where it
            # is flat: see _newton_step)
            flat = 1e-10 * max(1.0, max(map(abs, g)))
            held = [j for j in at_bound if g[j] > flat]
        scale = max(1.0, max(map(abs, x)))
        step, exact = _newton_step(H, g, held, at_bound, min(limit, 1.0) * scale)
        longest = max(map(abs, step))
        cut = longest > limit * scale
        if cut:
            step = [d * (limit * scale / longest) for d in step]
        # the full step first: the shorter ones only where it is evaluated
        trials = [_projected(x, step, 1.0, bounds)]
        moves = [list(map(operator.sub, trials[0], x))]
        size = max(map(abs, moves[0]))
        newton = exact and fresh and not cut
        if size <= _ROUNDING_STEP * scale or (
            newton
            and (
                size <= _FINAL_STEP * scale
                or (
                    previous is not None
                    and size <= _QUADRATIC_STEP * scale
                    and size**3 <= _FINAL_ERROR * scale * previous**2
                )
            )
        ):
            # Newton's last step (on a positive definite Hessian) is so
            # short that the quadratic model is exact to rounding: taken
            # without evaluating it; the value and gradient there are the
            # model's
            f, g = _quadratic_model(f, g, H, moves[0])
            return NewtonResult(
                np.array(trials[0]), f, np.array(g), used, passes, "converged"
            )
        if used + per_pass > max_points:
            status = "max_points"
            break
        trials += [_projected(x, step, a, bounds) for a in _BACKTRACK]
        moves += [list(map(operator.sub, trial, x)) for trial in trials[1:]]
        h = [1e-6 * max(1.0, abs(xi)) for xi in trials[0]]
        results = _derivatives(batch, trials[0], h, trials[1:])
        used += per_pass
        passes += 1
        # Armijo's sufficient decrease, with a rounding allowance
        slack = 1e-12 * abs(f)
        i = next(
            (
                i
                for i, (result, move) in enumerate(zip(results, moves, strict=True))
                if result[0] <= f + 1e-4 * sum(map(operator.mul, g, move)) + slack
            ),
            None,
        )
        if i is None:  # none lower (or none finite): retry shorter still
            limit = _BACKTRACK[-1] ** 2 * size / scale
            continue
        trial, move, result = trials[i], moves[i], results[i]
        previous = size if i == 0 and newton else None
        if i == 0:
            x, (f, g, H), fresh = trial, result, True
            if cut:
                limit *= 2.0
        else:  # a shorter step: the old Hessian serves for the next one
            limit = max(map(abs, move)) / scale
            x, (f, g), fresh = trial, result, False
    return NewtonResult(np.array(x), f, np.array(g), used, passes, status)


def _projected(x, step, fraction, bounds):
    """``x + fraction * step`` projected onto the bounds (lists of floats;
    ``bounds``: (index, lower bound) pairs)."""
    # (map over equal-length lists: zip's strict check parses keywords,
    # which costs more than the sums here)
    trial = list(map(operator.add, x, [fraction * d for d in step]))
    for j, lo in bounds:
        if trial[j] < lo:
            trial[j] = lo
    return trial


def _floored_cholesky(a, b, c):
    """``(l00, l10, l11)`` of the Cholesky factor of ``[[a, b], [b, c]]``
    with its eigenvalues floored (at ``_TINY_VARIANCE`` where positive, at
    ``_SMALLEST_VARIANCE`` otherwise); None unless finite."""
    if not all(map(math.isfinite, (a, b, c))):
        return None
    half_gap = math.hypot(0.5 * (a - c), b)
    mean = 0.5 * (a + c)
    big, small = mean + half_gap, mean - half_gap
    # the eigenvector of the big eigenvalue: (cos φ, sin φ)
    phi = 0.5 * math.atan2(2.0 * b, a - c)
    cos, sin = math.cos(phi), math.sin(phi)
    # a small positive eigenvalue is the estimate (a balanced design's
    # optimum may have one); a negative one says the optimum is on the
    # boundary, where the start stays at the smallest scale tried otherwise
    floor = _TINY_VARIANCE if small > 0.0 else _SMALLEST_VARIANCE
    big, small = max(big, floor), max(small, floor)
    a = big * cos * cos + small * sin * sin
    b = (big - small) * cos * sin
    c = big * sin * sin + small * cos * cos
    l00 = math.sqrt(a)
    l10 = b / l00
    return np.array([l00, l10, math.sqrt(c - l10 * l10)])


@lru_cache(maxsize=32)
def _scaled_starts(x, bounded):
    """x, and x with its bounded elements (the diagonal of Λ) scaled by
    ``_START_SCALES``: each one separately where there are at most two, all
    alike otherwise. Tuples in, a read-only array out (cached: every fit
    starts from lme4's start)."""
    index = np.flatnonzero(bounded)
    if len(index) <= 2:
        grid = np.array(np.meshgrid(*[_START_SCALES] * len(index)))
        factors = grid.reshape(len(index), -1).T
    else:
        factors = np.repeat(np.array(_START_SCALES)[:, None], len(index), axis=1)
    starts = np.tile(x, (len(factors), 1))
    starts[:, index] *= factors
    starts.setflags(write=False)
    return starts


def _derivatives(batch, x, h, others):
    """At x: (value, gradient, forward-difference Hessian with the steps h);
    at each of ``others``: (value, gradient). One call of ``batch`` (lists
    of floats)."""
    n = len(x)
    shifted = [x[:j] + [x[j] + h[j]] + x[j + 1 :] for j in range(n)]
    values, grads = batch(np.array([x, *shifted, *others]))
    values, grads = values.tolist(), grads.tolist()
    g = grads[0]
    H = [
        [(gj[i] - g[i]) / h[j] for i in range(n)]
        for j, gj in enumerate(grads[1 : n + 1])
    ]
    H = [[0.5 * (H[i][j] + H[j][i]) for j in range(n)] for i in range(n)]
    out = [(values[0], g, H)]
    return out + [(values[i], grads[i]) for i in range(n + 1, len(values))]


def _quadratic_model(f, g, H, d):
    """The quadratic model's value and gradient after the step d (lists)."""
    Hd = [sum(map(operator.mul, row, d)) for row in H]
    f += sum(map(operator.mul, g, d)) + 0.5 * sum(map(operator.mul, Hd, d))
    return f, list(map(operator.add, g, Hd))


def _newton_step(H, g, held, at_bound, length):
    """Newton's step on the elements not held, and whether H was positive
    definite there (``held``, ``at_bound``: lists of element indices).

    Otherwise H's eigenvalues are made positive (a descent direction), and
    each direction of negative curvature adds a step of ``length`` along it,
    downhill or, where it moves an element off its bound, into the feasible
    side: a point where the gradient vanishes by symmetry (a term's last
    diagonal element at 0) may be a saddle, not an optimum.
    """
    n = len(g)
    free = [i for i in range(n) if i not in held]
    step = [0.0] * n
    if not free:
        return step, True
    Hf = [[H[i][j] for j in free] for i in free]
    gf = [g[i] for i in free]
    solution = _cholesky_solve(Hf, gf)
    if solution is not None:
        for i, v in zip(free, solution, strict=True):
            step[i] = -v
        return step, True
    w, V = np.linalg.eigh(np.array(Hf))
    if not np.all(np.isfinite(w)):
        for i, v in zip(free, gf, strict=True):
            step[i] = -v
        return step, False
    floor = 1e-8 * max(1.0, float(np.abs(w).max()))
    along = V.T @ np.array(gf)
    part = -(V @ (along / np.maximum(np.abs(w), floor)))
    bound_free = np.array([i in at_bound for i in free])
    for i in np.flatnonzero(w < -floor):
        v = V[:, i]
        # into the feasible side where v moves an element off its bound
        # (downhill would be projected away), else downhill
        on_bound = v[bound_free]
        outward = on_bound.size and np.abs(on_bound).max() >= 0.5 * np.abs(v).max()
        if outward:
            if on_bound[np.abs(on_bound).argmax()] < 0.0:
                v = -v
        elif along[i] > 0.0:
            v = -v
        part += length * v
    for i, v in zip(free, part.tolist(), strict=True):
        step[i] = v
    return step, False


def _cholesky_solve(A, b):
    """``A⁻¹ b`` by Cholesky in Python floats (a few elements); None unless A
    is positive definite."""
    n = len(b)
    L = [[0.0] * n for _ in range(n)]
    for j in range(n):
        Lj = L[j]
        d = A[j][j]
        for k in range(j):
            d -= Lj[k] * Lj[k]
        if not d > 1e-14 * abs(A[j][j]):
            return None
        Lj[j] = d = math.sqrt(d)
        for i in range(j + 1, n):
            Li = L[i]
            v = A[i][j]
            for k in range(j):
                v -= Li[k] * Lj[k]
            Li[j] = v / d
    y = list(b)
    for i in range(n):
        Li = L[i]
        v = y[i]
        for k in range(i):
            v -= Li[k] * y[k]
        y[i] = v / Li[i]
    for i in reversed(range(n)):
        v = y[i]
        for k in range(i + 1, n):
            v -= L[k][i] * y[k]
        y[i] = v / L[i][i]
    return y


class BatchCriterion:
    """The profiled criterion and its gradient at a stack of θ.

    Only for a criterion with one random-effects term of one or two columns
    (no later factors) whose Schur complement uses the stored outer
    products (``strategy == "outer"``): see :func:`batch_criterion`.

    The entries of ``A_j`` and ``|A_j| M_j`` are polynomials in θ
    (:func:`two_by_two_table`), and so are their θ-derivatives: one product
    of θ's monomials with a table fixed per fit gives, per level, the
    values and the derivatives, in real arithmetic; ``|A_j|``, ``M_j`` and
    their derivatives follow by the product and quotient rules. The rest of
    the gradient is the closed form ``d(Σ w_i log L_ii²) = tr(dT Q)``,
    ``Q = L⁻ᵀ diag(w) L⁻¹``.

    Parameters
    ----------
    criterion : ProfiledCriterion
    """

    def __init__(self, criterion):
        design = criterion.design
        self.k = design.terms[0].k
        self.m = design.terms[0].m
        self.n_theta = criterion.n_theta
        self.r = design.r
        self._B = criterion._B_flat
        # the per-level outer products, pair-major (column i * m + j for
        # level j, pair i): T = B − weights @ Pᵀ, and vec(Q) @ P is the
        # criterion's derivative in the weights (up to sign)
        self._P = criterion._P
        # −P, so that the gradient's weights come out with their sign
        self._minus_P = -criterion._P
        self._weights = criterion._column_weights
        self._twice_weights = 2.0 * criterion._column_weights
        self._const = criterion._dof * criterion._log_const - criterion._log_weights
        self._design = design
        self._reml = criterion.reml
        # per level, |A_j| and the entries of |A_j| M_j (values, then their
        # derivatives in each θ_l) are (monomials(θ) @ polynomials) @ basis:
        # polynomials fixed, the level's basis from D_j
        if self.k == 1:
            # |A_j| = t² d_j + 1 and |A_j| M_j = t², on the monomials
            # (1, t, t²) and the basis (d_j, 1)
            self._polynomials, self._value_polynomials = _one_column_polynomials()
            self._basis = np.vstack([design.D1[:, 0, 0], np.ones(self.m)])
        elif self.k == 2:
            D = criterion._dpairs1  # (d00, d01, d11, 1) per level
            self._polynomials = _level_polynomials()
            self._value_polynomials = _level_value_polynomials()
            basis = np.empty((5, self.m))
            basis[:4] = D.T
            np.multiply(D[:, 0], D[:, 2], out=basis[4])
            basis[4] -= D[:, 1] * D[:, 1]
            self._basis = basis
        else:
            raise ValueError(f"a term of {self.k} columns: one or two only")

    def _entries(self, thetas, polynomials):
        """``(monomials(θ) @ polynomials) @ basis``: per θ row, each table
        row's value on every level, (s * rows, m). Multiplied in this order
        (θ's few rows first) no table of the size of the levels is kept."""
        coefficients = self._monomials(thetas) @ polynomials
        return coefficients.reshape(-1, self._basis.shape[0]) @ self._basis

    def __call__(self, thetas):
        """Values (s,) and gradients (s, n_theta) at the rows of ``thetas``.

        A θ where the factorisation fails has a NaN value and gradient (the
        other rows are unaffected). Call under ``np.errstate`` to silence
        numpy's warnings there.

        With ``w_j = 1 / |A_j|`` and ``G_j`` the derivative of the rest of
        the criterion in ``M_j`` (``vec(Q) @ P``, up to sign), the gradient
        ``Σ_j ∂|A_j| w_j − Σ_j ⟨∂M_j, G_j⟩``, by the quotient rule
        ``∂M_j = (∂(|A_j| M_j) − M_j ∂|A_j|) w_j``, is the tables'
        derivative rows contracted with one vector per θ: ``w_j (1 +
        ⟨M_j, G_j⟩)`` for ``∂|A_j|`` and ``−w_j G_j`` for ``∂(|A_j| M_j)``.

        Products of the stacked 3 x 3 matrices are einsum's: numpy's matmul
        calls BLAS once per matrix of a stack.
        """
        thetas = np.asarray(thetas, dtype=np.float64)
        s, r, n = len(thetas), self.r, self.n_theta
        # per θ, per θ-derivative (0: the value), per entry (|A_j|, then
        # |A_j| M_j's pairs), per level
        out = self._entries(thetas, self._polynomials).reshape(s, n + 1, -1, self.m)
        det = out[:, 0, 0]
        w = 1.0 / det
        M = out[:, 0, 1:] * w[:, None]  # (s, pairs, m)
        values, L = self._values_and_factor(det, M)
        # d(Σ w_i log L_ii²) = tr(dT Q) with Q = L⁻ᵀ diag(w) L⁻¹, dT = −P dM
        L_inv = _inverse(L)
        Q = np.einsum("sia,i,sib->sab", L_inv, self._weights, L_inv)
        coef = np.empty(out.shape[:1] + out.shape[2:])  # (s, 1 + pairs, m)
        np.multiply(
            (Q.reshape(s, r * r) @ self._minus_P).reshape(s, -1, self.m),
            w[:, None],
            out=coef[:, 1:],
        )
        coef[:, 0] = w - (M * coef[:, 1:]).sum(axis=1)
        grads = np.einsum(
            "snk,sk->sn", out[:, 1:].reshape(s, n, -1), coef.reshape(s, -1)
        )
        return values, grads

    def _monomials(self, thetas):
        """The monomials the tables are written on: (1, t, t²) for one
        column, :func:`_monomials` for two."""
        if self.k == 1:
            return thetas**_POWERS
        return _monomials(thetas)

    def moment_start(self):
        """θ from moment estimates, close enough to the optimum for Newton
        (no search over scalings of lme4's start); None where they are not
        usable.

        One column: :func:`skmixed.mixed.start.moment_start`. Two: each
        level's least squares ``b̂_j = D_j⁻¹ Z_jᵀ(y − Xβ̂)`` (β̂ by ordinary
        least squares) has ``E[b̂_j b̂_jᵀ] ≈ Σ + σ² D_j⁻¹``; the residual
        variance within levels gives σ², and ``ΛΛᵀ = Σ / σ²`` gives θ (its
        eigenvalues floored at 1e-6 where positive, and where not at 0.01,
        the scale of the smallest start tried otherwise). The sum of the
        ``b̂_j b̂_jᵀ`` is divided by the levels (ML) or the levels less one
        (REML: the fixed effects take one level's worth, as in a balanced
        ANOVA): where every level has the same Z (a balanced design,
        sleepstudy's) this is the optimum itself, unless on the boundary,
        and Newton stops after one pass; elsewhere it is a start a few
        passes away.
        """
        design = self._design
        if self.k == 1:
            return moment_start(design)
        p, n = design.p, design.n
        fit = ordinary_least_squares(design)
        if fit is None:
            return None
        beta, rss = fit
        m = design.D1.shape[0]
        # one matrix-vector product (a stack of (2, p) ones calls BLAS per level)
        CX = design.CX
        r = CX[:, :, p] - (CX[:, :, :p].reshape(2 * m, p) @ beta).reshape(m, 2)
        D = design.D1.reshape(m, 4)  # d00, d01, d10, d11
        det = D[:, 0] * D[:, 3] - D[:, 1] * D[:, 1]
        good = det > 1e-8 * D[:, 0] * D[:, 3]  # levels whose two columns differ
        m_good = int(np.count_nonzero(good))
        if m_good < 3 or n - 2 * m_good <= 0:
            return None
        if m_good < m:
            D, det, r = D[good], det[good], r[good]
        # D_j⁻¹ = adj(D_j) / |D_j|, as (i00, i01, i01, i11)
        inverse = D.take(_ADJUGATE, axis=1) * (_ADJUGATE_SIGNS / det[:, None])
        b_hat = (inverse.reshape(-1, 2, 2) * r[:, None, :]).sum(axis=2)
        sigma2 = float(rss - np.vdot(b_hat, r)) / (n - 2 * m_good)
        if not (math.isfinite(sigma2) and sigma2 > 0.0):
            return None
        # Σ / σ² = [[a, b], [b, c]], its eigenvalues floored, and the
        # Cholesky factor of the result (2 x 2 in Python floats)
        levels = m_good - 1 if self._reml else m_good
        # (the mean as a sum over the count: numpy's mean costs more)
        mean_inverse = inverse.sum(axis=0) / m_good
        moments = (b_hat.T @ b_hat).ravel() / (levels * sigma2) - mean_inverse
        a, b, _, c = moments.tolist()
        return _floored_cholesky(a, b, c)

    def degenerate(self, theta):
        """Whether θ is on a degenerate boundary: a two-column term's first
        diagonal element at 0, where the two below it rotate freely (only
        ``t1² + t2²`` matters) and Newton's steps, held by the bound, can
        stop short of a lower criterion nearby."""
        return self.k == 2 and theta[0] <= 0.0

    def values(self, thetas):
        """The values alone (s,): NaN where the factorisation fails."""
        thetas = np.asarray(thetas, dtype=np.float64)
        s = len(thetas)
        out = self._entries(thetas, self._value_polynomials).reshape(s, -1, self.m)
        det = out[:, 0]
        return self._values_and_factor(det, out[:, 1:] / det[:, None])[0]

    def _values_and_factor(self, det, M):
        """The criterion per θ row from ``|A_j|`` (s, m) and the entries of
        ``M_j`` (s, pairs, m), and the Cholesky factors L of
        ``T = B − P M`` (NaN rows where T is not positive definite)."""
        s, r = len(det), self.r
        T = (self._B - M.reshape(s, -1) @ self._P.T).reshape(s, r, r)
        L = _cholesky(T)
        values = np.log(L.reshape(s, r * r)[:, :: r + 1]) @ self._twice_weights
        values += np.log(det).sum(axis=1)
        values += self._const
        return values, L


def two_by_two_table(thetas):
    """Coefficients of ``A_j`` and ``|A_j| M_j`` for a two-column term.

    With ``λ = [[t0, 0], [t1, t2]]``, the distinct entries ``(a00, a01,
    a11)`` of ``A_j = λᵀ D_j λ + I`` and ``(n00, n01, n11)`` of
    ``λ adj(A_j) λᵀ`` are linear in ``(d00, d01, d11, 1)``:

    - ``a00``: ``(t0², 2 t0 t1, t1², 1)``; ``a01``: ``(0, t0 t2, t1 t2, 0)``;
      ``a11``: ``(0, 0, t2², 1)``;
    - ``n00 = t0² a11``, ``n01 = t0 t1 a11 − t0 t2 a01``,
      ``n11 = t2² a00 − 2 t1 t2 a01 + t1² a11`` (as coefficient vectors).

    Each coefficient is a polynomial of degree <= 4 in θ: the table is
    ``monomials(θ) @ C`` with the constant ``C`` of
    :func:`_table_polynomials`.

    Returns
    -------
    ndarray of shape (s * 6, 4)
        Row ``i * 6 + e``: for θ number i, the coefficients of entry e
        (a00, a01, a11, n00, n01, n11) on (d00, d01, d11, 1).
    """
    return (_monomials(thetas) @ _table_polynomials()).reshape(len(thetas) * 6, 4)


def _monomials(thetas):
    """The 35 distinct monomials of degree <= 4 in (t0, t1, t2), per row.

    Each level's products from one ``take`` of both factors' columns and
    one product: few numpy calls (their overhead is the cost here).
    """
    v = np.ones((len(thetas), 4), dtype=thetas.dtype)
    v[:, 1:] = thetas
    factors = v.take(_SQUARE_FACTORS, axis=1)
    v2 = factors[:, : len(_SQUARE_A)] * factors[:, len(_SQUARE_A) :]
    factors = v2.take(_FOURTH_FACTORS, axis=1)
    return factors[:, : len(_FOURTH_A)] * factors[:, len(_FOURTH_A) :]


@cache
def _table_polynomials():
    """``C`` with ``two_by_two_table(θ) = monomials(θ) @ C`` (35 x 24).

    The coefficients are small integers: found from the direct formulas
    (:func:`skmixed.mixed.first_term.coefficients`) at random points by
    least squares, rounded, and checked to reproduce them.
    """
    rng = np.random.default_rng(0)
    points = rng.uniform(-2.0, 2.0, size=(80, 3))
    basis = _monomials(points)
    direct = np.array([coefficients(list(t), 2).T.ravel() for t in points])
    C = np.round(np.linalg.lstsq(basis, direct, rcond=None)[0])
    if not np.allclose(basis @ C, direct, rtol=1e-12, atol=1e-12):
        raise AssertionError("the 2 x 2 coefficient table is not polynomial")
    return C


@cache
def _level_polynomial_tables():
    """Per level, ``|A_j|`` and ``|A_j| M_j`` of a two-column term and their
    θ-derivatives as polynomials: ``(35, 4, 4, 5)``, index ``[monomial,
    (value, d/dθ_0, d/dθ_1, d/dθ_2), (|A_j|, n00, n01, n11), basis]`` on
    the level's basis ``(d00, d01, d11, 1, d00 d11 − d01²)``.

    ``|A_j| = t0² t2² (d00 d11 − d01²) + t0² d00 + 2 t0 t1 d01
    + (t1² + t2²) d11 + 1`` (``a00 a11 − a01²`` multiplied out: its
    ``t1² t2² d11²`` terms cancel), and ``|A_j| M_j`` has the coefficients of
    :func:`two_by_two_table`. The derivative of ``θ^α`` in ``θ_l`` is
    ``α_l θ^(α − e_l)``, again one of the 35 monomials, so each derivative's
    table is the value table's rows moved to those monomials, times ``α_l``.
    """
    exponents = _monomial_exponents().tolist()
    row_of = {tuple(e): q for q, e in enumerate(exponents)}
    values = np.zeros((len(exponents), 4, 5))
    values[:, 1:, :4] = _table_polynomials().reshape(-1, 6, 4)[:, 3:]
    for exponent, column, coefficient in (
        ((2, 0, 2), 4, 1.0),  # t0² t2² (d00 d11 − d01²)
        ((2, 0, 0), 0, 1.0),  # t0² d00
        ((1, 1, 0), 1, 2.0),  # 2 t0 t1 d01
        ((0, 2, 0), 2, 1.0),  # t1² d11
        ((0, 0, 2), 2, 1.0),  # t2² d11
        ((0, 0, 0), 3, 1.0),  # 1
    ):
        values[row_of[exponent], 0, column] = coefficient
    tables = [values]
    for ell in range(3):
        derivative = np.zeros_like(values)
        for q, e in enumerate(exponents):
            if e[ell]:
                lower = list(e)
                lower[ell] -= 1
                derivative[row_of[tuple(lower)]] += e[ell] * values[q]
        tables.append(derivative)
    return np.stack(tables, axis=1)


@cache
def _level_polynomials():
    """:func:`_level_polynomial_tables` as one (35, 4 * 4 * 5) matrix: the
    monomials' row times it, reshaped to (16, 5), times a fit's basis."""
    return _level_polynomial_tables().reshape(35, -1)


@cache
def _level_value_polynomials():
    """The values' part of :func:`_level_polynomial_tables`, (35, 4 * 5)."""
    return np.ascontiguousarray(_level_polynomial_tables()[:, 0]).reshape(35, -1)


@cache
def _one_column_polynomials():
    """For one column, on the monomials (1, t, t²) and the level's basis
    (d_j, 1): ``|A_j| = t² d_j + 1``, ``|A_j| M_j = t²`` and their
    derivatives ``2 t d_j`` and ``2 t``. Returns the tables with the
    derivatives (3, 2 * 2 * 2) and of the values alone (3, 2 * 2)."""
    table = np.zeros((3, 2, 2, 2))  # [monomial, (value, d/dt), entry, basis]
    table[0, 0, 0, 1] = 1.0
    table[2, 0, 0, 0] = 1.0
    table[2, 0, 1, 1] = 1.0
    table[1, 1, 0, 0] = 2.0
    table[1, 1, 1, 1] = 2.0
    values = np.ascontiguousarray(table[:, 0]).reshape(3, -1)
    return table.reshape(3, -1), values


def _monomial_exponents():
    """The exponents of ``_monomials``' columns in (t0, t1, t2): (35, 3)."""
    unit = np.vstack([np.zeros(3, dtype=int), np.eye(3, dtype=int)])
    square = unit[_SQUARE_A] + unit[_SQUARE_B]
    return square[_FOURTH_A] + square[_FOURTH_B]


def _product_indices():
    """Index pairs building the monomials of degree <= 2 from (1, t0, t1, t2)
    and those of degree <= 4 from the former (each monomial once)."""
    square = [(a, b) for a in range(4) for b in range(a, 4)]
    fourth, seen = [], set()
    for i, (a, b) in enumerate(square):
        for j, (c, d) in enumerate(square):
            key = tuple(sorted((a, b, c, d)))
            if key not in seen:
                seen.add(key)
                fourth.append((i, j))
    return (*map(np.array, zip(*square, strict=True)),) + (
        *map(np.array, zip(*fourth, strict=True)),
    )


_SQUARE_A, _SQUARE_B, _FOURTH_A, _FOURTH_B = _product_indices()
# each level's first factors, then its second ones (one take for both)
_SQUARE_FACTORS = np.concatenate([_SQUARE_A, _SQUARE_B])
_FOURTH_FACTORS = np.concatenate([_FOURTH_A, _FOURTH_B])
