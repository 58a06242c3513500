"""Random-effect columns that the fixed-effect columns already span.

In ``y ~ x + f + (1 | f)`` every indicator column of ``(1 | f)`` is a sum
of the fixed part's columns (the intercept and f's dummies): the fixed
effects fit each level's mean, the random intercepts have nothing left to
explain, and the criterion does not depend on their variance. Any θ is an
optimum, so θ, the variance components and the fixed effects' standard
errors and df are arbitrary. lme4 fits such models without a word (or with
a Hessian warning); we say what is wrong.

A column ``z`` of Z lies in the span of X when its residual after least
squares on X is zero, ``zᵀz - zᵀX (XᵀX)⁻¹ Xᵀz = 0``. Summed over a term
column's levels this needs only the cross-products a fit already has
(``ZᵀZ``'s diagonal, ``ZᵀX`` and ``XᵀX``), whatever the data's size.
"""

import numpy as np
from scipy.linalg import solve_triangular

from skmixed.mixed.design import build_design

# relative residual below which a column counts as spanned: rounding in the
# cross-products leaves ~1e-13; a real effect leaves far more
_SPANNED = 1e-9
# skip the check where it would cost more than this (flops)
_MAX_WORK = 2e9


def spanned_columns(design):
    """Term columns whose every level lies in the span of the fixed part.

    Parameters
    ----------
    design : Design
        The fit's cross-products (weighted ones for a weighted fit).

    Returns
    -------
    list of (TermDesign, list of str)
        Each term with a spanned column, and the names of those columns.
    """
    p = design.p
    diagonal_rest = None
    products = []
    for index, term in enumerate(design.terms):
        m, k = term.m, term.k
        if p < m:
            continue  # see _spanned: m independent columns need rank >= m
        if index == 0:
            ZtX = design.CX[:, :, :p].reshape(m * k, p)
            totals = np.einsum("ijj->j", design.D1)
        else:
            if diagonal_rest is None:
                diagonal_rest = design.Bzz.diagonal()
            start = design.offsets[index - 1]
            rows = slice(start, start + m * k)
            ZtX = design.Bzx[rows, :p]
            totals = diagonal_rest[rows].reshape(m, k).sum(axis=0)
        products.append((term, ZtX, totals))
    return _spanned(design.Bxx[:p, :p], products)


def spanned_columns_of_rows(X, y, terms):
    """:func:`spanned_columns` from the rows (a GLMM's X, y and terms).

    The rows' cross-products are formed (:func:`build_design`) only when
    some term has no more levels than X has columns.
    """
    if all(term.m > X.shape[1] for term in terms):
        return []
    return spanned_columns(build_design(X, y, terms))


def _spanned(XtX, products):
    # A term column's m levels are m linearly independent columns of Z (apart
    # from levels where the column is all zero), so X spans them all only if
    # p >= m: the callers skip the other terms before any work (sleepstudy's
    # 18 subjects against 2 fixed-effect columns cost nothing).
    p = XtX.shape[0]
    if p == 0 or not products:
        return []
    # XᵀX scaled to unit diagonal, so that a badly scaled column (1e9 + x)
    # costs no digits in the factorisation
    scale = np.sqrt(np.diag(XtX))
    if not np.all(scale > 0):
        return []
    try:
        L = np.linalg.cholesky(XtX / np.outer(scale, scale))
    except np.linalg.LinAlgError:
        return []
    found = []
    for term, ZtX, totals in products:
        m, k = term.m, term.k
        if m * k * p * p > _MAX_WORK:
            continue
        # ‖L⁻¹ Xᵀz‖² = zᵀX (XᵀX)⁻¹ Xᵀz, summed over the column's levels
        W = solve_triangular(L, (ZtX / scale).T, lower=True, check_finite=False)
        explained = np.square(W).sum(axis=0).reshape(m, k).sum(axis=0)
        spanned = (totals > 0) & (totals - explained <= _SPANNED * totals)
        if spanned.any():
            names = [name for name, s in zip(term.names, spanned, strict=True) if s]
            found.append((term, names))
    return found


def spanned_message(term, columns):
    """The warning for one term's spanned columns."""
    spec = f"({' + '.join(term.names)} | {term.factor})".replace("(Intercept)", "1")
    which = ", ".join(repr(c) for c in columns)
    return (
        f"random-effects term {spec}: column(s) {which} lie in the span of the "
        f"fixed-effect columns ({term.factor}, or a factor nested in it, is also "
        "in the fixed part?). The criterion then does not depend on their "
        "variance, so it is not identifiable: θ, the variance components and "
        "the fixed effects' standard errors are arbitrary. Drop the term, or "
        "the fixed-effect columns that span it."
    )
