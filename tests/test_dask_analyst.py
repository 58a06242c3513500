"""An analyst's calls on the Dask path that go wrong: each one as the user
writes it, on the LocalCluster fixture (tests/conftest.py), with the error
it must give (naming what is unsupported and what to do instead) or the
in-memory numbers it must equal.
"""

import numpy as np
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
