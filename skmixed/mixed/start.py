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

import math

import numpy as np
from scipy.linalg.lapack import dposv

from skmixed.mixed.first_term import FirstTermLevels, chunks

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
    ratios = _scalar_ratios(design)
    if ratios is None:
        return None
    return np.sqrt(np.maximum(ratios, _SMALLEST_RATIO))


def _scalar_ratios(design):
    """The variance ratios ``σ_b² / σ²`` of :func:`moment_start` (before
    its floor), or None."""
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
    return variances[1:] / variances[0]


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


def interior_start(design, levels=None):
    """θ from moment estimates for one random-effects term of one or two
    columns, when they put the optimum inside the bounds; else None.

    One column: :func:`moment_start`'s estimate, unless its variance is
    not positive. Two: per level, with ``D_l = Z_lᵀZ_l = L_l L_lᵀ``
    (Cholesky) and ``r_l = Z_lᵀ(y − Xβ̂)`` (β̂ by ordinary least squares),
    ``u_l = L_l⁻¹ r_l`` has ``E[u_l u_lᵀ] ≈ L_lᵀ Σ L_l + σ² I`` whatever
    the conditioning of ``D_l`` (the noise in ``u_l`` is white), so that
    ``Σ_l L_lᵀ Σ L_l = Σ_l u_l u_lᵀ − m σ² I`` is three linear equations in
    Σ's entries (a level whose two columns are proportional, one row say,
    is in the first only); σ² is the residual variance within levels.
    Levels weigh in by their information (no ``D_l⁻¹``, which a level of
    two or three rows makes huge). On 1M levels of ~10 rows each, the
    start is within ~1e-4 of the optimum (of two rows each, ~1e-3). None
    where ``Σ / σ²`` has an eigenvalue below 1e-4 (the optimum is then
    likely on the boundary, where the caller's derivative-free search is
    the one to trust) or the estimate is not finite.

    Parameters
    ----------
    design : Design
    levels : FirstTermLevels, optional
        The first term's entry-major per-level arrays (a criterion's, to
        share them); formed from ``design`` when None.

    Returns
    -------
    ndarray of shape (n_theta,) or None
    """
    if len(design.terms) != 1 or design.terms[0].k > 2:
        return None
    if design.terms[0].k == 1:
        ratios = _scalar_ratios(design)
        if ratios is None or not ratios[0] >= _SMALLEST_INTERIOR:
            return None
        return np.sqrt(ratios)
    return _two_column_start(design, levels or FirstTermLevels(design))


# the smallest relative variance (an eigenvalue of Σ / σ²) that
# interior_start takes as inside the bounds
_SMALLEST_INTERIOR = 1e-4


def _two_column_start(design, levels):
    """:func:`interior_start` for a term of two columns."""
    n = design.n
    fit = ordinary_least_squares(design)
    if fit is None:
        return None
    beta, rss = fit
    coef = np.append(-beta, 1.0)
    # by chunks of levels (every temporary in cache), along the levels'
    # entry-major rows: Σ_l of the products of l0, l1, l2 (the Cholesky
    # factors' entries) and of u0, u1 over the levels whose two columns
    # differ; a level whose columns do not (one row, say) has no second
    # direction, and only its l0, l1, u0 count
    sums = np.zeros(9)  # l0l0 l0l1 l1l1 l0l2 l1l2 l2l2 u0u0 u0u1 u1u1
    m_good = m_seen = 0  # levels with both directions, with the first
    with np.errstate(divide="ignore", invalid="ignore"):
        for sl in chunks(levels.m):
            d00, d01, d11 = levels.d_rows(sl)[:3]
            r = levels.combined(coef, sl)  # r_l = Z_lᵀ y − Z_lᵀ X β̂
            rows = np.empty((5, len(d00)))
            l0, l1, l2, u0, u1 = rows
            np.sqrt(d00, out=l0)
            np.divide(d01, l0, out=l1)
            np.multiply(l1, l1, out=l2)
            np.subtract(d11, l2, out=l2)
            seen = d00 > 0.0
            good = seen & (l2 > 1e-8 * d11)
            good_here = int(np.count_nonzero(good))
            m_good += good_here
            m_seen += int(np.count_nonzero(seen))
            np.sqrt(l2, out=l2)
            np.divide(r[0], l0, out=u0)
            np.multiply(l1, u0, out=u1)
            np.subtract(r[1], u1, out=u1)
            u1 /= l2
            if good_here < len(good):
                # E[u0²] = l0² Σ00 + 2 l0 l1 Σ01 + l1² Σ11 + σ² holds for
                # those too: left out, their residuals (a third of the rows
                # at two rows a level) made σ² seem larger and Σ / σ²
                # smaller, far from the optimum or below the bound
                rows[2:5:2, ~good] = 0.0
                rows[:, ~seen] = 0.0
            # (dots: numpy's rows @ rows.T goes to syrk, ~5x slower here)
            sums += [
                l0 @ l0,
                l0 @ l1,
                l1 @ l1,
                l0 @ l2,
                l1 @ l2,
                l2 @ l2,
                u0 @ u0,
                u0 @ u1,
                u1 @ u1,
            ]
    # σ²'s degrees of freedom: the rows less the directions of every level
    # (a level of one row, whose whole residual is its u0, takes its row)
    dof = n - m_good - m_seen
    if m_good < 3 or dof <= 0:
        return None
    s0, s1, s2, s3, s4, s5, uu0, uu1, uu2 = sums.tolist()
    sigma2 = (float(rss) - uu0 - uu2) / dof
    if not (math.isfinite(sigma2) and sigma2 > 0.0):
        return None
    A = np.array(
        [
            [s0, 2.0 * s1, s2],
            [0.0, s3, s4],
            [0.0, 0.0, s5],
        ]
    )
    rhs = np.array([uu0 - m_seen * sigma2, uu1, uu2 - m_good * sigma2])
    try:
        a, b, c = (np.linalg.solve(A, rhs) / sigma2).tolist()
    except np.linalg.LinAlgError:
        return None
    if not all(map(math.isfinite, (a, b, c))):
        return None
    smallest = 0.5 * (a + c) - math.hypot(0.5 * (a - c), b)
    if not smallest >= _SMALLEST_INTERIOR:
        return None
    l00 = math.sqrt(a)
    l10 = b / l00
    return np.array([l00, l10, math.sqrt(c - l10 * l10)])
