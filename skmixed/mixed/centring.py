"""Fixed-effect columns far from 0 relative to their spread, centred.

A column such as ``1e4 + N(0, 1)`` or a year (2000..2020) beside the
intercept is nearly collinear with it: the cross-products of the data's own
scale lose the digits of the shift, and the coordinates (β0, β1) are badly
conditioned for optimisers and finite differences. With ``X M`` (shifted
columns centred, M unit upper triangular with the negated means in row 0)
the model is the same, ``β = M β̃`` and ``vcov(β) = M vcov(β̃) Mᵀ``; det M = 1,
so every criterion is the same function of the model. The linear model
(:class:`skmixed.mixed.estimator._Centring`) and the GLMM
(:mod:`skmixed.glmm.estimator`) both fit through it.
"""

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


class FixedCentring:
    """The map between the user's fixed-effect columns and the centred ones.

    Parameters
    ----------
    M : ndarray of shape (p, p)
        From :func:`shift_matrix`: the identity, or unit upper triangular
        with the shifts in row 0.
    """

    def __init__(self, M):
        self.M = M
        #: whether some column is centred (else every map is the identity)
        self.active = bool(np.any(M[0, 1:] != 0.0)) if M.shape[0] else False

    def columns(self, X):
        """``X M``: each shifted column minus its mean, computed elementwise."""
        if not self.active:
            return X
        Xc = np.array(X, dtype=np.float64, order="C")
        Xc[:, 1:] += self.M[0, 1:]  # column 0 is the intercept
        return Xc

    def beta(self, beta_centred):
        """β of the user's columns from β̃ of the centred ones."""
        return self.M @ beta_centred if self.active else beta_centred

    def beta_centred(self, beta):
        """β̃ of the centred columns from β of the user's (``M⁻¹ β``)."""
        if not self.active:
            return beta
        beta = np.asarray(beta, dtype=np.float64)
        # M⁻¹ is unit upper triangular with row 0 negated
        out = beta.copy()
        out[0] = beta[0] - self.M[0, 1:] @ beta[1:]
        return out

    def covariance(self, cov_centred):
        """``M cov Mᵀ``: a covariance of β̃ as one of β."""
        if not self.active:
            return cov_centred
        return self.M @ cov_centred @ self.M.T
