"""L-BFGS-B on the analytic gradient does not stop on a flat bound (issue 13).

The profiled criterion is even in a scalar term's θ, so its gradient is 0
at θ = 0 whatever the curvature there. Crossed fits large enough for the
gradient-based optimiser, with variance components a few percent of the
residual's, stopped with one θ at 0 although a small positive θ was lower.
"""

import numpy as np
import pandas as pd

from skmixed import MixedLMRegressor


def _small_components(seed):
    """1,200 a x 500 b levels crossed; both sds a tenth of the residual's."""
    rng = np.random.default_rng(seed)
    n, ma, mb = 6_000, 1_200, 500
    a, b = rng.integers(0, ma, n), rng.integers(0, mb, n)
    x = rng.normal(size=n)
    y = 0.1 * rng.normal(size=ma)[a] + 0.1 * rng.normal(size=mb)[b]
    y += x + rng.normal(size=n)
    return pd.DataFrame({"x": x, "a": a, "b": b}), y


def test_a_small_crossed_component_is_not_left_at_zero():
    X, y = _small_components(10)
    model = MixedLMRegressor("(1 | a) + (1 | b)").fit(X, y)
    # the fit takes the gradient-based path this test is about
    assert model._criterion.gradient_pays
    # BOBYQA (lme4's optimiser) from lme4's start finds b's component
    bobyqa = MixedLMRegressor("(1 | a) + (1 | b)", optimizer="bobyqa").fit(X, y)
    assert bobyqa.theta_[1] > 0.05
    # before: θ = (0.0885, 0), 0.70 above BOBYQA's criterion
    assert model.reml_criterion_ <= bobyqa.reml_criterion_ + 1e-6
    np.testing.assert_allclose(model.theta_, bobyqa.theta_, rtol=1e-3)
    assert not model.is_singular_
