"""as_factor's vectorised path gives what the row-by-row path gives."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from skmixed._groups import _as_factor_by_row, as_factor

CASES = [
    ["b", "a", "B", "a"],
    ["10", "9", "100", "9"],
    np.array([3, 1, 2, 3]),
    np.array([2.0, 1.0, 2.0]),
    np.array([0.5, 1.25, 0.5]),
    np.array([True, False, True]),
    pd.Series(["x", "y", "x"], dtype="str"),
    pd.Series(["10", "9", "x", "9"], dtype=pd.StringDtype("pyarrow")),
    pd.Series(["10", "9", "x", "9"], dtype=pd.StringDtype("python")),
    pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["b", "a"], ["a", "c"]]))),
    pd.Series([1, "a", 1, "b"], dtype=object),
    pd.Series([1, 1.0, True], dtype=object),
    pd.Categorical(["z", "y", "z"], categories=["z", "y", "unused"]),
    pd.Categorical([2, 1, 2], categories=[2, 1]),
]


@pytest.mark.parametrize("values", CASES, ids=range(len(CASES)))
def test_fast_path_equals_row_path(values):
    series = pd.Series(values)
    fast, slow = as_factor(series, "g"), _as_factor_by_row(series, "g")
    assert list(fast.categories) == list(slow.categories)
    assert list(fast.astype(str)) == list(slow.astype(str))


def test_missing_and_inf_labels_are_reported():
    with pytest.raises(ValueError, match=r"missing values \(NaN/None\) in 2 row"):
        as_factor(pd.Series(["a", None, np.nan, "b"]), "g")
    with pytest.raises(ValueError, match="inf values"):
        as_factor(np.array([1.0, np.inf]), "g")
    with pytest.raises(ValueError, match=r"in 1 row"):
        as_factor(pd.Categorical(["a", None, "b"]), "g")


def test_many_rows_keep_r_level_order():
    rng = np.random.default_rng(0)
    labels = np.char.add("g", rng.integers(0, 500, 20_000).astype(str))
    factor = as_factor(labels, "g")
    assert list(factor.categories) == sorted(set(labels.tolist()))
    assert list(factor.astype(str)) == labels.tolist()


def test_long_arrow_columns_take_arrows_coding_and_agree():
    # Arrow's dictionary encoding codes pyarrow string columns longer than
    # _ARROW_MIN_ROWS (shorter ones go through pandas.factorize)
    from skmixed import _groups

    rng = np.random.default_rng(1)
    n = _groups._ARROW_MIN_ROWS + 500
    labels = np.char.add("s", rng.integers(0, 300, n).astype(str)).tolist()
    chunked = pa.chunked_array([labels[:1000], labels[1000:]])
    series = pd.Series(pd.arrays.ArrowStringArray(chunked))
    assert _groups._arrow_string_codes(series) is not None
    fast, slow = as_factor(series, "g"), _as_factor_by_row(series, "g")
    assert list(fast.categories) == list(slow.categories)
    assert list(fast.astype(str)) == list(slow.astype(str))
    # a shorter one by a dict over its strings (missing labels: the general
    # path, which reports them)
    short = series.iloc[: _groups._ARROW_MIN_ROWS]
    assert _groups._short_string_codes(short) is not None
    assert list(as_factor(short, "g").astype(str)) == labels[: len(short)]
    assert _groups._short_string_codes(pd.Series(["a", None], dtype="str")) is None


def _packed_case(numbers):
    """A pyarrow string column of 30,000 rows and over 10,000 labels of at
    most 7 bytes: numbers only, or strings that try the byte order."""
    rng = np.random.default_rng(2)
    if numbers:
        pool = [str(v) for v in range(-20, 12_000)] + ["1.5", "1e3", "007"]
    else:
        ends = [str(v) for v in range(12_000)]
        pool = [f"\u00e9{e}" for e in ends] + [f"x{e}" for e in ends[:100]]
        pool += ["", "x", "X", "a", "a\x00", "a\x00b", "\x7f", "\u00ff", "zzzzzzz"]
    labels = [pool[i] for i in rng.integers(0, len(pool), 30_000)]
    labels += pool  # every label present
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([labels])))


@pytest.mark.parametrize("numbers", [False, True], ids=["strings", "numbers"])
def test_short_arrow_labels_coded_by_their_keys_agree_with_the_row_path(numbers):
    # labels of at most 7 bytes are coded by 64-bit keys whose order must
    # be R's: code-point order, numbers by value (ties in code-point order)
    from skmixed import _groups

    series = _packed_case(numbers)
    assert _groups._packed_string_codes(series) is not None
    fast, slow = as_factor(series, "g"), _as_factor_by_row(series, "g")
    assert len(fast.categories) > _groups._SMALL_LEVELS
    assert list(fast.categories) == list(slow.categories)
    assert np.array_equal(fast.codes, slow.codes)


def test_arrow_labels_longer_than_a_key_take_arrows_coding():
    from skmixed import _groups

    labels = ["abcdefgh", "abc"] * (_groups._ARROW_MIN_ROWS + 1)
    series = pd.Series(labels, dtype=pd.StringDtype("pyarrow"))
    assert _groups._packed_string_codes(series) is None
    assert list(as_factor(series, "g").categories) == ["abc", "abcdefgh"]


ARRAYS = [
    np.array(["b", "a", "B", "a"], dtype=object),
    np.array(["10", "9", "100", "9"]),  # numpy's own string dtype
    np.array([3, 1, 2, 3]),
    np.array([2.0, 1.0, 2.0]),
    np.array([True, False, True]),
    np.array([1, "1", 2], dtype=object),  # 1 and "1" stay two labels
    np.array([1, 1.0, True], dtype=object),
]


@pytest.mark.parametrize("values", ARRAYS, ids=range(len(ARRAYS)))
def test_numpy_columns_are_coded_as_their_series_are(values):
    # a numpy column is coded without a pandas Series around it
    direct, slow = as_factor(values, "g"), _as_factor_by_row(pd.Series(values), "g")
    assert list(direct.categories) == list(slow.categories)
    assert list(direct.astype(str)) == list(slow.astype(str))


def test_numpy_columns_with_missing_labels_are_reported():
    with pytest.raises(ValueError, match=r"missing values \(NaN/None\) in 2 row"):
        as_factor(np.array(["a", None, np.nan, "b"], dtype=object), "g")
    with pytest.raises(ValueError, match=r"missing values \(NaN/None\) in 1 row"):
        as_factor(np.array([1.0, np.nan, 2.0]), "g")
    labels = pd.Series(["a", None, np.nan, "b"], dtype=object)  # object Series
    with pytest.raises(ValueError, match=r"missing values \(NaN/None\) in 2 row"):
        as_factor(labels, "g")
    strings = as_factor(pd.Series(["b", "a", "b"], dtype=object), "g")
    assert list(strings.categories) == ["a", "b"]
    assert list(strings.astype(str)) == ["b", "a", "b"]


def test_categorical_labels_follow_each_columns_own_category_order():
    # unordered dtypes with the same categories compare equal; each column
    # still keeps its own category order (labels are cached per dtype object)
    first = pd.Series(pd.Categorical(["a", "b", "c"], categories=["c", "b", "a"]))
    second = pd.Series(pd.Categorical(["a", "b", "c"], categories=["a", "b", "c"]))
    assert first.dtype == second.dtype
    assert list(as_factor(first, "g").categories) == ["c", "b", "a"]
    assert list(as_factor(second, "g").categories) == ["a", "b", "c"]
    assert list(as_factor(first, "g").categories) == ["c", "b", "a"]


def test_categorical_unused_categories_are_dropped_on_every_call():
    series = pd.Series(pd.Categorical(["y", "z", "y"], categories=["z", "x", "y"]))
    for _ in range(2):
        factor = as_factor(series, "g")
        assert list(factor.categories) == ["z", "y"]
        assert list(factor.astype(str)) == ["y", "z", "y"]
    whole = series.iloc[:2]  # the same dtype, now without "y" twice
    assert list(as_factor(whole, "g").astype(str)) == ["y", "z"]


def test_categorical_factor_does_not_share_the_callers_codes():
    column = pd.Categorical(["a", "b", "a"])
    factor = as_factor(pd.Series(column), "g")
    assert not np.shares_memory(np.asarray(factor.codes), np.asarray(column.codes))


def test_categorical_labels_stay_right_across_threads_and_many_dtypes():
    from concurrent.futures import ThreadPoolExecutor

    # more dtypes than the label cache keeps, coded from several threads
    columns = [
        pd.Series(pd.Categorical(["b", "a"], categories=[f"c{i}", "b", "a"]))
        for i in range(40)
    ]

    def levels(column):
        return list(as_factor(column, "g").categories)

    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(levels, columns * 5))
    assert found == [["b", "a"]] * 200
