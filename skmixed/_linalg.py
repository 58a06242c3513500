"""Least squares as R's ``lm`` computes it: QR, and R's rule for aliased columns.

R's ``lm.fit`` factors the design with LINPACK's ``dqrdc2``: columns are taken
in order, and a column whose part not explained by the columns already taken
has a norm below ``tol * (its own norm)`` (``tol = 1e-7``) is *aliased*: moved
aside and given an NA coefficient. We apply the same test. A Householder QR
without pivoting gives, on its diagonal, exactly those residual norms
(``|R[j, j]|`` is the norm of column ``j`` after projecting out the columns
before it), so the first aliased column is found from one factorisation; it is
dropped and the rest refactored until none is left.

The response is appended as a last column (``[X | y]``): the last column of
the triangular factor is ``Qᵀy`` and its last diagonal element is the square
root of the residual sum of squares, so ``Q`` is never formed.
"""

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

#: R's ``lm.fit`` tolerance for aliased columns.
ALIAS_TOL = 1e-7


@dataclass
class LeastSquares:
    """A least-squares fit in the design's column order.

    Attributes
    ----------
    coef : ndarray of shape (p,)
        Coefficients; NaN for aliased columns.
    aliased : ndarray of bool, shape (p,)
    rank : int
    rss : float
        Residual sum of squares.
    cov_unscaled : ndarray of shape (p, p)
        ``(XᵀX)⁻¹`` over the non-aliased columns (NaN rows and columns for
        the aliased ones): R's ``cov.unscaled``.
    """

    coef: np.ndarray
    aliased: np.ndarray
    rank: int
    rss: float
    cov_unscaled: np.ndarray


def _r_factor(design, y):
    """Triangular factor of ``[design | y]`` (no ``Q``)."""
    augmented = np.empty((design.shape[0], design.shape[1] + 1))
    augmented[:, :-1] = design
    augmented[:, -1] = y
    return np.linalg.qr(augmented, mode="r")


def _first_aliased(r_factor, norms, tol):
    """Index (among the factored columns) of the first aliased one, or None."""
    k = len(norms)
    n_diag = min(r_factor.shape[0], k)
    diag = np.zeros(k)
    diag[:n_diag] = np.abs(np.diagonal(r_factor)[:n_diag])
    # dqrdc2 measures a zero column against 1, so it is always aliased.
    reference = np.where(norms > 0, norms, 1.0)
    bad = np.flatnonzero(diag < tol * reference)
    return int(bad[0]) if bad.size else None


def least_squares(design, y, *, order=None, norms=None, tol=ALIAS_TOL):
    """Solve ``min ||y - design @ b||`` with R's handling of aliased columns.

    Parameters
    ----------
    design : ndarray of shape (n, p)
    y : ndarray of shape (n,)
    order : sequence of int, optional
        The order in which columns are tested for aliasing (default: their
        order in ``design``). A column is aliased when it is (nearly) a
        combination of columns tested before it.
    norms : ndarray of shape (p,), optional
        Norms the residual norms are compared with (default: the norms of
        ``design``'s columns). The within estimator passes the norms of the
        columns before the group means were removed, so that it flags the
        same columns as the dummy-variable fit.
    tol : float, default=1e-7
        R's ``lm`` tolerance.

    Returns
    -------
    LeastSquares

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0, 0], [1, 1, 2], [1, 2, 4], [1, 3, 6]])
    >>> fit = least_squares(X, np.array([1.0, 3, 5, 7.5]))
    >>> fit.aliased.tolist(), fit.rank
    ([False, False, True], 2)
    >>> np.round(fit.coef, 4).tolist()
    [0.9, 2.15, nan]
    """
    design = np.asarray(design, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, p = design.shape
    order = np.arange(p) if order is None else np.asarray(order, dtype=np.intp)
    if norms is None:
        norms = np.sqrt(np.einsum("ij,ij->j", design, design))
    norms = np.asarray(norms, dtype=np.float64)
    kept = list(order)
    while True:
        r_factor = _r_factor(design[:, kept], y)
        bad = _first_aliased(r_factor, norms[kept], tol)
        if bad is None:
            break
        del kept[bad]
    k = len(kept)
    rss = float(r_factor[k, k] ** 2) if r_factor.shape[0] > k else 0.0
    if k:
        triangular = r_factor[:k, :k]
        coef_kept = solve_triangular(triangular, r_factor[:k, k])
        inverse = solve_triangular(triangular, np.eye(k))
        cov_kept = inverse @ inverse.T
    else:
        coef_kept, cov_kept = np.zeros(0), np.zeros((0, 0))
    coef = np.full(p, np.nan)
    coef[kept] = coef_kept
    cov = np.full((p, p), np.nan)
    cov[np.ix_(kept, kept)] = cov_kept
    aliased = np.ones(p, dtype=bool)
    aliased[kept] = False
    return LeastSquares(coef, aliased, k, rss, cov)


def tall_least_squares(augmented, norms, *, tol=ALIAS_TOL, guard=1e-4):
    """Least squares for many rows and few columns, given ``[X | y]``.

    The cross-product matrix of ``[X | y]`` is one BLAS pass; its Cholesky
    factor is the triangular factor of the QR decomposition. That squares the
    condition number, so it is used only when every column keeps at least
    ``guard`` of its norm after the columns before it (then one step of
    iterative refinement makes the solution as accurate as a QR solve);
    otherwise -- nearly collinear or aliased columns -- :func:`least_squares`
    (Householder QR, R's aliasing rule) takes over.

    Parameters
    ----------
    augmented : ndarray of shape (n, m + 1)
        The design with the response as last column (Fortran order is
        fastest).
    norms : ndarray of shape (m,)
        Norms for the aliasing test, as in :func:`least_squares`.

    Returns
    -------
    fit : LeastSquares
    residuals : ndarray of shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((1000, 3))
    >>> fit, r = tall_least_squares(A, np.linalg.norm(A[:, :2], axis=0))
    >>> ref = least_squares(A[:, :2], A[:, 2])
    >>> bool(np.allclose(fit.coef, ref.coef, rtol=1e-12))
    True
    """
    m = augmented.shape[1] - 1
    X, y = augmented[:, :m], augmented[:, m]
    if m == 0:
        empty = LeastSquares(
            np.zeros(0), np.zeros(0, bool), 0, float(y @ y), np.zeros((0, 0))
        )
        return empty, y.copy()
    gram = augmented.T @ augmented
    factor = _guarded_cholesky(gram[:m, :m], np.asarray(norms, dtype=float), guard)
    if factor is None:
        fit = least_squares(X, y, norms=norms, tol=tol)
        return fit, y - X @ np.where(fit.aliased, 0.0, fit.coef)
    coef = cho_solve(factor, gram[:m, m])
    residuals = y - X @ coef
    coef += cho_solve(factor, X.T @ residuals)  # iterative refinement
    residuals = y - X @ coef
    cov = cho_solve(factor, np.eye(m))
    aliased = np.zeros(m, dtype=bool)
    return LeastSquares(coef, aliased, m, float(residuals @ residuals), cov), residuals


def _guarded_cholesky(gram, norms, guard):
    """Cholesky factor of a Gram matrix, or None if a column is nearly dependent."""
    try:
        factor = cho_factor(gram, lower=False)
    except np.linalg.LinAlgError:
        return None
    diag = np.abs(np.diagonal(factor[0]))
    if np.any(diag < guard * np.where(norms > 0, norms, 1.0)):
        return None
    return factor


def group_sums(codes, n_groups, values):
    """Per-group column sums of ``values`` (n, m) -> (n_groups, m), by bincount.

    ``np.bincount`` with weights is a single pass over the rows, several times
    faster than a pandas groupby or ``np.add.at``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        return np.bincount(codes, weights=values, minlength=n_groups)
    out = np.empty((n_groups, values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(codes, weights=values[:, j], minlength=n_groups)
    return out


def demean(codes, n_groups, values, counts=None, weights=None):
    """Subtract each group's (weighted) mean from the columns of ``values``.

    Returns ``(demeaned, means)`` with ``means`` of shape (n_groups, m).
    With ``weights``, ``counts`` are the per-group sums of the weights.

    Examples
    --------
    >>> import numpy as np
    >>> codes = np.array([0, 0, 1, 1])
    >>> out, means = demean(codes, 2, np.array([[1.0], [3.0], [10.0], [20.0]]))
    >>> out.ravel().tolist(), means.ravel().tolist()
    ([-1.0, 1.0, -5.0, 5.0], [2.0, 15.0])
    """
    if counts is None:
        counts = np.bincount(codes, weights=weights, minlength=n_groups)
    if weights is not None:
        sums = group_sums(codes, n_groups, values * weights[:, None])
    else:
        sums = group_sums(codes, n_groups, values)
    means = sums / counts[:, None]
    return values - means[codes], means


def block_diagonal(blocks):
    """(m, k_i, k_i) blocks -> (m, sum k, sum k) block-diagonal arrays.

    Per level, the blocks of a factor's terms side by side (the
    conditional covariances of a factor with several terms).
    """
    if len(blocks) == 1:
        return blocks[0]
    m = blocks[0].shape[0]
    size = sum(b.shape[1] for b in blocks)
    out = np.zeros((m, size, size))
    start = 0
    for b in blocks:
        k = b.shape[1]
        out[:, start : start + k, start : start + k] = b
        start += k
    return out
