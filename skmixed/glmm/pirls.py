"""Penalised iteratively reweighted least squares and the Laplace objective.

At given (θ, β) the conditional modes ``ũ`` of the spherical random effects
minimise the penalised deviance ``Σ d_i(μ(u)) + ‖u‖²``. PIRLS finds them by
Fisher scoring: with the GLM working weights W at the current u, one step
solves ``(Λᵀ Zᵀ W Z Λ + I) δ = Λᵀ Zᵀ r - u`` (r the score residuals), halving
the step while the penalised deviance does not decrease. The Laplace
approximation of -2 log L is then, as lme4 computes it,

    -2 Σ log p(y_i | μ_i(ũ)) + ‖ũ‖² + log det(L Lᵀ),

with every normalising constant in the conditional log-likelihood and L the
Cholesky factor at the mode. In the fast stage (lme4's nAGQ = 0) β moves
with u: the joint step solves the system bordered by X, via the Schur
complement ``R_Xᵀ R_X = Xᵀ W X - Uᵀ M⁻¹ U`` (``U = Λᵀ Zᵀ W X``).
"""

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular

from skmixed.glmm.blocks import lambdas_from_theta
from skmixed.glmm.families import Kernel

# Stop when the Newton step is below _STEP_TOL in every element (or the
# decrement, the predicted decrease of the penalised deviance, is at
# rounding level). The log-determinant depends on u to first order, so a
# step of s leaves an error of order s in the Laplace objective: lme4's
# relative tolerance of 1e-7 on the penalised deviance leaves errors of
# 1e-6 to 1e-3 there; this leaves about 1e-10, enough for the optimiser.
# lme4's finite-difference Hessian (steps of 1e-4) divides the objective's
# error by 1e-8, so its evaluations iterate to HESSIAN_STEP_TOL: at 1e-10
# the Hessian SEs were up to 3e-3 off an accurate Hessian (glmer's: 4e-6;
# tests/test_glmm_user2.py), at 1e-12 within 4e-6 (Newton's quadratic
# convergence makes that one more step, where any).
_STEP_TOL = 1e-10
HESSIAN_STEP_TOL = 1e-12
_DECREMENT_TOL = 1e-24
_MAX_ITER = 60
_MAX_HALVINGS = 30


def _converged(delta, rhs, pdev, step_tol=_STEP_TOL):
    """Whether the Newton step is negligible (see _STEP_TOL)."""
    if not delta.size or np.max(np.abs(delta)) < step_tol:
        return True
    return float(delta @ rhs) <= _DECREMENT_TOL * (1.0 + abs(pdev))


@dataclass
class ModeResult:
    """The conditional modes at (θ, β) and what the objective needs."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    weights: np.ndarray
    factor: object
    lambdas: list
    conditional_m2ll: float
    sum_u2: float
    logdet: float
    n_iter: int

    @property
    def laplace(self):
        """The Laplace approximation of -2 log L (absolute scale)."""
        return self.conditional_m2ll + self.sum_u2 + self.logdet


class GLMMProblem:
    """Data of one GLMM: X, y, prior weights, family, random-effects system.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    y : ndarray of shape (n,)
        Response (binomial: proportions).
    prior : ndarray of shape (n,)
        Prior weights (binomial: numbers of trials).
    family : Family
    system : RandomEffects
    offset : ndarray of shape (n,) or None
    """

    def __init__(self, X, y, prior, family, system, offset=None):
        self.X = X
        self.y = y
        self.prior = prior
        self.family = family
        self.system = system
        self.offset = np.zeros(len(y)) if offset is None else offset
        self.n, self.p = X.shape
        self.ks = system.ks
        self.n_theta = int(sum(k * (k + 1) // 2 for k in self.ks))
        self._u = np.zeros(system.q)
        self._u_lambdas = None
        self._xx = None
        self._saturated = None
        self.kernel = Kernel(family, y, prior)

    def __getstate__(self):
        # the row products of X (p(p+1)/2 x n) and the last cross terms are
        # caches rebuilt on first use; the warm start u is kept, so that
        # the modes (and all inference) after unpickling are the same
        state = dict(self.__dict__)
        state["_xx"] = None
        state.pop("_cross_last", None)
        return state

    def subset(self, rows):
        """The same model on some rows (levels renumbered), a new problem."""
        from skmixed.glmm.blocks import RandomEffects, Term

        terms = []
        for t in self.system.terms:
            levels, codes = np.unique(t.codes[rows], return_inverse=True)
            Z = None if t.Z is None else np.ascontiguousarray(t.Z[rows])
            terms.append(Term(codes.ravel().astype(np.intp), len(levels), Z))
        return GLMMProblem(
            np.ascontiguousarray(self.X[rows]),
            self.y[rows],
            self.prior[rows],
            self.family,
            RandomEffects(terms),
            self.offset[rows],
        )

    @property
    def saturated_m2ll(self):
        """-2 log L of the saturated model (0 for 0/1 data)."""
        if self._saturated is None:
            self._saturated = self.family.saturated_minus2_loglik(self.y, self.prior)
        return self._saturated

    def _warm_start(self, lambdas):
        """The last modes moved to the new θ keeping the effects b = Λu.

        The linear predictor depends on u only through b, so the last b is a
        closer start than the last u when θ moved (a step fewer, often);
        where a new Λ is singular, the last u itself.
        """
        u, old = self._u.copy(), self._u_lambdas
        if old is None:
            return u
        for lam, lam_old, start, size, k in zip(
            lambdas,
            old,
            self.system.starts[:-1],
            self.system.sizes,
            self.ks,
            strict=True,
        ):
            if np.array_equal(lam, lam_old) or np.min(np.abs(np.diag(lam))) < 1e-6:
                continue
            block = u[start : start + size].reshape(-1, k)
            b = block @ lam_old.T
            u[start : start + size] = solve_triangular(lam, b.T, lower=True).T.ravel()
        return u

    def _state(self, eta_fixed, u, lambdas):
        eta = eta_fixed + self.system.z_lambda_u(u, lambdas)
        mu = self.family.link.inverse(eta)
        return eta, mu, self.kernel.deviance(mu) + float(u @ u)

    def modes(self, theta, beta, u0=None, step_tol=None):
        """PIRLS for u at fixed (θ, β); returns a :class:`ModeResult`.

        ``step_tol``: the largest Newton step left (None: _STEP_TOL).
        """
        step_tol = _STEP_TOL if step_tol is None else step_tol
        theta = np.asarray(theta, dtype=np.float64)
        beta = np.asarray(beta, dtype=np.float64)
        lambdas = lambdas_from_theta(theta, self.ks)
        u = self._warm_start(lambdas) if u0 is None else u0.copy()
        eta_fixed = self.offset + self.X @ beta
        eta, mu, pdev = self._state(eta_fixed, u, lambdas)
        if not np.isfinite(pdev):
            u = np.zeros_like(u)
            eta, mu, pdev = self._state(eta_fixed, u, lambdas)
        fam, system = self.family, self.system
        n_iter = 0
        for _ in range(_MAX_ITER):
            n_iter += 1
            w = fam.working_weights(mu, eta, self.prior)
            factor = system.factor(w, lambdas)
            rhs = system.lambda_zt(
                fam.score_residual(self.y, mu, eta, self.prior), lambdas
            )
            rhs -= u
            delta = factor.solve(rhs)
            if _converged(delta, rhs, pdev, step_tol):
                break
            step = 1.0
            for _ in range(_MAX_HALVINGS):
                u_new = u + step * delta
                eta_new, mu_new, pdev_new = self._state(eta_fixed, u_new, lambdas)
                if pdev_new <= pdev + 1e-12 * abs(pdev):
                    break
                step *= 0.5
            else:
                break  # no decrease possible: at the mode to rounding
            u, eta, mu, pdev = u_new, eta_new, mu_new, pdev_new
        self._u, self._u_lambdas = u, lambdas
        return ModeResult(
            theta,
            beta,
            u,
            eta,
            mu,
            w,
            factor,
            lambdas,
            self.kernel.minus2_loglik(mu),
            float(u @ u),
            factor.logdet(),
            n_iter,
        )

    def laplace(self, theta, beta):
        """The Laplace approximation of -2 log L at (θ, β)."""
        return self.modes(theta, beta).laplace

    # -- nAGQ = 0: β with u -------------------------------------------------
    def _xtwx(self, w):
        """``Xᵀ W X`` from the row products of X made once (no n x p temporary)."""
        if self._xx is None:
            rows, cols = np.triu_indices(self.p)
            # stored (p(p+1)/2, n): a matrix-vector product along rows
            self._xx = (
                np.ascontiguousarray((self.X[:, rows] * self.X[:, cols]).T),
                rows,
                cols,
            )
        products, rows, cols = self._xx
        sums = products @ w
        out = np.empty((self.p, self.p))
        out[rows, cols] = sums
        out[cols, rows] = sums
        return out

    def cross_terms(self, w, lambdas, factor):
        """``M⁻¹ U`` and ``R_X`` (upper) for weights w.

        The last result is kept: the nAGQ = 0 gradient needs the same
        products as PIRLS's last step (same weights, same factor).
        """
        last = getattr(self, "_cross_last", None)
        if last is not None and last[0] is w and last[1] is factor:
            return last[2]
        U = self.system.lambda_zt_weighted(self.X, w, lambdas)
        MU = factor.solve(U)
        XtWX = self._xtwx(w)
        RXtRX = XtWX - U.T @ MU
        RX = cholesky(RXtRX, lower=False, check_finite=False)
        self._cross_last = (w, factor, (U, MU, RX))
        return U, MU, RX

    def joint_modes(self, theta, beta0, u0=None, step_tol=_STEP_TOL):
        """PIRLS over (u, β) at fixed θ (lme4's nAGQ = 0).

        ``step_tol`` may be looser where only a starting point is sought
        (stage 1). Returns ``(ModeResult, RX)``.
        """
        theta = np.asarray(theta, dtype=np.float64)
        lambdas = lambdas_from_theta(theta, self.ks)
        beta = np.asarray(beta0, dtype=np.float64).copy()
        u = self._warm_start(lambdas) if u0 is None else u0.copy()
        fam, system = self.family, self.system

        def state(beta, u):
            return self._state(self.offset + self.X @ beta, u, lambdas)

        eta, mu, pdev = state(beta, u)
        if not np.isfinite(pdev):
            u = np.zeros_like(u)
            eta, mu, pdev = state(beta, u)
        n_iter = 0
        for _ in range(_MAX_ITER):
            n_iter += 1
            w = fam.working_weights(mu, eta, self.prior)
            factor = system.factor(w, lambdas)
            _, MU, RX = self.cross_terms(w, lambdas, factor)
            r = fam.score_residual(self.y, mu, eta, self.prior)
            rhs_u = system.lambda_zt(r, lambdas) - u
            rhs_b = self.X.T @ r
            Mr = factor.solve(rhs_u)
            d_beta = cho_solve((RX, False), rhs_b - MU.T @ rhs_u)
            d_u = Mr - MU @ d_beta
            if _converged(
                np.concatenate([d_u, d_beta]),
                np.concatenate([rhs_u, rhs_b]),
                pdev,
                step_tol,
            ):
                break
            step = 1.0
            for _ in range(_MAX_HALVINGS):
                b_new, u_new = beta + step * d_beta, u + step * d_u
                eta_new, mu_new, pdev_new = state(b_new, u_new)
                if pdev_new <= pdev + 1e-12 * abs(pdev):
                    break
                step *= 0.5
            else:
                break
            beta, u, eta, mu, pdev = b_new, u_new, eta_new, mu_new, pdev_new
        self._u, self._u_lambdas = u, lambdas
        result = ModeResult(
            theta,
            beta,
            u,
            eta,
            mu,
            w,
            factor,
            lambdas,
            self.kernel.minus2_loglik(mu),
            float(u @ u),
            factor.logdet(),
            n_iter,
        )
        return result, RX

    def fast_objective(self, theta, beta0):
        """lme4's nAGQ = 0 objective at θ (β from PIRLS); also returns β."""
        result, _ = self.joint_modes(theta, beta0)
        return result.laplace, result.beta

    def rx_at(self, result):
        """``R_X`` at a mode (lme4's ``vcov(use.hessian = FALSE)`` factor)."""
        _, _, RX = self.cross_terms(result.weights, result.lambdas, result.factor)
        return RX


def glm_fit(X, y, prior, family, offset=None, max_iter=100, tol=1e-10):
    """The GLM without random effects by IRLS, as R's ``glm.fit``.

    ``offset`` (None: zeros) is added to η with coefficient 1.

    Each step is a weighted least-squares solve (QR of ``sqrt(W) X``, which
    survives weights that underflow on separated data), halved while the
    deviance increases; iterations stop at a relative change of the
    deviance below tol. Returns ``(beta, RX, mu, eta)``, RX upper triangular
    with ``RXᵀ RX = Xᵀ W X``.
    """
    offset = np.zeros(X.shape[0]) if offset is None else offset
    beta = np.zeros(X.shape[1])
    eta = offset + X @ beta
    mu = family.link.inverse(eta)
    dev = family.deviance(y, mu, prior)
    for _ in range(max_iter):
        w = family.working_weights(mu, eta, prior)
        sw = np.sqrt(w)
        z = family.score_residual(y, mu, eta, prior) / np.where(w > 0, sw, 1.0)
        delta = np.linalg.lstsq(X * sw[:, None], z, rcond=None)[0]
        step = 1.0
        for _ in range(_MAX_HALVINGS):
            eta_new = offset + X @ (beta + step * delta)
            mu_new = family.link.inverse(eta_new)
            dev_new = family.deviance(y, mu_new, prior)
            if dev_new <= dev + 1e-12 * abs(dev):
                break
            step *= 0.5
        else:
            break
        beta, eta, mu = beta + step * delta, eta_new, mu_new
        change = abs(dev_new - dev) / (abs(dev_new) + 0.1)
        dev = dev_new
        if change < tol or np.max(np.abs(step * delta)) < _STEP_TOL:
            break
    w = family.working_weights(mu, eta, prior)
    RX = np.linalg.qr(X * np.sqrt(w)[:, None], mode="r")
    RX = RX * np.where(np.diagonal(RX) < 0, -1.0, 1.0)[:, None]
    return beta, RX, mu, eta
