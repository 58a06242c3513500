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

lmerTest differentiates both numerically (numDeriv). Second differences
of the deviance amplify its rounding error by 1/h²: a permutation of the
rows (or a Dask fit's partition sums) moved the df by up to 3e-8 relative.
So the Hessian here is analytic in σ and, in θ, a central difference with
Richardson extrapolation (:mod:`skmixed.mixed._numderiv`) of the deviance's
analytic gradient, whose rounding error is divided by h once; ``J`` is a
central difference too, at steps of 1% of θ (where numDeriv takes 0.01%:
its truncation error is below rounding either way, its rounding error 100
times smaller). The df agree with lmerTest's within lmerTest's own
numerical noise (sleepstudy's ``(Days | Subject)``: lmerTest 16.99973 and
16.99998 where the exact df of the balanced design is 17; the reference
tests hold 1e-7 to 1e-3 by case) and are the same, to ~1e-11, however the
rows are ordered or partitioned.

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
from skmixed.mixed.criterion import ProfiledCriterion

# lmerTest's tolerance for "zero" eigenvalues of the Hessian.
_EIGEN_TOL = 1e-8
# nu values closer than this are treated as equal (lmerTest: get_Fstat_ddf).
_NU_TOL = 1e-8
# First steps of the derivatives, relative to θ (see the module docstring):
# numDeriv's hessian step for the gradient's differences, and 1% for vcov(β)'s
_REL_STEP = 0.1
_JACOBIAN_STEP = 1e-2

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


def _deviance_hessian(criterion, varpar, reml, n, p):
    """Hessian of the deviance in (θ, σ) at ``varpar``.

    With ``D = a(θ) + r²(θ)/σ² + m log(2πσ²)`` (``a`` the log-determinants,
    ``m = n − p`` under REML, ``n`` otherwise) the σ rows are exact:
    ``∂²D/∂σ² = 6r²/σ⁴ − 2m/σ²`` and ``∂²D/∂σ∂θ = −2 ∂r²/∂θ / σ³``. The θ
    block differentiates the analytic gradient ``∂D/∂θ`` once. A criterion
    whose r² comes from the rows (``RowsCriterion``: its cross-product
    gradient lacks those digits) keeps numDeriv's second differences.
    """
    if not isinstance(criterion, ProfiledCriterion):
        return _numderiv.hessian(
            lambda v: _deviance_varpar(criterion, v, reml, n, p), varpar
        )
    theta, sigma = varpar[:-1], varpar[-1]
    log_det_weights = np.zeros(p + 1)
    if reml:
        log_det_weights[:-1] = 1.0  # log|R_X|²

    def gradient(t, pwrss):
        # linear in the weights: r²/σ² on log r² gives ∂(r²)/σ²
        weights = log_det_weights.copy()
        weights[-1] = pwrss / sigma**2
        return criterion.value_and_gradient(t, column_weights=weights)[1]

    def gradient_in_theta(t):
        return gradient(t, criterion.decompose(t).pwrss)

    m = theta.size
    out = np.empty((m + 1, m + 1))
    out[:m, :m] = _numderiv.jacobian(gradient_in_theta, theta, rel_step=_REL_STEP)
    pwrss = criterion.decompose(theta).pwrss
    d_pwrss = sigma**2 * (gradient(theta, pwrss) - gradient(theta, 0.0))
    out[:m, m] = out[m, :m] = -2.0 * d_pwrss / sigma**3
    dof = n - p if reml else n
    out[m, m] = 6.0 * pwrss / sigma**4 - 2.0 * dof / sigma**2
    return (out + out.T) / 2.0


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
        hess = _deviance_hessian(criterion, varpar, reml, n, p)
        vcov_varpar, messages = _pseudo_inverse_hessian(hess)

        def vcov_theta(t):
            return _unscaled_vcov(criterion, t)

        # vcov(β) = σ² U(θ): the σ derivative is exact, the θ ones numerical.
        d_theta = _numderiv.jacobian(vcov_theta, varpar[:-1], rel_step=_JACOBIAN_STEP)
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
