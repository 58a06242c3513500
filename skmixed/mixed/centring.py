"""Columns far from 0 relative to their spread, or badly scaled: centred
and scaled for the fit, with the maps back.

A column such as ``1e4 + N(0, 1)`` or a year (2000..2020) beside the
intercept is nearly collinear with it: the cross-products of the data's own
scale lose the digits of the shift, and the coordinates (β0, β1) are badly
conditioned for optimisers and finite differences. With ``X M`` (shifted
columns centred, M unit upper triangular with the negated means in row 0)
the model is the same, ``β = M β̃`` and ``vcov(β) = M vcov(β̃) Mᵀ``; det M = 1,
so every criterion is the same function of the model. The linear model
(:class:`skmixed.mixed.estimator._Centring`) and the GLMM
(:mod:`skmixed.glmm.estimator`) both fit through it.

The GLMM also scales columns whose spread is far from 1 (``1e6 x``,
``1e-6 x``): ``X M S`` with S diagonal, ``β = M S β̃``. Its optimiser and
lme4's finite-difference check in (θ, β) take steps of fixed size in β̃,
which at the data's scale moved η by 100 per step (a spurious "Hessian not
positive definite") or by 1e-10 (a Hessian of rounding noise and standard
errors 100 times too small, without a warning).

Random-slope columns: :func:`slope_transform` gives per term the A with
``Z A`` standardised (``b = A b̃``, ``ΛΛᵀ = A Λ̃Λ̃ᵀ Aᵀ``), used by the
linear model's ``_StandardisedTheta`` and ``_Centring`` and by
:mod:`skmixed.glmm.slopes`.
"""

import math

import numpy as np

#: rms of a well-scaled column (low, high) and the largest |mean| / sd
WELL_SCALED = (1e-2, 1e2, 1e2)


def maybe_shifted(gram, j):
    """Whether column j of X could be far from 0 relative to its spread,
    from the unweighted ``[X y]ᵀ[X y]`` (column 0 the intercept): a screen
    with a tenfold margin, so that most fits read no column again (two
    reductions per column were ~8% of a sleepstudy fit); the rows decide."""
    n, total, squares = gram[0, 0], gram[0, j], gram[j, j]
    # n Σx² − (Σx)² = n² var: below 1e-3 (Σx)² where var < 1e-3 mean²
    return n * squares - total * total < 10.0 / WELL_SCALED[2] ** 2 * total * total


def shift_matrix(X, x_names, x_moments=None, gram=None):
    """M with ``X M`` the shifted columns centred (the identity if none).

    Parameters
    ----------
    X : ndarray of shape (n, p) or None
        The fixed-effect columns (None: a fit from sums, ``x_moments``
        then gives each column's mean and sd).
    x_names : list of str
        Column names; only a model whose column 0 is ``"(Intercept)"`` can
        absorb a shift.
    x_moments : sequence of (mean, sd), optional
    gram : ndarray, optional
        The unweighted ``[X y]ᵀ[X y]``, when known: screens out the columns
        that cannot be shifted without reading them (:func:`maybe_shifted`).
    """
    p = len(x_names)
    M = np.eye(p)
    if not p or x_names[0] != "(Intercept)":
        return M
    for j in range(1, p):
        if gram is not None and not maybe_shifted(gram, j):
            continue
        if X is not None:
            mean, sd = float(X[:, j].mean()), float(X[:, j].std())
        else:
            mean, sd = (float(v) for v in x_moments[j])
        if sd > 0.0 and abs(mean) > WELL_SCALED[2] * sd:
            M[0, j] = -mean
    return M


def response_shift(x_names, y_range):
    """A constant to take from y before its cross-products are formed (0.0
    if none), from y's range ``(min, max)``.

    ``y = 1e8 + N(0, 1)`` loses its digits in ``yᵀy`` (the penalised
    residual sum of squares is then the difference of numbers of 1e16 n):
    θ, σ and the criterion came out wrong without a warning. With an
    intercept, ``y − c`` is the same model (``β0`` less c, nothing else
    changed), whatever c: the middle of the range, which a fit from sums
    knows too. Only a model whose column 0 is ``"(Intercept)"`` can absorb
    it.
    """
    if not x_names or x_names[0] != "(Intercept)":
        return 0.0
    low, high = (float(v) for v in y_range)
    middle = 0.5 * (low + high)
    if not (math.isfinite(middle) and 0.0 < 10.0 * (high - low) < abs(middle)):
        return 0.0
    return middle


def column_scales(X, M):
    """Per column of ``X M``, 1 or the reciprocal of its spread where that
    is outside ``WELL_SCALED[:2]`` (sd of a centred column, else rms)."""
    low, high, _ = WELL_SCALED
    scales = np.ones(X.shape[1])
    for j in range(X.shape[1]):
        if j > 0 and M[0, j] != 0.0:  # centred: its sd
            spread = float(X[:, j].std())
        else:
            spread = float(np.sqrt(np.mean(X[:, j] ** 2)))
        if spread > 0.0 and not low <= spread <= high:
            scales[j] = 1.0 / spread
    return scales


class FixedCentring:
    """The map between the user's fixed-effect columns and the fitted ones.

    Parameters
    ----------
    M : ndarray of shape (p, p)
        From :func:`shift_matrix`: the identity, or unit upper triangular
        with the shifts in row 0.
    scales : ndarray of shape (p,), optional
        From :func:`column_scales`: the fitted columns are ``X M S``,
        ``S = diag(scales)`` (ones when None).
    """

    def __init__(self, M, scales=None):
        p = M.shape[0]
        self.M = M
        self.scales = np.ones(p) if scales is None else np.asarray(scales)
        #: ``T = M S``, the fitted columns ``X T`` and ``β = T β̃``
        self.T = M * self.scales
        #: whether some column is moved (else every map is the identity)
        self.active = bool(p) and not np.array_equal(self.T, np.eye(p))

    def columns(self, X):
        """``X M S``: each shifted column minus its mean, then scaled,
        computed elementwise (the shift first, so it costs no digits)."""
        if not self.active:
            return X
        Xc = np.array(X, dtype=np.float64, order="C")
        Xc[:, 1:] += self.M[0, 1:]  # column 0 is the intercept
        Xc *= self.scales
        return Xc

    def beta(self, beta_centred):
        """β of the user's columns from β̃ of the fitted ones (``T β̃``)."""
        return self.T @ beta_centred if self.active else beta_centred

    def beta_centred(self, beta):
        """β̃ of the fitted columns from β of the user's (``T⁻¹ β``)."""
        if not self.active:
            return beta
        beta = np.asarray(beta, dtype=np.float64)
        # M⁻¹ is unit upper triangular with row 0 negated
        out = beta.copy()
        out[0] = beta[0] - self.M[0, 1:] @ beta[1:]
        return out / self.scales

    def covariance(self, cov_centred):
        """``T cov Tᵀ``: a covariance of β̃ as one of β."""
        if not self.active:
            return cov_centred
        return self.T @ cov_centred @ self.T.T


# -- random-slope columns ----------------------------------------------------
def slope_transform(term):
    """Upper-triangular A with ``Z A`` the term's standardised columns, or None.

    With an intercept in the term a slope column is centred and scaled (the
    unstructured covariance makes that the same model); without, scaled.
    """
    if term.Z is None and term.moments is None:
        return None
    k = term.k
    has_intercept = term.names[0] == "(Intercept)"
    A = None
    for j in range(k):
        if term.names[j] == "(Intercept)":
            continue
        if term.Z is not None:
            mean, sd = mean_sd(term.Z[:, j])
        else:  # a design from chunks of rows: the moments from their sums
            mean, sd = (float(v) for v in term.moments[j])
        rms = math.sqrt(mean * mean + sd * sd)
        # standardised when its root mean square is outside [1e-2, 1e2] or
        # its mean exceeds 100 standard deviations
        low, high, ratio = WELL_SCALED
        if rms == 0.0 or (low <= rms <= high and abs(mean) <= ratio * sd):
            continue
        A = np.eye(k) if A is None else A
        if has_intercept and sd > 0.0:
            A[j, j], A[0, j] = 1.0 / sd, -mean / sd
        else:
            A[j, j] = 1.0 / rms
    if A is not None and np.array_equal(A, np.eye(k)):
        return None
    return A


def mean_sd(column):
    """``column.mean()`` and ``column.std()`` (the same sums, fewer calls)."""
    n = column.shape[0]
    mean = column.sum() / n
    deviation = column - mean
    deviation *= deviation
    return float(mean), math.sqrt(deviation.sum() / n)


def lower_factor(B):
    """Lower-triangular L, non-negative diagonal, with ``L Lᵀ = B Bᵀ`` (by QR)."""
    r = np.linalg.qr(B.T, mode="r")
    L = r.T
    signs = np.sign(np.diagonal(L))
    return L * np.where(signs == 0.0, 1.0, signs)
