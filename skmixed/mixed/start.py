"""A start for θ from moment estimates of the variance components.

lme4 starts every fit at θ = 1 (each random effect's sd equal to the
residual sd). Where an evaluation is expensive (large crossed designs,
optimised with the analytic gradient), most evaluations are spent
getting from there to the optimum's neighbourhood. For scalar terms the
between-level sums of squares of the OLS residuals give ANOVA-type moment
estimates of the variances (as SAS's MIVQUE0 starts do), from the
cross-products alone: with ``s_l = Σ z (y − Xβ̂)`` and ``d_l = Σ z²`` over
level l's rows, ``E[Σ_l s_l² / d_l] ≈ σ_b² Σ_l d_l + m σ²``, and the OLS
residual variance is about ``σ² + Σ_b σ_b² Σ_l d_l / n``. The optimiser
then starts close to the optimum (crossed-100k: θ = (1.001, 0.507) against
(0.992, 0.498)); the optimum reached is the criterion's, as from any start.
"""

import numpy as np
from scipy.linalg.lapack import dposv

# a component estimated at or below 0 starts at this fraction of σ² (not on
# the bound, where L-BFGS-B's first steps would stay)
_SMALLEST_RATIO = 0.01


def moment_start(design):
    """θ from moment estimates when every term is scalar, else None.

    Parameters
    ----------
    design : Design

    Returns
    -------
    ndarray of shape (n_terms,) or None
        The relative sds ``σ_b / σ``; None where the terms are not all
        scalar or the estimates are not usable.
    """
    if any(t.k != 1 for t in design.terms):
        return None
    p, n = design.p, design.n
    fit = ordinary_least_squares(design)
    if fit is None:
        return None
    beta, rss = fit
    # per term: the residual sums s_l and the squared column sums d_l
    parts = [(design.CX[:, 0, p] - design.CX[:, 0, :p] @ beta, design.D1[:, 0, 0])]
    diagonal = design.Bzz.diagonal()
    for term, offset in zip(design.terms[1:], design.offsets, strict=True):
        rows = slice(offset, offset + term.m)
        s = design.Bzx[rows, p] - design.Bzx[rows, :p] @ beta
        parts.append((s, diagonal[rows]))
    # unknowns (σ², σ_1², ..., σ_T²): one equation from the residual
    # variance, one from each term's between-level sum of squares
    size = len(parts) + 1
    A, b = np.zeros((size, size)), np.zeros(size)
    A[0, 0], b[0] = 1.0, rss / (n - p)
    inverse_d = []
    for i, (s, d) in enumerate(parts, start=1):
        seen = d > 0
        total = d.sum()
        A[0, i] = total / n
        A[i, 0], A[i, i] = np.count_nonzero(seen), total
        b[i] = (s[seen] ** 2 / d[seen]).sum()
        inverse_d.append(np.divide(1.0, d, out=np.zeros_like(d), where=seen))
    _add_crossings(design, A, inverse_d)
    try:
        variances = np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        return None
    if not (np.all(np.isfinite(variances)) and variances[0] > 0):
        return None
    ratios = np.maximum(variances[1:] / variances[0], _SMALLEST_RATIO)
    return np.sqrt(ratios)


def ordinary_least_squares(design):
    """``(β̂, residual sum of squares)`` of y on X alone, from ``[X y]ᵀ[X y]``;
    None if ``XᵀX`` is singular. LAPACK's dposv: numpy's solve wraps more,
    which counts in small fits."""
    p, Bxx = design.p, design.Bxx
    beta = np.zeros(0)
    if p:
        _, beta, info = dposv(Bxx[:p, :p], Bxx[:p, p])
        if info != 0:
            return None
    return beta, Bxx[p, p] - beta @ Bxx[:p, p]


def _add_crossings(design, A, inverse_d):
    """Other terms' effects in a term's level sums (crossed factors).

    ``E[s_l²]`` gains ``σ_k² Σ_l' c_ll'²`` for each level l' of another term
    k that level l meets (``c_ll'`` their cross-product), so term i's
    equation gains ``σ_k² Σ_ll' c_ll'² / d_l``. Terms are numbered as the
    unknowns: the first 1, the later ones 2, 3, ...
    """
    for t, blk in enumerate(design.blocks, start=2):
        squares = blk.values[:, 0, 0] ** 2
        A[1, t] += squares @ inverse_d[0][blk.rows]
        A[t, 1] += squares @ inverse_d[t - 1][blk.cols]
    if len(design.terms) < 3:
        return
    # the later terms among themselves: Bzz off its terms' diagonal blocks
    # (both triangles stored, so each pair adds to both equations)
    later = design.Bzz.tocoo()
    starts = np.asarray(design.offsets)
    term_row = np.searchsorted(starts, later.row, side="right") + 1
    term_col = np.searchsorted(starts, later.col, side="right") + 1
    across = term_row != term_col
    inverse_rest = np.concatenate(inverse_d[1:])
    weights = later.data[across] ** 2 * inverse_rest[later.row[across]]
    np.add.at(A, (term_row[across], term_col[across]), weights)
