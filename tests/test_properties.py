"""Property tests (issue 7) on small generated grouped data (hypothesis).

Hypothesis draws the shape of the data (number of groups, their sizes, the
model) and a seed; numpy draws the numbers from that seed, so every example
is a well-formed grouped data set. ``derandomize=True`` keeps CI
deterministic; ``max_examples`` is kept small so the file runs in seconds.

Tolerances: a refit on permuted rows sums the cross-products in another
order, so it is the same fit up to rounding and the optimiser's stopping
rule. Criteria are compared to 1e-7 (the optimiser stops within ~1e-8 of the
optimum), coefficients to 1e-4 of their standard error -- where the
criterion is that flat, coefficients cannot be pinned closer.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from skmixed import FixedEffectsRegressor, MixedLMRegressor, PooledRegressor

SETTINGS = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
SPECS = ["(1 | g)", "(x | g)", "(x || g)", "(1 | g) + (1 | h)"]


@st.composite
def grouped_data(draw):
    """(frame with x, z, g, h; y; spec) with 3-7 groups of 3-9 rows."""
    sizes = draw(st.lists(st.integers(3, 9), min_size=3, max_size=7))
    seed = draw(st.integers(0, 2**32 - 1))
    spec = draw(st.sampled_from(SPECS))
    rng = np.random.default_rng(seed)
    m, n = len(sizes), sum(sizes)
    g = np.repeat(np.arange(m), sizes)
    h = rng.integers(0, 3, n)
    x = rng.normal(size=n)
    z = rng.uniform(-2, 2, n)
    b = rng.normal(size=(m, 2)) * [1.0, 0.5]
    y = 2.0 + 0.7 * x - 0.4 * z + b[g, 0] + b[g, 1] * x + rng.normal(size=n)
    y += rng.normal(size=3)[h] * 0.5
    frame = pd.DataFrame(
        {"x": x, "z": z, "g": [f"s{v}" for v in g], "h": [f"t{v}" for v in h]}
    )
    if "h" not in spec:
        frame = frame.drop(columns="h")
    return frame, y, spec


def _fit(model, frame, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits are part of the space
        return clone(model).fit(frame, y)


def _assert_same_fit(a, b):
    """Two fits of the same model: criterion, β (relative to SE), σ."""
    assert a.reml_criterion_ == pytest.approx(b.reml_criterion_, abs=1e-7)
    se = np.sqrt(np.diag(a.vcov_))
    diff = np.abs(a.fixed_effects_.to_numpy() - b.fixed_effects_.to_numpy())
    assert np.all(diff <= 1e-4 * se + 1e-10)
    assert a.sigma_ == pytest.approx(b.sigma_, rel=1e-4)


@SETTINGS
@given(data=grouped_data(), order_seed=st.integers(0, 1000))
def test_row_order_does_not_matter(data, order_seed):
    frame, y, spec = data
    order = np.random.default_rng(order_seed).permutation(len(y))
    model = MixedLMRegressor(spec)
    a = _fit(model, frame, y)
    b = _fit(model, frame.iloc[order].reset_index(drop=True), y[order])
    _assert_same_fit(a, b)
    # the conditional modes follow their levels, not the rows
    for factor, modes in a.random_effects_.items():
        pd.testing.assert_frame_equal(
            modes.sort_index(),
            b.random_effects_[factor].sort_index(),
            atol=1e-4 * float(np.abs(modes.to_numpy()).max() + 1.0),
        )


@SETTINGS
@given(data=grouped_data(), name_seed=st.integers(0, 1000))
def test_group_labels_can_be_renamed_and_reordered(data, name_seed):
    frame, y, spec = data
    rng = np.random.default_rng(name_seed)
    levels = frame["g"].unique()
    # new names in another order (and numbers: level order becomes numeric)
    new_names = rng.permutation(len(levels)) * 7 + 100
    renamed = frame.assign(g=frame["g"].map(dict(zip(levels, new_names, strict=True))))
    a = _fit(MixedLMRegressor(spec), frame, y)
    b = _fit(MixedLMRegressor(spec), renamed, y)
    _assert_same_fit(a, b)
    np.testing.assert_allclose(
        a.predict(frame), b.predict(renamed), rtol=1e-6, atol=1e-6 * np.std(y)
    )


@SETTINGS
@given(data=grouped_data(), shift=st.floats(-1e3, 1e3))
def test_adding_a_constant_to_y_changes_only_the_intercept(data, shift):
    frame, y, spec = data
    a = _fit(MixedLMRegressor(spec), frame, y)
    b = _fit(MixedLMRegressor(spec), frame, y + shift)
    assert a.reml_criterion_ == pytest.approx(b.reml_criterion_, abs=1e-7)
    se = np.sqrt(np.diag(a.vcov_))
    assert b.intercept_ - shift == pytest.approx(a.intercept_, abs=1e-4 * se[0])
    np.testing.assert_allclose(b.coef_, a.coef_, atol=float(1e-4 * se[1:].max()))
    assert b.sigma_ == pytest.approx(a.sigma_, rel=1e-4)
    np.testing.assert_allclose(
        b.variance_components_["vcov"], a.variance_components_["vcov"], atol=1e-4
    )
    lm_frame = frame[["x", "z", "g"]]
    for lm in (PooledRegressor(group="g"), FixedEffectsRegressor(group="g")):
        c, d = _fit(lm, lm_frame, y), _fit(lm, lm_frame, y + shift)
        assert d.intercept_ - shift == pytest.approx(c.intercept_, abs=1e-9)
        np.testing.assert_allclose(d.coef_, c.coef_, rtol=1e-9, atol=1e-10)


@SETTINGS
@given(data=grouped_data(), direction_seed=st.integers(0, 1000))
def test_reported_theta_is_a_local_minimum(data, direction_seed):
    frame, y, spec = data
    model = _fit(MixedLMRegressor(spec), frame, y)
    criterion, theta = model._criterion, model.theta_
    at_optimum = criterion(theta)
    rng = np.random.default_rng(direction_seed)
    for step in (1e-3, 1e-2):
        for _ in range(4):
            nearby = np.maximum(
                theta + step * rng.normal(size=theta.size), criterion.theta_lower
            )
            assert at_optimum <= criterion(nearby) + 1e-7


@SETTINGS
@given(data=grouped_data())
def test_predictions_for_training_rows_are_the_fitted_values(data):
    frame, y, spec = data
    model = _fit(MixedLMRegressor(spec), frame, y)
    np.testing.assert_allclose(
        model.predict(frame), model.fittedvalues_, rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(model.residuals_, y - model.fittedvalues_, atol=1e-10)


@SETTINGS
@given(data=grouped_data())
def test_clone_and_refit_is_bit_for_bit(data):
    frame, y, spec = data
    first = _fit(MixedLMRegressor(spec), frame, y)
    second = _fit(first, frame, y)
    np.testing.assert_array_equal(first.theta_, second.theta_)
    np.testing.assert_array_equal(first.fixed_effects_, second.fixed_effects_)
    np.testing.assert_array_equal(first.fittedvalues_, second.fittedvalues_)
    assert first.reml_criterion_ == second.reml_criterion_
    assert first.n_evaluations_ == second.n_evaluations_


@SETTINGS
@given(data=grouped_data())
def test_pickle_round_trip(data):
    frame, y, spec = data
    lm_frame = frame[["x", "z", "g"]]
    models = [
        _fit(MixedLMRegressor(spec), frame, y),
        _fit(PooledRegressor(group="g"), lm_frame, y),
        _fit(FixedEffectsRegressor(group="g"), lm_frame, y),
    ]
    for model, X in zip(models, [frame, lm_frame, lm_frame], strict=True):
        restored = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(restored.predict(X), model.predict(X))
        assert restored.get_params() == model.get_params()
    mixed, restored = models[0], pickle.loads(pickle.dumps(models[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the summary's Hessian check
        assert str(restored.summary()) == str(mixed.summary())
    np.testing.assert_array_equal(restored.theta_, mixed.theta_)
