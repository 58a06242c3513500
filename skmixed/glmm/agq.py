"""Adaptive Gauss-Hermite quadrature for one scalar random-effects term.

With a single scalar term the integral over u factorises by level. Level i
contributes ``∫ exp(h_i(u)) du / sqrt(2π)`` with
``h_i(u) = Σ_j log p(y_ij | u) - u²/2``. Centred at the conditional mode
``ũ_i`` and scaled by ``s_i = 1 / L_ii`` (L the PIRLS factor at the mode,
as lme4 does), the nodes ``z_k`` and weights ``w_k`` of the Gauss-Hermite
rule for the standard normal density give

    L_i = s_i Σ_k w_k exp(h_i(ũ_i + s_i z_k) + z_k²/2).

With one node this is the Laplace approximation. The value returned here
is ``-2 Σ_i log L_i`` on the absolute scale (every normalising constant);
lme4 reports it relative to the saturated model (minus that model's -2 log
L), see the estimator's ``loglik_``.
"""

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import logsumexp


def gauss_hermite(n_nodes):
    """Nodes and weights for ``E f(Z)``, Z standard normal."""
    z, w = hermegauss(n_nodes)
    return z, w / np.sqrt(2.0 * np.pi)


def agq_minus2_loglik(problem, result, n_nodes):
    """AGQ approximation of -2 log L at the mode ``result`` (absolute scale).

    Parameters
    ----------
    problem : GLMMProblem
        With one scalar random-effects term.
    result : ModeResult
        PIRLS at (θ, β).
    n_nodes : int
    """
    system = problem.system
    (term,) = system.terms
    lam = result.lambdas[0][0, 0]
    L = result.factor.L1.reshape(-1)
    s = 1.0 / L
    u = result.u
    z_col = 1.0 if term.Z is None else term.Z[:, 0]
    eta_fixed = problem.offset + problem.X @ result.beta
    nodes, weights = gauss_hermite(n_nodes)
    J = system.J[0]
    codes = term.codes
    per_node = np.empty((term.m, n_nodes))
    for k, z in enumerate(nodes):
        v = u + s * z  # per level
        eta = eta_fixed + lam * z_col * v[codes]
        ll = problem.family.loglik_eta(problem.y, eta, problem.prior)
        per_node[:, k] = J @ ll - 0.5 * v * v + 0.5 * z * z
    log_li = np.log(s) + logsumexp(per_node, axis=1, b=weights[None, :])
    return -2.0 * float(log_li.sum())
