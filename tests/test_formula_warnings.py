"""Warnings of lm, lmer and glmer point at the user's call, not into skmixed."""

import warnings

import numpy as np
import pandas as pd
import pytest

import skmixed


@pytest.fixture
def data():
    rng = np.random.default_rng(4)
    d = pd.DataFrame({"x": rng.normal(size=120), "g": np.repeat(np.arange(12), 10)})
    # groups with identical means of the noise and of the outcome: both
    # mixed models end on the boundary (theta = 0)
    e = rng.normal(size=120)
    d["y"] = 1.0 + 0.5 * d["x"] + e - pd.Series(e).groupby(d["g"]).transform("mean")
    d["yes"] = np.tile([1, 0], 60)
    d["x2"] = 2 * d["x"]  # aliased with x: lm drops it with a warning
    return d


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda d: skmixed.lmer("y ~ x + (1 | g)", d), "boundary (singular) fit"),
        (
            lambda d: skmixed.glmer("yes ~ x + (1 | g)", d, family="binomial"),
            "boundary (singular) fit",
        ),
        (lambda d: skmixed.lm("y ~ x + x2", d), "rank deficient"),
    ],
    ids=["lmer", "glmer", "lm"],
)
def test_warning_points_at_the_users_line(data, call, expected):
    caught = [w for w in _caught(lambda: call(data)) if expected in str(w.message)]
    assert caught, f"no warning containing {expected!r}"
    assert {w.filename for w in caught} == {__file__}


def test_user_filters_still_apply(data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message="boundary")
        skmixed.lmer("y ~ x + (1 | g)", data)
    assert not [w for w in caught if "boundary" in str(w.message)]


def test_a_warning_as_error_still_raises(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="boundary"):
            skmixed.lmer("y ~ x + (1 | g)", data)
