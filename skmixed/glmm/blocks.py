"""The random-effects system ``Λᵀ Zᵀ W Z Λ + I`` for changing weights W.

PIRLS refactors this matrix at every step, because the GLM working weights
W change with the linear predictor. Everything that does not depend on W or
θ is prepared once here (:class:`RandomEffects`): per term, a sparse
level-indicator matrix and the products of the term's columns, and for
several terms the pattern of level pairs that share rows. One call of
:meth:`RandomEffects.factor` then makes one weighted pass over the rows
(sparse indicator times dense products) and factors the blocks:

* the first term's block is block-diagonal, one ``k x k`` block per level:
  a batched Cholesky factor, never ``q x q``;
* later terms (crossed or nested factors) form a dense block: its Schur
  complement after the first term is factored densely.

The vector of spherical random effects u is ordered term by term, level
by level, the term's k columns innermost (lme4's order).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cholesky, solve_triangular

from skmixed.mixed.first_term import lambda_of, lower_triangle_indices


def theta_lower_bounds(ks):
    """Lower bounds of θ: 0 for diagonal elements, -inf below the diagonal."""
    out = []
    for k in ks:
        rows, cols = lower_triangle_indices(k)
        out.append(np.where(rows == cols, 0.0, -np.inf))
    return np.concatenate(out) if out else np.zeros(0)


def theta_start(ks):
    """lme4's start: the identity factor."""
    out = []
    for k in ks:
        rows, cols = lower_triangle_indices(k)
        out.append((rows == cols).astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def lambdas_from_theta(theta, ks):
    """Per term, the lower-triangular relative covariance factor Λ."""
    out, start = [], 0
    for k in ks:
        size = k * (k + 1) // 2
        out.append(lambda_of(theta[start : start + size], k))
        start += size
    return out


def _indicator(codes, m):
    """Sparse (m, n) matrix with a 1 at (level of row i, i)."""
    n = len(codes)
    return sp.csr_matrix((np.ones(n), codes, np.arange(n + 1)), shape=(n, m)).T.tocsr()


def _pair_products(Za, Zb, n):
    """Per row, the products ``Za[:, a] * Zb[:, b]`` (a outer, b inner)."""
    ka = 1 if Za is None else Za.shape[1]
    kb = 1 if Zb is None else Zb.shape[1]
    if Za is None and Zb is None:
        return None
    A = np.ones((n, 1)) if Za is None else Za
    B = np.ones((n, 1)) if Zb is None else Zb
    return np.ascontiguousarray((A[:, :, None] * B[:, None, :]).reshape(n, ka * kb))


def _with_weights(J, w):
    """The indicator J with the rows' weights as its values.

    ``_with_weights(J, w) @ V`` is the per-level ``Σ w_i V_i`` without
    forming ``w * V`` (an n x c temporary at every PIRLS step).
    """
    return sp.csr_matrix((w[J.indices], J.indices, J.indptr), shape=J.shape)


@dataclass
class Term:
    """One random-effects term: level codes, columns (None = intercept)."""

    codes: np.ndarray
    m: int
    Z: np.ndarray | None

    @property
    def k(self):
        return 1 if self.Z is None else self.Z.shape[1]


class _Pairs:
    """Rows grouped by the pair (level of term a, level of term b)."""

    def __init__(self, ta, tb):
        key = ta.codes.astype(np.int64) * tb.m + tb.codes
        unique, inverse = np.unique(key, return_inverse=True)
        self.la = unique // tb.m
        self.lb = unique % tb.m
        self.J = _indicator(inverse.ravel(), len(unique))
        self.products = _pair_products(ta.Z, tb.Z, len(ta.codes))
        self.ka, self.kb = ta.k, tb.k

    def sums(self, w):
        """(n_pairs, ka, kb) weighted cross-products of the two terms."""
        if self.products is None:
            out = self.J @ w
        else:
            out = _with_weights(self.J, w) @ self.products
        return np.asarray(out).reshape(-1, self.ka, self.kb)


class RandomEffects:
    """Everything about ``Z`` needed to form and factor ``Λᵀ Zᵀ W Z Λ + I``.

    Parameters
    ----------
    terms : list of Term
        The first term should have the most levels (lme4's order); its block
        is the block-diagonal one.
    """

    def __init__(self, terms):
        self.terms = list(terms)
        self.ks = [t.k for t in self.terms]
        self.sizes = [t.m * t.k for t in self.terms]
        self.q = int(sum(self.sizes))
        self.q1 = self.sizes[0]
        self.q_rest = self.q - self.q1
        self.n = len(self.terms[0].codes)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.J = [_indicator(t.codes, t.m) for t in self.terms]
        self._squares = []
        for t in self.terms:
            if t.Z is None:
                self._squares.append(None)
            else:
                rows, cols = np.triu_indices(t.k)
                products = np.ascontiguousarray(t.Z[:, rows] * t.Z[:, cols])
                self._squares.append((products, rows, cols))
        # cross-term pairs: (0, j) for the Schur block, (i, j) within the rest
        self._pairs = {}
        for i in range(len(self.terms)):
            for j in range(i + 1, len(self.terms)):
                self._pairs[(i, j)] = _Pairs(self.terms[i], self.terms[j])

    def __getstate__(self):
        # A fitted model is pickled to be deployed: everything but the terms
        # (indicators, row products, the weighted caches, several times the
        # size of the level codes) is derived from them, so it is rebuilt
        # on unpickling, with the same numbers, rather than stored.
        return {"terms": self.terms}

    def __setstate__(self, state):
        self.__init__(state["terms"])

    # -- products with Z -----------------------------------------------------
    def z_lambda_u(self, u, lambdas):
        """``Z Λ u`` per row (the random part of the linear predictor)."""
        out = np.zeros(self.n)
        for t, lam, start, size in zip(
            self.terms, lambdas, self.starts[:-1], self.sizes, strict=True
        ):
            b = u[start : start + size].reshape(t.m, t.k) @ lam.T
            out += row_effects(t.Z, b, t.codes)
        return out

    def b_from_u(self, u, lambdas):
        """Per term, the (m, k) random effects ``b = Λ u``."""
        return [
            u[s : s + size].reshape(t.m, t.k) @ lam.T
            for t, lam, s, size in zip(
                self.terms, lambdas, self.starts[:-1], self.sizes, strict=True
            )
        ]

    def lambda_zt(self, r, lambdas):
        """``Λᵀ Zᵀ r`` for r of shape (n,) or (n, p)."""
        if r.ndim == 1:
            parts = []
            for t, J, lam in zip(self.terms, self.J, lambdas, strict=True):
                g = J @ (r if t.Z is None else t.Z * r[:, None])
                parts.append((g.reshape(t.m, t.k) @ lam).ravel())
            return np.concatenate(parts)
        r2 = r
        p = r2.shape[1]
        parts = []
        for t, J, lam in zip(self.terms, self.J, lambdas, strict=True):
            if t.Z is None:
                g = (J @ r2).reshape(t.m, 1, p)
            else:
                g = J @ (t.Z[:, :, None] * r2[:, None, :]).reshape(self.n, -1)
                g = g.reshape(t.m, t.k, p)
            # Λᵀ g per level
            parts.append(np.einsum("ba,mbp->map", lam, g).reshape(t.m * t.k, p))
        out = np.concatenate(parts, axis=0)
        return out[:, 0] if r.ndim == 1 else out

    def lambda_zt_weighted(self, X, w, lambdas):
        """``Λᵀ Zᵀ W X`` (q, p), from the row products of Z and X made once.

        X is the model's fixed design: the products ``Z_i[a] X_i[c]`` do
        not change with the weights, so one weighted pass per term remains.
        """
        if getattr(self, "_zx_of", None) is not X:
            self._zx = [
                None if t.Z is None else _pair_products(t.Z, X, self.n)
                for t in self.terms
            ]
            self._zx_of = X
        p = X.shape[1]
        parts = []
        for i, (t, lam, zx) in enumerate(
            zip(self.terms, lambdas, self._zx, strict=True)
        ):
            Jw = self._weighted(i, w)
            if zx is None:
                parts.append((Jw @ X) * lam[0, 0])
                continue
            g = (Jw @ zx).reshape(t.m, t.k, p)
            # Λᵀ g per level, k small: a sum of k scaled slices
            out = np.zeros_like(g)
            for a in range(t.k):
                for b in range(a, t.k):
                    if lam[b, a] != 0.0:
                        out[:, a, :] += lam[b, a] * g[:, b, :]
            parts.append(out.reshape(t.m * t.k, p))
        return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

    def _weighted(self, i, w):
        """Term i's indicator with weights w (kept for the last w seen)."""
        cached = getattr(self, "_weighted_cache", None)
        if cached is None or cached[0] is not w:
            cached = (w, {})
            self._weighted_cache = cached
        if i not in cached[1]:
            cached[1][i] = _with_weights(self.J[i], w)
        return cached[1][i]

    # -- the weighted system -------------------------------------------------
    def _diagonal_blocks(self, i, w, lam):
        """(m, k, k) blocks ``Λᵀ (Zᵀ W Z)_level Λ + I`` of term i."""
        t, J = self.terms[i], self.J[i]
        if self._squares[i] is None:
            s = J @ w
            blocks = (lam[0, 0] ** 2 * s + 1.0).reshape(t.m, 1, 1)
            return blocks
        products, rows, cols = self._squares[i]
        sums = self._weighted(i, w) @ products
        G = np.empty((t.m, t.k, t.k))
        G[:, rows, cols] = sums
        G[:, cols, rows] = sums
        blocks = lam.T @ G @ lam
        blocks += np.eye(t.k)
        return blocks

    def factor(self, w, lambdas):
        """Cholesky factor of ``Λᵀ Zᵀ W Z Λ + I`` for weights w (n,)."""
        D = self._diagonal_blocks(0, w, lambdas[0])
        L1 = _batched_cholesky(D)
        if len(self.terms) == 1:
            return Factor(self, L1, None, None)
        k1, m1 = self.ks[0], self.terms[0].m
        L1inv = _batched_lower_inverse(L1)
        # cross block B (q1 x q_rest), sparse
        rows_list, cols_list, vals_list = [], [], []
        R = np.zeros((self.q_rest, self.q_rest))
        for j in range(1, len(self.terms)):
            pairs = self._pairs[(0, j)]
            blocks = np.einsum(
                "ba,nbc,cd->nad", lambdas[0], pairs.sums(w), lambdas[j]
            )  # (n_pairs, k1, kj)
            kj = self.ks[j]
            off = self.starts[j] - self.q1
            a, c = np.meshgrid(np.arange(k1), np.arange(kj), indexing="ij")
            rows_list.append((pairs.la[:, None, None] * k1 + a).ravel())
            cols_list.append((off + pairs.lb[:, None, None] * kj + c).ravel())
            vals_list.append(blocks.ravel())
            Dj = self._diagonal_blocks(j, w, lambdas[j])
            idx = off + np.arange(self.terms[j].m)[:, None] * kj
            for x in range(kj):
                for y in range(kj):
                    R[idx[:, 0] + x, idx[:, 0] + y] = Dj[:, x, y]
            for jj in range(j + 1, len(self.terms)):
                pr = self._pairs[(j, jj)]
                kjj = self.ks[jj]
                offjj = self.starts[jj] - self.q1
                cb = np.einsum("ba,nbc,cd->nad", lambdas[j], pr.sums(w), lambdas[jj])
                for x in range(kj):
                    for y in range(kjj):
                        r_ = off + pr.la * kj + x
                        c_ = offjj + pr.lb * kjj + y
                        R[r_, c_] = cb[:, x, y]
                        R[c_, r_] = cb[:, x, y]
        B = sp.csr_matrix(
            (
                np.concatenate(vals_list),
                (np.concatenate(rows_list), np.concatenate(cols_list)),
            ),
            shape=(self.q1, self.q_rest),
        )
        Linv_sparse = _block_diagonal_sparse(L1inv, m1, k1)
        C = (Linv_sparse @ B).tocsr()
        CtC = (C.T @ C).toarray()
        S = R - CtC
        L2 = cholesky(S, lower=True, check_finite=False)
        return Factor(self, L1, C, L2, L1inv)


def _batched_cholesky(D):
    """Lower Cholesky factors of (m, k, k) blocks; k <= 2 written out.

    numpy's batched routines loop over tiny LAPACK calls: for 10,000 2 x 2
    blocks the closed form is ~10 times faster.
    """
    k = D.shape[1]
    if k == 1:
        if np.any(D <= 0):
            raise np.linalg.LinAlgError("block not positive definite")
        return np.sqrt(D)
    if k == 2:
        a, b, c = D[:, 0, 0], D[:, 1, 0], D[:, 1, 1]
        l11 = np.sqrt(a)
        l21 = b / l11
        rest = c - l21 * l21
        if not (np.all(a > 0) and np.all(rest > 0)):
            raise np.linalg.LinAlgError("block not positive definite")
        L = np.zeros_like(D)
        L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = l11, l21, np.sqrt(rest)
        return L
    return np.linalg.cholesky(D)


def _batched_lower_inverse(L):
    """Inverses of (m, k, k) lower-triangular blocks; k <= 2 written out."""
    k = L.shape[1]
    if k == 1:
        return 1.0 / L
    if k == 2:
        out = np.zeros_like(L)
        inv11, inv22 = 1.0 / L[:, 0, 0], 1.0 / L[:, 1, 1]
        out[:, 0, 0], out[:, 1, 1] = inv11, inv22
        out[:, 1, 0] = -L[:, 1, 0] * inv11 * inv22
        return out
    return np.linalg.inv(L)


def _block_diagonal_sparse(blocks, m, k):
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    base = np.arange(m)[:, None, None] * k
    rows = (base + i).ravel()
    cols = (base + j).ravel()
    return sp.csr_matrix((blocks.ravel(), (rows, cols)), shape=(m * k, m * k))


def row_effects(Z, b, codes):
    """Per row, ``Z_i · b[level_i]``."""
    # np.take of a contiguous column gathers faster than b[codes, j]
    out = np.take(np.ascontiguousarray(b[:, 0]), codes)
    if Z is None:
        return out
    out *= Z[:, 0]
    for j in range(1, Z.shape[1]):
        out += Z[:, j] * np.take(np.ascontiguousarray(b[:, j]), codes)
    return out


class Factor:
    """The blocked Cholesky factor L of ``Λᵀ Zᵀ W Z Λ + I``."""

    def __init__(self, system, L1, C, L2, L1inv=None):
        self.system = system
        self.L1 = L1
        self.C = C
        self.L2 = L2
        self._L1inv = L1inv

    @property
    def L1inv(self):
        if self._L1inv is None:
            self._L1inv = _batched_lower_inverse(self.L1)
        return self._L1inv

    def logdet(self):
        """``log det(L Lᵀ)`` (lme4's ``ldL2``)."""
        m, k = self.L1.shape[0], self.L1.shape[1]
        d = np.log(self.L1.reshape(m, k * k)[:, :: k + 1]).sum()
        if self.L2 is not None:
            d += np.log(np.diagonal(self.L2)).sum()
        return 2.0 * float(d)

    def _l1_solve(self, r, transpose):
        m, k = self.L1.shape[0], self.L1.shape[1]
        p = r.shape[1]
        rr = r.reshape(m, k, p)
        if k == 1:
            return (rr / self.L1).reshape(m * k, p)
        inv = self.L1inv
        sub = "mba,mbp->map" if transpose else "mab,mbp->map"
        return np.einsum(sub, inv, rr).reshape(m * k, p)

    def solve(self, r):
        """``(L Lᵀ)⁻¹ r`` for r of shape (q,) or (q, p)."""
        vector = r.ndim == 1
        r = r[:, None] if vector else r
        q1 = self.system.q1
        y1 = self._l1_solve(r[:q1], transpose=False)
        if self.L2 is None:
            x = self._l1_solve(y1, transpose=True)
            return x[:, 0] if vector else x
        y2 = solve_triangular(
            self.L2, r[q1:] - self.C.T @ y1, lower=True, check_finite=False
        )
        x2 = solve_triangular(self.L2, y2, lower=True, trans="T", check_finite=False)
        x1 = self._l1_solve(y1 - self.C @ x2, transpose=True)
        x = np.concatenate([x1, x2], axis=0)
        return x[:, 0] if vector else x

    def inverse_parts(self):
        """The parts of ``(L Lᵀ)⁻¹`` that a row's levels touch.

        Returns ``(diagonal, G, S_inv)``: per term the (m, k, k) diagonal
        blocks; with later terms also the dense first-by-rest block G
        (q1 x q_rest) and the rest-by-rest block S⁻¹ (else None, None).
        """
        diagonal = self.inverse_diagonal_blocks()
        if self.L2 is None:
            return diagonal, None, None
        L2inv = solve_triangular(
            self.L2, np.eye(self.L2.shape[0]), lower=True, check_finite=False
        )
        S_inv = L2inv.T @ L2inv
        # M⁻¹ first-by-rest block: -L1⁻ᵀ C S⁻¹
        system = self.system
        m1, k1 = system.terms[0].m, system.ks[0]
        CS = np.asarray(self.C @ S_inv).reshape(m1, k1, -1)
        G = -np.einsum("mba,mbp->map", self.L1inv, CS).reshape(system.q1, -1)
        return diagonal, G, S_inv

    def inverse_diagonal_blocks(self):
        """Per term, the (m, k, k) diagonal blocks of ``(L Lᵀ)⁻¹``."""
        system = self.system
        m1, k1 = system.terms[0].m, system.ks[0]
        inv = self.L1inv
        if self.L2 is None:
            return [np.einsum("mba,mbc->mac", inv, inv)]
        # M⁻¹ = [[L1⁻ᵀ (I + C S⁻¹ Cᵀ) L1⁻¹, ...], [..., S⁻¹]], S = L2 L2ᵀ
        L2inv = solve_triangular(
            self.L2, np.eye(self.L2.shape[0]), lower=True, check_finite=False
        )
        G = np.asarray(self.C @ L2inv.T)  # C L2⁻ᵀ, (q1, q_rest)
        Gb = G.reshape(m1, k1, -1)
        inner = np.einsum("map,mbp->mab", Gb, Gb) + np.eye(k1)
        out = [np.einsum("mba,mbc,mcd->mad", inv, inner, inv)]
        Sinv_cols = L2inv  # S⁻¹ = L2⁻ᵀ L2⁻¹
        for j in range(1, len(system.terms)):
            t, kj = system.terms[j], system.ks[j]
            off = system.starts[j] - system.q1
            cols = Sinv_cols[:, off : off + t.m * kj].reshape(-1, t.m, kj)
            out.append(np.einsum("rma,rmb->mab", cols, cols))
        return out
