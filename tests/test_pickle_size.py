"""A fitted model pickled to be deployed: the same answers after unpickling,
and a pickle of the data the model must keep, not of its caches."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from skmixed import MixedGLMRegressor, MixedLMRegressor, MixedLogisticRegression

N = 20_000


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    g = rng.integers(0, 200, N)
    h = rng.integers(0, 30, N)
    X = pd.DataFrame({"x": rng.normal(size=N), "g": g.astype(str), "h": h.astype(str)})
    eta = (
        0.3
        + (0.5 + 0.3 * rng.normal(size=200)[g]) * X["x"]
        + rng.normal(size=200)[g]
        + 0.5 * rng.normal(size=30)[h]
    )
    return X, {
        "binary": (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(int),
        "count": rng.poisson(np.exp(0.5 * eta)),
        "gaussian": eta + rng.normal(size=N),
    }


# columns of n float64 (or int64 level codes) a fitted model must keep:
# a GLMM refits nothing after unpickling but its inference (summary's
# Hessian, profiles) re-runs PIRLS, which needs X (p = 2 with the
# intercept), the random-effects columns Z of a slope term (k = 2), y, the
# prior weights, the offset and one column of level codes per term; its
# fitted values are the conditional modes' eta, mu and working weights.
# The LMM keeps X, Z, the codes and y. On top: three columns' worth for the
# arrays per level or pair of levels (the GLMM's factor at the modes, the
# LMM's per-level sums and factor at the estimate) and names. Anything
# above is a cache that unpickling rebuilds.
CASES = [
    (
        "logistic",
        lambda: MixedLogisticRegression("(1 + x | g)"),
        "binary",
        2 + 2 + 3 + 1 + 3,
    ),
    (
        "poisson",
        lambda: MixedGLMRegressor("(1 | g) + (1 | h)", family="poisson"),
        "count",
        2 + 3 + 2 + 3,
    ),
    (
        "lmm",
        lambda: MixedLMRegressor("(1 + x | g)"),
        "gaussian",
        2 + 2 + 1 + 1,
    ),
    (
        "lmm crossed",
        lambda: MixedLMRegressor("(1 + x | g) + (1 | h)"),
        "gaussian",
        2 + 2 + 2 + 1,
    ),
]


@pytest.mark.parametrize(("name", "make", "response", "columns"), CASES)
def test_pickled_model_answers_alike_and_keeps_only_its_data(
    data, name, make, response, columns
):
    X, responses = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits are not the point
        model = make().set_params(fixed_effects=["x"]).fit(X, responses[response])
    blob = pickle.dumps(model)
    assert len(blob) < N * 8 * (columns + 3), (len(blob), N * 8 * columns)
    again = pickle.loads(blob)
    # inference first on the copy: it re-runs PIRLS on rebuilt caches
    summary = str(again.summary())
    assert summary == str(model.summary())
    pd.testing.assert_frame_equal(again.conf_int(), model.conf_int())
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert list(again.random_effects_) == list(model.random_effects_)
    for group, want in model.random_effects_.items():
        pd.testing.assert_frame_equal(again.random_effects_[group], want)
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
