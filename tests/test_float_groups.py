"""Float group labels are R's factor() levels: as.character's 15
significant digits, so 0.1 * 3 and 3 / 10 (different doubles) are one
group "0.3", as lme4 has them (tests/data/float_groups,
make_float_groups.R: 16 distinct doubles, 12 levels)."""

import numpy as np
import pandas as pd
import pytest
from _r_outputs import r_data, r_output

from skmixed import MixedLMRegressor
from skmixed._groups import as_factor

_R = r_output("float_groups", "float_groups")


@pytest.fixture(scope="module")
def data():
    d = r_data("float_groups", "float_groups")
    # the labels as R computed them (the CSV would have rounded them)
    d["g"] = np.where(d["how"] == "times", d["k"] * 0.1, d["k"] / 10)
    return d


def test_labels_equal_to_15_digits_are_one_group(data):
    assert data["g"].nunique() == _R["distinct_doubles"]
    model = MixedLMRegressor("(1 | g)").fit(data[["x", "g"]], data["y"])
    assert model.n_groups_ == {"g": len(_R["levels"])}
    modes = model.random_effects_["g"]
    assert list(modes.index) == _R["ranef_levels"]
    np.testing.assert_allclose(modes.iloc[:, 0], _R["ranef"], atol=1e-5)
    np.testing.assert_allclose(
        model.fixed_effects_, list(_R["fixef"].values()), atol=1e-6
    )
    assert model.reml_criterion_ == pytest.approx(_R["REML"], abs=1e-6)


def test_predict_finds_the_merged_level(data):
    model = MixedLMRegressor("(1 | g)").fit(data[["x", "g"]], data["y"])
    new = pd.DataFrame({"x": [0.0, 0.0], "g": [0.1 * 3, 3 / 10]})
    fitted = model.predict(new)
    assert fitted[0] == fitted[1]
    # the level's own mode, not the population prediction
    assert fitted[0] != pytest.approx(model.predict(new, include_random=False)[0])


@pytest.mark.parametrize(
    "values, labels",
    [
        ([0.1 * 3, 0.3, 1.0, 2.5], ["0.3", "0.3", "1", "2.5"]),
        (
            [1 / 3, 1e-20, 123456789.123456789],
            ["0.333333333333333", "1e-20", "123456789.123457"],
        ),
    ],
)
def test_labels_are_r_as_character(values, labels):
    # R: as.character(c(0.1 * 3, 0.3, 1, 2.5)); as.character(c(1/3, 1e-20, ...))
    factor = as_factor(np.array(values), "g")
    assert list(factor.astype(str)) == labels
