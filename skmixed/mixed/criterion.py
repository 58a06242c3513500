"""lme4's profiled criterion through a blocked Cholesky factor.

With ``b = Λθ u`` the penalised least-squares problem
``min ‖y − Xβ − ZΛθu‖² + ‖u‖²`` is solved by the Cholesky factor of the
augmented cross-product matrix (MixedModels.jl's formulation)::

    Ω(θ) = [ΛᵀZᵀZΛ + I   ΛᵀZᵀX   ΛᵀZᵀy]
           [XᵀZΛ         XᵀX     Xᵀy  ]  =  L Lᵀ
           [yᵀZΛ         yᵀX     yᵀy  ]

The squared last diagonal element of ``L`` is the penalised residual sum of
squares ``r²(θ)``; the diagonal elements of the Z part give ``log|Lθ|²`` and
those of the X part ``log|R_X|²``. So the criterion needs no solve for β or u.

The factor is blocked: the first (largest) grouping factor's block is
block-diagonal, one small ``k1 x k1`` Cholesky per level, done for all
levels at once with array arithmetic; the remaining rows (later factors, X
and y) are updated by the Schur complement and factored with the structure
their levels' meeting pattern allows (diagonal, sparse or dense: see
:mod:`skmixed.mixed.schur`).

The Schur complement ``B - Σ_j C_jᵀ M_j C_j`` (``C_j`` the first factor's
level-j cross-products with the rest, ``M_j = λ A_j⁻¹ λᵀ``) is linear in the
per-level weights ``M_j``: with the products ``C_jᵀ C_j`` stored once it is
one matrix-vector product per evaluation -- a dense matrix for small
problems, a sparse one where each level meets few levels of the later
factors (nested and crossed designs) -- and otherwise ``VᵀV`` by BLAS.
"""

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

import numpy as np
from scipy.linalg.lapack import dpotrf, dtrtrs

from skmixed.mixed.schur import RestBlock

_LOG_2PI = np.log(2.0 * np.pi)
_LOG_2PI_1 = 1.0 + _LOG_2PI
_MAX_OUTER_PRODUCTS = 4_000_000
# With one grouping factor the alternative is VᵀV over every level at each
# evaluation, 3-4x dearer than the stored products' matrix-vector product
# (300,000 levels of (1 + x | g): 37 vs 10 ms): store them up to 256 MB.
_MAX_ONE_TERM = 32_000_000
# Later blocks at least this large make the gradient pay from the start.
_GRADIENT_REST_SIZE = 500


def solve_triangular(a, b, *, lower, trans=False):
    """LAPACK's triangular solve without scipy's checks (for tiny systems)."""
    x, info = dtrtrs(a, b, lower=int(lower), trans=int(trans))
    if info != 0:
        raise np.linalg.LinAlgError(f"singular triangular factor (info={info})")
    return x


def _outer_products(C, pairs):
    """Per level and pair, ``C_aᵀ C_b + C_bᵀ C_a`` (a < b) or ``C_aᵀ C_a``.

    Returns (r², m * pairs): column ``j * pairs + i`` for level j, pair i.
    """
    m, _, r = C.shape
    first = [a for a, _ in pairs]
    second = [b for _, b in pairs]
    prod = C[:, first, :, None] * C[:, second, None, :]
    mixed = [i for i, (a, b) in enumerate(pairs) if a != b]
    if mixed:
        prod[:, mixed] += prod[:, mixed].transpose(0, 1, 3, 2)
    return np.ascontiguousarray(prod.reshape(m * len(pairs), r * r).T)


def _two_by_two_coefficients(t0, t1, t2):
    """K (4 x 6) with ``[d00 d01 d11 1] K = [A_j | numerators of M_j]``.

    For a two-column first term, ``λ = [[t0, 0], [t1, t2]]``: the distinct
    entries ``(a00, a01, a11)`` of ``A_j = λᵀ D_j λ + I`` and those of
    ``λ adj(A_j) λᵀ`` (``M_j`` times ``|A_j|``) as linear maps of
    ``(d00, d01, d11, 1)``.
    """
    rows = []
    for a00, a01, a11 in (
        (t0 * t0, 0.0, 0.0),
        (2.0 * t0 * t1, t0 * t2, 0.0),
        (t1 * t1, t1 * t2, t2 * t2),
        (1.0, 0.0, 1.0),
    ):
        rows.append(
            (
                a00,
                a01,
                a11,
                t0 * t0 * a11,
                t0 * t1 * a11 - t0 * t2 * a01,
                t2 * t2 * a00 - 2.0 * t1 * t2 * a01 + t1 * t1 * a11,
            )
        )
    return np.array(rows)


def _bmm(a, b):
    """``a @ b`` for stacks of small matrices (one of them may be shared).

    numpy's batched matmul costs ~50 ns per block: 1 x 1 blocks go by
    broadcasting, and a matrix shared by all levels by one BLAS product
    over the stacked levels.
    """
    if a.shape[-2:] == (1, 1):
        return a * b
    if max(len(a), len(b)) < 512:  # few levels: the plain product is cheaper
        return a @ b
    if b.ndim == 2:  # (m, r, k) @ (k, c)
        m, r, k = a.shape
        return (a.reshape(m * r, k) @ b).reshape(m, r, b.shape[1])
    if a.ndim == 2:  # (r, k) @ (m, k, c) = ((m, c, k) @ (k, r))ᵀ
        m, k, c = b.shape
        flat = b.transpose(0, 2, 1).reshape(m * c, k) @ a.T
        return flat.reshape(m, c, a.shape[0]).transpose(0, 2, 1)
    return a @ b


def _small_inverse(A):
    """Inverses of a stack of small symmetric positive definite matrices,
    and the sum of their log-determinants.

    Closed forms for 1 x 1 and 2 x 2 (numpy's batched ``inv`` costs ~0.3 µs
    per 2 x 2 block, 28 ms for 100,000 levels).
    """
    k = A.shape[1]
    # A = λᵀDλ + I has eigenvalues >= 1: no division by zero, no log of 0
    if k == 1:
        return 1.0 / A, float(np.log(A).sum())
    if k == 2:
        a, b, d = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        det = a * d - b * b
        out = np.empty_like(A)
        out[:, 0, 0], out[:, 1, 1] = d / det, a / det
        out[:, 0, 1] = out[:, 1, 0] = -b / det
        return out, float(np.log(det).sum())
    sign, logdet = np.linalg.slogdet(A)
    if np.any(sign <= 0):
        return A, np.nan
    return np.linalg.inv(A), float(logdet.sum())


@lru_cache(maxsize=32)
def _theta_layout(ks):
    """Per term (of k columns each), its slice of θ; and which elements of θ
    are diagonal (bounded below by 0). Read-only, built once per layout."""
    bounds = list(accumulate([k * (k + 1) // 2 for k in ks], initial=0))
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    diagonal = np.concatenate(
        [rows == cols for rows, cols in map(lower_triangle_indices, ks)]
    )
    diagonal.setflags(write=False)
    return slices, diagonal


@lru_cache(maxsize=32)
def lower_triangle_indices(k):
    """Rows and columns of θ's elements in a k x k factor, column-major.

    Read-only arrays, built once per k (numpy's triu_indices costs more
    than a whole criterion evaluation on small data).
    """
    cols, rows = np.triu_indices(k)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


@dataclass
class Decomposition:
    """The blocked factor at one θ and what follows from it.

    Attributes
    ----------
    theta : ndarray
    lambdas : list of ndarray
        Per term, the ``k x k`` lower-triangular relative covariance factor.
    A1 : ndarray of shape (m1, k1, k1)
        The first term's diagonal blocks ``λᵀ D_j λ + I``.
    logdet_L : float
        ``log|Lθ|²``.
    logdet_RX : float
        ``log|R_X|²``.
    pwrss : float
        Penalised residual sum of squares ``r²(θ)``.
    beta : ndarray of shape (p,)
        Conditional estimate of the fixed effects.
    RX : ndarray of shape (p, p)
        Upper triangular, ``vcov(β) = σ² (RXᵀ RX)⁻¹``.
    u : list of ndarray
        Per term, spherical random effects, shape (m, k).
    b : list of ndarray
        Per term, conditional modes ``Λ u``, shape (m, k).
    """

    theta: np.ndarray
    lambdas: list
    A1: np.ndarray
    logdet_L: float
    logdet_RX: float
    pwrss: float
    beta: np.ndarray
    RX: np.ndarray
    u: list
    b: list
    rest: object = None
    inverse: object = None

    def conditional_covariances(self, sigma):
        """lme4's ``condVar``: per term, (m, k, k) covariances of b given y.

        They condition on β (as lme4's do): ``σ² Λ [A⁻¹]_jj Λᵀ`` with
        ``A = ΛᵀZᵀZΛ + I``, for every level ``j``. The first term's blocks
        are ``A1⁻¹ + A1⁻¹ λᵀ G λ A1⁻¹`` with ``G = C_z (Λ̃ S_zz⁻¹ Λ̃ᵀ) C_zᵀ``
        per level; the later terms' are the diagonal blocks of ``S_zz⁻¹``.
        Only the entries of ``S_zz⁻¹`` on its sparsity pattern are formed.
        """
        A1inv = np.linalg.inv(self.A1)
        lam1 = self.lambdas[0]
        out_rest = []
        ainv1 = A1inv
        if self.rest is not None and self.rest.q:
            X = self.rest.selected_inverse(self.inverse, self.lambdas)
            G = self.rest.first_term_inner(X)
            ainv1 = A1inv + A1inv @ (lam1.T @ G @ lam1) @ A1inv
            # X is Λ̃ S_zz⁻¹ Λ̃ᵀ already: its blocks are λ [A⁻¹]_ll λᵀ
            out_rest = [sigma**2 * b for b in self.rest.diagonal_blocks(X)]
        return [sigma**2 * (lam1 @ ainv1 @ lam1.T)] + out_rest


class ProfiledCriterion:
    """The profiled REML criterion or ML deviance as a function of θ.

    Parameters
    ----------
    design : Design
        From :func:`skmixed.mixed.design.build_design`.
    reml : bool, default=True
        REML criterion (True) or ML deviance (False).
    strategy : {None, "outer", "sparse", "dense"}, default=None
        How the Schur complement of the first block is formed (chosen from
        the problem's shape when None; all give the same numbers).
    rest_structure : {None, "diagonal", "sparse", "dense"}, default=None
        With ``strategy="sparse"``, how the later factors' block is factored
        (chosen from which levels meet which when None).

    Attributes
    ----------
    n_theta : int
    theta_lower : ndarray
        0 for diagonal elements of the relative covariance factors, -inf else.
    theta_start : ndarray
        lme4's start: 1 on the diagonal, 0 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from skmixed.mixed.design import TermDesign, build_design
    >>> from skmixed.mixed.criterion import ProfiledCriterion
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(10), 5)
    >>> y = rng.normal(size=10)[codes] + rng.normal(size=50)
    >>> term = TermDesign(codes, np.arange(10).astype(str), None, ["(Intercept)"])
    >>> crit = ProfiledCriterion(build_design(np.ones((50, 1)), y, [term]))
    >>> crit.n_theta, crit.theta_start.tolist()
    (1, [1.0])
    >>> bool(np.isfinite(crit(crit.theta_start)))
    True
    """

    def __init__(self, design, reml=True, strategy=None, rest_structure=None):
        self.design = design
        self.reml = bool(reml)
        self._ks = [t.k for t in design.terms]
        self._tri = [lower_triangle_indices(k) for k in self._ks]
        self._slices, diagonal = _theta_layout(tuple(self._ks))
        self.n_theta = len(diagonal)
        self.theta_lower = np.where(diagonal, 0.0, -np.inf)
        self.theta_start = np.where(diagonal, 1.0, 0.0)
        self._diagonal = diagonal
        n, p = design.n, design.p
        self._dof = n - p if self.reml else n
        self._log_const = _LOG_2PI_1 - math.log(self._dof) if self._dof > 0 else 0.0
        # Prior weights: -2 log L gains -Σ log w_i (lme4 includes it).
        self._log_weights = design.sum_log_weights
        if self._dof <= 0:
            raise ValueError(
                f"{n} observations leave no residual degrees of freedom with "
                f"{p} fixed effects."
            )
        self._z_rows = np.arange(design.q_rest)
        # the gradient's weights of the columns of L⁻ᵀ: log|R_X|² (REML
        # only) and dof log r²
        self._column_weights = np.zeros(p + 1)
        self._column_weights[-1] = self._dof
        if self.reml:
            self._column_weights[:-1] = 1.0
        self._eye_p1 = np.eye(p + 1)
        k1, m1, r = self._ks[0], design.terms[0].m, design.r
        self._pairs = [(a, b) for a in range(k1) for b in range(a, k1)]
        # the first block's distinct entries per level, (m1, pairs)
        dpairs = np.empty((m1, len(self._pairs) + 1))
        for i, (a, b) in enumerate(self._pairs):
            dpairs[:, i] = design.D1[:, a, b]
        dpairs[:, -1] = 1.0  # a column of ones (see _two_by_two_coefficients)
        self._dpairs, self._dpairs1 = dpairs[:, :-1], dpairs
        if strategy is None:
            strategy = self._choose_strategy(m1, r)
        elif strategy not in ("outer", "sparse", "dense"):
            raise ValueError(f"unknown strategy {strategy!r}")
        if strategy == "sparse" and not design.q_rest:
            strategy = "dense"
        self.strategy = strategy
        self._rest = None
        if self.strategy == "outer":
            self._P = _outer_products(design.C, self._pairs)
            self._B_flat = design.B.ravel()
        elif self.strategy == "sparse":
            self._rest = RestBlock(design, self._pairs, rest_structure)

    @property
    def rest_structure(self):
        """How the later factors' block is factored (``"diagonal"``,
        ``"sparse"`` or ``"dense"``; None without later factors or where the
        whole rest block is small and dense)."""
        return None if self._rest is None else self._rest.structure

    @property
    def gradient_pays(self):
        """Whether a gradient-based optimiser should start (not only polish).

        Where an evaluation is dominated by factoring a large later block
        (dense or sparse), the analytic gradient costs ~3 evaluations and
        saves more; elsewhere (one factor, nested factors) it costs 5-10
        and derivative-free BOBYQA is faster.
        """
        return (
            self.strategy == "sparse"
            and self.rest_structure in ("dense", "sparse")
            and self.design.q_rest >= _GRADIENT_REST_SIZE
        )

    def _rest_block(self):
        """The structured rest block (built on first use for small models)."""
        if self._rest is None:
            self._rest = RestBlock(self.design, self._pairs)
        return self._rest

    def _choose_strategy(self, m1, r):
        """How to form the Schur complement of the first block.

        ``"outer"``: one matrix-vector product with the per-level outer
        products of C, stored densely while that is small (tiny and tall
        problems, and one grouping factor up to 256 MB of products).
        ``"sparse"``: the later factors' block kept in the structure of its
        levels' meeting pattern (:class:`RestBlock`).
        ``"dense"``: ``VᵀV`` by BLAS syrk, when there are no later factors.
        """
        limit = _MAX_OUTER_PRODUCTS if self.design.q_rest else _MAX_ONE_TERM
        if m1 * len(self._pairs) * r * r <= limit:
            return "outer"
        return "sparse" if self.design.q_rest else "dense"

    # -- θ -> Λ --------------------------------------------------------------
    def lambdas(self, theta):
        """Per term, the k x k lower-triangular factor λ with θ's elements."""
        out = []
        for k, (rows, cols), sl in zip(self._ks, self._tri, self._slices, strict=True):
            lam = np.zeros((k, k))
            lam[rows, cols] = theta[sl]
            out.append(lam)
        return out

    # -- the factorisation -----------------------------------------------------
    def _first_block(self, lam):
        """Cholesky blocks of the first term and V = L1⁻¹ λᵀ C per level."""
        D, C = self.design.D1, self.design.C
        k = D.shape[1]
        if k == 1:
            t = lam[0, 0]
            l00 = np.sqrt(t * t * D[:, 0, 0] + 1.0)
            V = C * (t / l00)[:, None, None]
            return l00[:, None, None], V, 2.0 * np.log(l00).sum()
        if k == 2:
            t0, t1, t2 = lam[0, 0], lam[1, 0], lam[1, 1]
            d00, d01, d11 = D[:, 0, 0], D[:, 0, 1], D[:, 1, 1]
            a00 = (t0 * t0) * d00 + (2.0 * t0 * t1) * d01 + (t1 * t1) * d11 + 1.0
            a10 = t2 * (t0 * d01 + t1 * d11)
            a11 = (t2 * t2) * d11 + 1.0
            l00 = np.sqrt(a00)
            l10 = a10 / l00
            l11 = np.sqrt(a11 - l10 * l10)
            c0, c1 = C[:, 0, :], C[:, 1, :]
            V = np.empty_like(C)
            v0 = V[:, 0, :]
            np.multiply(c0, t0, out=v0)
            v0 += t1 * c1
            v0 /= l00[:, None]
            np.multiply(c1, t2, out=V[:, 1, :])
            V[:, 1, :] -= l10[:, None] * v0
            V[:, 1, :] /= l11[:, None]
            L1 = np.zeros((len(l00), 2, 2))
            L1[:, 0, 0], L1[:, 1, 0], L1[:, 1, 1] = l00, l10, l11
            return L1, V, 2.0 * np.log(l00 * l11).sum()
        A = lam.T @ D @ lam
        A[:, np.arange(k), np.arange(k)] += 1.0
        L1 = np.linalg.cholesky(A)
        V = np.linalg.solve(L1, lam.T @ C)
        logdet = 2.0 * np.log(np.diagonal(L1, axis1=1, axis2=2)).sum()
        return L1, V, logdet

    def _first_block_weights(self, theta1):
        """Per level ``M_j = λ A_j⁻¹ λᵀ`` as (m1, pairs a <= b), and Σ log|A_j|.

        With them the Schur complement of the first block is
        ``B - Σ_j C_jᵀ M_j C_j``: a matrix-vector product with the per-level
        outer products of C precomputed at construction.
        """
        k = self._ks[0]
        if k == 1:
            t2 = float(theta1[0]) ** 2
            a = self._dpairs * t2
            a += 1.0
            return t2 / a, np.log(a).sum()
        if k == 2:
            # A_j = λᵀ D_j λ + I and the numerators of M_j = λ adj(A_j) λᵀ / |A_j|
            # are linear in the entries of D_j: one small product for all levels.
            AW = self._dpairs1 @ _two_by_two_coefficients(*theta1.tolist())
            det = AW[:, 0] * AW[:, 2]
            det -= AW[:, 1] * AW[:, 1]
            return AW[:, 3:] / det[:, None], np.log(det).sum()
        lam = np.zeros((k, k))
        rows, cols = self._tri[0]
        lam[rows, cols] = theta1
        A = lam.T @ self.design.D1 @ lam
        A[:, np.arange(k), np.arange(k)] += 1.0
        M = lam @ np.linalg.solve(A, np.broadcast_to(lam.T, A.shape))
        weights = np.stack([M[:, a, b] for a, b in self._pairs], axis=1)
        return weights, np.linalg.slogdet(A)[1].sum()

    def _scale_rest(self, lambdas, S):
        """``Λ̃ᵀ S Λ̃ + I`` on the later terms' rows and columns of S (in place)."""
        design = self.design
        for lam, term, offset in zip(
            lambdas[1:], design.terms[1:], design.offsets, strict=True
        ):
            m, k = term.m, term.k
            cols = slice(offset, offset + m * k)
            if k == 1:
                t = lam[0, 0]
                S[cols, :] *= t
                S[:, cols] *= t
                continue
            # (Λᵀ M) on the level-major columns: new (l, b) = Σ_a λ[a, b] M(l, a)
            part = S[:, cols].reshape(S.shape[0], m, k)
            S[:, cols] = (part @ lam).reshape(S.shape[0], m * k)
            part = S[cols, :].reshape(m, k, S.shape[1])
            S[cols, :] = (lam.T @ part).reshape(m * k, S.shape[1])
        z = self._z_rows
        S[z, z] += 1.0
        return S

    def _schur(self, theta):
        """Schur complement of the first block (rest block scaled), log|A1|."""
        r = self.design.r
        if self.strategy == "outer":
            weights, logdet1 = self._first_block_weights(theta[self._slices[0]])
            S = (self._B_flat - self._P @ weights.ravel()).reshape(r, r)
        else:
            _, V, logdet1 = self._first_block(self.lambdas(theta)[0])
            flat = V.reshape(-1, r)
            # numpy computes VᵀV by a symmetric rank-k update (BLAS syrk)
            S = self.design.B - flat.T @ flat
        if self.design.q_rest:
            S = self._scale_rest(self.lambdas(theta), S)
        return S, logdet1

    def _value(self, logdet_z, logs_x):
        """The criterion from log|Lθ|² and the log-diagonal of [X y]'s factor."""
        p, dof = self.design.p, self._dof
        # in Python floats: numpy's scalar arithmetic costs more than the rest
        # of a small evaluation. log r² = 2 log L[-1, -1]
        logs_x = logs_x.tolist()
        value = float(logdet_z) + dof * (self._log_const + 2.0 * logs_x[-1])
        value -= self._log_weights
        if self.reml and p:
            value += 2.0 * sum(logs_x[:p])
        return value if math.isfinite(value) else math.inf

    def _rest_factor(self, theta):
        """(first-block weights, log|A1|, λs, the rest block's factor or None)."""
        weights, logdet1 = self._first_block_weights(theta[self._slices[0]])
        lambdas = self.lambdas(theta)
        return weights, logdet1, lambdas, self._rest_block().factor(weights, lambdas)

    def profiled(self, logdet_L, logdet_RX, pwrss):
        """The profiled criterion from its three ingredients."""
        dof = self._dof
        value = logdet_L + dof * (1.0 + _LOG_2PI + np.log(pwrss / dof))
        value -= self._log_weights
        return value + logdet_RX if self.reml else value

    def __call__(self, theta):
        """REML criterion (``reml=True``) or ML deviance at θ, profiled over β, σ.

        Parameters
        ----------
        theta : array-like of shape (n_theta,)

        Returns
        -------
        float
            ``inf`` where the factorisation fails.
        """
        theta = np.asarray(theta, dtype=np.float64)
        q = self.design.q_rest
        if self.strategy == "sparse":
            _, logdet1, _, factored = self._rest_factor(theta)
            if factored is None:
                return np.inf
            logdet_z, T = factored[0], factored[1]
            L, info = dpotrf(T, lower=1, overwrite_a=1)
            if info != 0:
                return np.inf
            return self._value(logdet1 + logdet_z, np.log(np.diagonal(L)))
        S, logdet1 = self._schur(theta)
        # S is symmetric: its transpose is the Fortran-ordered array LAPACK wants
        Lr, info = dpotrf(S.T, lower=1, overwrite_a=1)
        if info != 0:
            return np.inf
        logs = np.log(Lr.diagonal())
        logdet = logdet1 + 2.0 * logs[:q].sum() if q else logdet1
        return self._value(logdet, logs[q:])

    def gradient(self, theta):
        """The criterion's gradient in θ (see :meth:`value_and_gradient`)."""
        return self.value_and_gradient(theta)[1]

    def value_and_gradient(self, theta):
        """The criterion and its analytic gradient at θ, from one factor.

        With ``A = ΛᵀZᵀZΛ + I`` and ``dΛ_i = ∂Λ/∂θ_i`` (the unit matrix
        ``E_ab`` in every level block of θ_i's term):

        - ``∂ log|A| = 2 tr(A⁻¹ΛᵀZᵀZ dΛ_i)``: only the diagonal level
          blocks of ``H = A⁻¹ΛᵀZᵀZ`` are needed; ``A⁻¹`` enters only where
          ``ZᵀZ`` is non-zero (the first term's blocks and the later
          factor's selected inverse), and never through ``Λ⁻¹``;
        - with ``W = A⁻¹ΛᵀZᵀ[X y]``, ``E = Zᵀ[X y] − ZᵀZΛW`` and ``T`` the
          ``[X y]`` block of the factor (``T = L Lᵀ``),
          ``∂ log|T| = −2 tr(W T⁻¹ Eᵀ dΛ_i)``, column by column of
          ``L⁻ᵀ``: the first p columns give ``∂ log|R_X|²``, the last
          ``∂ log r²`` (which is the envelope theorem's
          ``−2 sᵀ dΛ_i û / r²`` with ``s = Zᵀ(y − Xβ̂ − Zb̂)``).

        All from the cross-products: no pass over the rows.

        Parameters
        ----------
        theta : array-like of shape (n_theta,)

        Returns
        -------
        value : float
            ``inf`` where the factorisation fails (the gradient is then NaN).
        gradient : ndarray of shape (n_theta,)
        """
        theta = np.asarray(theta, dtype=np.float64)
        design = self.design
        q, p1 = design.q_rest, design.p + 1
        D1 = design.D1
        m1, k1 = D1.shape[:2]
        g1 = design.CX
        if q:
            weights, logdet1, lambdas, factored = self._rest_factor(theta)
            if factored is None:
                return np.inf, np.full(self.n_theta, np.nan)
            logdet_z, T, solve, inverse, Szx = factored
            rest = self._rest
            lam1 = lambdas[0]
            LD = _bmm(lam1.T, D1)
            A1 = _bmm(LD, lam1)
            A1[:, np.arange(k1), np.arange(k1)] += 1.0
            A1inv, _ = _small_inverse(A1)
            # W = A⁻¹ΛᵀZᵀ[X y] and E = Zᵀ[X y] − ZᵀZΛW by block elimination
            Wr = solve(Szx)
            Vr = rest._rows_times_lambda(lambdas, Wr)
            g1 = g1 - (rest._Cz @ Vr).reshape(m1, k1, p1)
            W1 = _bmm(A1inv, _bmm(lam1.T, g1))
        else:
            # one term: T = Bxx − Σ_j CX_jᵀ λ A_j⁻¹ λᵀ CX_j, directly
            lambdas = self.lambdas(theta)
            lam1 = lambdas[0]
            LD = _bmm(lam1.T, D1)
            A1 = _bmm(LD, lam1)
            A1[:, np.arange(k1), np.arange(k1)] += 1.0
            A1inv, logdet1 = _small_inverse(A1)
            R1 = _bmm(lam1.T, g1)
            W1 = _bmm(A1inv, R1)
            T = design.Bxx - R1.reshape(-1, p1).T @ W1.reshape(-1, p1)
            logdet_z = 0.0
        # L's upper triangle is left as dpotrf found it: only its lower
        # triangle is read below
        L, info = dpotrf(T, lower=1)
        if info != 0 or not np.isfinite(logdet1):
            return np.inf, np.full(self.n_theta, np.nan)
        value = self._value(logdet1 + logdet_z, np.log(np.diagonal(L)))
        V1 = _bmm(lam1, W1)
        E1 = g1 - _bmm(D1, V1)
        # W L⁻ᵀ and E L⁻ᵀ (and the weights) by one small matrix each
        Linv_T = solve_triangular(L, self._eye_p1, lower=True).T
        weighted = Linv_T * self._column_weights

        def whitened_inner(Wt, Et, m, k):
            Wt = Wt.reshape(m * k, p1) @ Linv_T
            Et = Et.reshape(m * k, p1) @ weighted
            if k == 1:
                return np.array([[np.vdot(Wt, Et)]])
            return np.tensordot(
                Wt.reshape(m, k, p1), Et.reshape(m, k, p1), axes=([0, 2], [0, 2])
            )

        sums = [None] * len(lambdas)
        if q:
            Er = design.Bzx - rest._CzT @ V1.reshape(m1 * k1, p1) - design.Bzz @ Vr
            X_pattern, rest_sums = rest.logdet_gradient_parts(lambdas, inverse)
            # first term: [A⁻¹]_jj λᵀ D_j minus A1_j⁻¹ λᵀ (C_jz Λ̃ S_zz⁻¹ Λ̃ᵀ C_jzᵀ)
            # Σ_j H1_j = Σ_j A1_j⁻¹ λᵀ D_j + Σ_j U_j G_j V_j with
            # U_j = A1_j⁻¹ λᵀ and V_j = λ A1_j⁻¹ λᵀ D_j − I: only the entries
            # (r, s) the gradient reads, each a weighted sum over the G_j
            U = _bmm(A1inv, lam1.T)
            Vm = _bmm(lam1, _bmm(A1inv, LD))
            Vm[:, np.arange(k1), np.arange(k1)] -= 1.0
            rows1, cols1 = self._tri[0]
            # K[j, o, a, b] = U_j[r_o, a] V_j[b, s_o], (r_o, s_o) = (cols1, rows1)
            K = U[:, cols1, :, None] * Vm.transpose(0, 2, 1)[:, rows1, None, :]
            H1sum = _bmm(A1inv, LD).sum(axis=0)
            H1sum[cols1, rows1] += rest.first_term_weighted_sums(X_pattern, K)
            for i, (term, offset) in enumerate(
                zip(design.terms[1:], design.offsets, strict=True)
            ):
                m, k = term.m, term.k
                rows = slice(offset, offset + m * k)
                inner = whitened_inner(Wr[rows], Er[rows], m, k)
                sums[i + 1] = rest_sums[i] - inner
        else:
            H1sum = _bmm(A1inv, LD).sum(axis=0)
        sums[0] = H1sum - whitened_inner(W1, E1, m1, k1)
        grad = np.empty(self.n_theta)
        for total, (rows, cols), sl in zip(sums, self._tri, self._slices, strict=True):
            # tr(K E_ab) = K[b, a]
            grad[sl] = 2.0 * total[cols, rows]
        return value, grad

    def decompose(self, theta):
        """The factor at θ, with β, the spherical and conditional modes.

        Parameters
        ----------
        theta : array-like of shape (n_theta,)

        Returns
        -------
        Decomposition
        """
        theta = np.asarray(theta, dtype=np.float64).copy()
        weights, logdet1, lambdas, factored = self._rest_factor(theta)
        failed = factored is None
        if not failed:
            logdet_z, T, solve, inverse, Szx = factored
            L, info = dpotrf(T, lower=1)
            failed = info != 0
        if failed:
            raise np.linalg.LinAlgError(
                "The fixed-effects model matrix is (numerically) rank deficient "
                "given the random effects."
            )
        design, rest = self.design, self._rest
        q, p = design.q_rest, design.p
        beta = (
            solve_triangular(L[:p, :p], L[p, :p], trans=True, lower=True)
            if p
            else np.zeros(0)
        )
        logs = np.log(np.diagonal(L))
        logdet_L = logdet1 + logdet_z
        logdet_RX = 2.0 * logs[:p].sum()
        pwrss = L[p, p] ** 2
        # the later terms' spherical modes: S_zz u = S_zy − S_zX β
        rhs = np.empty((q, 1))
        u, b = [None], [None]
        b_rest = np.zeros(q)
        if q:
            rhs[:, 0] = Szx[:, p] - Szx[:, :p] @ beta
            u_rest = solve(rhs)[:, 0]
            for lam, term, offset in zip(
                lambdas[1:], design.terms[1:], design.offsets, strict=True
            ):
                size = term.m * term.k
                ut = u_rest[offset : offset + size].reshape(term.m, term.k)
                u.append(ut)
                bt = ut @ lam.T
                b.append(bt)
                b_rest[offset : offset + size] = bt.ravel()
        # the first term's: A_j u_j = λᵀ (c_jy − C_jX β − C_jz b_rest)
        lam1 = lambdas[0]
        m1, k1 = design.D1.shape[:2]
        A1 = lam1.T @ design.D1 @ lam1
        A1[:, np.arange(k1), np.arange(k1)] += 1.0
        g = design.CX[:, :, p] - design.CX[:, :, :p] @ beta
        if q:
            g -= (rest._Cz @ b_rest).reshape(m1, k1)
        u[0] = np.linalg.solve(A1, (g @ lam1)[..., None])[..., 0]
        b[0] = u[0] @ lam1.T
        RX = L[:p, :p].T.copy()
        return Decomposition(
            theta,
            lambdas,
            A1,
            float(logdet_L),
            float(logdet_RX),
            float(pwrss),
            beta,
            RX,
            u,
            b,
            rest,
            inverse,
        )
