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
and y) form one dense block, updated by the Schur complement and factored
with LAPACK.

The Schur complement ``B - Σ_j C_jᵀ M_j C_j`` (``C_j`` the first factor's
level-j cross-products with the rest, ``M_j = λ A_j⁻¹ λᵀ``) is linear in the
per-level weights ``M_j``: with the products ``C_jᵀ C_j`` stored once it is
one matrix-vector product per evaluation -- a dense matrix for small
problems, a sparse one where each level meets few levels of the later
factors (nested and crossed designs) -- and otherwise ``VᵀV`` by BLAS.
"""

from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dpotrf, dtrtrs

_LOG_2PI = np.log(2.0 * np.pi)
_LOG_2PI_1 = 1.0 + _LOG_2PI
_MAX_OUTER_PRODUCTS = 4_000_000
_MAX_SPARSE_PRODUCTS = 20_000_000
_ONE_ZERO_ONE = np.array([1.0, 0.0, 1.0])


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
    out = np.empty((r * r, m, len(pairs)))
    for i, (a, b) in enumerate(pairs):
        prod = C[:, a, :, None] * C[:, b, None, :]
        if a != b:
            prod += prod.transpose(0, 2, 1)
        out[:, :, i] = prod.reshape(m, r * r).T
    return out.reshape(r * r, m * len(pairs))


def _level_columns(design):
    """The non-zero columns of each level's C_j: (level, column, values (k1,)).

    Sorted by level, then column: X and y (all levels) and the later terms'
    columns of the levels that level meets.
    """
    m1, k1 = design.D1.shape[:2]
    q, r = design.q_rest, design.r
    p1 = r - q
    lev = [np.repeat(np.arange(m1), p1)]
    col = [np.tile(np.arange(q, r), m1)]
    val = [design.CX.transpose(0, 2, 1).reshape(m1 * p1, k1)]
    for blk, term, offset in zip(
        design.blocks, design.terms[1:], design.offsets, strict=True
    ):
        kt = term.k
        lev.append(np.repeat(blk.rows, kt))
        col.append((offset + blk.cols[:, None] * kt + np.arange(kt)).ravel())
        val.append(blk.values.transpose(0, 2, 1).reshape(-1, k1))
    lev, col, val = np.concatenate(lev), np.concatenate(col), np.concatenate(val)
    order = np.lexsort((col, lev))
    return lev[order], col[order], val[order]


def _sparse_outer_size(design):
    """Number of upper-triangle products per pair in the sparse form."""
    m1 = design.D1.shape[0]
    counts = np.full(m1, design.r - design.q_rest, dtype=np.float64)
    for blk, term in zip(design.blocks, design.terms[1:], strict=True):
        counts += term.k * np.bincount(blk.rows, minlength=m1)
    return float((counts * (counts + 1) / 2).sum())


def _sparse_outer_products(design, pairs):
    """Sparse (r², pairs * m1) form of :func:`_outer_products`, upper triangle.

    Only the products of each level's non-zero columns are stored: a level
    of the first factor meets few levels of a nested or crossed factor. The
    columns are pair-major (``i * m1 + j``) so that the products, generated
    level by level, fill a CSC matrix in order: no sorting pass.
    """
    from scipy.sparse import csc_matrix

    lev, col, val = _level_columns(design)
    m1, r = design.D1.shape[0], design.r
    n = len(lev)
    counts = np.bincount(lev, minlength=m1)
    ends = np.cumsum(counts)[lev]
    # element e paired with itself and every later element of its level
    n_after = ends - np.arange(n)
    first = np.repeat(np.arange(n), n_after)
    offset = np.arange(first.size) - np.repeat(np.cumsum(n_after) - n_after, n_after)
    second = first + offset
    positions = col[first] * r + col[second]
    per_level = np.bincount(lev[first], minlength=m1)
    data = []
    for a, b in pairs:
        prod = val[first, a] * val[second, b]
        if a != b:
            prod += val[first, b] * val[second, a]
        data.append(prod)
    npairs = len(pairs)
    indptr = np.r_[0, np.cumsum(np.tile(per_level, npairs))]
    index_type = np.int32 if r * r < 2**31 and indptr[-1] < 2**31 else np.int64
    return csc_matrix(
        (
            np.concatenate(data),
            np.tile(positions, npairs).astype(index_type),
            indptr.astype(index_type),
        ),
        shape=(r * r, npairs * m1),
    )


def lower_triangle_indices(k):
    """Rows and columns of θ's elements in a k x k factor, column-major."""
    cols, rows = np.triu_indices(k)
    return rows, cols


@dataclass
class Decomposition:
    """The blocked factor at one θ and what follows from it.

    Attributes
    ----------
    theta : ndarray
    lambdas : list of ndarray
        Per term, the ``k x k`` lower-triangular relative covariance factor.
    L1 : ndarray of shape (m1, k1, k1)
        Cholesky blocks of the first term, one per level.
    V : ndarray of shape (m1, k1, r)
        The first term's rows of ``Lᵀ`` against the rest columns.
    Lr : ndarray of shape (r, r)
        Cholesky factor of the rest block (later terms, X, y).
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
    L1: np.ndarray
    V: np.ndarray
    Lr: np.ndarray
    logdet_L: float
    logdet_RX: float
    pwrss: float
    beta: np.ndarray
    RX: np.ndarray
    u: list
    b: list
    q_rest: int
    offsets: list

    def conditional_covariances(self, sigma):
        """lme4's ``condVar``: per term, (m, k, k) covariances of b given y.

        They condition on β (as lme4's do): ``σ² Λ [A⁻¹]_jj Λᵀ`` with
        ``A = ΛᵀZᵀZΛ + I``, for every level ``j``.
        """
        L1inv = np.linalg.inv(self.L1)
        m1, k1 = self.L1.shape[:2]
        inner = np.broadcast_to(np.eye(k1), (m1, k1, k1)).copy()
        out_rest = []
        if self.q_rest:
            Lzz = self.Lr[: self.q_rest, : self.q_rest]
            Vz = self.V[:, :, : self.q_rest].reshape(m1 * k1, self.q_rest).T
            M = solve_triangular(Lzz, Vz, lower=True).reshape(self.q_rest, m1, k1)
            inner += np.einsum("rja,rjb->jab", M, M)
            Linv_z = solve_triangular(Lzz, np.eye(self.q_rest), lower=True)
            for lam, offset, u in zip(
                self.lambdas[1:], self.offsets, self.u[1:], strict=True
            ):
                m, k = u.shape
                cols = Linv_z[:, offset : offset + m * k].reshape(-1, m, k)
                ainv = np.einsum("rla,rlb->lab", cols, cols)
                out_rest.append(sigma**2 * (lam @ ainv @ lam.T))
        ainv1 = L1inv.transpose(0, 2, 1) @ inner @ L1inv
        lam1 = self.lambdas[0]
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

    def __init__(self, design, reml=True, strategy=None):
        self.design = design
        self.reml = bool(reml)
        self._ks = [t.k for t in design.terms]
        self._tri = [lower_triangle_indices(k) for k in self._ks]
        bounds = np.cumsum([0] + [k * (k + 1) // 2 for k in self._ks])
        self._slices = [
            slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        self.n_theta = int(bounds[-1])
        diagonal = np.concatenate([rows == cols for rows, cols in self._tri])
        self.theta_lower = np.where(diagonal, 0.0, -np.inf)
        self.theta_start = np.where(diagonal, 1.0, 0.0)
        self._diagonal = diagonal
        n, p = design.n, design.p
        self._dof = n - p if self.reml else n
        self._log_const = _LOG_2PI_1 - np.log(self._dof) if self._dof > 0 else 0.0
        # Prior weights: -2 log L gains -Σ log w_i (lme4 includes it).
        self._log_weights = design.sum_log_weights
        if self._dof <= 0:
            raise ValueError(
                f"{n} observations leave no residual degrees of freedom with "
                f"{p} fixed effects."
            )
        self._z_rows = np.arange(design.q_rest)
        k1, m1, r = self._ks[0], design.terms[0].m, design.r
        self._pairs = [(a, b) for a in range(k1) for b in range(a, k1)]
        # the first block's distinct entries per level, (m1, pairs)
        self._dpairs = np.stack([design.D1[:, a, b] for a, b in self._pairs], axis=1)
        if strategy is None:
            strategy = self._choose_strategy(m1, k1, r)
        elif strategy not in ("outer", "sparse", "dense"):
            raise ValueError(f"unknown strategy {strategy!r}")
        if strategy == "sparse" and not design.q_rest:
            strategy = "dense"
        self.strategy = strategy
        if self.strategy == "outer":
            self._P = _outer_products(design.C, self._pairs)
            self._B_flat = design.B.ravel()
        elif self.strategy == "sparse":
            self._P = _sparse_outer_products(design, self._pairs)
            self._B_flat = design.B.ravel()
            # the products fill the upper triangle; Λ of a later term with
            # several columns mixes both, so those need S made symmetric
            self._symmetrize = any(k > 1 for k in self._ks[1:])

    def _choose_strategy(self, m1, k1, r):
        """How to form the Schur complement of the first block.

        ``"outer"``: one matrix-vector product with the per-level outer
        products of C, stored densely while that is small (tiny and tall
        problems). ``"sparse"``: the same with only the non-zero products
        (a level of the first factor meets few levels of the later ones:
        nested and crossed factors). ``"dense"``: ``VᵀV`` by BLAS syrk. The
        costs are rough per-evaluation estimates in seconds.
        """
        npairs = len(self._pairs)
        if m1 * npairs * r * r <= _MAX_OUTER_PRODUCTS:
            return "outer"
        nnz = npairs * _sparse_outer_size(self.design)
        sparse = 4e-9 * nnz if nnz <= _MAX_SPARSE_PRODUCTS else np.inf
        dense = 5e-11 * m1 * k1 * r * r + 3e-9 * m1 * k1 * r * (k1 + 2)
        return "sparse" if sparse < dense else "dense"

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
            # A_j = λᵀ D_j λ + I and the numerators of M_j are linear in the
            # entries of D_j and A_j: two small matrix products for all levels.
            t0, t1, t2 = theta1.tolist()
            A = self._dpairs @ np.array(
                [
                    t0 * t0,
                    0.0,
                    0.0,
                    2 * t0 * t1,
                    t0 * t2,
                    0.0,
                    t1 * t1,
                    t1 * t2,
                    t2 * t2,
                ]
            ).reshape(3, 3)
            A += _ONE_ZERO_ONE
            det = A[:, 0] * A[:, 2]
            det -= A[:, 1] * A[:, 1]
            W = A @ np.array(
                [
                    0.0,
                    0.0,
                    t2 * t2,
                    0.0,
                    -t0 * t2,
                    -2 * t1 * t2,
                    t0 * t0,
                    t0 * t1,
                    t1 * t1,
                ]
            ).reshape(3, 3)
            W /= det[:, None]
            return W, np.log(det).sum()
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

    def _scale_columns(self, lambdas, V):
        """V with the later terms' columns multiplied by Λ̃ (a copy)."""
        V = V.copy()
        design = self.design
        for lam, term, offset in zip(
            lambdas[1:], design.terms[1:], design.offsets, strict=True
        ):
            m, k = term.m, term.k
            cols = slice(offset, offset + m * k)
            part = V[:, :, cols].reshape(V.shape[0], V.shape[1], m, k)
            V[:, :, cols] = (part @ lam).reshape(V.shape[0], V.shape[1], m * k)
        return V

    def _schur(self, theta):
        """Schur complement of the first block (rest block scaled), log|A1|."""
        r = self.design.r
        if self.strategy != "dense":
            weights, logdet1 = self._first_block_weights(theta[self._slices[0]])
            # dense products are level-major, the sparse ones pair-major
            w = weights.ravel() if self.strategy == "outer" else weights.T.ravel()
            S = self._B_flat - self._P @ w
            S = S.reshape(r, r)
            if self.strategy == "sparse" and self._symmetrize:
                S = np.triu(S)
                S += np.triu(S, 1).T
        else:
            _, V, logdet1 = self._first_block(self.lambdas(theta)[0])
            flat = V.reshape(-1, r)
            # numpy computes VᵀV by a symmetric rank-k update (BLAS syrk)
            S = self.design.B - flat.T @ flat
        if self.design.q_rest:
            S = self._scale_rest(self.lambdas(theta), S)
        return S, logdet1

    def _factor(self, theta):
        """(λs, L1, V scaled, Lr, log|A1|); Lr is None where S is not PD."""
        lambdas = self.lambdas(theta)
        L1, V, logdet1 = self._first_block(lambdas[0])
        r = V.shape[2]
        flat = V.reshape(-1, r)
        S = self.design.B - flat.T @ flat
        if self.design.q_rest:
            S = self._scale_rest(lambdas, S)
            V = self._scale_columns(lambdas, V)
        Lr, info = dpotrf(S, lower=1, clean=1, overwrite_a=1)
        return lambdas, L1, V, (Lr if info == 0 else None), logdet1

    def _terms(self, Lr, logdet1):
        q, p = self.design.q_rest, self.design.p
        diag = np.diagonal(Lr)
        logdet_L = logdet1 + 2.0 * np.log(diag[:q]).sum()
        logdet_RX = 2.0 * np.log(diag[q : q + p]).sum()
        return logdet_L, logdet_RX, diag[-1] ** 2

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
        S, logdet1 = self._schur(theta)
        # S is symmetric: its transpose is the Fortran-ordered array LAPACK wants
        Lr, info = dpotrf(S.T, lower=1, overwrite_a=1)
        if info != 0:
            return np.inf
        logs = np.log(np.diagonal(Lr))
        q, p, dof = self.design.q_rest, self.design.p, self._dof
        # log r² = 2 log L[-1, -1]; log|Lθ|² and log|R_X|² from the diagonal
        value = logdet1 + dof * (self._log_const + 2.0 * logs[-1])
        value -= self._log_weights
        if q:
            value += 2.0 * logs[:q].sum()
        if self.reml and p:
            value += 2.0 * logs[q : q + p].sum()
        return float(value) if np.isfinite(value) else np.inf

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
        lambdas, L1, V, Lr, logdet1 = self._factor(theta)
        if Lr is None:
            raise np.linalg.LinAlgError(
                "The fixed-effects model matrix is (numerically) rank deficient "
                "given the random effects."
            )
        logdet_L, logdet_RX, pwrss = self._terms(Lr, logdet1)
        design = self.design
        q, p = design.q_rest, design.p
        if q + p:
            sol = solve_triangular(Lr[:-1, :-1], Lr[-1, :-1], trans=True, lower=True)
        else:
            sol = np.zeros(0)
        beta = sol[q:]
        rhs1 = V[:, :, -1] - V[:, :, :-1] @ sol
        if L1.ndim == 3 and L1.shape[1] > 1:
            u1 = np.linalg.solve(L1.transpose(0, 2, 1), rhs1[..., None])[..., 0]
        else:
            L1 = L1.reshape(-1, 1, 1)
            u1 = rhs1 / L1[:, :, 0]
        u = [u1]
        for term, offset in zip(design.terms[1:], design.offsets, strict=True):
            u.append(sol[offset : offset + term.m * term.k].reshape(term.m, term.k))
        b = [ui @ lam.T for ui, lam in zip(u, lambdas, strict=True)]
        RX = Lr[q : q + p, q : q + p].T.copy()
        return Decomposition(
            theta,
            lambdas,
            L1,
            V,
            Lr,
            float(logdet_L),
            float(logdet_RX),
            float(pwrss),
            beta,
            RX,
            u,
            b,
            q,
            list(design.offsets),
        )
