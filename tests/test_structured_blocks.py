"""The later factors' block keeps the structure of its levels (issue 13).

Nested factors give a diagonal block, few crossings a sparse one; no dense
block of the size of a later factor is formed where it is not needed, and a
model too large for the machine fails before the optimiser starts.
"""

import re
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from _simulated import crossed_frame

import skmixed.mixed.estimator as estimator_module
from skmixed import MixedLMRegressor
from skmixed.mixed import schur
from skmixed.mixed.criterion import ProfiledCriterion


def _nested(n_schools, classes_per_school, rows_per_class, seed=0):
    """y ~ x + (1 | school/class), class labels repeating across schools."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(n_schools), classes_per_school * rows_per_class)
    klass = np.tile(np.repeat(np.arange(classes_per_school), rows_per_class), n_schools)
    n = len(school)
    x = rng.normal(size=n)
    u_school = rng.normal(scale=0.7, size=n_schools)
    u_class = rng.normal(scale=0.5, size=(n_schools, classes_per_school))
    y = 1.0 + 0.5 * x + u_school[school] + u_class[school, klass] + rng.normal(size=n)
    X = pd.DataFrame(
        {
            "x": x,
            "school": pd.Series(school).map("s{}".format),
            "class": pd.Series(klass).map("c{}".format),
        }
    )
    return X, y


def test_nested_design_with_2000_schools_keeps_the_school_block_diagonal():
    X, y = _nested(2_000, 3, 3)
    tracemalloc.start()
    try:
        model = MixedLMRegressor("(1 | school/class)").fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    criterion = model._criterion
    design = criterion.design
    assert [t.m for t in design.terms] == [6_000, 2_000]
    assert criterion.rest_structure == "diagonal"
    # the school block is stored as one 1 x 1 block per school: its pattern
    # holds the 2,000 diagonal entries and nothing else
    rest = criterion._rest
    np.testing.assert_array_equal(rest._rows, np.arange(2_000))
    np.testing.assert_array_equal(rest._cols, np.arange(2_000))
    # a dense 2,000 x 2,000 block alone would be 32 MB: the whole fit
    # (data of 18,000 rows included) stays well below that
    assert peak < 2_000 * 2_000 * 8 / 2
    # and the diagonal factor gives the dense factor's numbers
    dense = ProfiledCriterion(design, reml=True, rest_structure="dense")
    assert dense.rest_structure == "dense"
    assert criterion(model.theta_) == pytest.approx(dense(model.theta_), rel=1e-12)
    dec, dec_dense = criterion.decompose(model.theta_), dense.decompose(model.theta_)
    np.testing.assert_allclose(dec.b[1], dec_dense.b[1], rtol=1e-9, atol=1e-12)


def test_sparse_structure_where_crossings_are_few():
    """3,000 users each rating ~1.3 of 3,000 items: the item block is sparse."""
    X, y = crossed_frame(4_000, 3_000, 3_000)
    model = MixedLMRegressor("(1 | user) + (1 | item)").fit(X, y)
    criterion = model._criterion
    assert criterion.rest_structure == "sparse"
    dense = ProfiledCriterion(criterion.design, rest_structure="dense")
    for theta in (model.theta_, np.array([0.5, 2.0])):
        assert criterion(theta) == pytest.approx(dense(theta), rel=1e-12)


def test_a_model_too_large_for_memory_fails_before_optimising(monkeypatch):
    """The memory needed is estimated from the factor sizes at setup; the
    error names them and the memory needed, and the optimiser never runs."""
    X, y = crossed_frame(20_000, 2_000, 1_800)
    # this machine, for the test, has 10 MB available
    monkeypatch.setattr(schur, "available_memory", lambda: 10_000_000)
    calls = []
    original = estimator_module.minimize_theta

    def recording(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(estimator_module, "minimize_theta", recording)
    with pytest.raises(MemoryError) as info:
        MixedLMRegressor("(1 | user) + (1 | item)").fit(X, y)
    message = str(info.value)
    assert re.search(r"user \(2,000 levels x 1\), item \(1,\d{3} levels x 1\)", message)
    assert re.search(r"needs about \d+ MB .* available \(10 MB\)", message)
    assert not calls
