"""Random-slope columns far from 0 or badly scaled, standardised for the fit.

A slope column such as ``1e4 + N(0, 1)`` in ``(x | g)`` makes the
intercept's and the slope's effects nearly collinear: PIRLS overflowed
exp(η) and the optimiser stopped at a singular fit 0.34 below the maximum of
the log-likelihood (glmer's own fit stops there too). As in the linear
model (:class:`skmixed.mixed.estimator._Centring`), the term with ``Z A``
(columns centred and scaled, A from
:func:`skmixed.mixed.centring.slope_transform`) is the same model, with
``b = A b̃`` and ``Λ Λᵀ = A Λ̃ Λ̃ᵀ Aᵀ``: the GLMM is fitted in θ̃ and its θ,
b and conditional covariances mapped back.
"""

import numpy as np

from skmixed.mixed.centring import lower_factor, slope_transform
from skmixed.mixed.first_term import lambda_of, lower_triangle_indices


class SlopeScaling:
    """Per term, A (None where the term's columns are well scaled).

    Parameters
    ----------
    designs : list of TermDesign
        The model's terms, in the fit's order.
    """

    def __init__(self, designs):
        self.transforms = [slope_transform(d) for d in designs]
        self.ks = [d.k for d in designs]
        #: whether some term is standardised (else every map is the identity)
        self.active = any(A is not None for A in self.transforms)

    def columns(self, index, Z):
        """Term ``index``'s ``Z A``, elementwise: each column shifted first
        (so the shift costs no digits), then scaled."""
        A = self.transforms[index]
        if A is None:
            return Z
        scale = np.diagonal(A)
        shift = A[0] / scale
        shift[0] = 0.0  # column 0's entry is its own scale, not a shift
        return np.ascontiguousarray((Z + shift) * scale)

    def _map(self, theta, forward):
        if not self.active:
            return np.asarray(theta, dtype=np.float64)
        parts, start = [], 0
        for A, k in zip(self.transforms, self.ks, strict=True):
            size = k * (k + 1) // 2
            piece = np.asarray(theta[start : start + size], dtype=np.float64)
            start += size
            if A is not None:
                lam = lambda_of(piece, k)
                factor = A @ lam if forward else np.linalg.solve(A, lam)
                piece = lower_factor(factor)[lower_triangle_indices(k)]
            parts.append(piece)
        return np.concatenate(parts) if parts else np.zeros(0)

    def theta(self, theta_fit):
        """θ of the user's columns from θ̃ of the standardised ones."""
        return self._map(theta_fit, forward=True)

    def theta_fit(self, theta):
        """θ̃ of the standardised columns from θ of the user's."""
        return self._map(theta, forward=False)

    def effects(self, b_fit):
        """Per term, b of the user's columns from b̃ ((m, k) arrays)."""
        return [
            b if A is None else b @ A.T
            for b, A in zip(b_fit, self.transforms, strict=True)
        ]

    def covariances(self, covs_fit):
        """Per term, ``A C Aᵀ`` of (m, k, k) conditional covariances."""
        return [
            c if A is None else np.einsum("ab,mbc,dc->mad", A, c, A)
            for c, A in zip(covs_fit, self.transforms, strict=True)
        ]

    def theta_scales(self):
        """dθ/dθ̃ per element where every term is scalar (θ = a θ̃), else None."""
        if any(k > 1 for k in self.ks):
            return None
        return np.array([1.0 if A is None else A[0, 0] for A in self.transforms])
