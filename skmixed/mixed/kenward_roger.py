"""Kenward-Roger adjusted covariance and degrees of freedom (REML fits).

Kenward and Roger (1997, Biometrics 53:983) correct the covariance of β̂ for
the uncertainty of the variance parameters and give F tests an
approximate denominator df. The computation follows their paper in the
form pbkrtest implements (Halekoh and Højsgaard 2014, J. Stat. Softw.
59(9)), so the numbers match lmerTest's ``ddf = "Kenward-Roger"``:

- the marginal covariance is linear in the covariance parameters,
  ``Σ = Σ_r φ_r G_r``: one ``G_r`` per variance and covariance of each
  random-effects term (``Z_i Z_jᵀ + Z_j Z_iᵀ`` for a covariance) and ``I``
  for the residual variance;
- with ``P_r = −XᵀΣ⁻¹G_rΣ⁻¹X``, ``Q_rs = XᵀΣ⁻¹G_rΣ⁻¹G_sΣ⁻¹X`` and the
  expected information ``I_rs = tr(Σ⁻¹G_rΣ⁻¹G_s) − 2 tr(Φ Q_rs) +
  tr(Φ P_r Φ P_s)``, ``W = 2 I⁻¹`` and the adjusted covariance is
  ``Φ_A = Φ + 2 Φ (Σ_rs W_rs (Q_rs − P_r Φ P_s)) Φ``.

This needs dense n x n matrices (one per covariance parameter), so it is
refused above :data:`MAX_OBSERVATIONS` rows.
"""

from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats

from skmixed.mixed.inference import _f_row

#: Largest number of observations for which Kenward-Roger is computed: its
#: dense n x n matrices (one per covariance parameter) need about
#: 8·n²·(number of parameters + 3) bytes and O(n³) time.
MAX_OBSERVATIONS = 3000


def check_size(n_obs, n_params):
    """Refuse Kenward-Roger where its dense n x n work would not fit."""
    if n_obs > MAX_OBSERVATIONS:
        gib = 8.0 * n_obs**2 * (n_params + 3) / 2**30
        raise ValueError(
            f"Kenward-Roger needs dense {n_obs} x {n_obs} matrices (about "
            f"{gib:.1f} GiB and O(n³) time here); it is computed for at most "
            f"{MAX_OBSERVATIONS} observations. Use ddf='satterthwaite', which "
            "works from the model's small cross-products at any n."
        )


def structure_matrices(terms, n_obs):
    """The matrices ``G_r`` and the parameter values ``φ_r``.

    Parameters
    ----------
    terms : list of (codes, Zraw, cov)
        One per random-effects term: level code of each row (n,), the raw
        columns of the term (n, k) and its covariance matrix (k, k) on the
        response scale (σ² Λ Λᵀ).
    n_obs : int

    Returns
    -------
    G : list of ndarray of shape (n, n)
    phi : ndarray
        Covariance parameters in the order of ``G``; the residual variance
        (whose ``G`` is ``I``) is not included.
    """
    G, phi = [], []
    for codes, zraw, cov in terms:
        same = codes[:, None] == codes[None, :]
        k = zraw.shape[1]
        for j in range(k):
            for i in range(j, k):
                outer = np.outer(zraw[:, i], zraw[:, j])
                if i != j:
                    outer = outer + outer.T
                G.append(np.where(same, outer, 0.0))
                phi.append(cov[i, j])
    return G, np.asarray(phi, dtype=float)


@dataclass
class KenwardRoger:
    """Adjusted covariance of β̂ and what the df computation needs.

    Attributes
    ----------
    beta : ndarray of shape (p,)
    vcov_beta : ndarray of shape (p, p)
        The unadjusted covariance Φ.
    vcov_adjusted : ndarray of shape (p, p)
        Φ_A.
    P : list of ndarray of shape (p, p)
    W : ndarray
        Twice the inverse expected information of the covariance parameters.
    sigma : float
    """

    beta: np.ndarray
    vcov_beta: np.ndarray
    vcov_adjusted: np.ndarray
    P: list
    W: np.ndarray
    sigma: float

    @classmethod
    def compute(cls, X, beta, sigma, terms):
        """Adjusted covariance of a REML fit.

        Parameters
        ----------
        X : ndarray of shape (n, p)
            Fixed-effects design, intercept column included.
        beta : ndarray of shape (p,)
        sigma : float
            Residual standard deviation.
        terms : list of (codes, Zraw, cov)
            See :func:`structure_matrices`.
        """
        n = X.shape[0]
        G, phi = structure_matrices(terms, n)
        sigma_mat = sigma**2 * np.eye(n)
        for g, value in zip(G, phi, strict=True):
            sigma_mat += value * g
        G.append(np.eye(n))
        chol = linalg.cho_factor(sigma_mat, lower=True)
        sigma_inv = linalg.cho_solve(chol, np.eye(n))
        sx = sigma_inv @ X
        phi_mat = np.linalg.inv(X.T @ sx)
        H = [g @ sigma_inv for g in G]
        O = [h @ X for h in H]
        m = len(G)
        P = [-(o.T @ sx) for o in O]
        P = [(p_ + p_.T) / 2.0 for p_ in P]
        Q = {}
        for r in range(m):
            left = O[r].T @ sigma_inv
            for s in range(r, m):
                Q[r, s] = left @ O[s]
        info = np.empty((m, m))
        for r in range(m):
            phi_p_r = phi_mat @ P[r]
            for s in range(r, m):
                k_trace = np.sum(H[r].T * H[s])
                info[r, s] = info[s, r] = (
                    k_trace
                    - 2.0 * np.sum(phi_mat * Q[r, s])
                    + np.sum(phi_p_r * (P[s] @ phi_mat))
                )
        eig = np.linalg.eigvalsh(info)
        if np.min(np.abs(eig)) > 1e-10:
            W = 2.0 * np.linalg.inv(info)
        else:
            W = 2.0 * np.linalg.pinv(info)
        W = (W + W.T) / 2.0
        U = np.zeros_like(phi_mat)
        for r in range(m):
            for s in range(r, m):
                term = W[r, s] * (Q[r, s] - P[r] @ phi_mat @ P[s])
                U += term if r == s else term + term.T
        adjusted = phi_mat + 2.0 * phi_mat @ U @ phi_mat
        return cls(
            beta=np.asarray(beta, dtype=float),
            vcov_beta=phi_mat,
            vcov_adjusted=adjusted,
            P=P,
            W=W,
            sigma=float(sigma),
        )

    def _adjustment(self, L):
        """A1, A2 and the df of Kenward and Roger for the hypothesis Lβ = 0."""
        phi = self.vcov_beta
        theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
        theta_phi = theta @ phi
        u = [theta_phi @ p_ @ phi for p_ in self.P]
        traces = np.array([np.trace(x) for x in u])
        a1 = a2 = 0.0
        m = len(u)
        for r in range(m):
            for s in range(r, m):
                e = 1.0 if r == s else 2.0
                a1 += e * self.W[r, s] * traces[r] * traces[s]
                a2 += e * self.W[r, s] * np.sum(u[r] * u[s].T)
        q = float(np.linalg.matrix_rank(L))
        b = (a1 + 6.0 * a2) / (2.0 * q)
        g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2)
        denom = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2.0 - g) / denom
        v0 = 1.0 + c1 * b
        v1 = 1.0 - c2 * b
        v2 = 1.0 - c3 * b
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        ratio = (
            1.0
            if abs(1.0 - a2 / q) < 1e-14 and abs(v1) < 1e-14
            else ((1.0 - a2 / q) / v1)
        )
        rho = ratio**2 * v0 / v2 / q
        df = 4.0 + (q + 2.0) / (q * rho - 1.0)
        scale = 1.0 if abs(df - 2.0) < 1e-2 else df * (1.0 - a2 / q) / (df - 2.0)
        return q, df, scale

    def t_test(self, contrast):
        """Estimate, adjusted std. error, KR df, t and p for ``lᵀβ``."""
        contrast = np.asarray(contrast, dtype=float)
        _, df, _ = self._adjustment(contrast[None, :])
        estimate = float(contrast @ self.beta)
        se = float(np.sqrt(contrast @ self.vcov_adjusted @ contrast))
        t_value = estimate / se
        return estimate, se, df, t_value, 2.0 * stats.t.sf(abs(t_value), df)

    def f_test(self, L):
        """Kenward-Roger F test of ``Lβ = 0`` (scaled F, as pbkrtest)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        q, df, scale = self._adjustment(L)
        lb = L @ self.beta
        wald = float(lb @ np.linalg.solve(L @ self.vcov_adjusted @ L.T, lb))
        return _f_row(wald / q, int(q), df, self.sigma, f_scale=scale)
