"""A fit's time is estimated before the optimiser starts (issue 13).

The estimate comes from the block structures chosen at set-up: a model
whose later-factor block would take far too long is announced at once, with
the factor sizes and the estimated time, never after minutes of work.
"""

import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from _simulated import crossed_frame
from sklearn.exceptions import EfficiencyWarning

from skmixed import MixedLMRegressor
from skmixed.mixed import schur
from skmixed.mixed.cost import SLOW_FIT_SECONDS


def test_a_model_far_too_slow_is_announced_before_optimising(monkeypatch):
    """20,000 levels of a, each crossed with 8 of 6,000 b and 8 of 6,000 c
    levels: the b and c levels meet in ~2.7M pairs, so their 12,000-wide
    block fills in and is factored densely, ~1e12 flops per evaluation.
    Cheap to build (160,000 rows); the estimate is beyond minutes."""
    # Choosing the dense block checks that its 3.5 GB would fit (MemoryError
    # at once otherwise: tests/test_structured_blocks.py) before the time is
    # estimated. The block is never allocated here (the fit stops first; the
    # test peaks at ~0.4 GB), but with less than 4.3 GB free -- other
    # processes' load -- the fit raised MemoryError instead of the warning.
    # This test is about the time, so it sees a machine with memory to spare.
    monkeypatch.setattr(schur, "available_memory", lambda: 64 * 1024**3)
    rng = np.random.default_rng(0)
    a = np.repeat(np.arange(20_000), 8)
    n = len(a)
    X = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "a": a,
            "b": rng.integers(0, 6_000, n),
            "c": rng.integers(0, 6_000, n),
        }
    )
    model = MixedLMRegressor("(1 | a) + (1 | b) + (1 | c)")
    with warnings.catch_warnings():
        # the user's way to stop such a fit at once
        warnings.simplefilter("error", EfficiencyWarning)
        with pytest.raises(EfficiencyWarning) as info:
            model.fit(X, rng.normal(size=n))
    message = str(info.value)
    assert "a (20,000 levels x 1), b (6,000 levels x 1), c (6,000 levels x 1)" in (
        message
    )
    assert "dense 12,000 x 12,000" in message
    estimate = re.search(r"estimated to take about ([\d.]+) (min|h|days)", message)
    assert estimate is not None
    minutes = float(estimate[1]) * {"min": 1, "h": 60, "days": 1440}[estimate[2]]
    assert minutes > SLOW_FIT_SECONDS / 60
    # raised before the optimiser: nothing was fitted
    assert not hasattr(model, "theta_")


def test_the_estimate_is_logged_and_kept(caplog):
    X, y = crossed_frame(4_000, 3_000, 3_000)
    with caplog.at_level(logging.INFO, logger="skmixed"), warnings.catch_warnings():
        warnings.simplefilter("error", EfficiencyWarning)
        model = MixedLMRegressor("(1 | user) + (1 | item)").fit(X, y)
    cost = model.fit_cost_
    # few crossings: the item block is sparse, its trial factor sized
    assert model._criterion.rest_structure == "sparse"
    q = model._criterion.design.q_rest
    assert cost.structure == f"sparse {q:,} x {q:,}"
    assert cost.memory_bytes >= 16 * model._criterion._rest.n_stored
    assert 0 < cost.seconds < SLOW_FIT_SECONDS
    assert cost.seconds == pytest.approx(cost.seconds_per_evaluation * cost.evaluations)
    logged = [r.getMessage() for r in caplog.records if r.name == "skmixed"]
    users = f"user ({model.n_groups_['user']:,} levels x 1)"
    assert any("estimated optimiser time" in m and users in m for m in logged)
