"""The first term's per-level kernels (skmixed.mixed.first_term).

The closed forms for k <= 2 (the coefficient polynomials, the complex-step
derivative, the chunked syrk) against the batched k x k products that
serve k >= 3, on random weighted designs, at random θ and at θ with zero
elements; and the criterion's value and gradient by the two ways of forming
the one-term Schur complement (stored outer products, chunked syrk) with
more levels than one chunk. All to 1e-10 relative.
"""

import numpy as np
import pytest

from skmixed.mixed import first_term
from skmixed.mixed.criterion import ProfiledCriterion
from skmixed.mixed.design import TermDesign, build_design
from skmixed.mixed.first_term import (
    FirstTermLevels,
    _batched_gradient,
    _batched_gram,
    _batched_weight_derivatives,
    lambda_of,
    pairs_of,
)

RTOL = 1e-10


def _design(m, k, rng, p=3, per=4, weighted=True):
    """One grouping factor of m levels, a k-column term, p fixed columns."""
    n = m * per
    codes = rng.permutation(np.repeat(np.arange(m), per))
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    Z = None if k == 1 else np.column_stack([np.ones(n), X[:, 1:k]])
    b = rng.normal(size=(m, k))
    y = X @ rng.normal(size=p) + rng.normal(size=n)
    y += (b[codes] * (np.ones((n, 1)) if Z is None else Z)).sum(axis=1)
    names = ["(Intercept)"] + [f"x{j}" for j in range(1, k)]
    term = TermDesign(codes, np.arange(m).astype(str), Z, names, factor="g")
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    return build_design(X, y, [term], weights)


def _thetas(k, rng):
    """A random θ, one with a zero diagonal element, and θ = 0."""
    rows, cols = np.tril_indices(k)
    order = np.lexsort((rows, cols))  # column-major, as lme4
    diagonal = (rows == cols)[order]
    random = rng.uniform(0.2, 1.5, len(diagonal))
    random[~diagonal] *= rng.choice([-1.0, 1.0], (~diagonal).sum())
    some_zero = random.copy()
    some_zero[0] = 0.0
    return [random, some_zero, np.zeros(len(diagonal))]


def _close(a, b):
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize("k", [1, 2])
def test_closed_form_gradient_equals_the_batched_products(k):
    rng = np.random.default_rng(k)
    design = _design(50, k, rng)
    levels = FirstTermLevels(design)
    npairs = len(pairs_of(k))
    for theta in _thetas(k, rng):
        Kw = rng.normal(size=(npairs, levels.m))
        _close(
            levels.gradient(theta, Kw),
            _batched_gradient(theta, design.D1, Kw),
        )


@pytest.mark.parametrize("k", [1, 2])
def test_closed_form_weight_derivatives_equal_the_batched_products(k):
    rng = np.random.default_rng(5 + k)
    design = _design(40, k, rng)
    levels = FirstTermLevels(design)
    for theta in _thetas(k, rng):
        _close(
            levels.weight_derivatives(theta),
            _batched_weight_derivatives(theta, design.D1),
        )


@pytest.mark.parametrize("k", [1, 2, 3])
def test_weight_derivatives_equal_finite_differences(k):
    rng = np.random.default_rng(30 + k)
    design = _design(20, k, rng)
    levels = FirstTermLevels(design)

    def weights(theta):
        lam = lambda_of(theta, k)
        A = lam.T @ design.D1 @ lam + np.eye(k)
        return lam @ np.linalg.solve(A, np.broadcast_to(lam.T, A.shape))

    step = 1e-6
    for theta in _thetas(k, rng):
        dM = levels.weight_derivatives(theta)
        for i in range(len(theta)):
            e = np.zeros(len(theta))
            e[i] = step
            expected = (weights(theta + e) - weights(theta - e)) / (2.0 * step)
            np.testing.assert_allclose(dM[:, i], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_schur_update_equals_the_batched_sums(k, monkeypatch):
    """Σ_j C_jᵀ λ A_j⁻¹ λᵀ C_j and Σ log|A_j|, over several chunks."""
    monkeypatch.setattr(first_term, "_CHUNK", 16)
    rng = np.random.default_rng(10 + k)
    design = _design(70, k, rng)
    levels = FirstTermLevels(design)
    for theta in _thetas(k, rng):
        lam = lambda_of(theta, k)
        A = lam.T @ design.D1 @ lam + np.eye(k)
        M = lam @ np.linalg.solve(A, np.broadcast_to(lam.T, A.shape))
        expected = np.einsum("jar,jab,jbs->rs", design.C, M, design.C)
        gram, logdet = levels.schur_update(theta)
        _close(gram, expected)
        assert logdet == pytest.approx(np.linalg.slogdet(A)[1].sum(), rel=RTOL)
        if k <= 2:
            _close(gram, _batched_gram(lam, design.D1, design.C)[0])


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_one_term_value_and_gradient_agree_across_strategies(k, reml, monkeypatch):
    """Stored outer products against the chunked syrk (several chunks)."""
    monkeypatch.setattr(first_term, "_CHUNK", 32)
    rng = np.random.default_rng(20 + k)
    design = _design(100, k, rng)
    outer = ProfiledCriterion(design, reml=reml, strategy="outer")
    dense = ProfiledCriterion(design, reml=reml, strategy="dense")
    for theta in _thetas(k, rng):
        v_outer, g_outer = outer.value_and_gradient(theta)
        v_dense, g_dense = dense.value_and_gradient(theta)
        assert v_dense == pytest.approx(v_outer, rel=RTOL)
        assert dense(theta) == pytest.approx(v_outer, rel=RTOL)
        _close(g_dense, g_outer)


def test_gradient_with_more_levels_than_a_chunk_equals_finite_differences():
    """Two-column term over 3 chunks of levels (unweighted), at θ and θ = 0."""
    rng = np.random.default_rng(7)
    design = _design(3 * first_term._CHUNK // 2, 2, rng, per=3, weighted=False)
    crit = ProfiledCriterion(design, strategy="dense")
    step = 1e-4
    for theta in (np.array([0.8, -0.3, 0.5]), np.array([0.6, 0.2, 0.0])):
        value, grad = crit.value_and_gradient(theta)
        assert value == crit(theta)
        expected = np.empty(3)
        for i in range(3):
            e = np.zeros(3)
            e[i] = step
            expected[i] = (
                8.0 * (crit(theta + e) - crit(theta - e))
                - (crit(theta + 2 * e) - crit(theta - 2 * e))
            ) / (12.0 * step)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("k", [1, 2])
def test_one_term_decomposition_agrees_across_strategies(k, monkeypatch):
    """β, the conditional modes and covariances, the spherical modes and the
    criterion's parts, chunked or not."""
    monkeypatch.setattr(first_term, "_CHUNK", 32)
    rng = np.random.default_rng(40 + k)
    design = _design(100, k, rng)
    theta = _thetas(k, rng)[0]
    outer = ProfiledCriterion(design, strategy="outer").decompose(theta)
    dense = ProfiledCriterion(design, strategy="dense").decompose(theta)
    for name in ("logdet_L", "logdet_RX", "pwrss"):
        assert getattr(dense, name) == pytest.approx(getattr(outer, name), rel=RTOL)
    _close(dense.beta, outer.beta)
    _close(dense.b[0], outer.b[0])
    _close(dense.RX, outer.RX)
    # formed on first access where chunked
    _close(dense.u[0], outer.u[0])
    _close(dense.A1, outer.A1)
    covariances = zip(
        dense.conditional_covariances(1.3),
        outer.conditional_covariances(1.3),
        strict=True,
    )
    for a, b in covariances:
        _close(a, b)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("reml", [True, False])
def test_analytic_hessian_equals_differences_of_the_gradient(k, reml, monkeypatch):
    """value_gradient_hessian: the value and gradient of value_and_gradient,
    and the Hessian of central differences of that gradient (several chunks,
    weighted rows, at θ inside the bounds and with a zero diagonal element)."""
    monkeypatch.setattr(first_term, "_CHUNK", 32)
    rng = np.random.default_rng(60 + k)
    crit = ProfiledCriterion(_design(100, k, rng), reml=reml, strategy="dense")
    assert crit.has_hessian
    for theta in _thetas(k, rng)[:2]:
        value, grad, hessian = crit.value_gradient_hessian(theta)
        expected_value, expected_grad = crit.value_and_gradient(theta)
        assert value == pytest.approx(expected_value, rel=RTOL)
        _close(grad, expected_grad)
        step = 1e-5
        expected = np.empty((len(theta), len(theta)))
        for i in range(len(theta)):
            e = np.zeros(len(theta))
            e[i] = step
            expected[:, i] = (
                crit.value_and_gradient(theta + e)[1]
                - crit.value_and_gradient(theta - e)[1]
            ) / (2.0 * step)
        scale = np.max(np.abs(expected))
        np.testing.assert_allclose(hessian, expected, rtol=1e-6, atol=1e-7 * scale)
        np.testing.assert_array_equal(hessian, hessian.T)


def test_no_analytic_hessian_where_later_terms_or_stored_products_serve():
    rng = np.random.default_rng(3)
    crit = ProfiledCriterion(_design(100, 2, rng), strategy="outer")
    assert not crit.has_hessian
    with pytest.raises(ValueError, match="no analytic Hessian"):
        crit.value_gradient_hessian(np.array([1.0, 0.0, 1.0]))
