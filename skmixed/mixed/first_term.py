"""The first grouping factor's per-level algebra, in closed form for k <= 2.

Per level j of the first term (``k`` columns, ``D_j = Z_jᵀ Z_j``) the
criterion needs ``A_j = λᵀ D_j λ + I``, ``log|A_j|`` and the weights
``M_j = λ A_j⁻¹ λᵀ`` of the Schur complement ``B − Σ_j C_jᵀ M_j C_j``.

Its θ-gradient (the first term's elements) is, for the rest of the
criterion's derivative ``Γ`` with respect to that Schur complement
(``ProfiledCriterion.value_and_gradient`` forms it)::

    ∂/∂θ_i  Σ_j log|A_j|  −  Σ_j ⟨∂M_j/∂θ_i, K_j⟩,     K_j = C_j Γ C_jᵀ

(``⟨·,·⟩`` the elementwise inner product). For ``k <= 2`` the entries of
``A_j`` and of ``|A_j| M_j = λ adj(A_j) λᵀ`` are linear in ``(D_j, 1)``
with coefficients polynomial in θ (:func:`coefficients`), so both sums
collapse to one product over the levels: the derivative of those few
coefficients contracted with ``Σ_j [D_j 1]ᵀ (per-level factors)``. No
``k x k`` matrix is formed per level; the cost is a few passes over
``m`` numbers, whatever the number of θ elements. Larger terms use
batched ``k x k`` products with the same formula.

Per-level quantities are carried as "pairs": the entries ``(a, b)``,
``a <= b``, of a symmetric ``k x k`` matrix per level, shape ``(m, pairs)``.
"""

import math
from functools import lru_cache

import numpy as np

# Levels are processed in chunks of this many, so that every per-level
# temporary stays in cache (a million levels' temporaries are tens of MB
# each, fresh pages at every evaluation).
_CHUNK = 8192
# Complex-step differentiation of the coefficients (exact for polynomials:
# no difference is taken, so the step can be far below rounding).
_COMPLEX_STEP = 1e-30


def chunks(m):
    """Slices of at most ``_CHUNK`` levels covering ``range(m)``."""
    return [slice(i, min(i + _CHUNK, m)) for i in range(0, m, _CHUNK)]


def pairs_of(k):
    """The ``(a, b)``, ``a <= b``, of a ``k x k`` symmetric matrix, row by row."""
    return [(a, b) for a in range(k) for b in range(a, k)]


def coefficients(theta1, k):
    """K with ``[d_j 1] K = [A_j entries | |A_j| M_j entries]`` (k <= 2).

    ``d_j`` are the pairs of ``D_j``. For ``k == 1`` (``λ = t``), K is
    2 x 2: ``A_j = t² d_j + 1`` and ``|A_j| M_j = t²``. For ``k == 2``
    (``λ = [[t0, 0], [t1, t2]]``), K is 4 x 6: the distinct entries
    ``(a00, a01, a11)`` of ``A_j`` and those of ``λ adj(A_j) λᵀ``. Works
    on complex θ (for the complex-step derivative).
    """
    if k == 1:
        t2 = theta1[0] * theta1[0]
        return np.array([[t2, 0.0], [1.0, t2]])
    t0, t1, t2 = theta1
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


def coefficient_derivatives(theta1, k):
    """``∂K/∂θ_i`` for every θ element of the term: (n_theta, pairs + 1, 2 pairs)."""
    theta1 = np.asarray(theta1, dtype=np.float64)
    out = []
    for i in range(len(theta1)):
        shifted = theta1.astype(complex)
        shifted[i] += 1j * _COMPLEX_STEP
        out.append(coefficients(shifted.tolist(), k).imag / _COMPLEX_STEP)
    return np.array(out)


def coefficient_second_derivatives(theta1, k, h=0.125):
    """``∂²K/∂θ_i∂θ_l``: (n_theta, n_theta, pairs + 1, 2 pairs).

    K's entries are polynomials of degree at most 4 in θ, so their (exact,
    complex-step) first derivatives are cubic: a central difference of
    those, extrapolated from steps h and 2h (Richardson), is exact up to
    rounding whatever h.
    """
    theta1 = np.asarray(theta1, dtype=np.float64)
    n = len(theta1)

    def central(l, step):
        plus, minus = theta1.copy(), theta1.copy()
        plus[l] += step
        minus[l] -= step
        change = coefficient_derivatives(plus, k) - coefficient_derivatives(minus, k)
        return change / (2.0 * step)

    out = np.empty((n, n) + coefficients(theta1.tolist(), k).shape)
    for l in range(n):
        out[:, l] = (4.0 * central(l, h) - central(l, 2.0 * h)) / 3.0
    return out


# The Hessian of |A| in A's pairs (a00, a01, a11), by k: |A| = a00 for k = 1,
# a00 a11 - a01² for k = 2.
_DET_HESSIAN = {
    1: np.zeros((1, 1)),
    2: np.array([[0.0, 0.0, 1.0], [0.0, -2.0, 0.0], [1.0, 0.0, 0.0]]),
}


def level_determinants(AW, k, derivatives=True):
    """``|A_j|`` and (if ``derivatives``) ``∂|A_j|/∂(a00, a01, a11)`` from
    the A rows of ``AW``."""
    if k == 1:
        return AW[0], np.ones((1, AW.shape[1])) if derivatives else None
    a00, a01, a11 = AW[0], AW[1], AW[2]
    det = a00 * a11
    det -= a01 * a01
    return det, np.stack([a11, -2.0 * a01, a00]) if derivatives else None


def sum_of_logs(det):
    """``Σ_j log|A_j|`` for determinants ``|A_j| >= 1`` (``A_j ⪰ I``): the
    logs of products of four (a log costs ~10 multiplications; a product
    of four is finite while every ``|A_j|`` is below 1e77), plainly where
    that is not finite (a failed or huge determinant)."""
    half = len(det) // 2
    quarter = half // 2
    with np.errstate(all="ignore"):  # (the plain sum warns as it did)
        pairs = det[:half] * det[half : 2 * half]
        fours = pairs[:quarter] * pairs[quarter : 2 * quarter]
        total = float(np.log(fours).sum())
    if 2 * half < len(det):
        total += math.log(det[-1]) if det[-1] > 0.0 else math.nan
    if 2 * quarter < half:
        total += math.log(pairs[-1]) if 0.0 < pairs[-1] < math.inf else math.nan
    return total if math.isfinite(total) else float(np.log(det).sum())


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


def lambda_of(theta1, k):
    """The term's ``k x k`` lower-triangular λ (θ column-major, as lme4)."""
    lam = np.zeros((k, k))
    lam[lower_triangle_indices(k)] = theta1
    return lam


class FirstTermLevels:
    """The first term's per-level arrays, laid out for its kernels.

    Per-level numbers are kept entry-major, one contiguous row of ``m``
    numbers per entry (``d`` is ``(pairs + 1, m)``, the cross-products
    ``(k, r, m)``), so that every elementwise step runs along the levels
    rather than along rows of 2-7 numbers.

    Parameters
    ----------
    design : Design
    """

    def __init__(self, design):
        self.design = design
        D1 = design.D1
        self.m, self.k = D1.shape[:2]
        self.pairs = pairs_of(self.k)
        # D_j's pairs are read where they are, chunk by chunk (d_rows): a
        # copy of every level's would be tens of MB of fresh memory
        self._pair_rows = [D1[:, a, b] for a, b in self.pairs]
        self._d = None
        self._CT = None

    def d_rows(self, sl):
        """``[d_j 1]`` of the chunk ``sl`` of levels (its pairs of ``D_j``
        and a row of ones, see :func:`coefficients`), entry-major:
        (pairs + 1, n), a small array of its own."""
        if self._d is not None:
            return self._d[:, sl]
        n = len(range(*sl.indices(self.m)))
        d = np.empty((len(self.pairs) + 1, n))
        for i, pair in enumerate(self._pair_rows):
            d[i] = pair[sl]
        d[-1] = 1.0
        return d

    @property
    def d(self):
        """``[d_j 1]`` of every level: (pairs + 1, m), formed on first use
        (by what reads all levels at once; the passes over the levels read
        :meth:`d_rows`)."""
        if self._d is None:
            d = np.empty((len(self.pairs) + 1, self.m))
            for sl in chunks(self.m):
                d[:, sl] = self.d_rows(sl)
            self._d = d
        return self._d

    @property
    def CT(self):
        """``Z_jᵀ [Z_rest X y]`` per level, entry-major: (k, r, m)."""
        if self._CT is None:
            C = self.design.C
            CT = C.transpose(1, 2, 0)
            if CT.flags.c_contiguous:  # entry-major already (a Dask fit's)
                self._CT = CT
                return CT
            # by chunks of levels: each chunk's rows are read once, in
            # cache (one transposing copy of a million levels reads C with
            # a stride per element: ~3x slower)
            CT = np.empty(C.shape[1:] + C.shape[:1])
            for sl in chunks(self.m):
                CT[:, :, sl] = C[sl].transpose(1, 2, 0)
            self._CT = CT
        return self._CT

    def combined(self, coef, sl):
        """Per level of the chunk ``sl`` of levels, ``Z_jᵀ [Z_rest X y]``
        times ``coef`` (r,): (k, n), e.g. ``Z_jᵀ (y − X β)`` for
        ``coef = [−β; 1]`` (einsum: BLAS's gemv of a vector of r with rows
        of thousands is ~3x slower)."""
        return np.einsum("i,aij->aj", coef, self.CT[:, :, sl])

    def weights(self, theta1):
        """Per level ``M_j`` as its pairs, (m, pairs), and ``Σ_j log|A_j|``
        (k <= 2).

        ``A_j`` and ``|A_j| M_j`` are linear in the entries of ``D_j``: one
        small product for all levels, then elementwise along the levels
        (the result is a transposed view of the entry-major array).
        """
        AW = coefficients(theta1.tolist(), self.k).T @ self.d
        det, _ = level_determinants(AW, self.k, derivatives=False)
        M = AW[len(self.pairs) :]
        M /= det
        return M.T, np.log(det).sum()

    def schur_update(self, theta1):
        """``Σ_j C_jᵀ M_j C_j`` and ``Σ_j log|A_j|``.

        By chunks of levels, elementwise along the levels on the chunk's
        entry-major rows (in cache), then r x r products: for two columns
        ``Y_0 = m00 C_0 + 2 m01 C_1`` and ``Y_1 = m11 C_1`` give
        ``Y_0 C_0ᵀ + Y_1 C_1ᵀ``, whose symmetric part is the sum (four
        passes along the levels instead of six for ``Σ_a (Σ_b M_ab C_b)
        C_aᵀ``). 3-4x faster than syrk of the whitened rows, whose 7 x 7
        result OpenBLAS's syrk handles poorly; reading the level-major C
        for the product instead read the cross-products twice: ~1.35x
        slower on a million levels at load ~6.
        """
        k = self.k
        if k > 2:
            return _batched_gram(lambda_of(theta1, k), self.design.D1, self.design.C)
        CT = self.CT
        r, npairs = CT.shape[1], len(self.pairs)
        coef = coefficients(theta1.tolist(), k).T
        if k == 2:
            coef[npairs + 1] *= 2.0  # 2 |A_j| m01: exact (a power of 2)
        gram = np.zeros((r, r))
        logdet = 0.0
        for sl in chunks(self.m):
            AW = coef @ self.d_rows(sl)
            det, _ = level_determinants(AW, k, derivatives=False)
            logdet += sum_of_logs(det)
            M = AW[npairs:]
            M /= det
            Cs = CT[:, :, sl]
            Y = np.multiply(Cs[0], M[0])
            if k == 2:
                buf = np.multiply(Cs[1], M[1])
                Y += buf
                gram += Y @ Cs[0].T
                np.multiply(Cs[1], M[2], out=Y)
                gram += Y @ Cs[1].T
            else:
                gram += Y @ Cs[0].T
        # the symmetric part (also exactly symmetric, for the Cholesky)
        gram += gram.T
        gram *= 0.5
        return gram, logdet

    def quadratic_pairs(self, G, C=None):
        """Per level the pairs of ``C_j G C_jᵀ`` (G symmetric), off-diagonal
        doubled: (pairs, m). ``C`` entry-major (k, c, m), the term's own
        cross-products by default."""
        C = self.CT if C is None else C
        out = np.empty((len(self.pairs), self.m))
        for sl in chunks(self.m):
            out[:, sl] = _quadratic_chunk(G, C[:, :, sl], self.pairs)
        return out

    def gradient(self, theta1, Kw):
        """The first term's θ-gradient of ``Σ_j log|A_j| − Σ_j ⟨M_j, K_j⟩``
        with K held fixed (K's own dependence on θ is the caller's part).

        Parameters
        ----------
        theta1 : ndarray
            The first term's θ elements.
        Kw : ndarray of shape (pairs, m)
            Per level the pairs of ``K_j``, the off-diagonal ones doubled,
            so that ``⟨M_j, K_j⟩ = Σ_p M_jp Kw_pj``.

        Returns
        -------
        ndarray of shape (len(theta1),)
        """
        k = self.k
        if k > 2:
            return _batched_gradient(theta1, self.design.D1, Kw)
        npairs = len(self.pairs)
        coef = coefficients(theta1.tolist(), k).T
        psi = np.zeros((2 * npairs, npairs + 1))
        for sl in chunks(self.m):
            d = self.d_rows(sl)
            AW = coef @ d
            det, ddet = level_determinants(AW, k)
            inv_det = 1.0 / det
            # ∂ log|A_j| = ddet·∂a / |A_j| and ∂M_j = (∂num_j − M_j ∂|A_j|) / |A_j|
            # (num_j = |A_j| M_j): the level factors of ∂a (rows 0..pairs) and
            # of ∂num (the rest)
            Kc = Kw[:, sl]
            s = np.einsum("ij,ij->j", AW[npairs:], Kc)
            s *= inv_det
            s += 1.0
            s *= inv_det
            factors = np.empty((2 * npairs, len(det)))
            np.multiply(ddet, s, out=factors[:npairs])
            np.multiply(Kc, -inv_det, out=factors[npairs:])
            psi += factors @ d.T
        dK = coefficient_derivatives(theta1, k)
        return np.tensordot(dK, psi, axes=([1, 2], [1, 0]))

    def derivatives(self, theta1, gamma, hessian=False):
        """The first term's part of the criterion's gradient (and Hessian)
        with one term of k <= 2 columns, in one pass over the levels.

        Per level ``φ_j = log|A_j| − ⟨M_j, K_j⟩`` with
        ``K_j = C_j Γ C_jᵀ`` (Γ the derivative of the rest of the criterion
        with respect to the Schur complement; :meth:`quadratic_pairs`
        and :meth:`gradient` fused, no per-level K kept). φ_j is a function
        of ``e_j = [d_j 1] K`` (A_j's pairs and those of ``|A_j| M_j``,
        :func:`coefficients`); its θ-derivatives are contracted with K's
        derivatives after the pass, as in :meth:`gradient`.

        With ``hessian``, also the second derivatives of ``Σ_j φ_j`` with K
        held fixed (the chain rule through ``e_j``: a few sums of per-level
        products, each a small product over the levels) and, per θ
        element, ``Σ_j C_jᵀ (∂M_j/∂θ_i) C_j``, the Schur complement's
        derivative (up to sign), from which the caller adds the curvature
        of the rest of the criterion.

        Returns
        -------
        gradient : ndarray of shape (n_theta,)
        hessian : ndarray of shape (n_theta, n_theta) or None
        grams : ndarray of shape (n_theta, r, r) or None
        """
        k, m = self.k, self.m
        CT = self.CT
        r = CT.shape[1]
        npairs = len(self.pairs)
        n_theta = len(theta1)
        coef = coefficients(theta1.tolist(), k).T
        dK = coefficient_derivatives(theta1, k)  # (n_theta, pairs + 1, 2 pairs)
        psi = np.zeros((2 * npairs, npairs + 1))
        if hessian:
            # per θ_i, rows (entry): the entries' θ_i-derivatives from [d_j 1]
            dcoef = dK.transpose(0, 2, 1).copy()
            # Σ_j s_j [d_j 1]ᵀ[d_j 1], Σ_j t_j ∂|A_j| ∂|A_j|ᵀ and the cross
            # terms of ∂|A_j| with ⟨∂(|A_j| M_j), K_j⟩
            weighted_d = np.zeros((npairs + 1, npairs + 1))
            H = np.zeros((n_theta, n_theta))
            grams = np.zeros((n_theta, r, r))
            lam = lambda_of(theta1, k)
        for sl in chunks(m):
            d = self.d_rows(sl)
            Cs = CT[:, :, sl]
            n = d.shape[1]
            # the pairs of K_j, off-diagonal doubled
            Kw = _quadratic_chunk(gamma, Cs, self.pairs)
            AW = coef @ d
            det, _ = level_determinants(AW, k, derivatives=False)
            inv_det = 1.0 / det
            # q_j = ⟨|A_j| M_j, K_j⟩; φ_j = log|A_j| − q_j / |A_j|, so
            # ∂φ_j/∂|A_j| = s_j, ∂φ_j/∂(|A_j| M_j) = −K_j / |A_j|
            q = np.einsum("ij,ij->j", AW[npairs:], Kw)
            s = q * inv_det
            s += 1.0
            s *= inv_det
            factors = np.empty((2 * npairs, n))
            _times_det_gradient(AW, k, s, out=factors[:npairs])
            np.multiply(Kw, -inv_det, out=factors[npairs:])
            psi += factors @ d.T
            if not hessian:
                continue
            # per θ_i (one θ element's rows at a time: all of them would
            # outgrow the cache), ∂|A_j|/∂θ_i = Σ_p (∂|A_j|/∂a_p) ∂a_p/∂θ_i
            # and kn_ij = ⟨∂(|A_j| M_j)/∂θ_i, K_j⟩
            dD, kn = np.empty((n_theta, n)), np.empty((n_theta, n))
            for i in range(n_theta):
                dAW = dcoef[i] @ d
                _times_det_gradient(AW, k, dAW, out=dD[i], summed=True)
                np.einsum("pj,pj->j", dAW[npairs:], Kw, out=kn[i])
            # ∂²φ_j/∂|A_j|² = −(1 + 2 q_j / |A_j|) / |A_j|²
            inv_det2 = inv_det * inv_det
            t = q * inv_det
            t *= -2.0
            t -= 1.0
            t *= inv_det2
            H += (dD * t) @ dD.T
            # ∂²φ_j/∂|A_j|∂(|A_j| M_j) = K_j / |A_j|²
            cross = (dD * inv_det2) @ kn.T
            H += cross
            H += cross.T
            weighted_d += (d * s) @ d.T
            _add_weight_derivative_grams(grams, AW, d, inv_det, lam, Cs)
        gradient = np.tensordot(dK, psi, axes=([1, 2], [1, 0]))
        if not hessian:
            return gradient, None, None
        # s_j ∂aᵀ (∂²|A|/∂a²) ∂a, and φ's gradient on K's second derivatives
        dA_coef = dK[:, :, :npairs]
        H += np.einsum(
            "icp,pq,ldq,cd->il", dA_coef, _DET_HESSIAN[k], dA_coef, weighted_d
        )
        d2K = coefficient_second_derivatives(theta1, k)
        H += np.tensordot(d2K, psi, axes=([2, 3], [1, 0]))
        grams += grams.transpose(0, 2, 1)
        return gradient, 0.5 * (H + H.T), grams

    def weight_derivatives(self, theta1):
        """``∂M_j/∂θ_i`` for every level and θ element: (m, n_theta, k, k)."""
        k = self.k
        if k > 2:
            return _batched_weight_derivatives(theta1, self.design.D1)
        npairs = len(self.pairs)
        AW = coefficients(theta1.tolist(), k).T @ self.d
        det, ddet = level_determinants(AW, k)
        M = AW[npairs:] / det
        out = np.empty((self.m, len(theta1), k, k))
        for i, dK in enumerate(coefficient_derivatives(theta1, k)):
            dAW = dK.T @ self.d
            dM = dAW[npairs:] - M * np.einsum("ij,ij->j", ddet, dAW[:npairs])
            dM /= det
            for p, (a, b) in enumerate(self.pairs):
                out[:, i, a, b] = out[:, i, b, a] = dM[p]
        return out


def _quadratic_chunk(gamma, Cs, pairs):
    """Per level of a chunk the pairs of ``C_j Γ C_jᵀ``, off-diagonal
    doubled: (pairs, n), from the chunk's entry-major ``C`` (k, r, n)."""
    CG = [gamma @ Cs[a] for a in range(Cs.shape[0])]
    Kw = np.empty((len(pairs), Cs.shape[2]))
    for i, (a, b) in enumerate(pairs):
        np.einsum("ij,ij->j", CG[a], Cs[b], out=Kw[i])
        if a != b:
            Kw[i] *= 2.0
    return Kw


def _times_det_gradient(AW, k, rows, out, summed=False):
    """Per level the gradient of ``|A_j|`` in A's pairs, ``(a11, −2 a01,
    a00)`` for k = 2 and 1 for k = 1 (from the A rows of ``AW``), times
    one row ``rows`` (n,) into ``out`` (pairs, n); or, with ``summed``,
    contracted with ``rows`` (pairs, n) into ``out`` (n,). No stacked copy
    of the gradient."""
    if k == 1:
        if summed:
            out[:] = rows[0]
        else:
            out[0] = rows
        return out
    a00, a01, a11 = AW[0], AW[1], AW[2]
    if summed:
        np.multiply(a11, rows[0], out=out)
        out += a00 * rows[2]
        out -= 2.0 * (a01 * rows[1])
        return out
    np.multiply(a11, rows, out=out[0])
    np.multiply(a01, rows, out=out[1])
    out[1] *= -2.0
    np.multiply(a00, rows, out=out[2])
    return out


def _add_weight_derivative_grams(grams, AW, d, inv_det, lam, Cs):
    """Add per θ element ``Σ_j C_jᵀ P_j E_ab N_j C_j`` of the chunk to
    ``grams`` (n_theta, r, r): the outer product of row a of
    ``U_j = P_jᵀ C_j`` and row b of ``V_j = N_j C_j`` (``P_j = I − M_j D_j``,
    ``N_j = A_j⁻¹ λᵀ``; ``∂M_j/∂λ_ab`` is that plus its transpose), one
    r x r product per θ element (only the (a, b) of θ's elements: a single
    product of all rows with all rows would form a block more, and
    OpenBLAS handles r x r results best)."""
    if Cs.shape[0] == 1:
        # P = 1 − M d = 1 / a, N = t / a (a = t² d + 1, M = t² / a)
        U = Cs[0] * inv_det
        grams[0] += U @ (U * lam[0, 0]).T
        return
    U, V = _uv_rows(AW, d, inv_det, lam, Cs)
    grams[0] += U[0] @ V[0].T
    grams[1] += U[1] @ V[0].T
    grams[2] += U[1] @ V[1].T


def _uv_rows(AW, d, inv_det, lam, Cs):
    """``U_j = P_jᵀ C_j`` and ``V_j = N_j C_j`` of a two-column term, each
    (2, r, n), from the entry-major rows of ``A_j`` and ``|A_j| M_j``
    (``AW``), of ``D_j`` (``d``) and of ``C_j`` (``Cs``, (2, r, n)).

    ``P_j = I − M_j D_j`` and ``N_j = A_j⁻¹ λᵀ = adj(A_j) λᵀ / |A_j|``
    entry by entry along the levels; the off-diagonal entries are formed
    with the opposite sign and subtracted (no negation pass).
    """
    a00, a01, a11, n00, n01, n11 = AW
    d00, d01, d11 = d[0], d[1], d[2]
    t0, t1, t2 = float(lam[0, 0]), float(lam[1, 0]), float(lam[1, 1])
    m00, m01, m11 = n00 * inv_det, n01 * inv_det, n11 * inv_det
    shared = m01 * d01
    p00 = m00 * d00
    p00 += shared
    np.subtract(1.0, p00, out=p00)
    p11 = m11 * d11
    p11 += shared
    np.subtract(1.0, p11, out=p11)
    minus_p01 = m00 * d01
    minus_p01 += m01 * d11
    minus_p10 = m01 * d00
    minus_p10 += m11 * d01
    # adj(A_j) / |A_j| times λᵀ = [[t0, t1], [0, t2]]
    i00, i01, i11 = a00 * inv_det, a01 * inv_det, a11 * inv_det
    n_00 = i11 * t0
    minus_n10 = i01 * t0
    n_01 = i11 * t1
    n_01 -= i01 * t2
    n_11 = i00 * t2
    n_11 -= i01 * t1
    C0, C1 = Cs[0], Cs[1]
    U, V = np.empty(Cs.shape), np.empty(Cs.shape)
    buf = np.empty(C0.shape)
    np.multiply(C0, p00, out=U[0])
    U[0] -= np.multiply(C1, minus_p10, out=buf)
    np.multiply(C1, p11, out=U[1])
    U[1] -= np.multiply(C0, minus_p01, out=buf)
    np.multiply(C0, n_00, out=V[0])
    V[0] += np.multiply(C1, n_01, out=buf)
    np.multiply(C1, n_11, out=V[1])
    V[1] -= np.multiply(C0, minus_n10, out=buf)
    return U, V


def _batched_weight_derivatives(theta1, D1):
    """:meth:`FirstTermLevels.weight_derivatives` for k >= 3:
    ``∂M_j/∂λ_ab = P_j E_ab N_j + (P_j E_ab N_j)ᵀ`` with ``N_j = A_j⁻¹ λᵀ``
    and ``P_j = I − M_j D_j``."""
    m, k = D1.shape[:2]
    lam = lambda_of(theta1, k)
    A = lam.T @ D1 @ lam
    A[:, np.arange(k), np.arange(k)] += 1.0
    N = np.linalg.solve(A, np.broadcast_to(lam.T, A.shape))
    P = np.eye(k) - (lam @ N) @ D1
    rows, cols = lower_triangle_indices(k)
    out = np.empty((m, len(theta1), k, k))
    for i, (a, b) in enumerate(zip(rows, cols, strict=True)):
        PEN = P[:, :, a, None] * N[:, b, None, :]
        out[:, i] = PEN + PEN.transpose(0, 2, 1)
    return out


def _batched_gram(lam, D1, C):
    """:meth:`FirstTermLevels.schur_update` for k >= 3 (batched products)."""
    m, k, r = C.shape
    gram = np.zeros((r, r))
    logdet = 0.0
    for sl in chunks(m):
        A = lam.T @ D1[sl] @ lam
        A[:, np.arange(k), np.arange(k)] += 1.0
        L1 = np.linalg.cholesky(A)
        flat = np.linalg.solve(L1, lam.T @ C[sl]).reshape(-1, r)
        gram += flat.T @ flat
        logdet += 2.0 * np.log(np.diagonal(L1, axis1=1, axis2=2)).sum()
    return gram, logdet


def _batched_gradient(theta1, D1, Kw):
    """:meth:`FirstTermLevels.gradient` for k >= 3, by batched k x k products.

    With ``N_j = A_j⁻¹ λᵀ``: ``∂ log|A_j|/∂λ_ab = 2 [N_j D_j]_ba`` and
    ``⟨∂M_j/∂λ_ab, K_j⟩ = 2 [N_j K_j (I − M_j D_j)]_ba``.
    """
    m, k = D1.shape[:2]
    lam = lambda_of(theta1, k)
    A = lam.T @ D1 @ lam
    A[:, np.arange(k), np.arange(k)] += 1.0
    N = np.linalg.solve(A, np.broadcast_to(lam.T, A.shape))
    M = lam @ N
    K = np.empty((m, k, k))
    for i, (a, b) in enumerate(pairs_of(k)):
        K[:, a, b] = K[:, b, a] = Kw[i] if a == b else 0.5 * Kw[i]
    inner = D1 - K + (K @ M) @ D1
    total = np.einsum("jab,jbc->ac", N, inner)
    rows, cols = lower_triangle_indices(k)
    return 2.0 * total[cols, rows]


def times_pairs(W, C):
    """Per level ``W_j C_j`` for W given by its pairs (m, pairs), C (m, k, c)."""
    m, k = C.shape[:2]
    full = np.empty((m, k, k))
    for i, (a, b) in enumerate(pairs_of(k)):
        full[:, a, b] = full[:, b, a] = W[:, i]
    return full @ C
