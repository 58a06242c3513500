"""Fits from Dask collections on a real distributed.LocalCluster.

The data are general floats, so the cross-products of the partitions add up
to those of all the rows only to rounding (another order of summation, as
for a permutation of the rows in memory). The optimiser's final Newton
polish on the analytic gradient lands on the criterion's stationary point to
rounding error, so a Dask fit still gives the in-memory fit's numbers to
1e-10 relative, however the rows are split.
"""

import os
import signal
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from skmixed import MixedLMRegressor, PooledRegressor  # noqa: E402

RTOL = 1e-10


def _data(seed=0, n=1200, n_groups=40):
    """General floats: the sums of partitions differ from those of all the
    rows in their last bits, as they do for a permutation of the rows."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n)
    h = rng.integers(0, 6, n)
    x1 = rng.normal(size=n) * 1.3 + 0.2
    x2 = rng.uniform(-2, 2, n)
    b = rng.normal(size=(n_groups, 2)) * np.array([1.5, 0.6])
    c = rng.normal(size=6) * 0.8
    noise = rng.normal(size=n) * 1.7
    y = 1.0 + 2.0 * x1 - x2 + b[g, 0] + b[g, 1] * x1 + c[h] + noise
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "g": np.char.add("s", g.astype(str)), "h": h, "y": y}
    )


def _partitioned(df, cuts):
    """A dask DataFrame whose partitions are the rows between the cuts."""
    parts = [
        dask.delayed(df.iloc[a:b].copy)()
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    return dd.from_delayed(parts, meta=df.iloc[:0])


def _unequal(df):
    n = len(df)
    return [0, 7, 7, n // 3, n // 3 + 1, n - 2, n]  # an empty partition, tiny ones


def _fits_dropping(spec, df, ddf, cols, n_dropped, **options):
    """The Dask and in-memory fits of ``spec`` with ``missing='drop'``, each
    checked to warn that it dropped ``n_dropped`` rows."""
    fits = []
    for frame in (df, ddf):
        with pytest.warns(UserWarning, match=f"dropped {n_dropped} row"):
            model = MixedLMRegressor(spec, missing="drop", **options)
            fits.append(model.fit(frame[cols], frame["y"]))
    mem, fitted = fits
    return fitted, mem


def _assert_same_mixed(m_dask, m_mem, rtol=RTOL):
    np.testing.assert_allclose(m_dask.theta_, m_mem.theta_, rtol=rtol)
    np.testing.assert_allclose(
        m_dask.fixed_effects_.to_numpy(), m_mem.fixed_effects_.to_numpy(), rtol=rtol
    )
    assert list(m_dask.fixed_effects_.index) == list(m_mem.fixed_effects_.index)
    np.testing.assert_allclose(
        m_dask.vcov_.to_numpy(), m_mem.vcov_.to_numpy(), rtol=rtol
    )
    np.testing.assert_allclose(m_dask.sigma_, m_mem.sigma_, rtol=rtol)
    np.testing.assert_allclose(m_dask.loglik_, m_mem.loglik_, rtol=rtol)
    assert m_dask.nobs_ == m_mem.nobs_ and m_dask.n_groups_ == m_mem.n_groups_
    for factor, table in m_mem.random_effects_.items():
        got = m_dask.random_effects_[factor]
        assert list(got.index) == list(table.index)  # R's level order
        np.testing.assert_allclose(
            got.to_numpy(), table.to_numpy(), rtol=rtol, atol=1e-12
        )


def _assert_fit_on_unequal_partitions_equals_pandas(df, cols, spec="(x1 | g)"):
    """The Dask fit of ``df`` cut in unequal partitions is the pandas fit."""
    mem = MixedLMRegressor(spec).fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor(spec).fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


@pytest.mark.parametrize(
    "spec",
    ["(x1 | g)", "(1 | g) + (1 | h)", "(1 | h/g)", "(x1 || g)"],
)
def test_mixed_fit_on_unequal_partitions_equals_pandas(client, spec):
    df = _data()
    cols = ["x1", "x2", "g", "h"]
    mem = MixedLMRegressor(spec).fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor(spec).fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


@pytest.mark.parametrize("spec", ["(x1 | g)", "(1 | g)"])
def test_one_factor_fit_as_on_a_million_levels_equals_pandas(client, monkeypatch, spec):
    # the client's path of a million levels (the chunked "dense" criterion,
    # reading the lanes' joined sums entry-major as they come, its modes
    # formed when first read), forced on 40 levels in chunks of 8; the
    # in-memory fit takes the same path from its own sums
    from skmixed.mixed import criterion, first_term

    monkeypatch.setattr(criterion, "_MAX_OUTER_PRODUCTS", 0)
    monkeypatch.setattr(first_term, "_CHUNK", 8)
    df = _data(seed=11)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor(spec).fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor(spec).fit(ddf[cols], ddf["y"])
    assert fitted._criterion.strategy == mem._criterion.strategy == "dense"
    # the joined sums are read where they are: no transposing copy
    levels = fitted._criterion.first_term_levels
    assert np.shares_memory(levels.CT, fitted._criterion.design.CX)
    _assert_same_mixed(fitted, mem)
    np.testing.assert_allclose(
        fitted.predict(df[cols]), mem.predict(df[cols]), rtol=RTOL
    )


@pytest.mark.parametrize("direct", [True, False])
def test_one_factor_sums_gathered_directly_or_through_the_scheduler(
    client, monkeypatch, direct
):
    # the merged sums come straight from the local workers unless the
    # client is told not to (distributed.client.direct-to-workers: False)
    from skmixed import _dask

    monkeypatch.setattr(client, "direct_to_workers", None if direct else False)
    assert _dask._gathers_directly(client) is direct
    _assert_fit_on_unequal_partitions_equals_pandas(_data(seed=6), ["x1", "x2", "g"])


def test_worker_addresses_on_this_machine_are_local():
    from skmixed._dask import _is_local

    assert _is_local("tcp://127.0.0.1:40575")
    assert _is_local("tcp://[::1]:40575")
    assert not _is_local("tcp://10.2.3.4:40575")
    assert not _is_local("tls://worker-7.example.org:8786")


@pytest.mark.parametrize("spec", ["(x1 | g)", "(1 | g)"])
def test_mixed_fit_without_fixed_intercept_equals_pandas(client, spec):
    # the term's intercept is no column of X: partitions add a column of ones
    df = _data(seed=4)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor(spec, fit_intercept=False).fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor(spec, fit_intercept=False).fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


def test_levels_in_one_partition_and_categorical_groups(client):
    df = _data(seed=1).sort_values("g", kind="stable").reset_index(drop=True)
    # sorted by group: most groups sit in one partition, a few span two
    df["g"] = pd.Categorical(df["g"], categories=sorted(df["g"].unique())[::-1])
    mem = MixedLMRegressor("(x1 | g)").fit(df[["x1", "x2", "g"]], df["y"])
    ddf = _partitioned(df, [0, 100, 101, 700, len(df)])
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[["x1", "x2", "g"]], ddf["y"])
    _assert_same_mixed(fitted, mem)
    assert list(fitted.random_effects_["g"].index)[:2] == ["s9", "s8"]


@pytest.mark.parametrize("kind", ["int", "numeric strings", "object"])
def test_partitions_own_labels_merged_in_r_order(client, kind):
    # one grouping factor: every partition codes its rows by its own labels
    # and the merged levels must come out in R's order whatever the labels
    df = _data(seed=9, n_groups=30)
    number = df["g"].str[1:].astype(int) * 7 % 30  # 0..29, 2 before 10
    df["g"] = {
        "int": number,
        "numeric strings": number.astype(str),  # ordered by value, as in R
        "object": df["g"].astype(object),
    }[kind]
    mem = MixedLMRegressor("(x1 | g)").fit(df[["x1", "x2", "g"]], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[["x1", "x2", "g"]], ddf["y"])
    _assert_same_mixed(fitted, mem)
    if kind != "object":
        assert list(fitted.random_effects_["g"].index[:3]) == ["0", "1", "2"]


def test_label_keys_sort_as_r_orders_levels():
    # short strings and integers are hashed as 64-bit keys whose order must
    # be R's level order (byte order; numeric order), and decode exactly
    from skmixed import _dask_labels
    from skmixed._groups import as_factor

    strings = pd.Series(["b", "", "ab", "a", "a\x00", "é", "zzzzzzz", "Z", "a b"])
    keyed = _dask_labels.label_keys(strings)
    assert keyed.kind == "bytes" and keyed.present is None
    order = np.argsort(keyed.keys)
    decoded = _dask_labels.key_labels(keyed.keys[order], "bytes").to_pylist()
    assert decoded == list(as_factor(strings, "g").categories)
    assert _dask_labels.label_keys(pd.Series(["12345678"])) is None  # 8 bytes: no key
    ints = pd.Series([3, -2, 10, 0, -(2**40), 2**40], dtype="Int64")
    keyed = _dask_labels.label_keys(ints)
    values = _dask_labels.key_labels(np.sort(keyed.keys), "int")
    assert [str(v) for v in values] == list(as_factor(ints, "g").categories)
    for dtype in ("uint64", "UInt64"):  # beyond int64 too
        unsigned = pd.Series([2**64 - 1, 3, 2**63, 0, 2**63 - 1], dtype=dtype)
        keyed = _dask_labels.label_keys(unsigned)
        assert keyed.kind == "uint" and keyed.present is None
        values = _dask_labels.key_labels(np.sort(keyed.keys), "uint")
        assert [str(v) for v in values] == list(as_factor(unsigned, "g").categories)
    with_missing = _dask_labels.label_keys(pd.Series(["a", None, "b"], dtype="str"))
    assert with_missing.present.tolist() == [True, False, True]


def test_label_keys_of_chunks_that_slice_one_array():
    # Parquet gives a column as chunks that are slices of one array, sharing
    # its data buffer: each chunk's keys come from its own labels' bytes
    import pyarrow as pa

    from skmixed import _dask_labels

    labels = ["b", None, "ab", "", "zzzzzzz", "a", None, "é", "q", "ab"]
    whole = pa.array(labels, type=pa.large_string())
    chunked = pa.chunked_array([whole.slice(0, 3), whole.slice(3, 4), whole.slice(7)])
    column = pd.Series(pd.arrays.ArrowStringArray(chunked))
    keyed = _dask_labels.label_keys(column)
    one = _dask_labels.label_keys(pd.Series(labels, dtype="str"))
    np.testing.assert_array_equal(keyed.present, one.present)
    present = keyed.keys[keyed.present]
    np.testing.assert_array_equal(present, one.keys[one.present])
    decoded = _dask_labels.key_labels(present, "bytes").to_pylist()
    assert decoded == [x for x in labels if x is not None]


@pytest.mark.parametrize("kind", ["nullable int", "long labels in one partition"])
def test_labels_with_and_without_keys_merged(client, kind):
    df = _data(seed=10, n_groups=30)
    if kind == "nullable int":
        df["g"] = (df["g"].str[1:].astype(int) - 12).astype("Int64")
    else:  # one partition's labels are too long for a key: merged as strings
        long = df.index >= len(df) - 2
        df.loc[long, "g"] = "a-long-label"
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


@pytest.mark.parametrize("long", [False, True])
def test_second_partition_labels_in_another_order(client, long):
    # partition 2's labels first appear as a, d, c: the first, last and
    # third of partition 1's four. Its sums belong to rows a, d, c of the
    # united levels, not to the first three (a contiguous add whose ends
    # alone looked right). Long labels: merged as strings; short: as keys
    rng = np.random.default_rng(21)
    first = ["a", "b", "c", "d"] * 30
    second = ["a", "d", "c"] * 40
    labels = np.array(first + second, dtype=object)
    if long:
        labels = np.char.add("group-label-", labels.astype(str)).astype(object)
    n = len(labels)
    effect = dict(zip(sorted(set(labels)), [-3.0, 0.5, 2.0, 4.0], strict=True))
    x1 = rng.normal(size=n)
    y = 1.0 + x1 + np.array([effect[g] for g in labels]) + rng.normal(size=n)
    df = pd.DataFrame({"x1": x1, "g": labels, "y": y})
    mem = MixedLMRegressor("(1 | g)").fit(df[["x1", "g"]], df["y"])
    ddf = _partitioned(df, [0, len(first), n])
    fitted = MixedLMRegressor("(1 | g)").fit(ddf[["x1", "g"]], ddf["y"])
    _assert_same_mixed(fitted, mem)


def test_batches_fold_keyed_and_unkeyed_labels(client, monkeypatch):
    # one partition's labels are too long for keys: the sums carried along a
    # lane are then labelled by strings, and later partitions' bucketed
    # keys fold into them (and the other way round)
    from skmixed.mixed import dask_fit

    df = _data(seed=22, n_groups=50)
    df.loc[df.index < 150, "g"] = "a-long-label"
    df.loc[df.index >= len(df) - 150, "g"] = "another-long-label"
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    ddf = _partitioned(df, list(range(0, len(df), 100)) + [len(df)])
    monkeypatch.setattr(dask_fit, "BATCH_BYTES", 150 * 40)  # a partition a time
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


def test_code_buckets_unites_keys_bucket_by_bucket():
    from skmixed import _dask_labels

    rng = np.random.default_rng(3)
    sources = []
    for size in (0, 500, 2000, 7):
        keys = np.unique(rng.integers(0, 3000, size).astype(np.uint64))
        rng.shuffle(keys)
        order, counts = _dask_labels.bucket_order(keys)
        sources.append(_dask_labels.LabelKeys(keys[order], None, "int", counts))
    union, flat = _dask_labels.code_buckets(sources)
    starts = np.cumsum([0] + [len(s) for s in sources])
    codes = [flat[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]
    every = np.concatenate([s.keys for s in sources])
    assert sorted(union.keys.tolist()) == sorted(set(every.tolist()))
    assert union.bucket_counts.sum() == len(union)
    for source, where in zip(sources, codes, strict=True):
        np.testing.assert_array_equal(union.keys[where], source.keys)
    # each bucket's keys are one run, the first source's first and in order
    bounds = np.concatenate([[0], np.cumsum(union.bucket_counts)])
    first = np.concatenate([[0], np.cumsum(sources[1].bucket_counts)])
    for j in range(_dask_labels.N_BUCKETS):
        run = union.keys[bounds[j] : bounds[j + 1]]
        assert set(run.tolist()) == set(
            np.concatenate([s.keys[_runs(s)[j]] for s in sources]).tolist()
        )
        mine = sources[1].keys[first[j] : first[j + 1]]
        # the empty first source changes nothing: source 1 leads every bucket
        np.testing.assert_array_equal(run[: len(mine)], mine)


def _runs(source):
    bounds = np.concatenate([[0], np.cumsum(source.bucket_counts)])
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def test_level_of_dropped_rows_only_is_no_level(client):
    # missing='drop': a group whose every row is dropped has no level
    df = _data(seed=11)
    df.loc[[4, 800], "g"] = "lost"
    df.loc[[4, 800], "x2"] = np.nan
    cols = ["x1", "x2", "g"]
    ddf = _partitioned(df, _unequal(df))
    fitted, mem = _fits_dropping("(x1 | g)", df, ddf, cols, 2)
    assert "lost" not in fitted.random_effects_["g"].index
    _assert_same_mixed(fitted, mem)


def test_persisted_and_split_partitions(client, monkeypatch):
    # partitions are read and coded in batches by tasks that compute their
    # graphs; a persisted collection (data held by the workers) and
    # partitions that share a task (a split) are tasks of the graph instead
    from skmixed import _dask
    from skmixed.mixed import dask_fit

    df = _data(seed=13)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    plain = dd.from_pandas(df, npartitions=5)
    persisted = client.persist(plain)
    split = plain.repartition(npartitions=7)
    assert _dask.partition_graphs(plain) is not None
    # a batch holding more rows than its memory allows codes them in parts:
    # every partition alone (1 byte), one partition of 240 rows at a time
    # in a reused buffer (400 rows of [1 x1 x2 y]), two partitions at once
    for budget in (1, 400 * 32, 800 * 32):
        monkeypatch.setattr(dask_fit, "BATCH_BYTES", budget)
        fitted = MixedLMRegressor("(x1 | g)").fit(plain[cols], plain["y"])
        _assert_same_mixed(fitted, mem)
    for ddf in (persisted, split):
        assert _dask.partition_graphs(ddf) is None
        fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
        _assert_same_mixed(fitted, mem)


def test_groups_argument_and_dask_arrays(client):
    df = _data(seed=2)
    mem = MixedLMRegressor("(1 | g)").fit(
        df[["x1", "x2"]].to_numpy(), df["y"].to_numpy(), groups=df["g"]
    )
    ddf = dd.from_pandas(df, npartitions=3)
    X = ddf[["x1", "x2"]].to_dask_array(lengths=True)
    y = ddf["y"].to_dask_array(lengths=True)
    fitted = MixedLMRegressor("(1 | g)").fit(X, y, groups=ddf["g"])
    _assert_same_mixed(fitted, mem)


@pytest.mark.parametrize(
    "spec, fixed, shift",
    [
        ("(x1 + x2 | g)", "x1", 0.0),  # a formula fixed part
        ("(x1 + x2 | g)", ["x1"], 0.0),  # a list of features
        ("(1 | h) + (x2 | g)", ["x1"], 0.0),  # a slope of the second factor
        ("(x2 | g)", ["x1"], 1e4),  # far from zero: the centred pass
    ],
)
def test_random_slope_outside_the_fixed_part(client, spec, fixed, shift):
    # lme4 fits y ~ x1 + (x1 + x2 | g): x2 is a random slope, no fixed effect
    df = _data(seed=6)
    df["x2"] += shift
    cols = ["x1", "x2", "g", "h"]
    mem = MixedLMRegressor(spec, fixed_effects=fixed).fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor(spec, fixed_effects=fixed).fit(ddf[cols], ddf["y"])
    assert list(fitted.fixed_effects_.index) == ["(Intercept)", "x1"]
    _assert_same_mixed(fitted, mem)
    np.testing.assert_allclose(  # predictions cross zero: atol for those
        fitted.predict(ddf[cols]).compute().to_numpy(),
        mem.predict(df[cols]),
        rtol=RTOL,
        atol=1e-10,
    )


def test_random_slope_outside_the_fixed_part_missing_values(client):
    # a NaN in the slope-only column: the in-memory error, or the row dropped
    df = _data(seed=7)
    df.loc[[5, 700], "x2"] = np.nan
    cols = ["x1", "x2", "g"]
    ddf = _partitioned(df, _unequal(df))
    with pytest.raises(ValueError, match="column 'x2': NaN in 2 row"):
        MixedLMRegressor("(x1 + x2 | g)", fixed_effects=["x1"]).fit(df[cols], df["y"])
    with pytest.raises(ValueError, match="column 'x2': NaN in 2 row"):
        MixedLMRegressor("(x1 + x2 | g)", fixed_effects=["x1"]).fit(ddf[cols], ddf["y"])
    fitted, mem = _fits_dropping(
        "(x1 + x2 | g)", df, ddf, cols, 2, fixed_effects=["x1"]
    )
    _assert_same_mixed(fitted, mem)


def test_predict_and_score_on_dask_input(client):
    df = _data(seed=4)
    cols = ["x1", "x2", "g"]
    train, test = df.iloc[:900], df.iloc[900:].copy()
    test.loc[test.index[:5], "g"] = "unseen"
    mem = MixedLMRegressor("(x1 | g)").fit(train[cols], train["y"])
    model = MixedLMRegressor("(x1 | g)").fit(
        dd.from_pandas(train, npartitions=3)[cols], dd.from_pandas(train, 3)["y"]
    )
    dtest = dd.from_pandas(test, npartitions=2)
    pred = model.predict(dtest[cols])
    assert isinstance(pred, dd.Series)
    np.testing.assert_allclose(
        pred.compute().to_numpy(), mem.predict(test[cols]), rtol=RTOL
    )
    population = model.predict(dtest[cols], include_random=False).compute()
    np.testing.assert_allclose(
        population.to_numpy(), mem.predict(test[cols], include_random=False), rtol=RTOL
    )
    score = model.score(dtest[cols], dtest["y"])
    assert np.isclose(score.compute(), mem.score(test[cols], test["y"]), rtol=RTOL)
    fitted = model.fittedvalues_.compute().to_numpy()
    np.testing.assert_allclose(fitted, mem.fittedvalues_, rtol=RTOL)
    np.testing.assert_allclose(
        model.residuals_.compute().to_numpy(), mem.residuals_, rtol=RTOL, atol=1e-12
    )


def test_wrong_input_fails_before_reading_with_in_memory_messages(client):
    df = _data(seed=5)
    df["label"] = df["h"].astype(str)
    ddf = dd.from_pandas(df, npartitions=2)
    # a string column the model does not use is ignored in both (issue 10)
    cases = [
        ("(1 | gg)", ["x1", "x2"], ["g"]),  # a grouping column found nowhere
        ("(label | g)", ["x1", "x2", "g", "label"], None),  # a string slope
        ("(x9 | g)", ["x1", "x2", "g"], None),  # a slope that is no feature
    ]
    for spec, X, groups in cases:
        with pytest.raises(ValueError) as mem_error:
            mem_groups = None if groups is None else df[groups]
            MixedLMRegressor(spec).fit(df[X], df["y"], groups=mem_groups)
        with pytest.raises(ValueError) as dask_error:
            dask_groups = None if groups is None else ddf[groups]
            MixedLMRegressor(spec).fit(ddf[X], ddf["y"], groups=dask_groups)
        assert str(dask_error.value) == str(mem_error.value)


def test_dtype_mismatch_between_partitions(client):
    df = _data(seed=6)
    bad = df.iloc[600:].copy()
    bad["x2"] = (bad["x2"] * 8).astype(np.int64)
    parts = [dask.delayed(df.iloc[:600].copy)(), dask.delayed(bad.copy)()]
    ddf = dd.from_delayed(parts, meta=df.iloc[:0], verify_meta=False)
    with pytest.raises(ValueError, match="'x2' has dtype int64 in partition 1"):
        MixedLMRegressor("(1 | g)").fit(ddf[["x1", "x2", "g"]], ddf["y"])


def test_nan_policy_partition_by_partition(client):
    df = _data(seed=7)
    df.loc[[3, 700], "x1"] = np.nan
    df.loc[[5], "y"] = np.inf
    df.loc[[900], "g"] = None
    cols = ["x1", "x2", "g"]
    ddf = dd.from_pandas(df, npartitions=3)
    clean = df.drop(index=[900])
    with pytest.raises(ValueError) as mem_error:
        MixedLMRegressor("(1 | g)").fit(clean[cols], clean["y"])
    with pytest.raises(ValueError) as dask_error:
        dclean = dd.from_pandas(clean, npartitions=3)
        MixedLMRegressor("(1 | g)").fit(dclean[cols], dclean["y"])
    assert str(dask_error.value) == str(mem_error.value)
    with pytest.raises(ValueError, match="contains missing values"):
        MixedLMRegressor("(1 | g)").fit(ddf[cols], ddf["y"])
    fitted, mem = _fits_dropping("(1 | g)", df, ddf, cols, 4)
    _assert_same_mixed(fitted, mem)
    assert fitted.n_dropped_ == 4


def _slow_partition(frame, delay):
    time.sleep(delay)
    return frame


def test_fit_survives_a_killed_worker(client):
    df = _data(seed=8)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    cuts = np.linspace(0, len(df), 13).astype(int)
    parts = [
        dask.delayed(_slow_partition)(df.iloc[a:b].copy(), 0.25)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    ddf = dd.from_delayed(parts, meta=df.iloc[:0])
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    result = {}

    def fit():
        result["model"] = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])

    worker = threading.Thread(target=fit)
    worker.start()
    # one pass (a term on one factor: the partitions' own levels, merged by
    # label) of 12 x 0.25 s on two workers: kill one while it accumulates
    # and merges
    time.sleep(0.9)
    assert worker.is_alive()
    os.kill(pids[victim], signal.SIGKILL)
    worker.join(timeout=120)
    assert "model" in result
    _assert_same_mixed(result["model"], mem)
    client.wait_for_workers(2, timeout=60)


def _assert_same_lm(m_dask, m_mem, rtol=1e-10):
    for name in ("params_", "vcov_", "coef_"):
        np.testing.assert_allclose(
            np.asarray(getattr(m_dask, name), dtype=float),
            np.asarray(getattr(m_mem, name), dtype=float),
            rtol=rtol,
            atol=1e-13,
        )
    for name in ("sigma_", "rsquared_", "rsquared_adj_", "fvalue_", "loglik_", "aic_"):
        np.testing.assert_allclose(
            getattr(m_dask, name), getattr(m_mem, name), rtol=rtol
        )
    assert m_dask.nobs_ == m_mem.nobs_ and m_dask.df_resid_ == m_mem.df_resid_
    assert m_dask.aliased_ == m_mem.aliased_
    np.testing.assert_allclose(
        m_dask.residuals_.compute().to_numpy(), m_mem.residuals_, rtol=rtol, atol=1e-12
    )
    assert str(m_dask.summary()) == str(m_mem.summary())


@pytest.mark.parametrize(
    "options",
    [
        {"group": "g"},
        {"group": "g", "cov_type": "cluster"},
        {"group": "g", "fit_intercept": False},
    ],
)
def test_pooled_fit_equals_pandas(client, options):
    df = _data(seed=9)
    df["x3"] = df["x1"] + df["x2"]  # aliased, as R reports it
    cols = ["x1", "x2", "x3", "g"]
    with pytest.warns(UserWarning, match="aliased"):
        mem = PooledRegressor(**options).fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    with pytest.warns(UserWarning, match="aliased"):
        fitted = PooledRegressor(**options).fit(ddf[cols], ddf["y"])
    _assert_same_lm(fitted, mem)
    np.testing.assert_allclose(
        fitted.predict(ddf[cols]).compute().to_numpy(),
        mem.predict(df[cols]),
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"group": "g", "method": "within"},
        {"group": "g", "method": "dummy", "reference": "s3"},
        {"group": "g", "method": "dummy", "group_slopes": ["x1"]},
    ],
)
def test_fixed_effects_fit_equals_pandas(client, options):
    from skmixed import FixedEffectsRegressor

    df = _data(seed=10)
    cols = ["x1", "x2", "g"]
    mem = FixedEffectsRegressor(**options).fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = FixedEffectsRegressor(**options).fit(ddf[cols], ddf["y"])
    _assert_same_lm(fitted, mem)
    np.testing.assert_allclose(
        fitted.group_intercepts_.to_numpy(),
        mem.group_intercepts_.to_numpy(),
        rtol=1e-10,
    )
    assert list(fitted.group_intercepts_.index) == list(mem.group_intercepts_.index)
    test = df.iloc[:50]
    np.testing.assert_allclose(
        fitted.predict(dd.from_pandas(test, 2)[cols]).compute().to_numpy(),
        mem.predict(test[cols]),
        rtol=1e-10,
    )


def test_inference_on_a_dask_fitted_mixed_model(client):
    from skmixed import anova

    df = _data(seed=11)
    cols = ["x1", "x2", "g"]
    ddf = _partitioned(df, _unequal(df))
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    assert str(fitted.summary()) == str(mem.summary())  # residual quantiles: a pass
    # Satterthwaite's df: differences of the analytic gradient, which the
    # sums' last-bit differences move by ~1e-12 (second differences of the
    # deviance moved them by 3e-9)
    pd.testing.assert_frame_equal(fitted.anova(), mem.anova(), rtol=1e-10)
    pd.testing.assert_frame_equal(fitted.conf_int(), mem.conf_int(), rtol=1e-10)
    pd.testing.assert_frame_equal(
        fitted.conf_int(method="profile", parm="theta_"),
        mem.conf_int(method="profile", parm="theta_"),
        rtol=1e-10,
    )
    for name in ("r2_nakagawa", "icc"):
        got, want = getattr(fitted, name)(), getattr(mem, name)()
        assert got.keys() == want.keys()
        for key in want:
            assert np.isclose(got[key], want[key], rtol=1e-10)
    small_mem = MixedLMRegressor("(1 | g)").fit(df[cols], df["y"])
    small = MixedLMRegressor("(1 | g)").fit(ddf[cols], ddf["y"])
    pd.testing.assert_frame_equal(
        anova(small, fitted), anova(small_mem, mem), rtol=1e-10
    )


def test_inference_on_a_dask_fitted_crossed_model(client):
    # two factors and a random slope: second differences of the deviance
    # moved these df by 3e-8 between two orders of the same rows
    df = _data(seed=3)
    cols = ["x1", "x2", "g", "h"]
    ddf = _partitioned(df, _unequal(df))
    spec = "(x1 | g) + (1 | h)"
    mem = MixedLMRegressor(spec).fit(df[cols], df["y"])
    fitted = MixedLMRegressor(spec).fit(ddf[cols], ddf["y"])
    pd.testing.assert_frame_equal(fitted.anova(), mem.anova(), rtol=1e-10)
    pd.testing.assert_frame_equal(
        fitted.summary().coefficients, mem.summary().coefficients, rtol=1e-10
    )
    pd.testing.assert_frame_equal(
        fitted.conf_int(method="profile"), mem.conf_int(method="profile"), rtol=1e-10
    )


def test_sample_weights(client):
    df = _data(seed=12)
    df["w"] = np.random.default_rng(12).uniform(0.3, 3.0, len(df))
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"], sample_weight=df["w"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor("(x1 | g)").fit(
        ddf[cols], ddf["y"], sample_weight=ddf["w"]
    )
    _assert_same_mixed(fitted, mem)
    assert str(fitted.summary()) == str(mem.summary())  # Pearson residuals
    for bad in (df["w"].where(df.index != 700, -1.0), df["w"].where(df.index != 5, 0)):
        with pytest.raises(ValueError) as mem_error:
            MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"], sample_weight=bad)
        frame = _partitioned(df.assign(w=bad), _unequal(df))
        with pytest.raises(ValueError) as dask_error:
            MixedLMRegressor("(x1 | g)").fit(
                frame[cols], frame["y"], sample_weight=frame["w"]
            )
        assert str(dask_error.value) == str(mem_error.value)


@pytest.mark.parametrize("name", ["MixedGLMRegressor", "MixedLogisticRegression"])
def test_glmm_refuses_dask_input_clearly(name):
    # PIRLS has no one-pass Dask fit: a clear refusal, not dask's error
    # about converting a lazy value to bool from deep inside validation.
    import skmixed

    frame = pd.DataFrame({"x": np.arange(40.0) % 5, "g": np.repeat(list("abcd"), 10)})
    frame["y"] = (frame["x"] > 2).astype(float)
    data = dd.from_pandas(frame, npartitions=2)
    model = getattr(skmixed, name)("(1 | g)")
    with pytest.raises(NotImplementedError, match="does not fit from Dask"):
        model.fit(data[["x", "g"]], data["y"])


def test_summary_residual_quantiles_are_exact(client, monkeypatch):
    from skmixed import _dask_predict

    # few candidates per pass: the radix selection runs its histogram passes
    monkeypatch.setattr(_dask_predict, "_COLLECT", 50)
    df = _data(seed=13)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    got = fitted.summary().scaled_residuals.values
    probs = [0, 0.25, 0.5, 0.75, 1]
    # exact: numpy's quantiles of the very values the passes ranked
    rows = _dask_predict.scaled_residuals(fitted).compute().to_numpy()
    assert np.array_equal(got, np.quantile(rows, probs))
    want = np.quantile(mem.summary().scaled_residuals, probs)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-12)


def test_slope_far_from_zero_is_centred_by_another_pass(client):
    # Days + 1e4: the in-memory fit optimises on centred columns; so does
    # the Dask fit, whose partitions centre their rows in a third pass.
    df = _data(seed=14)
    df["x1"] += 1e4
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    # The centring constants come from summed moments (their last bits
    # differ from numpy's two-pass mean and std): the same model, and the
    # polished optimum is the same to rounding.
    _assert_same_mixed(fitted, mem)
    np.testing.assert_allclose(fitted.reml_criterion_, mem.reml_criterion_, rtol=1e-12)


@pytest.mark.parametrize(
    "estimator, options",
    [
        ("PooledRegressor", {"group": "g"}),
        ("PooledRegressor", {"group": "g", "cov_type": "cluster"}),
        ("FixedEffectsRegressor", {"group": "g", "method": "within"}),
        ("FixedEffectsRegressor", {"group": "g", "method": "dummy"}),
    ],
)
def test_weighted_lm_fits_equal_pandas(client, estimator, options):
    import skmixed

    df = _data(seed=15)
    # rows of weight 0 (left out of the fit, as R's lm does) except with
    # clusters
    df["w"] = np.random.default_rng(15).uniform(0.3, 3.0, len(df))
    if "cov_type" not in options:
        df.loc[df.index[::97], "w"] = 0.0
    cols = ["x1", "x2", "g"]
    Model = getattr(skmixed, estimator)
    mem = Model(**options).fit(df[cols], df["y"], sample_weight=df["w"])
    ddf = _partitioned(df, _unequal(df))
    fitted = Model(**options).fit(ddf[cols], ddf["y"], sample_weight=ddf["w"])
    _assert_same_lm(fitted, mem)
    assert "Weighted Residuals:" in str(fitted.summary())


def test_formula_fixed_part_learned_from_every_partition(client):
    from skmixed import PooledRegressor

    df = _data(seed=16)
    # a string factor whose last level appears in the last partition only
    df["kind"] = np.where(df["h"] < 3, "b", "a")
    df.loc[df.index[-3:], "kind"] = "c"
    cols = ["x1", "x2", "kind", "g"]
    ddf = _partitioned(df, _unequal(df))
    rhs = "x1 + x2 * kind"
    mem = MixedLMRegressor("(x1 | g)", fixed_effects=rhs).fit(df[cols], df["y"])
    fitted = MixedLMRegressor("(x1 | g)", fixed_effects=rhs).fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)
    assert str(fitted.summary()) == str(mem.summary())
    # type III tests of the formula's terms (kind's two columns together, the
    # interaction's too), Satterthwaite's df to 1e-10 as in the test above
    pd.testing.assert_frame_equal(fitted.anova(), mem.anova(), rtol=1e-10)
    np.testing.assert_allclose(
        fitted.predict(ddf[cols]).compute().to_numpy(), mem.predict(df[cols]), rtol=RTOL
    )
    mem_lm = PooledRegressor(fixed_effects="0 + kind + x1").fit(df[cols], df["y"])
    lm = PooledRegressor(fixed_effects="0 + kind + x1").fit(ddf[cols], ddf["y"])
    _assert_same_lm(lm, mem_lm)


@pytest.mark.parametrize(
    "rhs", ["scale(x1) + x2", "center(x1) * h + scale(log(x2 + 3))", "scale(x1^2)"]
)
def test_scale_and_center_learn_from_every_partition(client, rhs):
    # R's scale(x) / center(x): the centre and scale of every value of x
    # present (rows missing y included), one more pass from Dask
    df = _data(seed=17)
    df.loc[df.index[:5], "y"] = np.nan  # dropped rows still count for scale
    df.loc[df.index[7], "x1"] = np.nan
    ddf = _partitioned(df, _unequal(df))
    cols = ["x1", "x2", "h", "g"]
    spec = dict(random_effects="(1 | g)", fixed_effects=rhs, missing="drop")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = MixedLMRegressor(**spec).fit(df[cols], df["y"])
        fitted = MixedLMRegressor(**spec).fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)
    complete = ddf[ddf["x1"].notnull()][cols]  # predict needs every value
    np.testing.assert_allclose(
        fitted.predict(complete).compute().to_numpy(),
        mem.predict(df.loc[df["x1"].notna(), cols]),
        rtol=RTOL,
    )
    lm_mem = PooledRegressor(fixed_effects=rhs, missing="drop").fit(df[cols], df["y"])
    lm = PooledRegressor(fixed_effects=rhs, missing="drop").fit(ddf[cols], ddf["y"])
    _assert_same_lm(lm, lm_mem)


def test_scale_with_more_arguments_is_refused(client):
    # poly(x, d) is learned from Dask (tests/test_dask_poly.py); scale() with
    # its options is not yet
    df = _data(seed=17)
    ddf = dd.from_pandas(df, npartitions=2)
    model = MixedLMRegressor("(1 | g)", fixed_effects="scale(x1, center = FALSE)")
    with pytest.raises(NotImplementedError, match="learned from every row"):
        model.fit(ddf[["x1", "x2", "h", "g"]], ddf["y"])


def _numbers_as_factors(seed):
    """k: integers whose text order (-5, 15, 25, 5) is not their numeric
    order, with a value (100) in the last rows only; half: floats."""
    df = _data(seed=seed)
    df["k"] = df["h"] * 10 - 5
    df.loc[df.index[-3:], "k"] = 100
    df["half"] = (df["h"] % 3) * 0.5
    return df


def test_factor_of_a_numeric_column_is_learned_from_every_partition(client):
    from skmixed import lm, lmer

    df = _numbers_as_factors(seed=18)
    ddf = _partitioned(df, _unequal(df))
    formula = "y ~ factor(k) + x1 + factor(half):x2 + (1 | g)"
    mem = lmer(formula, df)
    fitted = lmer(formula, ddf)
    # R's names, in R's (numeric) level order, the first level the baseline
    assert list(mem.fixed_effects_.index)[:6] == [
        "(Intercept)",
        "factor(k)5",
        "factor(k)15",
        "factor(k)25",
        "factor(k)35",
        "factor(k)45",
    ]
    _assert_same_mixed(fitted, mem)
    assert str(fitted.summary()) == str(mem.summary())
    pd.testing.assert_frame_equal(fitted.anova(), mem.anova(), rtol=1e-10)
    np.testing.assert_allclose(
        fitted.predict(ddf).compute().to_numpy(), mem.predict(df), rtol=RTOL
    )
    _assert_same_lm(lm("y ~ factor(k) * x1", ddf), lm("y ~ factor(k) * x1", df))
    cols = ["x1", "x2", "k", "half", "g"]
    model = MixedLMRegressor.from_formula("y ~ factor(k) + x1 + (x1 | g)")
    _assert_same_mixed(
        model.fit(ddf[cols], ddf["y"]),
        MixedLMRegressor.from_formula("y ~ factor(k) + x1 + (x1 | g)").fit(
            df[cols], df["y"]
        ),
    )


def test_factor_of_a_continuous_column_is_refused(client):
    # every value a level: a fixed-effect column per row is not a model,
    # and collecting every value of a column is not a Dask fit
    df = _data(seed=19)
    ddf = dd.from_pandas(df, npartitions=2)
    model = MixedLMRegressor("(1 | g)", fixed_effects="factor(x1) + x2")
    with pytest.raises(ValueError, match=r"factor\(x1\).*more than 1000 distinct"):
        model.fit(ddf[["x1", "x2", "g"]], ddf["y"])


def test_sparse_product_fallback_equals_scipys_kernel(monkeypatch):
    """The bucketed sums add ``A X`` in place through scipy's private CSC
    kernel; without it (a scipy that moved it) the public product is used
    and gives the same sums."""
    import scipy.sparse

    from skmixed.mixed import dask_fit

    rng = np.random.default_rng(0)
    A = scipy.sparse.random(7, 40, density=0.3, format="csc", random_state=1)
    X = rng.normal(size=(40, 3))
    start = rng.normal(size=(7, 3))

    def add(Y):
        dask_fit._add_product(7, A.indptr, A.indices, A.data, X, Y)
        return Y

    kernel = add(start.copy())
    monkeypatch.setattr(dask_fit, "_csc_matvecs", None)
    public = add(start.copy())
    np.testing.assert_allclose(kernel, start + A @ X, rtol=1e-13)
    np.testing.assert_allclose(public, start + A @ X, rtol=1e-13)


def test_spanned_term_is_warned_about_on_dask(client):
    """A random intercept whose factor is also in the fixed part (as dummy
    columns) is flagged from the summed cross-products, as in memory."""
    rng = np.random.default_rng(3)
    levels = np.repeat(np.arange(8), 20)
    frame = pd.DataFrame({"x1": rng.normal(size=160), "f": [f"f{k}" for k in levels]})
    frame["y"] = frame["x1"] + rng.normal(size=8)[levels] + rng.normal(size=160)
    dummies = [f"d{k}" for k in range(1, 8)]
    for k, name in enumerate(dummies, start=1):
        frame[name] = (levels == k).astype(float)
    features = ["x1", *dummies]
    ddf = dd.from_pandas(frame, npartitions=3)
    with pytest.warns(UserWarning, match="lie in the span of the fixed-effect"):
        MixedLMRegressor("(1 | f)", fixed_effects=features).fit(
            ddf[[*features, "f"]], ddf["y"]
        )


def test_categorical_partitions_list_categories_in_other_orders(client):
    """Unordered categoricals with one set of categories compare equal
    whatever their order, so partitions may list them differently: each
    partition's category codes are its own, and rows are coded by label."""
    from skmixed import FixedEffectsRegressor

    df = _data(seed=23)
    categories = sorted(df["g"].unique())
    df["g"] = pd.Categorical(df["g"], categories=categories)

    def partition(a, b, reverse):
        part = df.iloc[a:b].copy()
        order = categories[::-1] if reverse else categories
        part["g"] = part["g"].cat.reorder_categories(order)
        return part

    cuts = [0, 300, 600, 900, len(df)]
    parts = [
        dask.delayed(partition)(a, b, i % 2 == 1)
        for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True))
    ]
    ddf = dd.from_delayed(parts, meta=df.iloc[:0], verify_meta=False)
    cols = ["x1", "x2", "g", "h"]
    spec = "(1 | g) + (1 | h)"  # levels learned first, rows coded with them
    mem = MixedLMRegressor(spec).fit(df[cols], df["y"])
    fitted = MixedLMRegressor(spec).fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)
    options = {"group": "g", "method": "dummy"}
    mem_fe = FixedEffectsRegressor(**options).fit(df[cols[:3]], df["y"])
    fe = FixedEffectsRegressor(**options).fit(ddf[cols[:3]], ddf["y"])
    _assert_same_lm(fe, mem_fe)


def test_partition_without_a_level_splitting_another_in_two(client):
    """A partition lacking level c whose rows run a, b, a has as many runs
    of rows as the factor has levels, yet level a is two runs: its sums
    must not be taken as one run per level (a's first run lost, c's sums
    uninitialised memory)."""
    df = _data(seed=24, n_groups=3)
    df["g"] = df["g"].str.replace("s", "level-")
    df.loc[:2, "g"] = ["level-0", "level-1", "level-0"]
    cols = ["x1", "x2", "g", "h"]
    mem = MixedLMRegressor("(1 | g) + (1 | h)").fit(df[cols], df["y"])
    ddf = _partitioned(df, [0, 3, 600, len(df)])
    fitted = MixedLMRegressor("(1 | g) + (1 | h)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # dask's reader, pandas 3.1
def test_read_parquet_categorical_groups(client, tmp_path):
    """dd.read_parquet gives a categorical column metadata of unknown
    categories, each partition its own: the fit equals that of
    pd.read_parquet's frame."""
    df = _data(seed=25)
    categories = sorted(df["g"].unique())[::-1] + ["unused"]
    df["g"] = pd.Categorical(df["g"], categories=categories)
    df["h"] = pd.Categorical(df["h"].astype(str))
    dd.from_pandas(df, npartitions=4).to_parquet(tmp_path)
    ddf, frame = dd.read_parquet(tmp_path), pd.read_parquet(tmp_path)
    cols = ["x1", "x2", "g", "h"]
    mem = MixedLMRegressor("(1 | h/g)").fit(frame[cols], frame["y"])
    fitted = MixedLMRegressor("(1 | h/g)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


def test_missing_label_in_one_chunk_of_a_partitions_strings(client):
    """A partition made by pd.concat holds its Arrow strings in chunks, of
    which only some have nulls: a missing label is reported as in memory
    (or its row dropped), not a numpy error about array dimensions."""
    df = _data(seed=26)
    df.loc[[10, 700], "g"] = None
    cols = ["x1", "x2", "g"]

    def partition(a, b):
        middle = (a + b) // 2
        return pd.concat([df.iloc[a:middle], df.iloc[middle:b]])

    cuts = [0, 300, 600, 900, len(df)]
    pairs = zip(cuts[:-1], cuts[1:], strict=True)
    ddf = dd.from_delayed([dask.delayed(partition)(*p) for p in pairs], df.iloc[:0])
    with pytest.raises(ValueError, match="'g' contains missing values .* in 2 row"):
        MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    fitted, mem = _fits_dropping("(x1 | g)", df, ddf, cols, 2)
    _assert_same_mixed(fitted, mem)


@pytest.mark.parametrize("spec", ["(x1 | g)", "(1 | h/g)"])
def test_object_labels_that_are_one_level_as_strings(client, spec):
    """Object labels 1 and "1" are one level (R's factor of their strings):
    their sums are added, by own labels (one factor) and by combinations
    (nested), as in memory. (Dask turns object columns into strings unless
    dataframe.convert-string is off.)"""
    df = _data(seed=27)
    labels = df["g"].astype(object)
    labels[(labels == "s1") & (df.index % 2 == 0)] = 1
    labels[labels == "s1"] = "1"
    df["g"] = labels
    cols = ["x1", "x2", "g", "h"]
    mem = MixedLMRegressor(spec).fit(df[cols], df["y"])
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = _partitioned(df, _unequal(df))
        fitted = MixedLMRegressor(spec).fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


def test_slope_far_from_zero_with_an_empty_first_partition(client):
    """The centring pass codes each batch of partitions by its own labels:
    a batch of empty partitions (here the first of a lane) has none."""
    df = _data(seed=28)
    df["x1"] += 1e4
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    ddf = _partitioned(df, [0, 0, 400, 800, len(df)])
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


def test_predict_float_labels_partition_by_partition(client):
    """Float group labels are named value by value (1.0 -> "1", as R
    does): a partition whose labels are all whole numbers finds its
    levels, rather than being predicted as unseen groups."""
    df = _data(seed=29, n_groups=8)
    df["g"] = df["g"].str[1:].astype(float) / 2  # 0, 0.5, 1, ...
    cols = ["x1", "x2", "g"]
    train, test = df.iloc[:900], df.iloc[900:].sort_values("g")
    model = MixedLMRegressor("(x1 | g)").fit(train[cols], train["y"])
    whole = test["g"] == test["g"].round()
    cuts = [0, int(whole.sum()), len(test)]
    test = pd.concat([test[whole], test[~whole]])
    predicted = model.predict(_partitioned(test, cuts)[cols]).compute()
    np.testing.assert_allclose(predicted.to_numpy(), model.predict(test[cols]))
    population = model.predict(test[cols], include_random=False)
    assert not np.allclose(predicted.to_numpy()[: cuts[1]], population[: cuts[1]])


def _set_kernel(kernel):
    from skmixed.mixed import dask_fit

    previous, dask_fit._csc_matvecs = dask_fit._csc_matvecs, kernel
    return previous


def test_fit_without_scipys_private_kernel(client):
    """Workers whose scipy lacks the private CSC kernel add the bucketed
    sums by the public sparse product: a random slope (two rows of sums
    per level) fits as with the kernel."""
    df = _data(seed=30)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    kernels = client.run(_set_kernel, None)
    try:
        fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    finally:
        for address, kernel in kernels.items():
            client.run(_set_kernel, kernel, workers=[address])
    _assert_same_mixed(fitted, mem)


def _sorted_by_x1(part):
    return part.sort_values("x1")


def test_dask_arrays_pair_rows_by_position(client):
    """A dask array pairs its rows with a frame's or Series' by position,
    as in memory, whatever the frame's index: Dask's alignment by index
    would give the array's rows (index 0, 1, ...) other rows' values."""
    df = _data(seed=31)
    # each partition sorted: its index is no longer the rows' positions
    ddf = dd.from_pandas(df, npartitions=3).map_partitions(_sorted_by_x1)
    rows = ddf.compute()
    # an array X's columns are x0, x1
    mem = MixedLMRegressor("(x0 | g)").fit(
        rows[["x1", "x2"]].to_numpy(), rows["y"].to_numpy(), groups=rows["g"]
    )
    X = ddf[["x1", "x2"]].to_dask_array(lengths=True)
    fitted = MixedLMRegressor("(x0 | g)").fit(X, ddf["y"], groups=ddf["g"])
    _assert_same_mixed(fitted, mem)
    mem = MixedLMRegressor("(x1 | g)").fit(rows[["x1", "x2", "g"]], rows["y"])
    y = ddf["y"].to_dask_array(lengths=True)
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[["x1", "x2", "g"]], y)
    _assert_same_mixed(fitted, mem)
    with pytest.raises(ValueError, match="X has 3 partition.* and y 2"):
        y = ddf["y"].repartition(npartitions=2)
        MixedLMRegressor("(x0 | g)").fit(X, y, groups=ddf["g"])


def test_partitions_scattered_to_the_cluster(client):
    """Partitions the user scattered (dd.from_delayed of futures) are data
    held by the workers: their graphs alias keys that are not in them, so
    they are tasks of the graph rather than read inside a batch."""
    df = _data(seed=32)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    cuts = [0, 300, 600, 900, len(df)]
    pieces = [df.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    ddf = dd.from_delayed(client.scatter(pieces), meta=df.iloc[:0])
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


@pytest.mark.parametrize("dtype", ["Int64", "UInt64", "boolean"])
def test_nullable_labels_with_missing_dropped(client, dtype):
    """missing='drop' drops the rows whose nullable integer or boolean label
    is pd.NA, in memory as from Dask (in memory they were an error)."""
    df = _data(seed=33)
    number = df["g"].str[1:].astype(int)
    df["g"] = (number if dtype != "boolean" else number % 3 == 0).astype(dtype)
    df.loc[[4, 700], "g"] = pd.NA
    cols = ["x1", "x2", "g"]
    ddf = _partitioned(df, _unequal(df))
    errors = []  # by default (missing='error'): the same error, counting them
    for frame in (df, ddf):
        with pytest.raises(ValueError, match="'g' contains missing .* 2 row") as e:
            MixedLMRegressor("(1 | g)").fit(frame[cols], frame["y"])
        errors.append(str(e.value))
    assert errors[0] == errors[1]
    fitted, mem = _fits_dropping("(1 | g)", df, ddf, cols, 2)
    _assert_same_mixed(fitted, mem)


def test_categorical_level_order_kept_when_rows_are_dropped(client):
    """missing='drop' keeps a categorical factor's category order as its
    level order, in memory as from Dask (in memory it became R's sorted
    order of the labels once a row was dropped)."""
    df = _data(seed=34)
    categories = sorted(df["g"].unique())[::-1]
    df["g"] = pd.Categorical(df["g"], categories=categories)
    df.loc[[3, 800], "x2"] = np.nan
    cols = ["x1", "x2", "g", "h"]
    ddf = _partitioned(df, _unequal(df))
    fitted, mem = _fits_dropping("(1 | g) + (1 | h)", df, ddf, cols, 2)
    assert list(mem.random_effects_["g"].index) == categories
    _assert_same_mixed(fitted, mem)


def test_dask_counts_the_memory_of_the_sums():
    """A task's per-level sums count at their size in a worker's memory
    accounting (Dask's sizeof fell back to ~56 bytes for them)."""
    from dask.sizeof import sizeof

    from skmixed._dask_labels import LabelKeys
    from skmixed.mixed.dask_fit import LabelledSums

    keys = LabelKeys(np.arange(100_000, dtype=np.uint64), None, "int")
    per_level = np.zeros((100_000, 18))
    sums = LabelledSums(keys, per_level, None, None, 0, 100_000)
    assert sizeof(sums) >= per_level.nbytes + keys.keys.nbytes


@pytest.mark.parametrize("with_table", [True, False])
def test_the_sums_travel_with_their_table_as_a_numpy_array(with_table):
    """LabelledSums cross processes with the table of sums serialised as a
    numpy array by Dask (pickled inside the whole, it reached the client
    2-4x slower), writeable on arrival, every field as it was."""
    from distributed.protocol import deserialize, serialize

    from skmixed._dask_labels import LabelKeys
    from skmixed.mixed.dask_fit import LabelledSums

    keys = LabelKeys(np.arange(1_000, dtype=np.uint64), None, "int")
    per_level = np.arange(1_000 * 14, dtype=np.float64).reshape(1_000, 14)
    totals = (10, np.eye(3), 0.5)
    sums = LabelledSums(keys, per_level if with_table else None, totals, None, 3, 1_000)
    header, frames = serialize(sums)
    assert header["serializer"] == "dask"
    if with_table:
        assert header["sub-header"]["table"]["type"] == "numpy.ndarray"
    back = deserialize(header, frames)
    assert isinstance(back, LabelledSums)
    if with_table:
        np.testing.assert_array_equal(back.per_level, per_level)
        assert back.per_level.flags.writeable
    else:
        assert back.per_level is None
    np.testing.assert_array_equal(back.labels.keys, keys.keys)
    assert back.labels.kind == "int"
    assert back.totals[0] == 10
    np.testing.assert_array_equal(back.totals[1], np.eye(3))
    assert (back.missing, back.n_rows, back.summary) == (3, 1_000, None)


def test_y_with_another_index_is_refused_before_reading():
    """Dask pairs two frames' rows by index label (in memory: by position):
    a y whose index was reset elsewhere is refused with the reason, not
    reported as missing values in the grouping column."""
    df = _data(seed=31, n_groups=6)
    cols = ["x1", "x2", "g"]
    ddf = dd.from_pandas(df, npartitions=3)
    y = df["y"].set_axis(np.arange(len(df)) + 1000)
    with pytest.raises(ValueError, match="index of y does not match X's"):
        MixedLMRegressor("(x1 | g)").fit(ddf[cols], dd.from_pandas(y, npartitions=3))
    # the same rows split otherwise still pair by label
    y_split = dd.from_pandas(df["y"], npartitions=5)
    with dask.config.set(scheduler="synchronous"):
        fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], y_split)
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    assert fitted.reml_criterion_ == pytest.approx(mem.reml_criterion_, rel=1e-10)


def test_response_far_from_zero_without_an_intercept_is_said(client):
    # y ~ 0 + x + (1 | g) with y moved by 1e6: no intercept absorbs the
    # offset. In memory the residual sum of squares comes from the rows
    # (lme4's numbers, silently); from Dask partitions only the sums reach
    # the client, whose difference keeps ~4 digits: it says so, and what to do
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(60), 10)
    x = rng.normal(size=600)
    y = 2 * x + 2 * rng.normal(size=60)[g] + rng.normal(size=600) + 1e6
    df = pd.DataFrame({"x": x, "g": [f"g{i}" for i in g], "y": y})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mem = MixedLMRegressor("(1 | g)", fit_intercept=False).fit(
            df[["x", "g"]], df["y"]
        )
    # lme4's optimum (tests/data/no_intercept, exact.json: 3498.902063634042)
    assert mem.reml_criterion_ == pytest.approx(3498.902063634042, rel=1e-12)
    ddf = _partitioned(df, _unequal(df))
    with pytest.warns(UserWarning, match="far from 0") as record:
        MixedLMRegressor("(1 | g)", fit_intercept=False).fit(ddf[["x", "g"]], ddf["y"])
    message = " ".join(str(w.message) for w in record)
    for remedy in ("Fit the intercept", "centre y", "in-memory data"):
        assert remedy in message


def test_response_far_from_zero_equals_pandas(client):
    # y = 1e8 + ...: fitted through y less a constant (its own cross-products
    # lose its digits: the pandas fit's θ was wrong by 50%, the Dask fit's
    # otherwise), by the centred pass: the shift is the middle of y's range
    df = _data(seed=14)
    cols = ["x1", "x2", "g"]
    plain = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    df["y"] += 1e8
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    np.testing.assert_allclose(mem.theta_, plain.theta_, rtol=1e-7)
    assert mem.loglik_ == pytest.approx(plain.loglik_, rel=1e-10)
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)


def _lane(keys, kind, rng):
    """A lane's LabelledSums: distinct ``keys``, bucketed, with random sums."""
    from skmixed._dask_labels import LabelKeys, bucket_order
    from skmixed.mixed.dask_fit import LabelledSums

    keys = np.asarray(keys, dtype=np.uint64)
    order, counts = bucket_order(keys)
    keys = keys[order]
    per_level = rng.normal(size=(len(keys), 5))
    n = len(keys)
    totals = (n, np.full((2, 2), float(n)), 0.0)
    return LabelledSums(
        LabelKeys(keys, None, kind, counts), per_level, totals, None, 1, n
    )


@pytest.mark.parametrize(
    "layout", ["overlapping", "disjoint", "one lane empty", "dense integers"]
)
def test_lanes_merged_in_bucket_ranges_where_they_are(client, layout):
    """Each lane merges one range of buckets where it is, from the others'
    rows in it: the ranges, joined, are the lanes' sums added by key, in
    key order, with the lanes' counts and totals added once."""
    from skmixed.mixed import dask_ranges
    from skmixed.mixed.dask_fit import merge_labelled

    rng = np.random.default_rng(31)
    pool = np.unique(rng.integers(0, 2**64 - 1, 3100, dtype=np.uint64))[:3000]
    if layout == "dense integers":  # ids -1500..1499 with gaps: put in order
        ids = rng.permutation(np.arange(-1500, 1500))[:2600]  # by counting
        pool = ids.view(np.uint64) ^ np.uint64(2**63)
    pool = rng.permutation(pool)
    chosen = {
        "overlapping": [pool[:2000], pool[1000:]],
        "disjoint": [np.sort(pool)[:1500], np.sort(pool)[1500:]],
        "one lane empty": [pool[:0], pool],
        "dense integers": [pool[:1800], pool[900:]],
    }[layout]
    kind = "int" if layout == "dense integers" else "bytes"
    lanes = [_lane(keys, kind, rng) for keys in chosen]
    ranges = dask.compute(
        *dask_ranges.merged_in_ranges([dask.delayed(x) for x in lanes])
    )
    assert all(len(r.labels) for r in ranges)  # each lane merged its range
    joined = dask_ranges.join_ranges(ranges)
    expected = merge_labelled(*lanes)
    order = np.argsort(expected.labels.keys)
    np.testing.assert_array_equal(joined.labels.keys, expected.labels.keys[order])
    np.testing.assert_allclose(joined.per_level, expected.per_level[order])
    assert joined.totals[0] == expected.totals[0]
    np.testing.assert_array_equal(joined.totals[1], expected.totals[1])
    assert (joined.missing, joined.n_rows) == (2, expected.n_rows)


@pytest.mark.parametrize(
    "keys",
    [[5, 3, 4, 9], [2**64 - 1, 0, 2**63, 7], [2**64 - 1, 2**64 - 3], [1], []],
    ids=["dense", "sparse", "dense at the top", "one", "none"],
)
def test_key_order_sorts_dense_and_sparse_keys(keys):
    from skmixed import _dask_labels

    keys = np.array(keys, dtype=np.uint64)
    np.testing.assert_array_equal(_dask_labels.key_order(keys), np.argsort(keys))


def test_bucket_range_without_keys_and_lanes_not_split(client):
    # keys of one bucket only: the other range has no level (its merge, of
    # empty rows, gives an empty table); a lane whose keys are not bucketed
    # leaves the lanes whole, merged by range 0 as before
    from skmixed import _dask_labels
    from skmixed.mixed import dask_ranges

    rng = np.random.default_rng(32)
    candidates = np.arange(20_000, dtype=np.uint64)
    buckets = (candidates * _dask_labels._BUCKET_MULTIPLIER) >> np.uint64(56)
    low = candidates[buckets == 3]  # all in the first range of two
    lanes = [_lane(low[:40], "int", rng), _lane(low[20:], "int", rng)]
    ranges = dask.compute(
        *dask_ranges.merged_in_ranges([dask.delayed(x) for x in lanes])
    )
    assert len(ranges[1].labels) == 0 and ranges[1].per_level.shape == (0, 5)
    joined = dask_ranges.join_ranges(ranges)
    np.testing.assert_array_equal(joined.labels.keys, np.sort(low))
    expected = np.zeros((len(low), 5))
    for lane in lanes:
        expected[np.searchsorted(np.sort(low), lane.labels.keys)] += lane.per_level
    np.testing.assert_allclose(joined.per_level, expected)
    assert (joined.totals[0], joined.missing, joined.n_rows) == (
        len(low) + 20,
        2,
        len(low) + 20,
    )
    lanes[1].labels.bucket_counts = None  # (its keys are still distinct)
    ranges = dask.compute(
        *dask_ranges.merged_in_ranges([dask.delayed(x) for x in lanes])
    )
    assert ranges[1] is None
    whole = dask_ranges.join_ranges(ranges)
    order = np.argsort(whole.labels.keys)
    np.testing.assert_array_equal(whole.labels.keys[order], np.sort(low))
    np.testing.assert_allclose(whole.per_level[order], expected)


@pytest.mark.parametrize(
    "labels",
    [
        "dense",
        "negative",
        "sparse",
        "beyond 2**53",
        "int64 limits",
        "int32",
        "uint64 beyond 2**63",
        "uint8",
    ],
    ids=str,
)
def test_integer_labels_in_r_order_from_key_ranges(client, labels):
    # integer group labels of any spread and integer dtype come out in R's
    # (numeric) order; labels that R, ordering them as floats, cannot tell
    # apart (beyond 2**53) take the general path, as in memory
    df = _data(seed=33, n_groups=30)
    number = df["g"].str[1:].astype(np.int64)
    spread = number.to_numpy().astype(np.uint64) * np.uint64(2**20)
    df["g"] = {
        "dense": number + 1,
        "negative": number - 15,
        "sparse": (number - 12) * 10**14 + 7,
        "beyond 2**53": number + 2**60,
        # the first and last int64 values, floats apart
        "int64 limits": np.where(
            number % 2 == 0, -(2**63) + number * 2**20, 2**63 - 1 - number * 2**20
        ),
        "int32": (number - 15).astype(np.int32),
        # below and above 2**63 (no int64 holds the latter)
        "uint64 beyond 2**63": np.where(
            number % 2 == 0, spread, np.uint64(2**64 - 1) - spread
        ),
        "uint8": number.astype(np.uint8),
    }[labels]
    _assert_fit_on_unequal_partitions_equals_pandas(df, ["x1", "x2", "g"])


def test_levels_of_many_short_labels_made_block_by_block():
    # more labels than a block of keys: the levels are as wide as the
    # longest label, in the last block, and a label that numpy's strings
    # cannot hold is found there too
    from skmixed import _dask_labels

    labels = [f"g{i}" for i in range(20_000)] + ["zzzzzzz"]
    keys = np.sort(_dask_labels.label_keys(pd.Series(labels, dtype="str")).keys)
    levels = _dask_labels._ascii_levels(keys)
    assert levels.dtype == np.dtype("<U7")
    assert levels.tolist() == _dask_labels.key_labels(keys, "bytes").to_pylist()
    nul = pd.Series(labels[:-1] + ["zz\x00"], dtype="str")
    assert (
        _dask_labels._ascii_levels(np.sort(_dask_labels.label_keys(nul).keys)) is None
    )


@pytest.mark.parametrize("z_columns", [[0, 1], [0, 3], [2], [0, 1, 3], [-1, 2]])
def test_level_sums_read_from_the_entry_major_table(z_columns):
    # a one-factor fit's sums arrive entry-major (one row per entry of a
    # level's sums): D1 and CX read from it equal the entries picked out
    from types import SimpleNamespace

    from skmixed import _dask_labels
    from skmixed.mixed.dask_fit import LabelledSums, _in_level_order, sums_layout

    m, xy_width = 50, 4
    layout = sums_layout(z_columns, xy_width)
    width = len(z_columns) * (xy_width + layout.extra_ones)
    table = np.random.default_rng(7).normal(size=(width, m))
    keys = _dask_labels.LabelKeys(np.arange(m, dtype=np.uint64), None, "int")
    merged = LabelledSums(keys, table.T, (m, np.eye(xy_width), 0.0), None, 0, m)
    coder = SimpleNamespace(levels=np.arange(m), distinct_codes=np.arange(m))
    sums = _in_level_order(merged, coder, layout)
    np.testing.assert_array_equal(sums.D1, table.T[:, layout.d1])
    np.testing.assert_array_equal(sums.CX, table.T[:, layout.cx])


def test_levels_of_short_labels_made_from_their_keys():
    # the levels of short labels come from their keys' bytes as numpy
    # strings (no Python string per level): the same strings as Arrow's;
    # labels that numpy's strings cannot hold (non-ASCII, a trailing NUL)
    # take Arrow's; rows are coded by the levels alike
    from skmixed import _dask_labels

    labels = ["b", "", "ab", "a\x00b", "zzzzzzz", "Z", "a b", "g123456"]
    keys = np.sort(_dask_labels.label_keys(pd.Series(labels, dtype="str")).keys)
    levels = _dask_labels._ascii_levels(keys)
    assert levels.tolist() == _dask_labels.key_labels(keys, "bytes").to_pylist()
    for other in (["é", "a"], ["a\x00", "a"]):
        other_keys = np.sort(
            _dask_labels.label_keys(pd.Series(other, dtype="str")).keys
        )
        assert _dask_labels._ascii_levels(other_keys) is None
    coder = _dask_labels.coder_of_labels(
        "g", "g", _dask_labels.LabelKeys(keys[::-1].copy(), None, "bytes"), "str"
    )
    assert coder.levels.tolist() == sorted(labels)
    rows = pd.DataFrame({"g": pd.Series(["ab", "new", "", "g123456"], dtype="str")})
    expected = [sorted(labels).index(x) if x in labels else -1 for x in rows["g"]]
    assert coder.row_codes(rows).tolist() == expected


@pytest.mark.parametrize("labels", ["short strings", "integers"])
def test_model_fitted_on_many_short_labels_predicts_and_pickles(client, labels):
    # levels held as numpy strings (of integers: their decimals): random
    # effects, predictions (an unseen level too) and a pickled copy as
    # those of the in-memory fit
    import pickle

    df = _data(seed=34, n=3000, n_groups=600)
    unseen = "unseen"
    if labels == "integers":  # ids with negatives, 1 to 4 digits
        df["g"] = df["g"].str[1:].astype(np.int64) * 13 - 300
        unseen = 7  # (13 k - 300 is never 7)
    cols = ["x1", "x2", "g"]
    mem = MixedLMRegressor("(x1 | g)").fit(df[cols], df["y"])
    ddf = _partitioned(df, _unequal(df))
    fitted = MixedLMRegressor("(x1 | g)").fit(ddf[cols], ddf["y"])
    _assert_same_mixed(fitted, mem)
    new = df[cols].iloc[:50].copy()
    new.loc[new.index[:5], "g"] = unseen
    copy = pickle.loads(pickle.dumps(fitted))
    for model in (fitted, copy):
        np.testing.assert_allclose(model.predict(new), mem.predict(new), rtol=RTOL)
    assert list(copy.random_effects_["g"].index) == list(mem.random_effects_["g"].index)


@pytest.mark.parametrize(
    "spec, offset", [("(x1 | g)", "o"), ("(1 | g) + (1 | h)", "log(e) + o")]
)
def test_offset_partition_by_partition_equals_pandas(client, spec, offset):
    """lme4's lmer offset: each partition fits y - offset from its own rows."""
    df = _data(seed=8)
    rng = np.random.default_rng(8)
    df["o"], df["e"] = rng.normal(3, 2, len(df)), rng.uniform(0.5, 10, len(df))
    df["y"] += df["o"]
    cols = ["x1", "x2", "g", "h", "o", "e"]
    ddf = _partitioned(df, _unequal(df))
    mem = MixedLMRegressor(spec, offset=offset).fit(df[cols], df["y"])
    model = MixedLMRegressor(spec, offset=offset).fit(ddf[cols], ddf["y"])
    _assert_same_mixed(model, mem)
    assert "o" not in model.fixed_effects_.index  # the offset is no feature
    assert list(model.feature_names_in_) == cols
    np.testing.assert_allclose(
        model.fittedvalues_.compute().to_numpy(), mem.fittedvalues_, rtol=RTOL
    )
    np.testing.assert_allclose(
        model.residuals_.compute().to_numpy(), mem.residuals_, rtol=1e-8, atol=1e-10
    )
    assert str(model.summary()) == str(mem.summary())
    np.testing.assert_allclose(
        model.predict(ddf[cols]).compute().to_numpy(), mem.predict(df[cols]), rtol=RTOL
    )
    # a missing offset is named, or its row dropped as R's na.omit drops it
    bad = df.copy()
    bad.loc[[5, 700], "o"] = np.nan
    dbad = _partitioned(bad, _unequal(bad))
    with pytest.raises(ValueError, match=r"offset column\) .*o': NaN in \d row"):
        MixedLMRegressor(spec, offset=offset).fit(dbad[cols], dbad["y"])
    fitted, mem = _fits_dropping(spec, bad, dbad, cols, 2, offset=offset)
    _assert_same_mixed(fitted, mem)


def test_dask_names_the_response_as_memory_does(client):
    # a NaN in a named response: the in-memory message, column named
    rng = np.random.default_rng(0)
    d = pd.DataFrame(
        {
            "x": rng.normal(size=120),
            "g": rng.integers(0, 8, 120).astype(str),
            "count": rng.poisson(2.0, 120).astype(float),
        }
    )
    d.loc[[5, 9], "count"] = np.nan
    ddf = dd.from_pandas(d, npartitions=3)
    for model in (MixedLMRegressor("(1 | g)"), PooledRegressor()):
        with pytest.raises(ValueError) as in_memory:
            model.fit(d[["x", "g"]], d["count"])
        with pytest.raises(ValueError) as from_dask:
            model.fit(ddf[["x", "g"]], ddf["count"])
        assert "column 'count'" in str(in_memory.value)
        assert str(from_dask.value) == str(in_memory.value)
