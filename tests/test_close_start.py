"""One random-effects term on many levels: Newton from moment estimates.

Beyond the small-fit path (``skmixed.mixed.small``, up to ``MAX_LEVELS``
levels) a one-term fit starts from moment estimates of θ
(``interior_start``) and takes Newton steps on the analytic gradient where
they lead to an optimum inside the bounds; otherwise BOBYQA runs from
lme4's start as before. Either way the optimum must be the one BOBYQA
reaches from lme4's start.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from skmixed import MixedLMRegressor
from skmixed.mixed.criterion import ProfiledCriterion
from skmixed.mixed.optimize import minimize_theta
from skmixed.mixed.small import MAX_LEVELS
from skmixed.mixed.start import interior_start

LEVELS = MAX_LEVELS + 500


def _data(sds=(0.8, 0.3), rho=0.4, per_level=8, seed=0, levels=LEVELS):
    """y ~ x1 + x2 + (1 + x1 | g) on ``levels`` levels, unequal level sizes."""
    rng = np.random.default_rng(seed)
    n = levels * per_level
    g = rng.integers(0, levels, n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    cov = np.array(
        [[sds[0] ** 2, rho * sds[0] * sds[1]], [rho * sds[0] * sds[1], sds[1] ** 2]]
    )
    b = rng.multivariate_normal(np.zeros(2), cov, size=levels)
    y = 1.0 + 0.5 * x1 - x2 + b[g, 0] + b[g, 1] * x1 + rng.normal(size=n)
    X = pd.DataFrame({"x1": x1, "x2": x2, "g": pd.Series(g).map("g{}".format)})
    return X, y


def _bobyqa_from_lme4s_start(criterion):
    """What the fit did before: BOBYQA from θ = 1, then Newton's polish."""
    return minimize_theta(
        criterion,
        criterion.theta_start,
        criterion.theta_lower,
        method="bobyqa",
        value_and_gradient=criterion.value_and_gradient,
    )


def _same_optimum(model, reference):
    value = model.reml_criterion_ if model.reml else model.deviance_
    assert value <= reference.fun + 1e-9 * abs(reference.fun)
    np.testing.assert_allclose(model.theta_, reference.x, rtol=1e-6, atol=1e-7)


def _assert_newton_from_a_close_start(model, atol, max_evaluations):
    """``model`` started within ``atol`` (and 5%) of its optimum, BOBYQA's
    from lme4's start, and reached it in at most ``max_evaluations``,
    fewer than BOBYQA's."""
    criterion = model._criterion
    start = interior_start(criterion.design)
    np.testing.assert_allclose(start, model.theta_, rtol=0.05, atol=atol)
    reference = _bobyqa_from_lme4s_start(criterion)
    _same_optimum(model, reference)
    assert model.n_evaluations_ <= max_evaluations < reference.n_evaluations
    assert model.converged_


@pytest.mark.parametrize(
    ("spec", "reml"),
    [("(1 + x1 | g)", True), ("(1 + x1 | g)", False), ("(1 | g)", True)],
)
def test_a_many_level_fit_takes_newton_from_the_moment_start(spec, reml):
    X, y = _data()
    model = MixedLMRegressor(spec, reml=reml).fit(X, y)
    # a handful of values and gradients, against BOBYQA's dozens
    _assert_newton_from_a_close_start(model, atol=0.02, max_evaluations=12)


def test_levels_of_a_row_or_two_start_near_the_optimum():
    """Two rows per level on average (a third of the levels have one row,
    which says nothing of the slope's own direction): their residuals
    still count in the first direction's equation and in σ²'s degrees of
    freedom, so the start lands close; there was no start at all (σ² taken
    too large, Σ / σ² too small), and BOBYQA took ~50 evaluations."""
    X, y = _data(per_level=2, seed=3, levels=100_000)
    model = MixedLMRegressor("(1 + x1 | g)").fit(X, y)
    _assert_newton_from_a_close_start(model, atol=0.01, max_evaluations=6)


@pytest.mark.parametrize("reml", [True, False])
def test_newton_from_the_moment_start_on_the_analytic_hessian(reml, monkeypatch):
    """Levels too many for stored outer products (here: made so) give Newton
    the criterion's analytic Hessian: the optimum of the forward-difference
    Hessian's steps, and of BOBYQA, for half the evaluations."""
    from skmixed.mixed import criterion as criterion_module
    from skmixed.mixed import optimize

    X, y = _data()
    monkeypatch.setattr(criterion_module, "_MAX_OUTER_PRODUCTS", 0)
    analytic = MixedLMRegressor("(1 + x1 | g)", reml=reml).fit(X, y)
    assert analytic._criterion.strategy == "dense"
    assert analytic._criterion.has_hessian
    calls = []
    original = optimize._forward_hessian
    monkeypatch.setattr(
        optimize,
        "_forward_hessian",
        lambda *args: calls.append(1) or original(*args),
    )
    analytic = MixedLMRegressor("(1 + x1 | g)", reml=reml).fit(X, y)
    assert not calls
    monkeypatch.setattr(criterion_module.ProfiledCriterion, "has_hessian", False)
    differences = MixedLMRegressor("(1 + x1 | g)", reml=reml).fit(X, y)
    assert calls
    value = "reml_criterion_" if reml else "deviance_"
    assert getattr(analytic, value) == pytest.approx(
        getattr(differences, value), rel=1e-12
    )
    np.testing.assert_allclose(analytic.theta_, differences.theta_, rtol=1e-9)
    np.testing.assert_allclose(analytic.coef_, differences.coef_, rtol=1e-9)
    _same_optimum(analytic, _bobyqa_from_lme4s_start(analytic._criterion))
    assert analytic.n_evaluations_ < differences.n_evaluations_
    assert analytic.converged_


def _fit_without_slope_variance(seed):
    """A fit whose slope variance is 0 in the data (singular on ``seed``s
    1 and 5, the optimum on the bound θ_2 = 0)."""
    X, y = _data(sds=(0.8, 0.0), rho=0.0, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a singular fit
        model = MixedLMRegressor("(1 + x1 | g)").fit(X, y)
    assert model.is_singular_
    return model


def test_a_start_on_the_boundary_is_left_to_bobyqa():
    # the moment estimate's small eigenvalue is below 0: no Newton attempt
    model = _fit_without_slope_variance(seed=5)
    criterion = model._criterion
    assert interior_start(criterion.design) is None
    reference = _bobyqa_from_lme4s_start(criterion)
    _same_optimum(model, reference)
    assert model.n_evaluations_ == reference.n_evaluations


def test_newton_heading_for_a_bound_hands_over_to_bobyqa():
    # a start inside the bounds, the optimum on them: Newton's steps leave
    # the interior, and BOBYQA from lme4's start finds the boundary optimum
    model = _fit_without_slope_variance(seed=1)
    criterion = model._criterion
    assert interior_start(criterion.design) is not None
    reference = _bobyqa_from_lme4s_start(criterion)
    _same_optimum(model, reference)
    # the Newton attempt's evaluations are counted too
    assert model.n_evaluations_ > reference.n_evaluations


@pytest.mark.parametrize("spec", ["(1 + x1 | g)", "(1 | g)"])
def test_the_many_level_decomposition_equals_the_stored_products_one(spec):
    X, y = _data()
    model = MixedLMRegressor(spec).fit(X, y)
    design = model._criterion.design
    theta = 1.1 * model.theta_
    outer = ProfiledCriterion(design, strategy="outer").decompose(theta)
    dense = ProfiledCriterion(design, strategy="dense").decompose(theta)
    for name in ("A1", "beta", "RX"):
        np.testing.assert_allclose(
            getattr(dense, name), getattr(outer, name), rtol=1e-12, atol=1e-14
        )
    for name in ("logdet_L", "logdet_RX", "pwrss"):
        assert getattr(dense, name) == pytest.approx(getattr(outer, name), rel=1e-12)
    np.testing.assert_allclose(dense.b[0], outer.b[0], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dense.u[0], outer.u[0], rtol=1e-10, atol=1e-13)
