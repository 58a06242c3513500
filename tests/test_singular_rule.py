"""One singularity rule for LMM and GLMM fits and performance's r2/icc.

lme4's isSingular: any θ element whose lower bound is 0 below tol (1e-4 for
the fit's flag; performance's r2/icc use 1e-5); off-diagonal elements
(bound -inf) never count, however small.
"""

import numpy as np
import pytest

from skmixed.glmm import optimize as glmm_optimize
from skmixed.mixed.optimize import SINGULAR_TOL, is_singular

LOWER = np.array([0.0, -np.inf, 0.0])


@pytest.mark.parametrize(
    ("theta", "singular"),
    [
        ([1.0, 0.0, 0.5], False),  # an off-diagonal 0 is not a boundary
        ([1.0, -3.0, 0.99e-4], True),
        ([1.0, 0.2, 1e-4], False),  # at tol: not below it
        ([0.0, 0.2, 1.0], True),
    ],
)
def test_one_rule_for_lmm_and_glmm(theta, singular):
    assert SINGULAR_TOL == 1e-4
    assert is_singular(np.array(theta), LOWER) is singular
    assert glmm_optimize.is_singular(np.array(theta), LOWER) is singular
