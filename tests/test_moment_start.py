"""Large crossed fits start from moment estimates of θ (issue 13).

Where the analytic gradient drives the optimiser (a large later block),
the fit starts from ANOVA-type moment estimates instead of lme4's θ = 1.
The start must be close to the optimum, and the optimum reached must be
the one reached from lme4's start.
"""

import numpy as np
import pandas as pd

from skmixed import MixedLMRegressor
from skmixed.mixed.optimize import minimize_theta
from skmixed.mixed.start import moment_start


def _crossed(n=6000, subjects=700, items=500, sds=(0.8, 0.4), seed=3):
    """y ~ x + (1 | subject) + (1 | item), every subject meeting ~9 items."""
    rng = np.random.default_rng(seed)
    subject = rng.integers(0, subjects, n)
    item = rng.integers(0, items, n)
    x = rng.normal(size=n)
    y = (
        1.0
        + 0.5 * x
        + rng.normal(scale=sds[0], size=subjects)[subject]
        + rng.normal(scale=sds[1], size=items)[item]
        + rng.normal(size=n)
    )
    X = pd.DataFrame(
        {
            "x": x,
            "subject": pd.Series(subject).map("s{}".format),
            "item": pd.Series(item).map("i{}".format),
        }
    )
    return X, y


def _from_lme4s_start(criterion):
    """The fit's optimiser run from lme4's start θ = 1 instead."""
    return minimize_theta(
        criterion,
        criterion.theta_start,
        criterion.theta_lower,
        value_and_gradient=criterion.value_and_gradient,
        prefer_gradient=True,
    )


def test_a_large_crossed_fit_starts_near_its_optimum_and_reaches_lme4s():
    X, y = _crossed()
    model = MixedLMRegressor("(1 | subject) + (1 | item)").fit(X, y)
    criterion = model._criterion
    assert criterion.gradient_pays  # the case the moment start is for
    start = moment_start(criterion.design)
    np.testing.assert_allclose(start, model.theta_, rtol=0.15)
    # the same optimum as from lme4's start θ = 1
    from_one = _from_lme4s_start(criterion)
    assert model.reml_criterion_ <= from_one.fun + 1e-8 * abs(from_one.fun)
    np.testing.assert_allclose(model.theta_, from_one.x, rtol=1e-7)
    # and in fewer evaluations than from there
    assert model.n_evaluations_ < from_one.n_evaluations


def test_a_component_estimated_at_zero_starts_off_the_bound():
    # no item variance at all: its moment estimate is about 0 or negative
    X, y = _crossed(sds=(0.8, 0.0), seed=5)
    model = MixedLMRegressor("(1 | subject) + (1 | item)").fit(X, y)
    criterion = model._criterion
    start = moment_start(criterion.design)
    assert start[1] >= 0.1 - 1e-12  # sqrt of the smallest ratio, 0.01
    assert model.theta_[1] < 0.1
    # the same optimum as from θ = 1, in no more evaluations (L-BFGS-B
    # once retried rounding-level steps here)
    from_one = _from_lme4s_start(criterion)
    assert model.reml_criterion_ <= from_one.fun + 1e-8 * abs(from_one.fun)
    assert model.n_evaluations_ <= from_one.n_evaluations


def test_no_moment_start_for_vector_terms():
    X, y = _crossed(n=600, subjects=30, items=20)
    model = MixedLMRegressor("(1 + x | subject) + (1 | item)").fit(X, y)
    assert moment_start(model._criterion.design) is None
