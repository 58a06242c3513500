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
The first term's per-level algebra, and its part of the θ-gradient, are
closed forms over all levels at once (:mod:`skmixed.mixed.first_term`).
"""

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache, partial
from itertools import accumulate

import numpy as np
from scipy.linalg.lapack import dpotrf, dtrtrs

from skmixed.mixed.first_term import (
    FirstTermLevels,
    chunks,
    coefficients,
    lower_triangle_indices,
    pairs_of,
    times_pairs,
)
from skmixed.mixed.schur import RestBlock

_LOG_2PI = np.log(2.0 * np.pi)
_LOG_2PI_1 = 1.0 + _LOG_2PI
# Stored per-level outer products (one matrix-vector product per evaluation)
# up to this many entries. With one grouping factor the alternative, the
# chunked syrk of first_term, is as fast from ~3-5M entries on and needs no
# set-up (10,000 levels of (1 + x | g), p = 6: 0.38 vs 0.55 ms per value,
# 1.1 vs 1.0 ms per gradient; 27,000 levels: 2.0 vs 1.6 ms per value).
_MAX_OUTER_PRODUCTS = 4_000_000
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

    Returns (r², pairs * m), pair-major: column ``i * m + j`` for pair i,
    level j (each pair's levels contiguous, as the per-level weights of
    :mod:`skmixed.mixed.small` are laid out). Every level's products of
    all its ``k r`` cross-products are formed at once; each entry of the
    result is one of them, or the sum of two (:func:`_outer_indices`).
    """
    m, k, r = C.shape
    flat = C.reshape(m, k * r)
    products = np.zeros(((k * r) ** 2 + 1, m))  # a last row of zeros
    products[:-1] = (flat[:, :, None] * flat[:, None, :]).reshape(m, -1).T
    first, second = _outer_indices(tuple(pairs), k, r)
    P = products[first]
    if k > 1:
        P += products[second]
    return P.reshape(r * r, -1)


@lru_cache(maxsize=16)
def _outer_indices(pairs, k, r):
    """Rows of the products of all ``k r`` cross-products that give
    :func:`_outer_products`' entry ``(x, y)`` of pair ``(a, b)``: ``C_ax
    C_by``, and ``C_bx C_ay`` for ``a < b`` (the zero row for ``a = b``)."""
    kr = k * r
    zero = kr * kr
    first = np.empty((r, r, len(pairs)), dtype=np.intp)
    second = np.empty((r, r, len(pairs)), dtype=np.intp)
    for i, (a, b) in enumerate(pairs):
        for x in range(r):
            for y in range(r):
                first[x, y, i] = (a * r + x) * kr + b * r + y
                second[x, y, i] = (b * r + x) * kr + a * r + y if a != b else zero
    return first.ravel(), second.ravel()


@lru_cache(maxsize=16)
def _flat_pairs(k):
    """The ``(a, b)`` of :func:`pairs_of` as positions in a flattened k x k
    matrix (read-only)."""
    index = np.array([a * k + b for a, b in pairs_of(k)], dtype=np.intp)
    index.setflags(write=False)
    return index


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


class _Deferred:
    """A :class:`Decomposition` attribute formed on first access, by
    ``make()`` (picklable where ``make`` is: a partial of a method)."""

    def __init__(self, make):
        self.make = make


@dataclass
class Decomposition:
    """The blocked factor at one θ and what follows from it.

    Attributes
    ----------
    theta : ndarray
    lambdas : list or tuple of ndarray
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
    u : list or tuple of ndarray
        Per term, spherical random effects, shape (m, k).
    b : list or tuple of ndarray
        Per term, conditional modes ``Λ u``, shape (m, k).

    ``A1``, ``u`` and ``b`` may be formed on first access (one term on many
    levels: a fit reads none of them; ``b`` is read by predictions and
    ``random_effects_``).
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


def _deferred_field(name):
    """A :class:`Decomposition` field that may be given as :class:`_Deferred`
    and is then formed on first access (a million levels' ``A1`` and ``u``
    are ~50 MB that a fit does not read)."""
    private = "_" + name

    def get(self):
        value = self.__dict__[private]
        if type(value) is _Deferred:
            value = self.__dict__[private] = value.make()
        return value

    def set(self, value):
        self.__dict__[private] = value

    return property(get, set)


# (installed after the dataclass has made its __init__, which assigns them)
Decomposition.A1 = _deferred_field("A1")
Decomposition.u = _deferred_field("u")
Decomposition.b = _deferred_field("b")


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

    #: whether :meth:`decompose` may go on where only y's pivot fails (its
    #: r² left 0): y far from 0, whose r² comes from the rows instead
    #: (:mod:`skmixed.mixed.rows`)
    response_pivot_may_fail = False

    def __init__(self, design, reml=True, strategy=None, rest_structure=None):
        self.design = design
        self.reml = bool(reml)
        # tuples (not lists): a fitted model keeps its criterion, and a
        # tuple of untracked items leaves the garbage collector's lists,
        # which a loop of small fits otherwise walks again and again
        self._ks = tuple(t.k for t in design.terms)
        self._tri = tuple(lower_triangle_indices(k) for k in self._ks)
        self._slices, diagonal = _theta_layout(self._ks)
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
        # the gradient's weights of the columns of L⁻ᵀ: log|R_X|² (REML
        # only) and dof log r²
        self._column_weights = np.zeros(p + 1)
        self._column_weights[-1] = self._dof
        if self.reml:
            self._column_weights[:-1] = 1.0
        m1, r = design.terms[0].m, design.r
        self._pairs = tuple(pairs_of(self._ks[0]))
        if strategy is None:
            strategy = self._choose_strategy(m1, r)
        elif strategy not in ("outer", "sparse", "dense"):
            raise ValueError(f"unknown strategy {strategy!r}")
        if strategy == "sparse" and not design.q_rest:
            strategy = "dense"
        self.strategy = strategy
        self._rest = None
        self._levels = None
        self._dpairs1_value = None
        if self.strategy == "outer":
            self._P = _outer_products(design.C, self._pairs)
            self._B_flat = design.B.ravel()
        elif self.strategy == "sparse":
            self._rest = RestBlock(design, self._pairs, rest_structure)

    def __getstate__(self):
        # the first term's outer products (m1 x pairs x r², often larger
        # than the data) and the per-level arrays built on first use are
        # rebuilt from the design rather than pickled
        state = dict(self.__dict__)
        state.pop("_P", None)
        state.pop("_B_flat", None)
        state["_levels"] = state["_dpairs1_value"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.strategy == "outer":
            self._P = _outer_products(self.design.C, self._pairs)
            self._B_flat = self.design.B.ravel()

    @property
    def _dpairs1(self):
        """The first block's distinct entries per level and a column of
        ones (see :func:`first_term.coefficients`): (m1, pairs + 1). Built
        on first use: a million levels' copy is ~0.1 s that a large
        two-column fit does not need. (Kept in an attribute set in
        ``__init__``, not a cached_property: that would give every small
        fit's criterion a dict of its own for the garbage collector.)"""
        if self._dpairs1_value is None:
            design, k1 = self.design, self._ks[0]
            m1 = design.D1.shape[0]
            dpairs = np.ones((m1, len(self._pairs) + 1))
            dpairs[:, :-1] = design.D1.reshape(m1, k1 * k1)[:, _flat_pairs(k1)]
            self._dpairs1_value = dpairs
        return self._dpairs1_value

    @cached_property
    def _dpairs(self):
        """The first block's distinct entries per level: (m1, pairs)."""
        return self._dpairs1[:, :-1]

    @cached_property
    def _z_rows(self):
        return np.arange(self.design.q_rest)

    @cached_property
    def _eye_p1(self):
        return np.eye(self.design.p + 1)

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
        saves more. With one factor or nested factors it costs ~2-4 values
        (:mod:`skmixed.mixed.first_term`) and L-BFGS-B would need ~3x fewer
        evaluations than BOBYQA, but on simulated one-term and nested data
        with small variance components its steps projected onto a zero
        diagonal element often stopped at a degenerate boundary (a
        criterion up to 68 above BOBYQA's on 1,000 levels), so BOBYQA
        stays there.
        """
        return (
            self.strategy == "sparse"
            and self.rest_structure in ("dense", "sparse")
            and self.design.q_rest >= _GRADIENT_REST_SIZE
        )

    @property
    def first_term_levels(self):
        """The first term's per-level kernels and entry-major arrays
        (:class:`FirstTermLevels`, built on first use)."""
        if self._levels is None:
            self._levels = FirstTermLevels(self.design)
        return self._levels

    def _rest_block(self):
        """The structured rest block (built on first use for small models)."""
        if self._rest is None:
            self._rest = RestBlock(self.design, self._pairs)
        return self._rest

    def _choose_strategy(self, m1, r):
        """How to form the Schur complement of the first block.

        ``"outer"``: one matrix-vector product with the per-level outer
        products of C, stored densely while that is small (tiny and tall
        problems).
        ``"sparse"``: the later factors' block kept in the structure of its
        levels' meeting pattern (:class:`RestBlock`).
        ``"dense"``: ``VᵀV`` by BLAS syrk over chunks of levels
        (:class:`FirstTermLevels`), when there are no later factors.
        """
        if m1 * len(self._pairs) * r * r <= _MAX_OUTER_PRODUCTS:
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
            return self.first_term_levels.weights(theta1)
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
            # the stored products are pair-major: the weights' transpose
            S = (self._B_flat - self._P @ weights.T.ravel()).reshape(r, r)
        else:
            gram, logdet1 = self.first_term_levels.schur_update(theta[self._slices[0]])
            S = self.design.B - gram
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

    def value_and_gradient(self, theta, column_weights=None):
        """The criterion and its analytic gradient at θ, from one factor.

        The criterion is ``Σ_j log|A_j| + Ψ(S)``: the first term's level
        blocks ``A_j = λᵀD_jλ + I`` and a function of the Schur complement
        ``S = B − Σ_j C_jᵀ M_j C_j`` (``M_j = λ A_j⁻¹ λᵀ``), scaled by the
        later terms' ``Λ̃`` and factored as ``[S_zz S_zx; S_xz S_xx]``.
        With ``T = L Lᵀ`` the ``[X y]`` block of that factor and
        ``Γ = L⁻ᵀ diag(w) L⁻¹`` (``w`` the weights of its log-diagonal:
        1 for ``log|R_X|²`` under REML, the degrees of freedom for
        ``log r²``), ``∂Ψ`` with respect to ``S`` is, on the first term's
        rows, ``K_j = G_j + g_j Γ g_jᵀ`` per level, where
        ``g_j = C_jx − C_jz Λ̃ S_zz⁻¹ S_zx`` and
        ``G_j = C_jz Λ̃ S_zz⁻¹ Λ̃ᵀ C_jzᵀ`` (both 0-free only with later
        terms). The first term's gradient is then that of
        ``Σ_j log|A_j| − Σ_j ⟨M_j, K_j⟩`` with K fixed, in closed form
        (:func:`first_term_gradient`). The later terms' gradient is
        ``∂ log|S_zz|`` (from the selected inverse) minus the ``Γ``-weighted
        inner product of ``W = S_zz⁻¹S_zx`` with
        ``E = Zᵀ[X y] − ZᵀZΛW``, as before for every term
        (the envelope theorem's ``−2 sᵀ dΛ_i û / r²`` in the last column).

        All from the cross-products: no pass over the rows.

        Parameters
        ----------
        theta : array-like of shape (n_theta,)
        column_weights : array-like of shape (p + 1,), optional
            Other weights ``w`` (the value returned is still the
            criterion's): the gradient is then that of
            ``log|L_θ|² + Σ_i w_i log L_ii²`` over ``[X y]``'s factor, which
            is linear in ``w``. Satterthwaite's method asks for the
            unprofiled deviance's gradient this way.

        Returns
        -------
        value : float
            ``inf`` where the factorisation fails (the gradient is then NaN).
        gradient : ndarray of shape (n_theta,)
        """
        theta = np.asarray(theta, dtype=np.float64)
        if column_weights is None:
            column_weights = self._column_weights
        design = self.design
        q, p1 = design.q_rest, design.p + 1
        m1, k1 = design.D1.shape[:2]
        if q:
            weights, logdet1, lambdas, factored = self._rest_factor(theta)
            if factored is None:
                return np.inf, np.full(self.n_theta, np.nan)
            logdet_z, T, solve, inverse, Szx = factored
            rest = self._rest
            Wr = solve(Szx)
            Vr = rest._rows_times_lambda(lambdas, Wr)
            g1 = design.CX - (rest._Cz @ Vr).reshape(m1, k1, p1)
        else:
            # one term: T is the Schur complement itself
            T, logdet1 = self._schur(theta)
            logdet_z, g1 = 0.0, design.CX
        # L's upper triangle is left as dpotrf found it: only its lower
        # triangle is read below
        L, info = dpotrf(T, lower=1)
        if info != 0 or not np.isfinite(logdet1):
            return np.inf, np.full(self.n_theta, np.nan)
        value = self._value(logdet1 + logdet_z, np.log(np.diagonal(L)))
        Linv_T = solve_triangular(L, self._eye_p1, lower=True).T
        weighted = Linv_T * column_weights
        gamma = weighted @ Linv_T.T
        levels = self.first_term_levels
        grad = np.empty(self.n_theta)
        theta1 = theta[self._slices[0]]
        if not q and self.strategy == "dense" and k1 <= 2:
            # K_j formed and used chunk by chunk (one pass over the levels)
            grad[:] = levels.derivatives(theta1, gamma)[0]
            return value, grad
        if not q and self.strategy == "outer":
            # the stored outer products give every level's g_j Γ g_jᵀ at once
            Kw = (gamma.ravel() @ self._P).reshape(-1, m1)
        elif not q:
            Kw = levels.quadratic_pairs(gamma)
        else:
            Kw = levels.quadratic_pairs(gamma, g1.transpose(1, 2, 0))
        first = levels.gradient(theta1, Kw)
        if q:
            X_pattern, rest_sums = rest.logdet_gradient_parts(lambdas, inverse)
            # the first term's part through G_j = C_jz Λ̃ S_zz⁻¹ Λ̃ᵀ C_jzᵀ,
            # −Σ_j ⟨∂M_j/∂θ_i, G_j⟩: weighted sums over the stored products
            dM = levels.weight_derivatives(theta1)
            first += rest.first_term_weighted_sums(X_pattern, -dM)
            V1 = times_pairs(weights, g1)
            Er = design.Bzx - rest._CzT @ V1.reshape(m1 * k1, p1) - design.Bzz @ Vr
            for i, (term, offset) in enumerate(
                zip(design.terms[1:], design.offsets, strict=True)
            ):
                m, k = term.m, term.k
                rows = slice(offset, offset + m * k)
                Wt = Wr[rows] @ Linv_T
                Et = Er[rows] @ weighted
                if k == 1:
                    inner = np.array([[np.vdot(Wt, Et)]])
                else:
                    Wt, Et = Wt.reshape(m, k, p1), Et.reshape(m, k, p1)
                    inner = np.tensordot(Wt, Et, axes=([0, 2], [0, 2]))
                total = rest_sums[i] - inner
                lrows, lcols = self._tri[i + 1]
                # tr(K E_ab) = K[b, a]
                grad[self._slices[i + 1]] = 2.0 * total[lcols, lrows]
        grad[self._slices[0]] = first
        return value, grad

    @property
    def has_hessian(self):
        """Whether :meth:`value_gradient_hessian` is available: one term of
        one or two columns on levels too many for stored outer products."""
        return not self.design.q_rest and self._ks[0] <= 2 and self.strategy == "dense"

    def value_gradient_hessian(self, theta):
        """The criterion, its gradient and its Hessian at θ (one term of
        k <= 2 columns, see :attr:`has_hessian`), in two passes over the
        levels as :meth:`value_and_gradient` (which the Hessian costs about
        one more: a forward difference of the gradient costs n_theta).

        With ``S = L Lᵀ`` the Schur complement and ``G_i`` its
        θ_i-derivative (up to sign, see :meth:`FirstTermLevels.derivatives`),
        the criterion is ``Σ_j log|A_j| + α log|S_xx| + dof log|S|`` up to
        constants (``α = 1 − dof`` for REML, ``−dof`` for ML), so that its
        Hessian is the levels' part with Γ fixed, less
        ``dof ⟨L⁻¹G_iL⁻ᵀ, L⁻¹G_lL⁻ᵀ⟩`` and ``α`` times the same on the
        X block (the second derivative of ``log|S|`` is
        ``−tr(S⁻¹ E S⁻¹ F)``; ``L_xx⁻¹`` is the X block of ``L⁻¹``).

        Returns
        -------
        value : float
            ``inf`` where the factorisation fails (gradient and Hessian NaN).
        gradient : ndarray of shape (n_theta,)
        hessian : ndarray of shape (n_theta, n_theta)
        """
        if not self.has_hessian:
            raise ValueError("no analytic Hessian for this criterion")
        theta = np.asarray(theta, dtype=np.float64)
        n_theta, p = self.n_theta, self.design.p
        T, logdet1 = self._schur(theta)
        L, info = dpotrf(T, lower=1)
        if info != 0 or not np.isfinite(logdet1):
            return (
                np.inf,
                np.full(n_theta, np.nan),
                np.full((n_theta, n_theta), np.nan),
            )
        value = self._value(logdet1, np.log(np.diagonal(L)))
        Linv = solve_triangular(L, self._eye_p1, lower=True)
        weighted = Linv.T * self._column_weights
        gamma = weighted @ Linv
        gradient, H, grams = self.first_term_levels.derivatives(
            theta[self._slices[0]], gamma, hessian=True
        )
        whitened = Linv @ grams @ Linv.T  # (n_theta, p + 1, p + 1)
        flat = whitened.reshape(n_theta, -1)
        H -= self._dof * (flat @ flat.T)
        alpha = (1.0 if self.reml else 0.0) - self._dof
        if p:
            flat_x = whitened[:, :p, :p].reshape(n_theta, -1)
            H -= alpha * (flat_x @ flat_x.T)
        return value, gradient, H

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
        if not self.design.q_rest and self._ks[0] <= 2:
            return self._decompose_small(theta)
        if self.design.q_rest:
            _, logdet1, lambdas, factored = self._rest_factor(theta)
        else:
            # one term: the Schur complement is T itself (no later block)
            T, logdet1 = self._schur(theta)
            lambdas = self.lambdas(theta)
            factored = (0.0, T, None, None, None)
        failed = factored is None
        if not failed:
            logdet_z, T, solve, inverse, Szx = factored
            L, info = _factor_xy(T, self.response_pivot_may_fail)
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

    def _decompose_small(self, theta):
        """:meth:`decompose` for one term of one or two columns (no per-level
        k x k product or solve: small models, where numpy's per-call
        overhead is the cost, and a million levels, where numpy's stacked
        2 x 2 products and solves took ~0.4 s).

        Per level, ``[d_j 1] K`` (:func:`coefficients`) gives the entries of
        ``A_j`` and of ``|A_j| M_j``; then ``T = B − Σ_j C_jᵀ M_j C_j``
        (from the stored outer products where there are some), β, and with
        ``g_j = c_jy − C_jX β`` the modes ``b_j = M_j g_j`` and
        ``u_j = A_j⁻¹ λᵀ g_j`` (by the adjugate).
        """
        design = self.design
        p, k, r = design.p, self._ks[0], design.r
        m = design.terms[0].m
        npairs = len(self._pairs)
        outer = self.strategy == "outer"
        if outer:
            AW = self._dpairs1 @ coefficients(theta.tolist(), k)  # (m, 2 * pairs)
            if k == 1:
                det = AW[:, 0]
            else:
                det = AW[:, 0] * AW[:, 2] - AW[:, 1] * AW[:, 1]
            M = AW[:, npairs:] / det[:, None]  # (m, pairs)
            # the stored products are pair-major
            T = (self._B_flat - self._P @ M.T.ravel()).reshape(r, r)
            logdet1 = float(np.log(det).sum())
        else:
            T, logdet1 = self._schur(theta)
        L, info = _factor_xy(T, self.response_pivot_may_fail)
        if info != 0:
            raise np.linalg.LinAlgError(
                "The fixed-effects model matrix is (numerically) rank deficient "
                "given the random effects."
            )
        beta = (
            solve_triangular(L[:p, :p], L[p, :p], trans=True, lower=True)
            if p
            else np.zeros(0)
        )
        logs = np.log(np.diagonal(L))
        lam = _small_lambda(theta.tolist(), k)
        # [−β; 1] (filled in place: np.append costs a few µs)
        residual = np.empty(p + 1)
        np.negative(beta, out=residual[:p])
        residual[p] = 1.0
        if not outer:
            A1, b, u = self._modes_by_chunks(theta, lam, residual)
        else:
            # g_j = [C_jX c_jy] [−β; 1]: one product over CX's contiguous rows
            g = (design.CX.reshape(m * k, p + 1) @ residual).reshape(m, k)
            v = g @ lam  # λᵀ g_j per level
            if k == 1:
                A1 = AW[:, :1].reshape(m, 1, 1).copy()
                b = M * g
                u = v / AW[:, :1]
            else:
                # per level A_j, |A_j| M_j and adj(A_j) as 2 x 2 matrices
                # (one take): b_j = M_j g_j and u_j = A_j⁻¹ λᵀ g_j =
                # adj(A_j) v_j / |A_j|
                blocks = (AW.take(_SYMMETRIC_2, axis=1) * _SYMMETRIC_2_SIGNS).reshape(
                    m, 3, 2, 2
                )
                A1 = blocks[:, 0]
                b = np.einsum("mij,mj->mi", blocks[:, 1], g) / det[:, None]
                u = np.einsum("mij,mj->mi", blocks[:, 2], v) / det[:, None]
        # (tuples of one array each: a fitted model keeps them, and unlike
        # lists they leave the garbage collector's lists)
        return Decomposition(
            theta,
            (lam,),
            A1,
            float(logdet1),
            float(2.0 * logs[:p].sum()),
            float(L[p, p] ** 2),
            beta,
            L[:p, :p].T.copy(),
            u if type(u) is _Deferred else (u,),
            b if type(b) is _Deferred else (b,),
        )

    def _modes_by_chunks(self, theta, lam, residual):
        """:meth:`_decompose_small`'s ``A_j``, ``b_j = M_j g_j`` and
        ``u_j`` (no stored products), each deferred to first access (see
        :class:`_Deferred`: a fit reads none of them, and the modes of a
        million levels are a pass over their cross-products)."""
        A1 = _Deferred(partial(self._first_blocks, theta))
        b = _Deferred(partial(self._first_term_modes, theta, residual))
        u = _Deferred(partial(self._spherical_modes, theta, lam, residual))
        return A1, b, u

    def _first_term_modes(self, theta, residual):
        """The first term's ``b_j = M_j g_j``, as the one-element tuple of
        :attr:`Decomposition.b`: (m, k) (k <= 2), by chunks of levels (every
        temporary stays in cache: a million levels' are tens of MB each).
        ``g_j = [C_jX c_jy] [−β; 1]`` from the entry-major cross-products,
        one row per column of the term (contiguous along the levels, as the
        per-level entries)."""
        k, m = self._ks[0], self.design.terms[0].m
        levels = self.first_term_levels
        entries = coefficients(theta.tolist(), k).T
        b = np.empty((m, k))
        for sl in chunks(m):
            g = levels.combined(residual, sl)  # (k, n)
            _conditional_modes(entries @ levels.d_rows(sl), g, b[sl])
        return (b,)

    def _first_blocks(self, theta):
        """The first term's ``A_j = λᵀ D_j λ + I``: (m, k, k) (k <= 2)."""
        k, m = self._ks[0], self.design.terms[0].m
        rows = (
            coefficients(theta.tolist(), k).T[: len(self._pairs)]
            @ self.first_term_levels.d
        )
        A1 = np.empty((m, k, k))
        for i, (a, c) in enumerate(self._pairs):
            A1[:, a, c] = rows[i]
            A1[:, c, a] = rows[i]
        return A1

    def _spherical_modes(self, theta, lam, residual):
        """The first term's ``u_j = A_j⁻¹ λᵀ g_j``, as the one-element tuple
        of :attr:`Decomposition.u`: (m, k) (k <= 2), by chunks of levels as
        :meth:`_modes_by_chunks`."""
        k, m = self._ks[0], self.design.terms[0].m
        levels = self.first_term_levels
        entries = coefficients(theta.tolist(), k).T
        u = np.empty((m, k))
        for sl in chunks(m):
            g = levels.combined(residual, sl)
            _spherical_by_entries(entries @ levels.d_rows(sl), g, lam, u[sl])
        return (u,)


def _factor_xy(T, response_may_fail):
    """Cholesky factor of the ``[X y]`` block T, and LAPACK's info. Where
    ``response_may_fail`` and only y's (the last) pivot fails, the factor
    of X and y's row below it, with r² ~ 0 (the smallest positive pivot,
    info 0): y's digits are lost in T, not β's."""
    L, info = dpotrf(T, lower=1)
    p = T.shape[0] - 1
    if response_may_fail and info == p + 1:
        L[p, :p] = solve_triangular(L[:p, :p], T[:p, p], lower=True) if p else 0.0
        L[p, p], info = np.finfo(np.float64).tiny, 0
    return L, info


def _small_lambda(theta1, k):
    """λ of a one-term θ (a list) of one or two columns: what
    :meth:`ProfiledCriterion.lambdas` gives, in one call."""
    if k == 1:
        return np.array([[theta1[0]]])
    t0, t1, t2 = theta1
    return np.array([[t0, 0.0], [t1, t2]])


# A two-column term's pairs (00, 01, 11) of A_j, then of |A_j| M_j, as the
# entries of the full 2 x 2 matrices (00, 01, 10, 11); then adj(A_j)'s
# entries (a11, −a01, −a01, a00), signs by _SYMMETRIC_2_SIGNS
_SYMMETRIC_2 = np.array([0, 1, 1, 2, 3, 4, 4, 5, 2, 1, 1, 0])
_SYMMETRIC_2_SIGNS = np.array([1.0] * 8 + [1.0, -1.0, -1.0, 1.0])


def _conditional_modes(entries, g, b):
    """Per level ``b_j = M_j g_j`` from the entry-major rows of ``A_j`` and
    ``|A_j| M_j`` (``[d_j 1] K`` of :func:`coefficients`, (2 pairs, n)) and
    of ``g_j`` ((k, n)), into ``b`` (n, k): elementwise along the levels
    (numpy's stacked 2 x 2 products and solves cost ~0.4 s on a million)."""
    if len(g) == 1:
        a, numerator = entries
        np.multiply(numerator / a, g[0], out=b[:, 0])
        return
    a00, a01, a11, n00, n01, n11 = entries
    inverse_det = a00 * a11
    inverse_det -= a01 * a01
    np.divide(1.0, inverse_det, out=inverse_det)
    g0, g1 = g
    b0 = n00 * g0
    b0 += n01 * g1
    np.multiply(b0, inverse_det, out=b[:, 0])
    b1 = n01 * g0
    b1 += n11 * g1
    np.multiply(b1, inverse_det, out=b[:, 1])


def _spherical_by_entries(entries, g, lam, u):
    """Per level ``u_j = A_j⁻¹ λᵀ g_j`` into ``u`` (n, k), as
    :func:`_conditional_modes` (``A_j⁻¹ = adj(A_j) / |A_j|``)."""
    if len(g) == 1:
        np.divide(g[0] * lam[0, 0], entries[0], out=u[:, 0])
        return
    a00, a01, a11 = entries[:3]
    inverse_det = a00 * a11
    inverse_det -= a01 * a01
    np.divide(1.0, inverse_det, out=inverse_det)
    g0, g1 = g
    # v = λᵀ g (λ lower triangular)
    v0 = g0 * lam[0, 0]
    v0 += g1 * lam[1, 0]
    v1 = g1 * lam[1, 1]
    u0 = a11 * v0
    u0 -= a01 * v1
    np.multiply(u0, inverse_det, out=u[:, 0])
    u1 = a00 * v1
    u1 -= a01 * v0
    np.multiply(u1, inverse_det, out=u[:, 1])
