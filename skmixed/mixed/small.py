"""Small one-factor fits: the criterion at many θ at once, and Newton on it.

A model with a single random-effects term on few levels (sleepstudy's 18
subjects) costs microseconds of arithmetic per evaluation and much more in
per-call overhead: numpy's, and a derivative-free optimiser's ~50 calls. Here
the profiled criterion and its analytic gradient are computed for a *stack*
of θ in one pass of array operations, so that a gradient together with the
gradients at ``θ + h e_j`` (a forward-difference Hessian) costs little more
than one evaluation; a bounded Newton method on them needs ~5 such passes
(after one call for its start) where BOBYQA and the Newton polish of
:mod:`skmixed.mixed.optimize` need ~50 evaluations. The optimum is the
criterion's stationary point to rounding, as the polish makes it (a
function of the data, not of the rows' order).

Notation as in :mod:`skmixed.mixed.criterion`: per level j,
``A_j = λᵀ D_j λ + I`` and the weights ``M_j = λ A_j⁻¹ λᵀ``; the ``[X y]``
block is ``T = Bxx − Σ_j CX_jᵀ M_j CX_j = L Lᵀ``, and the criterion is
``Σ_j log|A_j| + Σ_i w_i log L_ii² + const``. Its gradient: the θ-derivatives
of ``log|A_j|`` and ``M_j`` by the complex step (:class:`BatchCriterion`),
and ``d(Σ_i w_i log L_ii²) = tr(dT Q)`` with ``Q = L⁻ᵀ diag(w) L⁻¹``.
"""

import math
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from skmixed.mixed.first_term import coefficients

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
# Each pass also evaluates these fractions of its step: a line search that
# costs no extra call when the full step fails.
_BACKTRACK = (0.25, 0.0625)
# Scalings of the start's diagonal elements tried first (1: lme4's start).
_START_SCALES = (0.1, 0.2, 0.35, 0.6, 1.0)


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


def newton_minimize(batch, x0, lower, max_points=10_000):
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
    starts = _scaled_starts(tuple(x.tolist()), tuple(bounded.tolist()))
    values = batch.values(starts)
    if np.isfinite(values).any():
        x = starts[int(np.nanargmin(np.where(np.isnan(values), np.inf, values)))]
    x, lower, bounded = x.tolist(), lower.tolist(), bounded.tolist()
    f, g, H = _derivatives(batch, x, [])[0]
    used, passes, limit, fresh = len(starts) + n + 1, 1, 1.0, True
    per_pass = n + 1 + len(_BACKTRACK)
    fractions = (1.0, *_BACKTRACK)
    status = "failed"
    while math.isfinite(f) and passes < _MAX_PASSES:
        at_bound = [b and xi <= lo for b, xi, lo in zip(bounded, x, lower, strict=True)]
        # held on the bound where the gradient points out (not where it is
        # flat: see _newton_step)
        flat = 1e-10 * max(1.0, max(map(abs, g)))
        held = [b and gi > flat for b, gi in zip(at_bound, g, strict=True)]
        scale = max(1.0, max(map(abs, x)))
        step, exact = _newton_step(H, g, held, at_bound, min(limit, 1.0) * scale)
        longest = max(map(abs, step))
        cut = longest > limit * scale
        if cut:
            step = [d * (limit * scale / longest) for d in step]
        trials = [
            [max(xi + a * d, lo) for xi, d, lo in zip(x, step, lower, strict=True)]
            for a in fractions
        ]
        moves = [[t - xi for t, xi in zip(trial, x, strict=True)] for trial in trials]
        size = max(map(abs, moves[0]))
        if size <= _ROUNDING_STEP * scale or (
            exact and fresh and not cut and size <= _FINAL_STEP * scale
        ):
            # Newton's last step (on a positive definite Hessian) is so
            # short that the quadratic model is exact to rounding: taken
            # without evaluating it
            return NewtonResult(
                np.array(trials[0]), f, np.array(g), used, passes, "converged"
            )
        if used + per_pass > max_points:
            status = "max_points"
            break
        results = _derivatives(batch, trials[0], trials[1:])
        used += per_pass
        passes += 1
        # Armijo's sufficient decrease, with a rounding allowance
        allowed = [
            f
            + 1e-4 * sum(gi * d for gi, d in zip(g, move, strict=True))
            + 1e-12 * abs(f)
            for move in moves
        ]
        accepted = [i for i in range(len(trials)) if results[i][0] <= allowed[i]]
        if not accepted:  # none lower (or none finite): retry shorter still
            limit = _BACKTRACK[-1] ** 2 * size / scale
            continue
        i = accepted[0]
        trial, move, result = trials[i], moves[i], results[i]
        if i == 0:
            x, (f, g, H), fresh = trial, result, True
            if cut:
                limit *= 2.0
        else:  # a shorter step: the old Hessian serves for the next one
            limit = max(map(abs, move)) / scale
            x, (f, g), fresh = trial, result, False
    return NewtonResult(np.array(x), f, np.array(g), used, passes, status)


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


def _derivatives(batch, x, others):
    """At x: (value, gradient, forward-difference Hessian); at each of
    ``others``: (value, gradient). One call of ``batch`` (lists of floats)."""
    n = len(x)
    h = [1e-6 * max(1.0, abs(xi)) for xi in x]
    points = [x]
    for j in range(n):
        shifted = list(x)
        shifted[j] += h[j]
        points.append(shifted)
    values, grads = batch(np.array(points + list(others)))
    values, grads = values.tolist(), grads.tolist()
    g = grads[0]
    H = [[(grads[j + 1][i] - g[i]) / h[j] for i in range(n)] for j in range(n)]
    H = [[0.5 * (H[i][j] + H[j][i]) for j in range(n)] for i in range(n)]
    out = [(values[0], g, H)]
    return out + [(values[i], grads[i]) for i in range(n + 1, len(values))]


def _newton_step(H, g, held, at_bound, length):
    """Newton's step on the elements not held, and whether H was positive
    definite there.

    Otherwise H's eigenvalues are made positive (a descent direction), and
    each direction of negative curvature adds a step of ``length`` along it,
    downhill or, where it moves an element off its bound, into the feasible
    side: a point where the gradient vanishes by symmetry (a term's last
    diagonal element at 0) may be a saddle, not an optimum.
    """
    n = len(g)
    free = [i for i in range(n) if not held[i]]
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
    bound_free = np.array([at_bound[i] for i in free])
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

    The per-level weights ``M_j`` and ``log|A_j|`` are differentiated by the
    complex step: evaluated at ``θ + i h e_l`` (``h = 1e-20``), their
    imaginary parts are ``h`` times their derivatives, exact to rounding
    (no difference is taken, so nothing cancels), and their real parts are
    the values. The rest of the gradient is the closed form
    ``d(Σ w_i log L_ii²) = tr(dT Q)``, ``Q = L⁻ᵀ diag(w) L⁻¹``.

    Parameters
    ----------
    criterion : ProfiledCriterion
    """

    def __init__(self, criterion):
        design = criterion.design
        self.k = design.terms[0].k
        self.m = m = design.terms[0].m
        self.n_theta = n = criterion.n_theta
        self.r = r = design.B.shape[0]
        self._B = design.B.ravel()
        pairs = len(criterion._pairs)
        # the per-level outer products, pair-major (column i * m + j for
        # level j, pair i): T = B − weights @ Pᵀ, and vec(Q) @ P is the
        # criterion's derivative in the weights (up to sign)
        P = criterion._P.reshape(r * r, m, pairs).transpose(0, 2, 1)
        self._P = np.ascontiguousarray(P.reshape(r * r, pairs * m))
        self._PT = np.ascontiguousarray(self._P.T)
        self._weights = criterion._column_weights
        self._const = criterion._dof * criterion._log_const - criterion._log_weights
        # (d00, d01, d11, 1) per level, as columns
        self._dpairs1_T = np.ascontiguousarray(criterion._dpairs1.T)
        self._d = design.D1[:, 0, 0]
        self._steps = (1j * _COMPLEX_STEP) * np.eye(n)

    def __call__(self, thetas):
        """Values (s,) and gradients (s, n_theta) at the rows of ``thetas``.

        A θ where the factorisation fails has a value of ``inf`` or NaN.
        """
        thetas = np.asarray(thetas, dtype=np.float64)
        s, n, r = len(thetas), self.n_theta, self.r
        # row (i, l): θ_i + i h e_l
        det, M = self._levels((thetas[:, None, :] + self._steps).reshape(s * n, n))
        det = det.reshape(s, n, -1)
        M = M.reshape(s, n, -1)  # pair-major, as P's columns
        d_real = det[:, 0].real
        logdet = np.log(d_real).sum(axis=1)
        d_logdet = (det.imag / d_real[:, None]).sum(axis=2)
        d_logdet *= 1.0 / _COMPLEX_STEP
        T = (self._B - M[:, 0].real @ self._PT).reshape(s, r, r)
        try:
            L = np.linalg.cholesky(T)
        except np.linalg.LinAlgError:
            return self._one_by_one(thetas)
        logs = np.log(np.diagonal(L, axis1=1, axis2=2))
        values = logdet + 2.0 * (logs @ self._weights) + self._const
        # d(Σ w_i log L_ii²) = tr(dT Q) and dT = −P dM
        L_inv = np.linalg.inv(L)
        Q = (L_inv.transpose(0, 2, 1) * self._weights) @ L_inv
        Gp = Q.reshape(s, 1, r * r) @ self._P
        grads = d_logdet - (M.imag @ Gp.transpose(0, 2, 1))[..., 0] / _COMPLEX_STEP
        return values, grads

    def degenerate(self, theta):
        """Whether θ is on a degenerate boundary: a two-column term's first
        diagonal element at 0, where the two below it rotate freely (only
        ``t1² + t2²`` matters) and Newton's steps, held by the bound, can
        stop short of a lower criterion nearby."""
        return self.k == 2 and theta[0] <= 0.0

    def values(self, thetas):
        """The values alone (s,): ``inf`` where the factorisation fails."""
        thetas = np.asarray(thetas, dtype=np.float64)
        s, r = len(thetas), self.r
        det, M = self._levels(thetas)
        T = (self._B - M @ self._PT).reshape(s, r, r)
        try:
            L = np.linalg.cholesky(T)
        except np.linalg.LinAlgError:
            return self._one_by_one(thetas)[0]
        logs = np.log(np.diagonal(L, axis1=1, axis2=2))
        return np.log(det).sum(axis=1) + 2.0 * (logs @ self._weights) + self._const

    def _levels(self, z):
        """Per row of (possibly complex) θ: ``|A_j|`` (rows, m) and the
        distinct entries of ``M_j``, pair-major (rows, pairs * m)."""
        if self.k == 1:
            t2 = z * z
            det = t2 * self._d + 1.0
            return det, t2 / det
        if self.k == 2:
            # the entries of A_j and |A_j| M_j: (rows, 6, m)
            out = (two_by_two_table(z) @ self._dpairs1_T).reshape(len(z), 6, -1)
            det = out[:, 0] * out[:, 2]
            det -= out[:, 1] * out[:, 1]
            M = out[:, 3:] / det[:, None]
            return det, M.reshape(len(z), -1)
        raise ValueError(f"a term of {self.k} columns: one or two only")

    def _one_by_one(self, thetas):
        """Where some θ leave [X y] rank deficient: each θ on its own."""
        values = np.full(len(thetas), np.inf)
        grads = np.full(thetas.shape, np.nan)
        for i, theta in enumerate(thetas):
            try:
                values[i], grads[i] = (part[0] for part in self(theta[None]))
            except np.linalg.LinAlgError:
                pass
        return values, grads


# The complex step: small enough that the real parts are the values to
# rounding (their error is h² times the second derivatives).
_COMPLEX_STEP = 1e-20


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
    :func:`_table_polynomials` (θ may be complex).

    Returns
    -------
    ndarray of shape (s * 6, 4)
        Row ``i * 6 + e``: for θ number i, the coefficients of entry e
        (a00, a01, a11, n00, n01, n11) on (d00, d01, d11, 1).
    """
    return (_monomials(thetas) @ _table_polynomials()).reshape(len(thetas) * 6, 4)


def _monomials(thetas):
    """The 35 distinct monomials of degree <= 4 in (t0, t1, t2), per row."""
    v = np.empty((len(thetas), 4), dtype=thetas.dtype)
    v[:, 0] = 1.0
    v[:, 1:] = thetas
    v2 = v[:, _SQUARE_A] * v[:, _SQUARE_B]  # the 10 of degree <= 2
    return v2[:, _FOURTH_A] * v2[:, _FOURTH_B]


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
