"""The GLMM objectives against direct computations on small random data.

Laplace: the conditional mode found by a generic optimiser (scipy's BFGS
on the dense penalised deviance) and the log-determinant of the dense
``(ZΛ)ᵀ W (ZΛ) + I``, with W the GLM (Fisher) weights as lme4 uses them.
AGQ: for one scalar intercept term, each group's integral by adaptive
quadrature (scipy.integrate.quad) of the exact integrand.

Gradients: the analytic gradient of the Laplace objective in (θ, β), and of
lme4's nAGQ = 0 objective in θ, against central finite differences.
"""

import numpy as np
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit, gammaln

from skmixed.glmm.agq import agq_minus2_loglik
from skmixed.glmm.blocks import RandomEffects, Term, lambdas_from_theta
from skmixed.glmm.families import get_family
from skmixed.glmm.gradient import fast_gradient, laplace_gradient
from skmixed.glmm.pirls import GLMMProblem


def _loglik(kind, link, y, trials, eta):
    """Per-row log p(y | eta), written out independently of skmixed."""
    if kind == "poisson":
        mu = np.exp(eta)
        return y * np.log(mu) - mu - gammaln(y + 1.0)
    if link == "logit":
        mu = expit(eta)
    else:
        mu = stats.norm.cdf(eta)
    k = np.round(trials * y)
    return (
        gammaln(trials + 1.0)
        - gammaln(k + 1.0)
        - gammaln(trials - k + 1.0)
        + k * np.log(mu)
        + (trials - k) * np.log1p(-mu)
    )


def _fisher_weights(kind, link, trials, eta):
    if kind == "poisson":
        return np.exp(eta)
    if link == "logit":
        mu = expit(eta)
        return trials * mu * (1.0 - mu)
    mu = stats.norm.cdf(eta)
    return trials * stats.norm.pdf(eta) ** 2 / (mu * (1.0 - mu))


def _make(seed, kind, link, crossed, slope):
    rng = np.random.default_rng(seed)
    m1, m2 = int(rng.integers(5, 9)), int(rng.integers(3, 6))
    n = int(rng.integers(40, 70))
    g1 = np.sort(rng.integers(0, m1, n))
    g1[:m1] = np.arange(m1)
    g2 = rng.integers(0, m2, n)
    g2[:m2] = np.arange(m2)
    x = rng.standard_normal(n)
    X = np.column_stack([np.ones(n), x, rng.standard_normal(n)])
    beta = np.array([0.2, 0.5, -0.3])
    b1 = rng.normal(0, 0.8, m1)
    eta = X @ beta + b1[g1] + (rng.normal(0, 0.5, m2)[g2] if crossed else 0.0)
    trials = np.ones(n)
    if kind == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    elif kind == "binomial":
        trials = rng.integers(1, 8, n).astype(float)
        p = expit(eta) if link == "logit" else stats.norm.cdf(eta)
        y = rng.binomial(trials.astype(int), p) / trials
    else:
        p = expit(eta) if link == "logit" else stats.norm.cdf(eta)
        y = (rng.random(n) < p).astype(float)
    terms = [
        Term(
            g1.astype(np.intp), m1, np.column_stack([np.ones(n), x]) if slope else None
        )
    ]
    if crossed:
        terms.append(Term(g2.astype(np.intp), m2, None))
    ks = [t.k for t in terms]
    theta = np.concatenate(
        [[0.9, 0.3, 0.4] if k == 2 else [0.7 + 0.1 * i] for i, k in enumerate(ks)]
    )
    beta_eval = beta + rng.normal(0, 0.1, 3)
    problem = GLMMProblem(
        X,
        y,
        trials,
        get_family(kind if kind != "bernoulli" else "binomial", link),
        RandomEffects(terms),
    )
    return problem, terms, theta, beta_eval, (kind, link, y, trials, X)


def _dense_z_lambda(terms, lambdas, n):
    blocks = []
    for t, lam in zip(terms, lambdas, strict=True):
        Z = np.ones((n, 1)) if t.Z is None else t.Z
        block = np.zeros((n, t.m * t.k))
        for j in range(t.k):
            block[np.arange(n), t.codes * t.k + j] = Z[:, j]
        lam_full = np.kron(np.eye(t.m), lam)
        blocks.append(block @ lam_full)
    return np.hstack(blocks)


def _direct_laplace(problem, terms, theta, beta, data):
    kind, link, y, trials, X = data
    n = len(y)
    lambdas = lambdas_from_theta(theta, [t.k for t in terms])
    ZL = _dense_z_lambda(terms, lambdas, n)
    fixed = X @ beta

    def penalised(u):
        return -2.0 * _loglik(kind, link, y, trials, fixed + ZL @ u).sum() + u @ u

    res = optimize.minimize(
        penalised, np.zeros(ZL.shape[1]), method="BFGS", options={"gtol": 1e-10}
    )
    # polish: a few Newton steps with a numerical gradient would add noise;
    # BFGS to gtol 1e-10 leaves the mode exact to ~1e-9
    u = res.x
    W = _fisher_weights(kind, link, trials, fixed + ZL @ u)
    M = ZL.T @ (ZL * W[:, None]) + np.eye(ZL.shape[1])
    logdet = np.linalg.slogdet(M)[1]
    return penalised(u) + logdet


CASES = [
    (seed, kind, link, crossed, slope)
    for seed, (kind, link, crossed, slope) in enumerate(
        [
            ("bernoulli", "logit", False, False),
            ("bernoulli", "logit", False, True),
            ("bernoulli", "logit", True, False),
            ("bernoulli", "probit", False, False),
            ("bernoulli", "logit", True, True),
            ("binomial", "logit", False, False),
            ("binomial", "logit", False, True),
            ("binomial", "logit", True, False),
            ("binomial", "probit", True, False),
            ("binomial", "logit", True, True),
            ("poisson", "log", False, False),
            ("poisson", "log", False, True),
            ("poisson", "log", True, False),
            ("poisson", "log", True, True),
            ("poisson", "log", False, False),
            ("bernoulli", "logit", True, False),
            ("binomial", "probit", False, True),
            ("poisson", "log", True, False),
            ("binomial", "logit", False, False),
            ("bernoulli", "probit", True, True),
        ]
    )
]


@pytest.mark.parametrize(("seed", "kind", "link", "crossed", "slope"), CASES)
def test_laplace_equals_direct_computation(seed, kind, link, crossed, slope):
    problem, terms, theta, beta, data = _make(seed, kind, link, crossed, slope)
    ours = problem.modes(theta, beta).laplace
    direct = _direct_laplace(problem, terms, theta, beta, data)
    assert ours == pytest.approx(direct, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_agq25_equals_numerical_integral(seed):
    kind, link = [("bernoulli", "logit"), ("binomial", "logit"), ("poisson", "log")][
        seed % 3
    ]
    problem, terms, theta, beta, data = _make(100 + seed, kind, link, False, False)
    _, _, y, trials, X = data
    result = problem.modes(theta, beta)
    ours = agq_minus2_loglik(problem, result, 25)
    fixed = X @ beta
    lam = theta[0]
    total = 0.0
    for level in range(terms[0].m):
        rows = terms[0].codes == level
        mode = result.u[level]

        def h(v, rows=rows):
            eta = fixed[rows] + lam * v
            return _loglik(kind, link, y[rows], trials[rows], eta).sum() - 0.5 * v * v

        top = h(mode)
        value, _ = integrate.quad(
            lambda v, top=top, h=h: np.exp(h(v) - top),
            mode - 20,
            mode + 20,
            epsabs=0,
            epsrel=1e-13,
            limit=200,
        )
        total += -2.0 * (np.log(value / np.sqrt(2 * np.pi)) + top)
    assert ours == pytest.approx(total, abs=1e-6)


def _central_difference(fun, x, h=1e-3):
    """Fourth-order central differences (error ~h⁴, noise ~1e-10 / h)."""
    out = np.empty(len(x))
    for i, e in enumerate(np.eye(len(x)) * h):
        near = fun(x + e) - fun(x - e)
        far = fun(x + 2 * e) - fun(x - 2 * e)
        out[i] = (8.0 * near - far) / (12.0 * h)
    return out


GRADIENT_CASES = [
    (200 + i, kind, link, crossed, slope)
    for i, (kind, link, crossed, slope) in enumerate(
        [
            ("bernoulli", "logit", False, True),
            ("bernoulli", "probit", True, True),
            ("bernoulli", "cloglog", True, False),
            ("binomial", "logit", True, True),
            ("binomial", "probit", False, True),
            ("binomial", "cloglog", False, True),
            ("poisson", "log", True, True),
            ("poisson", "log", False, False),
        ]
    )
]


@pytest.mark.parametrize(("seed", "kind", "link", "crossed", "slope"), GRADIENT_CASES)
def test_gradients_equal_finite_differences(seed, kind, link, crossed, slope):
    problem, _, theta, beta, _ = _make(seed, kind, link, crossed, slope)
    n_theta = len(theta)

    def laplace(x):
        return problem.modes(x[:n_theta], x[n_theta:]).laplace

    x = np.concatenate([theta, beta])
    analytic = laplace_gradient(problem, problem.modes(theta, beta))
    numeric = _central_difference(laplace, x)
    assert analytic == pytest.approx(numeric, abs=2e-5, rel=1e-6)

    def fast(t):
        return problem.joint_modes(t, beta)[0].laplace

    analytic = fast_gradient(problem, problem.joint_modes(theta, beta)[0])
    numeric = _central_difference(fast, theta)
    assert analytic == pytest.approx(numeric, abs=2e-5, rel=1e-6)
