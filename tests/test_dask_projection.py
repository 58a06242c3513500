"""A Dask fit reads only the columns the model uses.

For data beyond memory this is the point of a Parquet folder: a model of 3
columns of 50 reads 3 (and y, the groups, the weights and the offset).
The user's call passes the whole collection as X, as in memory; the
columns the model does not use are never decoded. Parquet files whose
unused columns' bytes are overwritten with garbage show it: reading such a
column fails (pyarrow cannot decode its pages), reading the others does not.

Runs on the real LocalCluster fixture (tests/conftest.py).
"""

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")
import pyarrow.parquet as pq  # noqa: E402  (Dask reads Parquet with pyarrow)
from test_dask import RTOL, _assert_same_mixed, _data  # noqa: E402
from test_dask_user import _same_lm_numbers  # noqa: E402

from skmixed import FixedEffectsRegressor, MixedLMRegressor, PooledRegressor  # noqa: E402

#: Columns no model below uses: text, long text and numbers.
UNUSED = ("note", "wide", "junk")


def _wide_data(seed=4):
    """_data with a slope-only column, an exposure, weights and unused columns."""
    df = _data(seed=seed)
    rng = np.random.default_rng(seed)
    n = len(df)
    df["x3"] = rng.normal(size=n)
    df["e"] = rng.uniform(0.5, 5.0, n)
    df["w"] = rng.uniform(0.3, 3.0, n)
    df["note"] = np.array(["alpha", "beta", "gamma"])[rng.integers(0, 3, n)]
    df["wide"] = [f"{i:04d}" * 500 for i in range(n)]  # 2 kB of text a row
    df["junk"] = rng.normal(size=n)
    return df


def _corrupt_columns(path, columns):
    """Overwrite the bytes of ``columns`` in a Parquet file with garbage.

    The footer (schema, row counts) stays intact, so the file's metadata is
    read as before; decoding one of those columns fails.
    """
    meta = pq.ParquetFile(path).metadata
    names = meta.schema.names
    with open(path, "r+b") as file:
        for group in range(meta.num_row_groups):
            for j, name in enumerate(names):
                if name not in columns:
                    continue
                chunk = meta.row_group(group).column(j)
                file.seek(chunk.dictionary_page_offset or chunk.data_page_offset)
                file.write(b"\xff" * chunk.total_compressed_size)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The data in Parquet files of unequal sizes (one empty), its unused
    columns unreadable; and the pandas frame of the same rows."""
    df = _wide_data()
    path = tmp_path_factory.mktemp("projection")
    cuts = [0, 7, 7, 500, 501, len(df)]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        file = path / f"part{i}.parquet"
        df.iloc[a:b].to_parquet(file, index=False)
        _corrupt_columns(file, UNUSED)
    with pytest.raises(OSError):  # the garbage is unreadable
        pd.read_parquet(path / "part3.parquet", columns=["junk"])
    return path, df


MIXED = [
    lambda: MixedLMRegressor("(1 + x1 | g)", fixed_effects=["x1", "x2"]),
    lambda: MixedLMRegressor("(1 | g)", fixed_effects="x1 + log(x3 + 10) * x2"),
    # a random slope that is no fixed effect (lme4's y ~ x1 + (x3 | g))
    lambda: MixedLMRegressor("(x3 | g)", fixed_effects=["x1"]),
    lambda: MixedLMRegressor("(1 | g) + (1 | h)", fixed_effects=["x1", "x2"]),
    lambda: MixedLMRegressor("(1 | g)", fixed_effects=["x1"], offset="log(e)"),
]
LINEAR = [
    lambda: PooledRegressor(fixed_effects=["x1", "x2"]),
    lambda: PooledRegressor(fixed_effects="x1 + x3:x2"),
    lambda: PooledRegressor(group="g", fixed_effects=["x1", "x2"]),  # clustered
    lambda: FixedEffectsRegressor(group="g", fixed_effects=["x1", "x2"]),
    lambda: FixedEffectsRegressor(
        group="g", fixed_effects=["x1", "x3"], method="dummy"
    ),
]


def _same_fit(fitted, mem):
    if isinstance(mem, MixedLMRegressor):
        _assert_same_mixed(fitted, mem)
    else:
        _same_lm_numbers(fitted, mem)


def _same_predictions(model, mem, ddf, df, weighted):
    np.testing.assert_allclose(
        model.predict(ddf).compute().to_numpy(), mem.predict(df), rtol=RTOL
    )
    w = (lambda frame: frame["w"]) if weighted else (lambda frame: None)
    np.testing.assert_allclose(
        model.score(ddf, ddf["y"], sample_weight=w(ddf)).compute(),
        mem.score(df, df["y"], sample_weight=w(df)),
        rtol=RTOL,
    )


@pytest.mark.parametrize("make", MIXED + LINEAR)
@pytest.mark.parametrize("weighted", [False, True])
def test_parquet_fit_reads_only_the_model_columns(client, folder, make, weighted):
    path, df = folder
    ddf = dd.read_parquet(path)
    w = (lambda frame: frame["w"]) if weighted else (lambda frame: None)
    mem = make().fit(df, df["y"], sample_weight=w(df))
    # the whole folder as X: the unused columns' garbage is never decoded
    fitted = make().fit(ddf, ddf["y"], sample_weight=w(ddf))
    _same_fit(fitted, mem)
    _same_predictions(fitted, mem, ddf, df, weighted)


def test_a_used_column_of_garbage_still_fails(client, folder):
    # the garbage is read when the model uses the column: the test above
    # would pass for a fit that swallowed read errors
    path, df = folder
    ddf = dd.read_parquet(path)
    with pytest.raises(OSError):
        MixedLMRegressor("(1 | g)", fixed_effects=["x1", "junk"]).fit(ddf, ddf["y"])


@pytest.mark.parametrize("make", MIXED + LINEAR)
def test_from_pandas_with_extra_columns_equals_pandas(client, make):
    # columns found by name wherever they sit: the slope-only column first,
    # the grouping column last, unused text and numbers between
    df = _wide_data(seed=6)
    df = df[["x3", "note", "x1", "junk", "e", "x2", "wide", "h", "y", "w", "g"]]
    ddf = dd.from_pandas(df, npartitions=3)
    mem = make().fit(df, df["y"], sample_weight=df["w"])
    fitted = make().fit(ddf, ddf["y"], sample_weight=ddf["w"])
    _same_fit(fitted, mem)
    _same_predictions(fitted, mem, ddf, df, True)
