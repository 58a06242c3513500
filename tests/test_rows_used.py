"""The rows a formula's state and glmer's response check are taken from,
with missing='drop' (R's na.omit), against R's own output
(tests/data/rows_used, make_rows_used.R; R 4.2.2, lme4 1.1-31).

R's model.frame evaluates every variable on all rows of data, then drops
the rows missing any of them (response, formula columns, weights, offset,
grouping factors), then drops the factor levels left unused. So:

- a factor's levels (fixed-effect factor, ``factor(k)``, grouping factor)
  are those of the rows kept, also after rows dropped for the offset;
- glmer's checkResponse and a factor response's first level look at the
  rows kept;
- ``scale(x)`` and ``poly(x, 2)`` are computed on every row where x is
  present, rows missing y or another variable included; poly() refuses a
  missing x.
"""

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from _r_outputs import r_data, r_output
from sklearn.base import clone

import skmixed
from skmixed import MixedGLMRegressor, MixedLogisticRegression

_R = r_output("rows_used", "rows_used")
_NEW = pd.DataFrame(
    {"x": [0, 1, 2.5, 4], "z": [-1, 0, 0.5, 1], "t": [1.0, 2, 3, 4], "g": "g1"}
)


@pytest.fixture
def data():
    return r_data("rows_used", "rows_used")


def _quiet(fit, *args, **kwargs):
    """A fit with missing='drop' (R's na.omit), its drop warning silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "missing='drop'")
        warnings.filterwarnings("ignore", "boundary .singular. fit")
        return fit(*args, missing="drop", **kwargs)


def _close(got, want, atol):
    assert list(got.index) == list(want)
    np.testing.assert_allclose(got, list(want.values()), atol=atol)


# -- 1. rows dropped for a missing offset hold no factor level -----------------------
@pytest.mark.parametrize(
    ("case", "fit", "formula", "kwargs", "atol"),
    [
        (
            "lmer_offset_term",
            skmixed.lmer,
            "y ~ x + f + (1 | g) + offset(log(t))",
            {},
            1e-6,
        ),
        (
            "lmer_offset_arg",
            skmixed.lmer,
            "y ~ x + f + (1 | g)",
            {"offset": "log(t)"},
            1e-6,
        ),
        (
            "glmer_offset_term",
            skmixed.glmer,
            "cnt ~ x + f + (1 | g) + offset(log(t))",
            {"family": "poisson"},
            1e-4,
        ),
        (
            "glmer_offset_arg",
            skmixed.glmer,
            "bin ~ x + f + (1 | g)",
            {"offset": "log(t)"},
            1e-5,
        ),
    ],
)
def test_level_only_on_rows_missing_the_offset_is_no_level(
    data, case, fit, formula, kwargs, atol
):
    # f's level c sits only on the rows whose t is missing: R has no fc
    # column, so no rank-deficiency message either
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _quiet(fit, formula, data, **kwargs)
    assert list(model.fixed_formula_.names) == ["x", "fb"]
    assert model.nobs_ == _R[case]["nobs"]
    _close(model.fixed_effects_, _R[case]["fixef"], atol)


@pytest.mark.parametrize(
    ("case", "fit", "kwargs"),
    [
        ("lmer_offset_one_level", skmixed.lmer, {}),
        ("glmer_offset_one_level", skmixed.glmer, {"family": "poisson"}),
    ],
)
def test_factor_with_one_level_once_offset_rows_go_is_refused(data, case, fit, kwargs):
    # f1 is b only on the rows whose t is missing: one level (a) is left
    assert _R[case].startswith("contrasts can be applied only to factors")
    response = "y" if fit is skmixed.lmer else "cnt"
    with pytest.raises(ValueError, match=r"'f1' .* 1 level\(s\) \['a'\]"):
        _quiet(fit, f"{response} ~ x + f1 + (1 | g) + offset(log(t))", data, **kwargs)


@pytest.mark.parametrize("offset", ["logt", "log(t)"])
@pytest.mark.parametrize(
    ("estimator", "response"),
    [
        (MixedGLMRegressor(family="poisson"), "cnt"),
        (MixedLogisticRegression(), "bin"),
    ],
)
def test_estimator_offset_drops_its_rows_before_the_levels(
    data, offset, estimator, response
):
    # the estimators' own offset= (a column, or an expression of X's)
    X = data.drop(columns=[response]).assign(logt=np.log(data["t"]))
    model = clone(estimator).set_params(
        random_effects="(1 | g)", fixed_effects="x + f1", offset=offset, missing="drop"
    )
    with pytest.raises(ValueError, match=r"'f1' .* 1 level\(s\) \['a'\]"):
        model.fit(X, data[response])


@pytest.mark.parametrize(
    ("case", "fit", "formula", "kwargs"),
    [
        (
            "glmer_offset_group",
            skmixed.glmer,
            "cnt ~ x + (1 | k) + offset(log(t))",
            {"family": "poisson"},
        ),
        ("lmer_offset_group", skmixed.lmer, "y ~ x + (1 | k)", {"offset": "log(t)"}),
    ],
)
def test_group_level_only_on_rows_missing_the_offset_is_no_level(
    data, case, fit, formula, kwargs
):
    model = _quiet(fit, formula, data, **kwargs)
    assert list(model.random_effects_["k"].index) == _R[case]["levels"]  # no k9
    _close(model.fixed_effects_, _R[case]["fixef"], 1e-4)


# -- 2. glmer's checkResponse on the rows kept ---------------------------------------
@pytest.mark.parametrize(
    ("case", "formula", "family", "every"),
    [
        ("glmer_binomial_z", "bz ~ z + (1 | g)", "binomial", "0"),
        ("glmer_binomial_t", "bt ~ x + (1 | g) + offset(log(t))", "binomial", "0"),
        ("glmer_poisson_z", "pz ~ z + (1 | g)", "poisson", "2"),
        (
            "glmer_cbind_z",
            "cbind(pz, 6 - pz) ~ z + (1 | g)",
            "binomial",
            r"cbind\(2, 4\)",
        ),
    ],
)
def test_response_constant_on_the_rows_kept_is_refused(
    data, case, formula, family, every
):
    # its only other values sit on rows missing z (or the offset t)
    assert _R[case] == "Response is constant"
    with pytest.raises(
        ValueError, match=rf"constant \(every row {every} among the 57 rows"
    ):
        _quiet(skmixed.glmer, formula, data, family=family)


def test_response_varying_on_the_rows_kept_is_fitted(data):
    # bz's ones are on rows missing z, which this formula does not use
    assert _R["glmer_binomial_x"] == "fit"
    model = _quiet(skmixed.glmer, "bz ~ x + (1 | g)", data)
    assert model.nobs_ == 59  # only the row missing g goes


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_estimator_refuses_a_response_constant_on_the_rows_kept(data, family):
    y = data["bz"] if family == "binomial" else data["pz"]
    X = data[["z", "g"]]
    model = MixedGLMRegressor("(1 | g)", family=family, missing="drop")
    with pytest.raises(ValueError, match="Response is constant"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "missing='drop'")
            model.fit(X, y)
    clf = MixedLogisticRegression("(1 | g)", missing="drop")
    with pytest.raises(ValueError, match="needs samples of 2 classes"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "missing='drop'")
            clf.fit(X, data["bz"])


def test_proportions_equal_with_different_trials_are_constant(data):
    # glmer(y ~ ..., weights = n): unique(y) only; cbind compares the pairs
    data = data.dropna(subset=["x", "g"]).assign(p=0.5, n=2.0)
    data.loc[data.index[::2], "n"] = 4.0
    with pytest.raises(ValueError, match=r"constant \(every row 0.5 "):
        skmixed.glmer("p ~ x + (1 | g)", data, weights="n")
    data = data.assign(s=data["n"] / 2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "boundary .singular. fit")
        model = skmixed.glmer("cbind(s, n - s) ~ x + (1 | g)", data)
    assert np.isfinite(model.loglik_)


def test_factor_response_first_level_among_the_rows_kept(data):
    # fr's first level a sits only on rows missing z: R's failure is b
    data["fr"] = pd.Categorical(data["fr"])
    assert list(data["fr"].cat.categories) == ["a", "b", "c"]
    r = _R["glmer_factor_first_dropped"]
    model = _quiet(skmixed.glmer, "fr ~ z + (1 | g)", data)
    assert model.nobs_ == r["nobs"]
    _close(model.fixed_effects_, r["fixef"], 1e-5)


def test_factor_response_one_level_among_the_rows_kept_is_refused(data):
    data["fr"] = pd.Categorical(np.where(data["z"].isna(), "a", "b"))
    with pytest.raises(ValueError, match=r"1 level\(s\) \['b'\]"):
        _quiet(skmixed.glmer, "fr ~ z + (1 | g)", data)


# -- 3. scale() and poly() learn from every row where their variable is present ------
@pytest.mark.parametrize(
    ("case", "formula", "weights"),
    [
        ("lm_scale", "y ~ scale(x) + z", None),
        ("lm_scale_weights", "y ~ scale(x) + z", "w"),
        ("lm_scale_nocentre", "y ~ scale(x, center = FALSE) + z", None),
        ("lm_scale_centre_only", "y ~ scale(x, scale = FALSE) + z", None),
        ("lm_poly", "y ~ poly(x, 2) + z", None),
        ("lm_poly_raw", "y ~ poly(x, 2, raw = TRUE) + z", None),
    ],
)
def test_lm_state_from_every_row_where_the_variable_is_present(
    data, case, formula, weights
):
    # rows missing y or z (or the weight) count for x's centre and scale
    r = _R[case]
    model = _quiet(skmixed.lm, formula, data, weights=weights)
    assert model.nobs_ == r["nobs"]
    _close(model.params_, r["coef"], 1e-10)  # R's names: poly(...)1, 2
    np.testing.assert_allclose(model.predict(_NEW), r["predict"], atol=1e-10)


def test_pooled_estimator_scale_from_every_row(data):
    # PooledRegressor(fixed_effects=...) on X, y: the same rows as lm's
    r = _R["lm_scale"]
    model = skmixed.PooledRegressor(fixed_effects="scale(x) + z", missing="drop")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "missing='drop'")
        model.fit(data[["x", "z"]], data["y"])
    _close(model.params_, r["coef"], 1e-10)
    np.testing.assert_allclose(model.predict(_NEW), r["predict"], atol=1e-10)


def test_center_is_scale_without_scaling(data):
    # formulaic's center(x) is R's scale(x, scale = FALSE)
    r = _R["lm_scale_centre_only"]["coef"]
    model = _quiet(skmixed.lm, "y ~ center(x) + z", data)
    np.testing.assert_allclose(
        model.params_[["(Intercept)", "center(x)", "z"]], list(r.values()), atol=1e-10
    )


def test_lmer_scale_from_every_row(data):
    r = _R["lmer_scale"]
    model = _quiet(skmixed.lmer, "y ~ scale(x) + z + (1 | g)", data)
    assert model.nobs_ == r["nobs"]
    _close(model.fixed_effects_, r["fixef"], 1e-6)
    got = model.predict(_NEW, include_random=False)
    np.testing.assert_allclose(got, r["predict"], atol=1e-6)


def test_glmer_scale_from_every_row(data):
    # R's optimum is flat here: our log-likelihood is 2e-6 above lme4's
    # (-125.3532666 against -125.3532687), the estimates within 3e-5
    r = _R["glmer_scale"]
    model = _quiet(
        skmixed.glmer,
        "cnt ~ scale(x) + z + (1 | g) + offset(log(t))",
        data,
        family="poisson",
    )
    assert model.nobs_ == r["nobs"]
    _close(model.fixed_effects_, r["fixef"], 1e-4)
    got = model.predict(_NEW, include_random=False, type="link")
    np.testing.assert_allclose(got, r["predict"], atol=1e-4)
    centre = model.fixed_formula_._spec.transform_state["scale(x)"]["center"]
    assert centre == pytest.approx(_R["scale_centre"], abs=1e-12)
    assert centre != pytest.approx(_R["scale_centre_rows_kept"], abs=1e-3)


def test_poly_of_a_variable_with_missing_values_is_refused(data):
    # R: lm(y ~ poly(z, 2) + x, d) with z missing on two rows
    assert _R["lm_poly_missing"] == "missing values are not allowed in 'poly'"
    with pytest.raises(ValueError, match=r"poly\(\) of a variable missing .* 2 row"):
        _quiet(skmixed.lm, "y ~ poly(z, 2) + x", data)


def test_poly_raw_takes_missing_values(data):
    # R's raw powers need no basis: lm(y ~ poly(z, 2, raw = TRUE)) fits
    model = _quiet(skmixed.lm, "y ~ poly(z, 2, raw = TRUE) + x", data)
    assert list(model.params_.index)[1:3] == [
        "poly(z, 2, raw = TRUE)1",
        "poly(z, 2, raw = TRUE)2",
    ]


# -- 4. factor() of a number: the levels of the rows kept ----------------------------
def test_factor_call_level_only_on_a_dropped_row_is_no_level(data):
    # k3 is 3 only on row 1, whose y is missing: R has no factor(k3)3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _quiet(skmixed.lm, "y ~ x + factor(k3)", data)
    _close(model.params_, _R["lm_factor_call_level_dropped"], 1e-10)


@pytest.mark.parametrize("fit", [skmixed.lm, skmixed.lmer])
def test_factor_call_new_level_at_predict_is_refused(data, fit):
    # R: predict(lm(y ~ x + factor(k3), d), data.frame(x = 1, k3 = 3)),
    # where k3 = 3 only on a row lm dropped; it was predicted as level 1
    assert _R["lm_factor_call_new_level"] == "factor factor(k3) has new level 3"
    formula = "y ~ x + factor(k3)" + (" + (1 | g)" if fit is skmixed.lmer else "")
    model = _quiet(fit, formula, data)
    new = pd.DataFrame({"x": [1.0, 1.0], "k3": [1.0, 3.0], "g": "g1"})
    with pytest.raises(ValueError, match=r"factor factor\(k3\) has new level 3"):
        model.predict(new)
    assert np.isfinite(model.predict(new.iloc[:1])).all()


def test_poly_degree_is_checked_on_every_row(data):
    # k3 takes 3 values over all rows (3 only where y is missing)
    assert _R["lm_poly_degree"] == "'degree' must be less than number of unique points"
    with pytest.raises(ValueError, match="less than number of unique points"):
        _quiet(skmixed.lm, "y ~ poly(k3, 3) + x", data)
    # degree 2: R's basis of every row; on the rows kept its second column
    # is aliased (NA in R)
    r = _R["lm_poly_degree_kept"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PooledRegressor: X is rank deficient")
        model = _quiet(skmixed.lm, "y ~ poly(k3, 2) + x", data)
    assert list(model.params_.index) == list(r)
    assert r["poly(k3, 2)2"] == "NA" and np.isnan(model.params_["poly(k3, 2)2"])
    kept = model.params_.drop("poly(k3, 2)2")
    np.testing.assert_allclose(kept, [v for v in r.values() if v != "NA"], atol=1e-10)


def test_type3_hypotheses_from_the_rows_kept(data):
    # lmerTest's type III contrasts come from the model's rows: the row
    # missing y (k3 = 3) is no row of the design, nor a level to warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _quiet(skmixed.lmer, "y ~ x * factor(k3) + (1 | g)", data)
    r = _R["lmer_type3_factor_call"]
    table = model.anova()
    assert list(table.index) == r["terms"]
    np.testing.assert_allclose(table["F_value"], r["F"], rtol=1e-6)
    np.testing.assert_allclose(table["den_df"], r["DenDF"], rtol=1e-4)


def test_factor_response_of_a_poisson_glmer_is_refused(data):
    assert _R["glmer_poisson_factor"] == "response must be numeric"
    data["fr"] = pd.Categorical(data["fr"])
    with pytest.raises(ValueError, match="must be numeric"):
        _quiet(skmixed.glmer, "fr ~ z + (1 | g)", data, family="poisson")


def test_classifier_classes_are_those_of_the_rows_kept(data):
    # fr: a only on the rows missing z, b and c elsewhere. The classifier
    # fits b against c, as glmer's factor response (R's fixef)
    r = _R["glmer_factor_first_dropped"]
    clf = MixedLogisticRegression("(1 | g)", fixed_effects="z", missing="drop")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "missing='drop'")
        clf.fit(data[["z", "g"]], data["fr"])
    assert clf.classes_.tolist() == ["b", "c"]
    _close(clf.fixed_effects_, r["fixef"], 1e-5)
    assert set(clf.predict(data[["z", "g"]].dropna())) <= {"b", "c"}


@pytest.mark.parametrize("fit", [skmixed.lm, skmixed.lmer])
def test_factor_call_new_level_is_refused_with_warnings_ignored(data, fit):
    # a user who silences every warning still gets R's refusal, not the
    # new level predicted as the reference level
    formula = "y ~ x + factor(k3)" + (" + (1 | g)" if fit is skmixed.lmer else "")
    model = _quiet(fit, formula, data)
    new = pd.DataFrame({"x": [1.0, 1.0], "k3": [1.0, 3.0], "g": "g1"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"factor factor\(k3\) has new level 3"):
            model.predict(new)


def test_factor_call_new_level_does_not_depend_on_formulaic_wording(data, monkeypatch):
    # the refusal reads the levels learned at fit, not the text of
    # formulaic's warning: a formulaic that words its warning differently
    # must not turn a new level into the reference level
    from formulaic.transforms import contrasts

    model = _quiet(skmixed.lm, "y ~ x + factor(k3)", data)

    def reworded(message, category=UserWarning, *args, **kwargs):
        warnings.warn(
            "Some levels were not in the fitted data.", category, stacklevel=2
        )

    monkeypatch.setattr(contrasts, "warnings", SimpleNamespace(warn=reworded))
    new = pd.DataFrame({"x": [1.0, 1.0], "k3": [1.0, 3.0]})
    with pytest.raises(ValueError, match=r"factor factor\(k3\) has new level 3"):
        model.predict(new)
