"""The GLMM estimators as a data scientist uses them: labels, bad input,
and numbers against lme4's glmer on small simulated data
(tests/data/glmer_user, made by make_glmer_user.R there)."""

import numpy as np
import pandas as pd
import pytest

from skmixed import MixedLogisticRegression


def _binary_data(seed=0, n_groups=20, size=15):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    x = rng.standard_normal(g.size)
    eta = -0.3 + 0.8 * x + rng.normal(0.0, 1.0, n_groups)[g]
    y = rng.random(g.size) < 1.0 / (1.0 + np.exp(-eta))
    X = pd.DataFrame({"x": x, "g": [f"g{i}" for i in g]})
    return X, np.where(y, "yes", "no")


@pytest.mark.parametrize(
    "as_labels",
    [
        lambda y: pd.Series(y, dtype=object),
        lambda y: pd.Series(y, dtype="string"),
        lambda y: pd.Series(pd.Categorical(y)),
        lambda y: pd.Series((y == "yes").astype(float)),
    ],
    ids=["object", "string", "categorical", "float"],
)
def test_classifier_missing_labels_are_named_or_dropped(as_labels):
    # A label column with a gap, as read from a CSV: the error names it
    # (not a TypeError from sorting None among strings), and
    # missing='drop' drops the row, as the docstring promises for y.
    X, y = _binary_data(4)
    labels = as_labels(y)
    labels[7] = None
    with pytest.raises(ValueError, match=r"y .*missing label.*1 row"):
        MixedLogisticRegression("(1 | g)").fit(X, labels)
    with pytest.warns(UserWarning, match="dropped 1 row"):
        dropped = MixedLogisticRegression("(1 | g)", missing="drop").fit(X, labels)
    keep = np.arange(len(X)) != 7
    by_hand = MixedLogisticRegression("(1 | g)").fit(X[keep], labels[keep])
    np.testing.assert_array_equal(dropped.classes_, by_hand.classes_)
    assert dropped.nobs_ == len(X) - 1
    np.testing.assert_allclose(dropped.fixed_effects_, by_hand.fixed_effects_)
