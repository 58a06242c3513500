"""The gradient of the Laplace objective, in (θ, β) and in θ alone (nAGQ = 0).

The Laplace approximation is ``f = P(ũ) + log det M`` with the penalised
deviance ``P(u) = -2 Σ log p(y_i | η_i) + ‖u‖²``, ``η = o + Xβ + ZΛu``, the
conditional mode ũ (``∂P/∂u = 0``) and ``M = Λᵀ Zᵀ W Z Λ + I`` with the
Fisher weights W at the mode. Its total derivative has three parts:

* P's explicit derivative (ũ moves, but P is stationary in u there):
  ``-2 Σ r_i ∂η_i/∂φ`` with the score residuals r;
* log det M through Λ at fixed W: ``2 Σ_i w_i z̃_iᵀ M⁻¹ ∂z̃_i/∂θ`` with
  ``z̃_i = Λᵀ Z_i``; this needs the blocks of M⁻¹ at the levels of each
  row (the whole of M⁻¹ is never formed beyond the dense Schur part);
* log det M through W: ``Σ_i s_i dη_i/dφ`` with ``s_i = w'_i h_i`` and the
  leverages ``h_i = z̃_iᵀ M⁻¹ z̃_i``. The mode's own movement
  ``dũ/dφ = -H⁻¹ ∂²(P/2)/∂u∂φ`` (H the Hessian of P/2 in u, which is M for
  a canonical link) enters through one adjoint solve ``H v = Λᵀ Zᵀ s``.

For nAGQ = 0, β is part of the mode (PIRLS over (u, β)); then P is also
stationary in β, H is the Hessian over (u, β) and only θ has a gradient.
Everything is a weighted sum over rows, per level: a few passes of the
same kind as one PIRLS step. Checked against finite differences in the
tests.
"""

import numpy as np

from skmixed.mixed.first_term import lower_triangle_indices

# The dense off-diagonal part of M⁻¹ (first factor x later factors) is
# formed for the leverages; beyond this many elements there is no gradient
# and the optimiser falls back to derivative-free BOBYQA.
MAX_DENSE_INVERSE = 20_000_000


def gradient_available(system):
    """Whether :func:`laplace_gradient` can run on this random-effects system."""
    return system.q1 * system.q_rest <= MAX_DENSE_INVERSE


def _columns(term, n):
    """The term's columns Z (n, k), ones for an intercept-only term."""
    return np.ones((n, 1)) if term.Z is None else term.Z


def _minv_rows(system, factor, lambdas):
    """Per term, ``z̃_i`` and the rows' part of ``M⁻¹ z̃_i`` (each (n, k))."""
    n = system.n
    zt = [_columns(t, n) @ lam for t, lam in zip(system.terms, lambdas, strict=True)]
    diag, G, Sinv = factor.inverse_parts()
    out = []
    for t, z, D in zip(system.terms, zt, diag, strict=True):
        k = t.k
        m = np.zeros((n, k))
        for a in range(k):
            for b in range(k):
                m[:, a] += D[t.codes, a, b] * z[:, b]
        out.append(m)
    if G is not None:
        # cross-term blocks: first term with each later term (G), later
        # terms among themselves (S⁻¹), at each row's pair of levels
        starts = system.starts
        q1 = system.q1
        index = [
            starts[j] + t.codes * t.k for j, t in enumerate(system.terms)
        ]  # first element of each row's level block, in M's order
        for i in range(len(system.terms)):
            for j in range(i + 1, len(system.terms)):
                ki, kj = system.ks[i], system.ks[j]
                for a in range(ki):
                    for c in range(kj):
                        rows, cols = index[i] + a, index[j] + c - q1
                        if i == 0:
                            values = G[rows, cols]
                        else:
                            values = Sinv[rows - q1, cols]
                        out[i][:, a] += values * zt[j][:, c]
                        out[j][:, c] += values * zt[i][:, a]
    return zt, out


def _adjoint(problem, result, w_obs, a_u, a_beta=None):
    """Solve with the Hessian of P/2 in u (or (u, β) when a_beta is given)."""
    system, lambdas = problem.system, result.lambdas
    if problem.family.canonical:  # H = M: PIRLS's own factor and weights
        H, w_obs = result.factor, result.weights
    else:
        H = system.factor(w_obs, lambdas)
    if a_beta is None:
        return H.solve(a_u), None
    from scipy.linalg import cho_solve

    _, MU, RX = problem.cross_terms(w_obs, lambdas, H)
    v_beta = cho_solve((RX, False), a_beta - MU.T @ a_u)
    return H.solve(a_u) - MU @ v_beta, v_beta


def _derivative_parts(problem, result, joint):
    """Row vectors shared by both gradients (see the module docstring)."""
    fam, system, lambdas = problem.family, problem.system, result.lambdas
    y, prior, mu, eta = problem.y, problem.prior, result.mu, result.eta
    r = fam.score_residual(y, mu, eta, prior)
    w, w_obs, dw = fam.derivative_weights(y, mu, eta, prior)
    zt, m = _minv_rows(system, result.factor, lambdas)
    h = sum(np.einsum("na,na->n", z, mm) for z, mm in zip(zt, m, strict=True))
    s = dw * h
    a_u = system.lambda_zt(s, lambdas)
    if joint:
        v_u, v_beta = _adjoint(problem, result, w_obs, a_u, problem.X.T @ s)
        zv = system.z_lambda_u(v_u, lambdas) + problem.X @ v_beta
    else:
        v_u, _ = _adjoint(problem, result, w_obs, a_u)
        zv = system.z_lambda_u(v_u, lambdas)
    # e_i multiplies dη_i/dφ at fixed u: P's part, and W's part with the
    # mode's movement folded in through the adjoint v
    e = -2.0 * r + s - w_obs * zv
    return e, r, w, m, v_u


def _theta_gradient(problem, result, e, r, w, m, v_u):
    system = problem.system
    u_blocks = system.b_from_u(result.u, [np.eye(k) for k in system.ks])
    v_blocks = system.b_from_u(v_u, [np.eye(k) for k in system.ks])
    out = []
    for t, J, ub, vb, mm in zip(
        system.terms, system.J, u_blocks, v_blocks, m, strict=True
    ):
        Z = _columns(t, system.n)
        rows, cols = lower_triangle_indices(t.k)
        for row, col in zip(rows, cols, strict=True):
            # d η_i / d θ = Z_i[row] u_l[col]; the adjoint's explicit part
            # r_i Z_i[row] v_l[col]; log det M's Λ part 2 w_i Z_i[row] m_i[col]
            per_level = J @ np.column_stack([Z[:, row] * e, Z[:, row] * r])
            value = per_level[:, 0] @ ub[:, col] + per_level[:, 1] @ vb[:, col]
            value += 2.0 * float(np.sum(w * Z[:, row] * mm[:, col]))
            out.append(value)
    return np.asarray(out)


def laplace_gradient(problem, result):
    """Gradient of the Laplace objective in (θ, β) at the mode ``result``."""
    e, r, w, m, v_u = _derivative_parts(problem, result, joint=False)
    g_theta = _theta_gradient(problem, result, e, r, w, m, v_u)
    return np.concatenate([g_theta, problem.X.T @ e])


def fast_gradient(problem, result):
    """Gradient in θ of lme4's nAGQ = 0 objective (β inside the mode)."""
    e, r, w, m, v_u = _derivative_parts(problem, result, joint=True)
    return _theta_gradient(problem, result, e, r, w, m, v_u)
