"""skmixed as a scikit-learn user meets it: meta-estimators, metadata
routing, pipelines and persistence, written as the user's own calls.

Each test here began as a defect found by trying the estimators the way
scikit-learn's documentation teaches; the expected numbers are those of
the plain call that the meta-estimator should reproduce.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixed import (
    FixedEffectsRegressor,
    GroupsMissingWarning,
    IgnoredColumnsWarning,
    MixedLMRegressor,
    MixedLogisticRegression,
    PooledRegressor,
)
from skmixed.datasets import load_sleepstudy
from skmixed.metrics import marginal_log_likelihood


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


@pytest.fixture(scope="module")
def sleep_frame():
    df = load_sleepstudy()
    return df.assign(Subject=df["Subject"].astype(str))


@pytest.mark.parametrize("estimator", ["mixed", "fixed", "pooled", "logistic"])
def test_polars_frame_is_read_by_column_names(sleep_frame, estimator):
    # scikit-learn takes a polars DataFrame as a frame with column names
    # (feature_names_in_, set_output(transform="polars")). skmixed turned it
    # into a numpy array: the grouping column 'Subject' became a numeric
    # feature (coef_ gained a slope on the subject labels), with a warning
    # that "a numpy X has no column names". It must give the pandas fit.
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")  # polars' to_pandas
    df = sleep_frame
    X = df[["Days", "Subject"]]
    y = df["Reaction"]
    make = {
        "mixed": lambda: MixedLMRegressor("(Days | Subject)"),
        "fixed": lambda: FixedEffectsRegressor(group="Subject"),
        "pooled": lambda: PooledRegressor(group="Subject", cov_type="cluster"),
        "logistic": lambda: MixedLogisticRegression("(1 | Subject)"),
    }[estimator]
    if estimator == "logistic":
        y = (y > 300).astype(int)
    expected = make().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupsMissingWarning)
        warnings.filterwarnings("error", message=".*feature names")
        got = make().fit(pl.from_pandas(X), pl.from_pandas(y))
        predicted = got.predict(pl.from_pandas(X))
    np.testing.assert_array_equal(got.feature_names_in_, ["Days", "Subject"])
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-10)
    np.testing.assert_allclose(predicted, expected.predict(X), rtol=1e-10)


def test_polars_groups_and_polars_pipeline_output(sleep_frame):
    # groups= as a polars Series serves the factor of its name, and a
    # ColumnTransformer with set_output(transform="polars") feeds the model
    # the same columns as pandas output does.
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    df = sleep_frame
    X, y, g = df[["Days", "Subject"]], df["Reaction"], df["Subject"]
    expected = MixedLMRegressor("(Days | Subject)").fit(X[["Days"]], y, groups=g)
    got = MixedLMRegressor("(Days | Subject)").fit(
        pl.from_pandas(X[["Days"]]), y, groups=pl.from_pandas(g)
    )
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-10)
    np.testing.assert_allclose(
        got.predict(pl.from_pandas(X[["Days"]]), groups=pl.from_pandas(g)),
        expected.predict(X[["Days"]], groups=g),
        rtol=1e-10,
    )

    def pipeline(output):
        scale = ColumnTransformer(
            [("scale", StandardScaler(), ["Days"])],
            remainder="passthrough",
            verbose_feature_names_out=False,
        ).set_output(transform=output)
        return Pipeline(
            [("scale", scale), ("model", MixedLMRegressor("(Days | Subject)"))]
        )

    r2_pandas = pipeline("pandas").fit(X, y).score(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupsMissingWarning)
        r2_polars = pipeline("polars").fit(X, y).score(X, y)
    assert r2_polars == pytest.approx(r2_pandas, rel=1e-10)
    assert round(r2_pandas, 3) == 0.826  # the user guide's pipeline


@pytest.mark.parametrize(
    "make",
    [
        lambda: PooledRegressor(),
        lambda: FixedEffectsRegressor(group="Subject"),
        lambda: MixedLMRegressor("(Days | Subject)"),
        lambda: MixedLogisticRegression("(1 | Subject)"),
    ],
    ids=["pooled", "fixed", "mixed", "logistic"],
)
def test_response_column_left_in_X_is_refused_by_name(sleep_frame, make):
    # An R user writes fit(df, df["Reaction"]) as lm(Reaction ~ ., df). R's
    # '.' leaves the response out; fixed_effects=None took every other
    # column, the response too: PooledRegressor and FixedEffectsRegressor
    # fitted Reaction ~ Reaction (coef_ [1, 0]) without a word, and the mixed
    # model failed with a message about a linear combination. The error
    # names the column and the two ways out.
    df = sleep_frame
    classifier = isinstance(make(), MixedLogisticRegression)
    if classifier:  # a boolean response column
        df = df.assign(Reaction=df["Reaction"] > 300)
    with pytest.raises(ValueError, match=r"'Reaction'.*response y.*fixed_effects="):
        make().fit(df, df["Reaction"])
    # either way out of the message fits the intended model
    dropped = make().fit(df.drop(columns="Reaction"), df["Reaction"])
    chosen = make().set_params(fixed_effects=["Days"]).fit(df, df["Reaction"])
    np.testing.assert_allclose(chosen.coef_, dropped.coef_, rtol=1e-12)
    if not classifier:  # lm and lmer's slope of Days
        np.testing.assert_allclose(dropped.coef_, [10.46729], rtol=1e-6)


def test_formula_functions_name_a_polars_frame_they_refuse(sleep_frame):
    # lmer(formula, data) reads pandas data; a polars frame was refused as
    # "data must be a pandas DataFrame ...; got DataFrame", which reads as
    # a contradiction. The message names the library and the conversion.
    pl = pytest.importorskip("polars")
    import skmixed

    with pytest.raises(ValueError, match=r"got polars\.DataFrame.*to_pandas\(\)"):
        skmixed.lmer("Reaction ~ Days + (Days | Subject)", pl.from_pandas(sleep_frame))


def test_routed_weights_and_groups_reach_the_refit_as_in_lme4():
    # The user's call under routing: GroupKFold takes the groups, the
    # estimator takes groups and sample_weight (requested by default), the
    # scorer takes both, in two worker processes (the estimators are
    # pickled there and back). The refitted best model is lme4's weighted
    # fit, lmer(Reaction ~ Days + (Days | Subject), weights = w)
    # (tests/data/weighted/sleepstudy_lmer_weights.json, lme4 1.1-31).
    data = Path(__file__).parent / "data" / "weighted"
    reference = json.loads((data / "sleepstudy_lmer_weights.json").read_text())
    df = pd.read_csv(data / "sleepstudy_weights.csv", dtype={"Subject": str})
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(
            MixedLMRegressor(),
            {"random_effects": ["(1 | Subject)", "(Days | Subject)"]},
            cv=GroupKFold(3),
            scoring=marginal_log_likelihood,
            n_jobs=2,
        ).fit(df[["Days"]], df["Reaction"], groups=df["Subject"], sample_weight=df["w"])
    best = search.best_estimator_
    assert search.best_params_ == {"random_effects": "(Days | Subject)"}
    expected = {row["term"]: row["estimate"] for row in reference["fixed_effects"]}
    np.testing.assert_allclose(best.intercept_, expected["(Intercept)"], rtol=1e-6)
    np.testing.assert_allclose(best.coef_, [expected["Days"]], rtol=1e-6)
    np.testing.assert_allclose(best.sigma_, reference["sigma"], rtol=1e-6)
    # GridSearchCV.score routes groups and weights to the scorer too
    with sklearn.config_context(enable_metadata_routing=True):
        weighted = search.score(
            df[["Days"]], df["Reaction"], groups=df["Subject"], sample_weight=df["w"]
        )
    assert weighted == pytest.approx(
        marginal_log_likelihood(
            best,
            df[["Days"]],
            df["Reaction"],
            groups=df["Subject"],
            sample_weight=df["w"],
        ),
        rel=1e-12,
    )


@pytest.mark.parametrize(
    "make",
    [lambda: MixedLMRegressor(), lambda: FixedEffectsRegressor()],
    ids=["mixed", "fixed"],
)
def test_column_of_X_passed_as_groups_is_not_also_a_feature(sleep_frame, make):
    # The default model, '(1 | groups)', takes its factor from groups=. A
    # user keeps the integer subject codes in X and passes the same column:
    # fit(X, y, groups=X["Sid"]). The factor is 'Sid', so the column is a
    # grouping column; it was also fitted as a numeric feature (a slope of
    # 0.507 on the subject codes), silently.
    df = sleep_frame.assign(Sid=sleep_frame["Subject"].astype(int))
    y = df["Reaction"]
    expected = make().fit(df[["Days"]], y, groups=df["Sid"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no rank-deficiency warning either
        got = make().fit(df[["Days", "Sid"]], y, groups=df["Sid"])
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-12)
    np.testing.assert_allclose(
        got.predict(df[["Days", "Sid"]], groups=df["Sid"]),
        expected.predict(df[["Days"]], groups=df["Sid"]),
        rtol=1e-12,
    )
    # the column and groups= must agree, as for a factor named in the model
    shuffled = df["Sid"].sample(frac=1.0, random_state=0).reset_index(drop=True)
    with pytest.raises(ValueError, match=r"'Sid' is both a column of X.*disagree"):
        make().fit(df[["Days", "Sid"]], y, groups=shuffled)


@pytest.mark.parametrize(
    "make, change",
    [
        (
            lambda: MixedLMRegressor("(Days | Subject)"),
            {"random_effects": "(1 | site)"},
        ),
        (
            lambda: MixedLMRegressor("(Days | Subject)"),
            {"random_effects": "(1 | Subjekt)"},
        ),
        (
            lambda: MixedLogisticRegression("(1 | Subject)"),
            {"random_effects": "(1 | site)"},
        ),
        (lambda: FixedEffectsRegressor(group="Subject"), {"group": "site"}),
    ],
    ids=["lmm-other-factor", "lmm-typo", "logistic", "fixed"],
)
def test_set_params_after_fit_leaves_the_fitted_model_alone(sleep_frame, make, change):
    # scikit-learn's convention: set_params changes what the next fit does;
    # the fitted model predicts as fitted until then. predict read the
    # grouping factors from the new parameter: a crash deep inside
    # ("zip() argument 2 is longer than argument 1"), population-level
    # predictions with a GroupsMissingWarning for a typo, or the 'site'
    # labels looked up among the subjects.
    df = sleep_frame.assign(site=np.where(np.arange(len(sleep_frame)) % 2, "a", "b"))
    X, y = df[["Days", "Subject", "site"]], df["Reaction"]
    if isinstance(make(), MixedLogisticRegression):
        y = y > 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the unused 'site' column
        model = make().fit(X, y)
    expected, summary = model.predict(X), str(model.summary())
    model.set_params(**change)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GroupsMissingWarning)
        np.testing.assert_array_equal(model.predict(X), expected)
    if not isinstance(model, FixedEffectsRegressor):  # its 'Call:' is the repr
        assert str(model.summary()) == summary  # the formula line too


def test_set_params_after_a_dask_fit_leaves_the_fitted_model_alone(client, sleep_frame):
    # The same rule for a model fitted from (and predicting on) a Dask
    # DataFrame: the partitions' input checks read the fit's request.
    dd = pytest.importorskip("dask.dataframe")
    df = sleep_frame.assign(site=np.where(np.arange(len(sleep_frame)) % 2, "a", "b"))
    ddf = dd.from_pandas(df[["Days", "Subject", "site", "Reaction"]], npartitions=2)
    X, y = ddf[["Days", "Subject", "site"]], ddf["Reaction"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the unused 'site' column
        model = MixedLMRegressor("(Days | Subject)").fit(X, y)
        expected = model.predict(X).compute()
    for changed in ["(1 | site)", "(1 | Subjekt)"]:
        model.set_params(random_effects=changed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IgnoredColumnsWarning)
            warnings.simplefilter("error", GroupsMissingWarning)
            got = model.predict(X).compute()
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
