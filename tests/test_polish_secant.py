"""The polish after L-BFGS-B takes its Hessian from the optimiser's last
gradients where they determine it (issue 13), and falls back to forward
differences where they do not."""

import numpy as np

from skmixed.mixed.optimize import _polish, _secant_hessian

H_TRUE = np.array([[4.0, 1.0], [1.0, 3.0]])
OPTIMUM = np.array([0.7, 0.4])


def _counted():
    calls = []

    def value_and_gradient(x):
        calls.append(np.array(x))
        d = x - OPTIMUM
        # a quartic term: the Hessian varies away from the optimum
        return 0.5 * d @ H_TRUE @ d + (d**4).sum(), H_TRUE @ d + 4 * d**3

    return value_and_gradient, calls


def test_secant_hessian_from_steps_that_span_the_free_elements():
    fun, _ = _counted()
    x = OPTIMUM + 1e-4
    _, g = fun(x)
    history = [(x + d, fun(x + d)[1]) for d in ([1e-3, 0.0], [2e-4, -1e-3])]
    H = _secant_hessian(history, x, g, np.arange(2))
    np.testing.assert_allclose(H, H_TRUE, rtol=1e-3, atol=1e-3)
    # collinear steps (or too few) do not determine it
    collinear = [(x + d, fun(x + d)[1]) for d in ([1e-3, 1e-3], [2e-3, 2e-3])]
    assert _secant_hessian(collinear, x, g, np.arange(2)) is None
    assert _secant_hessian(history[:1], x, g, np.arange(2)) is None
    # nor do points far away
    far = [(x + d, fun(x + d)[1]) for d in ([1.0, 0.0], [0.0, 1.0])]
    assert _secant_hessian(far, x, g, np.arange(2)) is None


def test_polish_with_history_reaches_the_optimum_without_differences():
    fun, calls = _counted()
    x = OPTIMUM + np.array([3e-5, -2e-5])
    history = [(x + d, fun(x + d)[1]) for d in ([1e-3, 0.0], [0.0, 1e-3])]
    calls.clear()
    lower = np.zeros(2)
    theta, _, g = _polish(fun, x, lower, history=history)
    np.testing.assert_allclose(theta, OPTIMUM, rtol=0, atol=1e-12)
    # no forward-difference points: only x and the chord steps
    h = 1e-6
    assert not any(np.any(np.isclose(c - x, h, rtol=0, atol=1e-9)) for c in calls)
    # the same optimum as with forward differences
    theta_fd, _, _ = _polish(fun, x, lower)
    np.testing.assert_allclose(theta, theta_fd, rtol=0, atol=1e-12)


def test_a_poor_history_hessian_falls_back_to_differences():
    fun, calls = _counted()
    x = OPTIMUM + np.array([3e-2, -2e-2])
    # gradients from a Hessian ten times too large: steps ten times too short
    history = [(x + d, fun(x)[1] + 10 * H_TRUE @ d) for d in ([1e-3, 0.0], [0.0, 1e-3])]
    theta, _, _ = _polish(fun, x, np.zeros(2), history=history)
    np.testing.assert_allclose(theta, OPTIMUM, rtol=0, atol=1e-12)
