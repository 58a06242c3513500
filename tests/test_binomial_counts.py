"""Non-integer binomial counts warn in R's words for each way of giving
them: "non-integer counts in a binomial glm!" for cbind(s, f), "non-integer
#successes in a binomial glm!" for a proportion times its weights
(tests/data/binomial_counts, make_binomial_counts.R: glmer and glm say the
same)."""

import warnings

import pytest
from _r_outputs import r_data, r_output

import skmixed
from skmixed import MixedGLMRegressor

_R = r_output("binomial_counts", "binomial_counts")


@pytest.fixture(scope="module")
def data():
    return r_data("binomial_counts", "binomial_counts")


def _count_warnings(call):
    """The messages of the non-integer warnings a call gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if "non-integer" in str(w.message)]


def _says_only(said, r_message):
    assert len(said) == 1, said
    assert said[0].startswith(r_message)


def test_cbind_says_counts(data):
    said = _count_warnings(
        lambda: skmixed.glmer("cbind(s_half, n - s_half) ~ x + (1 | g)", data)
    )
    _says_only(said, _R["glmer_cbind"][0])
    assert "s_half" in said[0]  # which column is fractional


@pytest.mark.parametrize(
    "case, call",
    [
        (
            "glmer_proportion_weights",
            lambda d: skmixed.glmer("p_half ~ x + (1 | g)", d, weights="n"),
        ),
        (
            "glmer_proportion_weights",
            lambda d: MixedGLMRegressor("(1 | g)").fit(
                d[["x", "g"]], d["p_half"], sample_weight=d["n"]
            ),
        ),
        (
            "glmer_01_fractional_weights",
            lambda d: skmixed.glmer("y01 ~ x + (1 | g)", d, weights="w_half"),
        ),
    ],
    ids=["glmer", "estimator", "fractional weights"],
)
def test_proportion_times_weights_says_successes(data, case, call):
    _says_only(_count_warnings(lambda: call(data)), _R[case][0])


def test_whole_counts_say_nothing(data):
    assert not _count_warnings(
        lambda: skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", data)
    )
