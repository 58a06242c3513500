"""A response given as text ("0"/"1", "3") is refused with a message that
says so, as R's lmer and glmer refuse a character response; labels go to
MixedLogisticRegression, factors (categoricals) and bools to glmer.

The numbers and R's messages are from tests/data/text_response (made by
make_text_response.R there): glmer says "response must be numeric or
factor" (binomial) and "response must be numeric" (poisson, lmer).
"""

import numpy as np
import pandas as pd
import pytest
from _r_outputs import r_data, r_output

import skmixed
from skmixed import (
    FixedEffectsRegressor,
    MixedGLMRegressor,
    MixedLMRegressor,
    MixedLogisticRegression,
    PooledRegressor,
)

_R = r_output("text_response", "text_response")
# glmer's estimates (bobyqa, tight PIRLS) against ours: measured within
# 4e-6 of each other.
_TOL = {"rtol": 0, "atol": 2e-5}


@pytest.fixture(scope="module")
def data():
    return r_data("text_response", "text_response")


def _as_text(values, form):
    text = np.asarray(values).astype(str)
    return {
        "numpy": text,
        "list": text.tolist(),
        "object Series": pd.Series(text, dtype=object, name="yes"),
        "string Series": pd.Series(text, dtype="string", name="yes"),
    }[form]


_FORMS = ["numpy", "list", "object Series", "string Series"]


def test_r_refuses_character_responses():
    # what the tests below follow (R 4.2.2, lme4 1.1-31)
    assert _R["glmer_binomial_character_01"]["message"] == (
        "response must be numeric or factor"
    )
    assert _R["glmer_poisson_character"]["message"] == "response must be numeric"
    assert _R["lmer_character"]["message"] == "response must be numeric"


@pytest.mark.parametrize("form", _FORMS)
def test_binomial_regressor_refuses_text_and_points_to_the_classifier(data, form):
    y = _as_text(data["yes"], form)
    with pytest.raises(ValueError, match=r"y .*must be numeric.*text") as info:
        MixedGLMRegressor("(1 | g)", family="binomial").fit(data[["x", "g"]], y)
    message = str(info.value)
    assert "'0'" in message or "'1'" in message  # shows a value
    assert "MixedLogisticRegression" in message


def test_binomial_regressor_refuses_a_categorical_y(data):
    # a factor is glmer's (through skmixed.glmer); the estimator's y is
    # numbers, and labels are the classifier's
    y = data["answer"].astype("category")
    labels = r"labels \(dtype category.*MixedLogisticRegression"
    with pytest.raises(ValueError, match=labels):
        MixedGLMRegressor("(1 | g)", family="binomial").fit(data[["x", "g"]], y)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MixedGLMRegressor("(1 | g)", family="poisson"),
        lambda: MixedLMRegressor("(1 | g)"),
        lambda: PooledRegressor(fixed_effects=["x"]),
        lambda: FixedEffectsRegressor(group="g"),
    ],
    ids=["poisson", "lmer", "pooled", "fixed"],
)
@pytest.mark.parametrize("form", ["numpy", "list", "object Series"])
def test_every_regressor_refuses_text_counts(data, make, form):
    y = _as_text(data["count"], form)
    with pytest.raises(ValueError, match=r"y .*must be numeric.*text.*astype"):
        make().fit(data[["x", "g"]], y)


def test_object_array_of_numbers_is_still_numbers(data):
    y = data["yes"].to_numpy().astype(object)
    model = MixedGLMRegressor("(1 | g)", family="binomial").fit(data[["x", "g"]], y)
    expected = _R["glmer_binomial_numeric"]["fixef"]
    np.testing.assert_allclose(model.fixed_effects_, list(expected.values()), **_TOL)


def test_classifier_takes_the_same_text_as_labels(data):
    # "1" sorts after "0": the second class is success, as in R's factor()
    y = data["yes"].astype(str)
    model = MixedLogisticRegression("(1 | g)").fit(data[["x", "g"]], y)
    assert model.classes_.tolist() == ["0", "1"]
    expected = _R["glmer_binomial_factor_words"]["fixef"]
    np.testing.assert_allclose(model.fixed_effects_, list(expected.values()), **_TOL)


@pytest.mark.parametrize("column", ["yes", "answer"])
def test_glmer_refuses_a_text_response_as_r_does(data, column):
    frame = data.assign(yes=data["yes"].astype(str))
    with pytest.raises(ValueError, match=rf"'{column}' is text.*category") as info:
        skmixed.glmer(f"{column} ~ x + (1 | g)", frame, family="binomial")
    assert "response must be numeric or factor" in str(info.value)


@pytest.mark.parametrize(
    "response, frame",
    [
        ("answer", lambda d: d.assign(answer=d["answer"].astype("category"))),
        ("answer", lambda d: d.assign(answer=d["answer"] == "yes")),
        ("yes", lambda d: d),
    ],
    ids=["factor", "bool", "numeric"],
)
def test_glmer_takes_a_factor_bool_or_numbers_as_r_does(data, response, frame):
    model = skmixed.glmer(f"{response} ~ x + (1 | g)", frame(data), family="binomial")
    expected = _R["glmer_binomial_factor_words"]["fixef"]
    np.testing.assert_allclose(model.fixed_effects_, list(expected.values()), **_TOL)
    assert list(model.fixed_effects_.index) == list(expected)


def test_glmer_poisson_names_the_text_column(data):
    frame = data.assign(count=data["count"].astype(str))
    with pytest.raises(ValueError, match=r"y \('count'\) must be numeric.*text"):
        skmixed.glmer("count ~ x + (1 | g)", frame, family="poisson")


def test_glmer_cbind_refuses_text_counts(data):
    frame = data.assign(count=data["count"].astype(str))
    with pytest.raises(ValueError, match=r"'count' is not numeric.*text"):
        skmixed.glmer("cbind(yes, count) ~ x + (1 | g)", frame, family="binomial")
