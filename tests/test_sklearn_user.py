"""skmixed as a scikit-learn user meets it: meta-estimators, metadata
routing, pipelines and persistence, written as the user's own calls.

Each test here began as a defect found by trying the estimators the way
scikit-learn's documentation teaches; the expected numbers are those of
the plain call that the meta-estimator should reproduce.
"""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixed import GroupsMissingWarning, MixedLMRegressor, MixedLogisticRegression
from skmixed.datasets import load_sleepstudy


@pytest.fixture(scope="module")
def sleep():
    df = load_sleepstudy()
    slow = (df["Reaction"] > 300).astype(int)
    return df[["Days"]], slow, df["Subject"]


@pytest.mark.parametrize(
    "method", ["predict_proba", "predict_log_proba", "decision_function", "predict"]
)
def test_routed_pipeline_passes_groups_to_every_classifier_method(sleep, method):
    # Under routing a Pipeline gives predict_proba(X, groups=g) to the last
    # step only if the step requests groups for that method; the docs promise
    # the estimators request groups by default (no set_*_request call), and
    # predict did while predict_proba, predict_log_proba and
    # decision_function raised UnsetMetadataPassedError.
    X, slow, g = sleep
    scaler = StandardScaler().set_output(transform="pandas")
    direct = MixedLogisticRegression("(1 | Subject)").fit(
        scaler.fit_transform(X), slow, groups=g
    )
    expected = getattr(direct, method)(scaler.transform(X), groups=g)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_output(transform="pandas"),
            MixedLogisticRegression("(1 | Subject)"),
        ).fit(X, slow, groups=g)
        got = getattr(pipe, method)(X, groups=g)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # with the random effects: differs from the population-level answer
    population = getattr(direct, method)(
        scaler.transform(X), groups=g, include_random=False
    )
    assert not np.allclose(got, population)


@pytest.mark.parametrize("kind", ["lmm", "logistic"])
def test_population_prediction_without_groups_does_not_warn(sleep, kind):
    # predict(X_new, include_random=False) is lme4's re.form = NA: the user
    # asks for the population level, so the groups are not needed and a
    # GroupsMissingWarning ("predicting at population level") only repeats
    # the request. The numbers are those of the same call with the groups.
    X, slow, g = sleep
    if kind == "lmm":
        reaction = load_sleepstudy()["Reaction"]
        model = MixedLMRegressor("(Days | Subject)").fit(X, reaction, groups=g)
        methods = ["predict"]
    else:
        model = MixedLogisticRegression("(1 | Subject)").fit(X, slow, groups=g)
        methods = ["predict", "predict_proba", "decision_function"]
    for method in methods:
        with_groups = getattr(model, method)(X, groups=g, include_random=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", GroupsMissingWarning)
            without = getattr(model, method)(X, include_random=False)
        np.testing.assert_array_equal(without, with_groups)
    # asked for the conditional prediction, the missing groups still warn
    with pytest.warns(GroupsMissingWarning, match="population level"):
        model.predict(X)
