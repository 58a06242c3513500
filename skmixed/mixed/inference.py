"""t and F tests for the fixed effects of a linear mixed model.

Satterthwaite's method as lmerTest computes it (Kuznetsova, Brockhoff and
Christensen 2017, J. Stat. Softw. 82(13)):

- the variance parameters are ``varpar = (θ, σ)``; their asymptotic
  covariance ``A`` is twice the inverse of the Hessian of the (unprofiled)
  deviance in ``varpar`` at the optimum -- the REML criterion for REML fits,
  the ML deviance otherwise;
- ``C(varpar) = σ² (R_XᵀR_X)⁻¹`` is the covariance of β̂; its Jacobian
  ``J_k = ∂C/∂varpar_k`` gives, for one contrast ``l``, the gradient
  ``g_k = lᵀ J_k l`` of ``lᵀCl`` and the degrees of freedom
  ``ν = 2 (lᵀCl)² / (gᵀ A g)``;
- for several contrasts ``L`` (q rows), ``LCLᵀ = P D Pᵀ`` is diagonalised,
  ``F = Σ_m (P_mᵀLβ)² / d_m / q`` and the denominator df comes from the ν_m
  of the q rotated contrasts: ``E = Σ ν_m/(ν_m − 2)``, ``ddf = 2E/(E − q)``.

Both derivatives are numerical (central differences with Richardson
extrapolation, :mod:`skmixed.mixed._numderiv`), at the same points lmerTest
uses, so our df agree with lmerTest's to many digits.

Kenward-Roger (the option ``ddf="kenward-roger"``) lives in
:mod:`skmixed.mixed.kenward_roger`.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, stats

from skmixed._stacklevel import user_stacklevel
from skmixed.mixed import _numderiv

# lmerTest's tolerance for "zero" eigenvalues of the Hessian.
_EIGEN_TOL = 1e-8
# nu values closer than this are treated as equal (lmerTest: get_Fstat_ddf).
_NU_TOL = 1e-8

DDF_METHODS = ("satterthwaite", "kenward-roger")


def _deviance_varpar(criterion, varpar, reml, n, p):
    """Deviance in (θ, σ), σ not profiled out: what lmerTest differentiates."""
    theta, sigma = varpar[:-1], varpar[-1]
    parts = criterion.decompose(theta)
    log_2pi_s2 = np.log(2.0 * np.pi * sigma**2)
    dev = parts.logdet_L + parts.pwrss / sigma**2 + n * log_2pi_s2
    if reml:
        dev += parts.logdet_RX - p * log_2pi_s2
    return dev


def _unscaled_vcov(criterion, theta):
    """(R_XᵀR_X)⁻¹ at θ."""
    rx = np.asarray(criterion.decompose(theta).RX, dtype=float)
    rx_inv = linalg.solve_triangular(rx, np.eye(rx.shape[0]), lower=False)
    return rx_inv @ rx_inv.T


@dataclass
class Satterthwaite:
    """What Satterthwaite's method needs, computed once per fit.

    Attributes
    ----------
    beta : ndarray of shape (p,)
    vcov_beta : ndarray of shape (p, p)
        Covariance of β̂, ``σ² (R_XᵀR_X)⁻¹``.
    vcov_varpar : ndarray of shape (m, m)
        Covariance of ``(θ, σ)``: twice the (pseudo-)inverse of the Hessian.
    jacobian : ndarray of shape (m, p, p)
        ``jacobian[k]`` is the derivative of ``vcov_beta`` in ``varpar[k]``.
    sigma : float
    messages : list of str
        lmerTest's warnings about negative or zero Hessian eigenvalues.
    """

    beta: np.ndarray
    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    sigma: float
    messages: list = field(default_factory=list)

    @classmethod
    def compute(cls, criterion, theta, sigma, reml, n, p):
        """Derivatives of the deviance and of vcov(β) at (θ̂, σ̂)."""
        varpar = np.append(np.asarray(theta, dtype=float), float(sigma))

        def deviance(v):
            return _deviance_varpar(criterion, v, reml, n, p)

        hess = _numderiv.hessian(deviance, varpar)
        vcov_varpar, messages = _pseudo_inverse_hessian(hess)

        def vcov_theta(t):
            return _unscaled_vcov(criterion, t)

        # vcov(β) = σ² U(θ): the σ derivative is exact, the θ ones numerical.
        d_theta = _numderiv.jacobian(vcov_theta, varpar[:-1])
        unscaled = vcov_theta(varpar[:-1])
        jac = np.concatenate(
            [sigma**2 * d_theta, (2.0 * sigma * unscaled)[None]], axis=0
        )
        parts = criterion.decompose(varpar[:-1])
        return cls(
            beta=np.asarray(parts.beta, dtype=float),
            vcov_beta=sigma**2 * unscaled,
            vcov_varpar=vcov_varpar,
            jacobian=jac,
            sigma=float(sigma),
            messages=messages,
        )

    def t_test(self, contrast):
        """Estimate, std. error, df, t and p for one contrast ``lᵀβ``."""
        contrast = np.asarray(contrast, dtype=float)
        estimate = float(contrast @ self.beta)
        variance = float(contrast @ self.vcov_beta @ contrast)
        df = self._df(contrast, variance)
        se = np.sqrt(variance)
        t_value = estimate / se
        p_value = 2.0 * stats.t.sf(abs(t_value), df)
        return estimate, se, df, t_value, p_value

    def _df(self, contrast, variance):
        grad = np.einsum("i,kij,j->k", contrast, self.jacobian, contrast)
        return 2.0 * variance**2 / float(grad @ self.vcov_varpar @ grad)

    def f_test(self, L):
        """F test of ``Lβ = 0`` (lmerTest's ``contestMD``).

        Returns
        -------
        dict
            ``sum_sq, mean_sq, num_df, den_df, F_value, p_value``.
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        vcov_l = L @ self.vcov_beta @ L.T
        eigval, eigvec = np.linalg.eigh(vcov_l)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = eigval[order], eigvec[:, order]
        keep = eigval > max(np.sqrt(np.finfo(float).eps) * eigval[0], 0.0)
        q = int(keep.sum())
        if q == 0:
            raise ValueError("The contrast matrix has rank 0; nothing to test.")
        rotated = eigvec[:, keep].T @ L
        d = eigval[keep]
        t2 = (rotated @ self.beta) ** 2 / d
        f_value = float(t2.sum() / q)
        nu = np.array([self._df(r, dm) for r, dm in zip(rotated, d, strict=True)])
        den_df = _f_denominator_df(nu)
        return _f_row(f_value, q, den_df, self.sigma)


def _f_row(f_value, num_df, den_df, sigma, f_scale=1.0):
    mean_sq = f_value * sigma**2
    scaled = f_value * f_scale
    return {
        "sum_sq": mean_sq * num_df,
        "mean_sq": mean_sq,
        "num_df": num_df,
        "den_df": den_df,
        "F_value": scaled,
        "p_value": float(stats.f.sf(scaled, num_df, den_df)),
    }


def _f_denominator_df(nu):
    """Denominator df of the F test from the df of its q rotated t tests."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < _NU_TOL):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    e = np.sum(nu / (nu - 2.0))
    return float(2.0 * e / (e - nu.size))


def _pseudo_inverse_hessian(hess):
    """2 H⁻¹ over the eigen-directions with positive curvature.

    Near-zero and negative eigenvalues (a fit on the boundary, or not quite
    converged) are left out, and reported as lmerTest reports them.
    """
    eigval, eigvec = np.linalg.eigh((hess + hess.T) / 2.0)
    messages = []
    negative = eigval < -_EIGEN_TOL
    zero = np.abs(eigval) <= _EIGEN_TOL
    if negative.any():
        messages.append(
            f"Model failed to converge with {negative.sum()} negative "
            f"eigenvalue(s) of the deviance Hessian: "
            + " ".join(f"{v:.1e}" for v in eigval[negative])
        )
    if zero.any():
        messages.append(
            f"Model may not have converged with {zero.sum()} eigenvalue(s) of "
            "the deviance Hessian close to zero: "
            + " ".join(f"{v:.1e}" for v in eigval[zero])
        )
    positive = eigval > _EIGEN_TOL
    vecs = eigvec[:, positive]
    return 2.0 * (vecs / eigval[positive]) @ vecs.T, messages


def check_ddf(ddf):
    """Normalise a ``ddf`` argument (case and separators are ignored)."""
    key = str(ddf).lower().replace("_", "-").replace(" ", "-")
    aliases = {"satterthwaite": "satterthwaite", "kr": "kenward-roger"}
    key = aliases.get(key, key)
    if key not in DDF_METHODS:
        raise ValueError(f"ddf must be one of {DDF_METHODS} (or 'kr'); got {ddf!r}.")
    return key


def coefficient_table(tester, names):
    """Estimate, std. error, df, t and p for every fixed effect.

    Parameters
    ----------
    tester : Satterthwaite or KenwardRoger
        Anything with ``t_test(contrast)``.
    names : list of str
        Fixed-effect names, in the order of β.

    Returns
    -------
    pandas.DataFrame
        Columns ``estimate, std_error, df, t_value, p_value``.
    """
    p = len(names)
    rows = [tester.t_test(np.eye(p)[j]) for j in range(p)]
    return pd.DataFrame(
        rows,
        index=pd.Index(list(names), name="term"),
        columns=["estimate", "std_error", "df", "t_value", "p_value"],
    )


def type3_table(tester, names):
    """lmerTest's type III F table for a model whose terms are single columns.

    Each non-intercept column of the fixed-effects design is one term: the
    fixed part is a list of numeric columns. A formula fixed part gives one
    row per term instead (:func:`term_table`).
    """
    rows, index = [], []
    for j, name in enumerate(names):
        if name == "(Intercept)":
            continue
        contrast = np.zeros((1, len(names)))
        contrast[0, j] = 1.0
        rows.append(tester.f_test(contrast))
        index.append(name)
    return pd.DataFrame(
        rows,
        index=pd.Index(index, name="term"),
        columns=["sum_sq", "mean_sq", "num_df", "den_df", "F_value", "p_value"],
    )


def term_table(tester, hypotheses):
    """lmerTest's type III F table with one row per term of a formula.

    Parameters
    ----------
    tester : Satterthwaite or KenwardRoger
    hypotheses : dict
        Term label -> its type III contrast matrix (q x p), as
        :meth:`skmixed._formula.FixedFormula.type3_hypotheses` gives them.

    Returns
    -------
    pandas.DataFrame
        Indexed by term: ``sum_sq, mean_sq, num_df, den_df, F_value, p_value``.
    """
    rows = [tester.f_test(L) for L in hypotheses.values()]
    return pd.DataFrame(
        rows,
        index=pd.Index(list(hypotheses), name="term"),
        columns=["sum_sq", "mean_sq", "num_df", "den_df", "F_value", "p_value"],
    )


def contrast_label(row, names):
    """A contrast as text: ``VarietyMarvellous - VarietyVictory``."""
    parts = []
    for value, name in zip(row, names, strict=True):
        if value == 0:
            continue
        size = abs(value)
        coefficient = "" if size == 1 else f"{size:g}*"
        sign = "-" if value < 0 else "+"
        parts.append((sign, f"{coefficient}{name}"))
    if not parts:
        return "0"
    text = ("-" if parts[0][0] == "-" else "") + parts[0][1]
    return text + "".join(f" {sign} {term}" for sign, term in parts[1:])


def warn_messages(messages):
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=user_stacklevel())
