"""An analyst's calls on the Dask path that go wrong: each one as the user
writes it, on the LocalCluster fixture (tests/conftest.py), with the error
it must give (naming what is unsupported and what to do instead) or the
in-memory numbers it must equal.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

from test_dask import _data  # noqa: E402

import skmixed  # noqa: E402

FixedEffectsRegressor = skmixed.FixedEffectsRegressor
MixedLMRegressor = skmixed.MixedLMRegressor
PooledRegressor = skmixed.PooledRegressor


@pytest.fixture(scope="module")
def frames():
    df = _data(seed=3, n=240, n_groups=12)
    df["w"] = np.random.default_rng(3).uniform(0.5, 2.0, len(df))
    return df, dd.from_pandas(df, npartitions=3)


def test_dask_x_with_in_memory_y_groups_or_weights_is_refused(client, frames):
    # half the inputs from the Dask frame, half from its computed copy (or
    # a NumPy array): Dask failed inside its own code ("'Series' object has
    # no attribute '_meta'", "Cannot interpret '<StringDtype...>' as a data
    # type", "'numpy.ndarray' object has no attribute 'name'")
    df, ddf = frames
    mixed = MixedLMRegressor("(1 | g)", fixed_effects=["x1"])
    refused = "every input a Dask collection of the same rows, or all in memory"
    with pytest.raises(ValueError, match=r"X is a Dask DataFrame but y is a pandas"):
        mixed.fit(ddf, df["y"])
    with pytest.raises(
        ValueError, match=r"X is a pandas DataFrame but y is a Dask Series"
    ):
        mixed.fit(df, ddf["y"])
    with pytest.raises(ValueError, match=refused):
        mixed.fit(ddf[["x1"]], ddf["y"], groups=df["g"])
    with pytest.raises(ValueError, match=r"sample_weight is a numpy ndarray"):
        PooledRegressor().fit(ddf[["x1"]], ddf["y"], sample_weight=df["w"].to_numpy())
    with pytest.raises(ValueError, match=r"X is a Dask DataFrame but y is a str"):
        FixedEffectsRegressor(group="g").fit(ddf[["x1", "g"]], "y")
    fitted = mixed.fit(ddf, ddf["y"])
    with pytest.raises(ValueError, match=refused):
        fitted.predict(ddf[["x1"]], groups=df["g"])
    with pytest.raises(ValueError, match=refused):
        fitted.score(ddf, df["y"])
    with pytest.raises(ValueError, match=refused):
        fitted.score(ddf, ddf["y"], sample_weight=df["w"])


def test_pipeline_transformer_before_a_dask_fit_is_said(client, frames):
    # StandardScaler turns the Dask frame into a NumPy array (all of it in
    # memory) and passes the Dask y on: the error says why and what to use
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, ddf = frames
    pipe = make_pipeline(StandardScaler(), PooledRegressor())
    with pytest.raises(ValueError, match=r"X is a numpy ndarray but y is a Dask"):
        pipe.fit(ddf[["x1", "x2"]], ddf["y"])
    with pytest.raises(ValueError, match=r"scale\(x\)"):
        pipe.fit(ddf[["x1", "x2"]], ddf["y"])


_ESTIMATORS = [
    (lambda: MixedLMRegressor("(1 | g)", fixed_effects=["x1", "x2"]), True),
    (lambda: MixedLMRegressor("(1 | g) + (1 | h)", fixed_effects=["x1", "x2"]), True),
    (lambda: PooledRegressor(), False),
    (lambda: FixedEffectsRegressor(group="g"), True),
    (lambda: FixedEffectsRegressor(group="g", method="within"), True),
]


@pytest.mark.parametrize("make, grouped", _ESTIMATORS)
def test_every_row_dropped_or_none_at_all_is_said(client, frames, make, grouped):
    # missing='drop' with x2 missing on every row: in memory "Every row has
    # NaN or inf; nothing left to fit."; from Dask the pooled fit said "math
    # domain error", the fixed-effects fit "list index out of range" and the
    # mixed fit "grouping factors must have > 1 sampled level"
    df, _ = frames
    df = df.assign(x2=np.nan)
    ddf = dd.from_pandas(df, npartitions=3)
    cols = ["x1", "x2"] + (["g", "h"] if grouped else [])
    with pytest.raises(ValueError, match="Every row has NaN or inf; nothing left"):
        make().set_params(missing="drop").fit(df[cols], df["y"])
    with pytest.raises(ValueError, match="Every row has NaN or inf or a missing"):
        make().set_params(missing="drop").fit(ddf[cols], ddf["y"])
    # a filter that keeps no row: every partition empty
    empty = ddf[ddf["x1"] > 1e9]
    with pytest.raises(ValueError, match="no rows: every partition .* is empty"):
        make().fit(empty[cols], empty["y"])


def test_rows_dropped_are_said_in_the_in_memory_words(client, frames):
    # the Dask fit's warning left out "a missing weight", which na.omit
    # drops as well (and the Dask fit drops too)
    df, _ = frames
    df = df.assign(x2=np.where(np.arange(len(df)) % 7 == 0, np.nan, df["x2"]))
    ddf = dd.from_pandas(df, npartitions=3)
    said = []
    for frame in (df, ddf):
        with pytest.warns(UserWarning, match="dropped 35 row") as record:
            MixedLMRegressor("(1 | g)", fixed_effects=["x1", "x2"], missing="drop").fit(
                frame, frame["y"], sample_weight=frame["w"]
            )
        said.append([str(w.message) for w in record if "dropped" in str(w.message)])
    assert said[1] == said[0]


_R2_DATA = Path(__file__).parent / "data" / "dask_weighted_r2"


@pytest.mark.parametrize("formula", ["y ~ x1 + (1 | g)", "y ~ x1 + (1 + x1 | g)"])
def test_weighted_r2_nakagawa_and_icc_from_dask_equal_pandas_and_r(client, formula):
    # with weights the Dask fit took the fixed predictions' variance and
    # the slopes' mean z'Sz from the weighted sums (X'WX): R² 0.53 where
    # pandas and performance say 0.47. They are over the rows, unweighted.
    df = pd.read_csv(_R2_DATA / "data.csv")
    ddf = dd.from_pandas(df, npartitions=4)
    want = json.loads((_R2_DATA / "dask_weighted_r2.json").read_text())[formula]
    mem = skmixed.lmer(formula, df, weights="w")
    fitted = skmixed.lmer(formula, ddf, weights="w")
    for model in (mem, fitted):
        r2, icc = model.r2_nakagawa(), model.icc()
        got = [r2["marginal"], r2["conditional"], icc["adjusted"], icc["conditional"]]
        r = [want[k] for k in ("marginal", "conditional", "adjusted")]
        # lme4's optimum to its tolerance: with the slope, lme4's theta is
        # 4e-6 off ours, whose REML criterion is lower (by 6e-10)
        np.testing.assert_allclose(got, r + [want["icc_conditional"]], rtol=2e-5)
    for name in ("r2_nakagawa", "icc"):
        got, expected = getattr(fitted, name)(), getattr(mem, name)()
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-10)


def test_plot_group_fits_of_dask_rows_says_to_pass_a_pandas_sample(client, frames):
    # it said "needs the groups: ... keep the grouping column(s) named in the
    # model in a pandas X" of a Dask X that holds them
    pytest.importorskip("matplotlib")
    from skmixed.plotting import plot_group_fits

    df, ddf = frames
    model = MixedLMRegressor("(1 | g)", fixed_effects=["x1"]).fit(ddf, ddf["y"])
    with pytest.raises(ValueError, match=r"X is a Dask DataFrame.*\.compute\(\)"):
        plot_group_fits(model, ddf[["x1", "g"]], ddf["y"])
    with pytest.raises(ValueError, match=r"groups is a Dask Series"):
        plot_group_fits(model, df[["x1"]], df["y"], groups=ddf["g"])
    # a pandas sample of the rows is drawn with the Dask-fitted model
    sample = ddf[ddf["g"].isin(["s1", "s2"])].compute()
    ax = plot_group_fits(model, sample[["x1", "g"]], sample["y"])
    assert len(ax.lines) >= 2  # a line per group


@pytest.mark.parametrize(
    "shift",
    [
        {"Reaction": lambda d: d["Reaction"] + 1e6},  # lost 1e-7 from Dask
        {"Days": lambda d: d["Days"] * 1e-3 + 1e3},  # lost 7e-7 from Dask
    ],
)
def test_r2_and_icc_of_a_variable_far_from_zero_equal_pandas(client, shift):
    # the fixed predictions' variance from the sums, sum((Xb)^2) - n mean^2,
    # cancelled the digits of a response or feature far from zero, which
    # the in-memory variance over the rows keeps (the fits agree to 1e-13)
    from skmixed.datasets import load_sleepstudy

    df = load_sleepstudy().assign(**shift)
    ddf = dd.from_pandas(df, npartitions=3)
    formula = "Reaction ~ Days + (1 | Subject)"
    mem, fitted = skmixed.lmer(formula, df), skmixed.lmer(formula, ddf)
    for name in ("r2_nakagawa", "icc"):
        got, expected = getattr(fitted, name)(), getattr(mem, name)()
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-10)


@pytest.mark.parametrize(
    "make, cols",
    [
        (lambda: PooledRegressor(), ["x1"]),
        (lambda: FixedEffectsRegressor(group="g"), ["x1", "g"]),
    ],
)
def test_refit_in_memory_after_a_dask_fit_forgets_its_rows(client, frames, make, cols):
    # an lm estimator fitted from Dask (with weights) and refitted on pandas
    # rows kept the Dask frame: summary() took "Weighted Residuals" of the
    # old Dask rows (Min -7.6 where the pandas fit's is -5.9)
    df, ddf = frames
    model = make().fit(ddf[cols], ddf["y"], sample_weight=ddf["w"])
    other = df.iloc[::2]
    model.fit(other[cols], other["y"])
    assert str(model.summary()) == str(make().fit(other[cols], other["y"]).summary())


def test_wrong_response_is_named_as_the_user_knows_it(client, frames):
    # "__skmixed_y__ must be one column; got 2." and "y must be numeric; got
    # dtype string." (which column?)
    df, ddf = frames
    ddf = ddf.assign(label=ddf["g"].astype("string"))
    model = MixedLMRegressor("(1 | g)", fixed_effects=["x1"])
    with pytest.raises(
        ValueError, match=r"^y should be one column; got 2 columns: \['y', 'x2'\]"
    ):
        model.fit(ddf, ddf[["y", "x2"]])
    with pytest.raises(ValueError, match=r"^y \('label'\) must be numeric .*y\.astype"):
        model.fit(ddf, ddf["label"])
    with pytest.raises(ValueError, match=r"^sample_weight \('g'\) must be numeric"):
        model.fit(ddf, ddf["y"], sample_weight=ddf["g"])


def test_array_x_from_parquet_with_other_partitions_says_to_pass_the_frame(
    client, frames, tmp_path
):
    # Dask reads the small files of two columns as fewer partitions than
    # those of "g": the advice was X.to_dask_array(lengths=True), which
    # Dask itself then refuses ("lengths ... does not match the number of
    # partitions"); the frame itself pairs its rows with groups= by index
    df, _ = frames
    for i, rows in enumerate(np.array_split(np.arange(len(df)), 4)):
        df.iloc[rows].to_parquet(tmp_path / f"part{i}.parquet")
    ddf = dd.read_parquet(tmp_path)
    X = ddf[["x1", "x2"]].to_dask_array()
    model = MixedLMRegressor("(1 | g)")
    if X.numblocks[0] != ddf["g"].npartitions:
        with pytest.raises(ValueError, match=r"Pass the DataFrame itself"):
            model.fit(X, ddf["y"].to_dask_array(), groups=ddf["g"])
    fitted = model.fit(ddf[["x1", "x2"]], ddf["y"], groups=ddf["g"])
    mem = MixedLMRegressor("(1 | g)").fit(df[["x1", "x2"]], df["y"], groups=df["g"])
    np.testing.assert_allclose(fitted.theta_, mem.theta_, rtol=1e-10)


def test_parquet_files_with_int32_and_int64_say_how_to_cast(client, frames, tmp_path):
    # files written by different tools: "every partition must have the same
    # dtypes" said what but not how to go on (ddf.compute() takes them)
    df, _ = frames
    df = df.assign(k=np.arange(len(df)) % 5)
    df.iloc[:120].astype({"k": "int32"}).to_parquet(tmp_path / "a.parquet")
    df.iloc[120:].to_parquet(tmp_path / "b.parquet")
    ddf = dd.read_parquet(tmp_path)
    model = MixedLMRegressor("(1 | g)", fixed_effects=["x1", "k"])
    with pytest.raises(ValueError, match=r"X = X\.astype\(\{'k': 'float64'\}\)"):
        model.fit(ddf, ddf["y"])
    cast = ddf.astype({"k": "float64"})
    fitted = model.fit(cast, cast["y"])
    mem = MixedLMRegressor("(1 | g)", fixed_effects=["x1", "k"]).fit(df, df["y"])
    np.testing.assert_allclose(fitted.theta_, mem.theta_, rtol=1e-10)
