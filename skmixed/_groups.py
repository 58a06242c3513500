"""Grouping factors: how their labels are coded.

Where a grouping factor comes from (a column of X or ``groups=``) is decided
in :mod:`skmixed._inputs`. Here its labels become strings, as R's factor
levels are, with levels ordered as R orders them: numerically when every
label is a number, otherwise byte-wise.
"""

import inspect
import threading
from functools import lru_cache

import numpy as np
import pandas as pd

# Up to this many levels, labels are placed in the level order through a dict
# and the categorical's dtype is kept for the next fit with the same levels
# (building the dtype's index costs more than a whole small fit's input
# check; bootstraps, grid searches and per-gene loops refit the same levels).
_SMALL_LEVELS = 10_000
# integers below this are exact as floats, so their order by value is R's
_EXACT_FLOAT_INT = 2**53
# A pyarrow string column longer than this is coded by Arrow's dictionary
# encoding (no Python string per row: 4x faster than pandas.factorize at 100k
# rows); a shorter one by a dict over its strings, since in a loop of small
# fits Arrow's calls cost more than they save (sleepstudy: ~50 us a fit, CPU
# time, measured within the loop). Numpy and object string columns up to this
# length are coded by the same dict (pandas.factorize past it).
_ARROW_MIN_ROWS = 2_000


class GroupsMissingWarning(UserWarning):
    """The model needs grouping factors but none reached it.

    scikit-learn drops the ``groups=`` argument on several paths (without
    metadata routing: ``cross_val_score`` gives it only to the splitter,
    ``Pipeline.score`` and string scorers drop it). The estimator then fits
    a linear model of the features without group effects (at ``fit``, when X
    is a numpy array or the model's factor is the ``groups=`` argument
    itself; a named factor missing from a pandas X is an error) or predicts
    at population level (at ``predict`` / ``score``) and says so with this
    warning. Keep the grouping columns in a pandas ``X``, or enable metadata
    routing, to avoid it.
    """


def _is_number(label):
    try:
        float(label)
    except ValueError:
        return False
    return True


def _r_level_order(labels):
    """Sort unique string labels as R orders factor levels here.

    Python orders strings by code point, which is the byte order of their
    UTF-8 encoding: R's C-locale order.
    """
    unique = sorted(set(labels))
    if all(_is_number(label) for label in unique):
        return sorted(unique, key=float)
    return unique


def _float_label(value):
    """A float as R's factor() labels it: as.character's 15 significant
    digits, in fixed or scientific notation, whichever R prints narrower
    (1 -> "1", 0.1 * 3 -> "0.3", 1/3 -> "0.333333333333333",
    100000 -> "1e+05", 123456 -> "123456", 0.0001 -> "1e-04").

    Each value on its own, whatever the other values: a label that depended
    on them would not match the fit's levels when predicting on other rows.
    """
    if value == 0:
        return "0"  # R prints -0 as 0
    # 15 significant digits, trailing zeros dropped: R's significant digits
    mantissa, exponent = f"{abs(value):.14e}".split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    power = int(exponent)
    sign = "-" if value < 0 else ""
    decimals = max(0, len(digits) - 1 - power)
    fixed_width = max(power, 0) + 1 + (decimals + 1 if decimals else 0)
    mantissa_width = len(digits) + (1 if len(digits) > 1 else 0)
    scientific_width = mantissa_width + (4 if abs(power) < 100 else 5)
    # R (scipen = 0) prints fixed unless it is wider than scientific
    if fixed_width <= scientific_width:
        return f"{sign}{abs(value):.{decimals}f}"
    return f"{sign}{abs(value):.{len(digits) - 1}e}"


def _label_strings(values):
    """String labels for a 1-D array of non-missing group values."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return np.array([_float_label(v) for v in values.tolist()], dtype=object)
    if values.dtype.kind == "b":
        return np.where(values, "TRUE", "FALSE").astype(object)
    return np.array([_object_label(v) for v in values.tolist()], dtype=object)


def _object_label(value):
    """The label of one value of an object column: booleans (pandas'
    nullable boolean) and floats named as in numpy columns."""
    if type(value) is bool:
        return "TRUE" if value else "FALSE"
    if type(value) is float:
        return _float_label(value)
    return str(value)


def _merged(codes, labels):
    """Codes and labels with equal labels made one level: distinct floats
    that R's 15 digits spell alike (0.1 * 3 and 0.3) are one group in R."""
    if len(set(labels)) == len(labels):
        return codes, labels
    distinct, inverse = np.unique(labels.astype(str), return_inverse=True)
    codes = np.where(codes >= 0, inverse[np.maximum(codes, 0)], codes)
    return codes, distinct.astype(object)


def as_factor(values, name):
    """Code a 1-D column of group labels as a categorical with string levels.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Group labels: strings, integers, integral floats, booleans or a pandas
        categorical (whose category order is kept; unused categories are
        dropped).
    name : str
        The grouping factor's name, used in error messages.

    Returns
    -------
    pandas.Categorical
        String categories in R's level order.

    Notes
    -----
    Rows are coded once (``pandas.factorize``, a dict over short string
    columns, Arrow's dictionary encoding of long ones, or the codes of a
    categorical) and only the distinct labels are turned into strings and
    sorted, so a million rows with thousands of groups cost a few tens of
    milliseconds. Object columns mixing types (``1`` and ``"1"``, which hash
    alike) take the row-by-row path so that each keeps its own label.
    """
    if isinstance(values, np.ndarray) and values.ndim == 1:
        # a numpy column is coded as it is: a pandas Series of it would
        # first infer (and for strings, build) an Arrow string array
        factor = _numpy_factor(values, name)
        if factor is not None:
            return factor
    if not isinstance(values, pd.Series) and isinstance(
        getattr(values, "dtype", None), pd.StringDtype
    ):
        # a string column's array (skmixed._inputs.frame_column): coded as
        # a Series of it would be, without building that Series
        coded = _string_codes(values)
        if coded is not None:
            return _string_factor(*coded)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if series.ndim != 1:
        raise ValueError(f"Grouping factor {name!r} must be one-dimensional.")
    if isinstance(series.dtype, pd.CategoricalDtype):
        return _categorical_factor(series, name)
    if isinstance(series.dtype, np.dtype):
        # numpy-backed (numbers, or strings as objects): as a numpy column
        factor = _numpy_factor(series.to_numpy(), name)
        if factor is not None:
            return factor
    else:
        coded = _string_codes(series)
        if coded is not None:
            return _string_factor(*coded)
    raw = series.to_numpy()
    if raw.dtype.kind == "O" and not isinstance(series.dtype, pd.StringDtype):
        kind = pd.api.types.infer_dtype(raw, skipna=True)
        if kind not in ("string", "integer", "floating", "boolean", "empty"):
            return _as_factor_by_row(series, name)
    return _factorized(raw, name)


def _numpy_factor(values, name):
    """The factor of a 1-D numpy column of numbers or short strings; None
    for other columns (the general path: long or mixed object columns,
    dates)."""
    kind = values.dtype.kind
    if kind in "biuf":
        return _factorized(values, name)
    if kind in "OU" and len(values) <= _ARROW_MIN_ROWS:
        coded = _dict_codes(values.tolist())
        if coded is not None:
            return _string_factor(*coded)
    return None


def _factorized(raw, name):
    """The factor of a numpy column by ``pandas.factorize``."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    _check_no_missing(codes < 0, name)
    uniques = np.asarray(uniques)
    if _many_exact_integers(uniques):
        return _integer_factor(codes, uniques)
    if uniques.dtype.kind == "f" and not np.all(np.isfinite(uniques)):
        raise ValueError(f"Grouping factor {name!r} contains inf values.")
    return _string_factor(*_merged(codes, _label_strings(uniques)))


def _many_exact_integers(uniques):
    """Integers beyond the small-level cache, each exact as a float."""
    return (
        uniques.dtype.kind in "iu"
        and len(uniques) > _SMALL_LEVELS
        and int(np.abs(uniques).max()) < _EXACT_FLOAT_INT
    )


def _integer_factor(codes, uniques):
    """The factor of distinct integers: R's labels are their decimal strings,
    all numbers, so ordered by value (``_r_level_order``), which numpy sorts
    without a label per Python object (a million ids: 5 s -> 0.3 s)."""
    order = np.argsort(uniques, kind="stable")
    position = np.empty(len(order), dtype=np.intp)
    position[order] = np.arange(len(order))
    levels = uniques[order].astype(str).astype(object)
    return pd.Categorical.from_codes(position[codes], categories=levels)


def _string_factor(codes, labels, order=None):
    """The factor of codes into distinct string labels (in any order);
    ``order``: the permutation that puts them in code-point order, when
    known (see :func:`_level_order`)."""
    if len(labels) <= _SMALL_LEVELS:
        position, dtype = _small_coding(tuple(labels))
        return _from_codes(position[codes], dtype)
    order = _level_order(labels, order)
    position = np.empty(len(order), dtype=np.intp)
    position[order] = np.arange(len(order))
    levels = np.asarray(labels, dtype=object)[order]
    return pd.Categorical.from_codes(position[codes], categories=levels)


def _level_order(labels, order=None):
    """The permutation that puts distinct string labels in R's level order
    (:func:`_r_level_order`); ``order``: the one that puts them in
    code-point order, when known.

    Arrow sorts by the labels' UTF-8 bytes, which is code-point order, in
    C: for a million labels 0.7 s less than Python's ``sorted`` followed by
    a pandas index lookup of every label.
    """
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        rank = {label: i for i, label in enumerate(labels)}
        return np.array([rank[level] for level in _r_level_order(labels)])
    if order is None:
        order = pc.sort_indices(pa.array(labels, type=pa.string())).to_numpy()
    if all(_is_number(labels[i]) for i in order):
        # numbers: by value, ties (``"1"``, ``"1.0"``) in code-point order
        values = np.array([float(labels[i]) for i in order])
        order = order[np.argsort(values, kind="stable")]
    return order


# pandas >= 2.1 can skip checking codes that are valid by construction
_FROM_CODES_VALIDATES = (
    "validate" in inspect.signature(pd.Categorical.from_codes).parameters
)


def _from_codes(codes, dtype):
    """``pd.Categorical.from_codes`` for codes known to be valid for dtype."""
    if _FROM_CODES_VALIDATES:
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    return pd.Categorical.from_codes(codes, dtype=dtype)


@lru_cache(maxsize=16)
def _small_coding(labels):
    """Distinct labels (in order of appearance) -> each one's index in R's
    level order, and the categorical dtype of those levels (cached)."""
    levels = _r_level_order(labels)
    rank = {level: i for i, level in enumerate(levels)}
    position = np.array([rank[label] for label in labels], dtype=np.intp)
    position.setflags(write=False)
    return position, _levels_dtype(tuple(levels))


@lru_cache(maxsize=16)
def _levels_dtype(levels):
    """The categorical dtype of a tuple of string levels (cached)."""
    return pd.CategoricalDtype(list(levels))


def _categorical(codes, levels):
    """``pd.Categorical.from_codes(codes, categories=levels)``, the dtype cached
    for a small number of levels."""
    if len(levels) <= _SMALL_LEVELS:
        return _from_codes(codes, _levels_dtype(tuple(levels)))
    return pd.Categorical.from_codes(codes, categories=levels)


def _string_codes(values):
    """(codes, distinct labels[, their code-point order]) of a pandas string
    column (a Series or its array) by the way that suits its length; None
    where the general path must decide."""
    if len(values) > _ARROW_MIN_ROWS:
        return _packed_string_codes(values) or _arrow_string_codes(values)
    return _short_string_codes(values)


def _packed_string_codes(values):
    """(codes, distinct labels, their code-point order) of a pyarrow-backed
    string column whose labels are all of at most 7 bytes, from each
    label's 64-bit key (``skmixed._dask_labels.label_keys``: its bytes and
    length, ordered as the labels' bytes); None for other columns.

    Hashing integers costs less than hashing strings, and the keys' order
    is the labels' code-point order without a sort of strings: 10M rows of
    1M labels such as ``"g123456"`` were coded in ~1.05 s by Arrow's
    dictionary encoding of the strings and ordered in ~0.35 s, ~0.7 s and
    ~0.03 s so.
    """
    import pyarrow as pa

    from skmixed import _dask_labels

    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    arrow = _dask_labels._arrow_strings(series)
    if arrow is None:
        return None
    # chunk by chunk (one array of all the keys would be made from copies)
    keys = []
    for chunk in arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]:
        packed, present = _dask_labels._packed_bytes(chunk) or (None, None)
        if packed is None or present is not None:
            return None  # long labels; missing ones (the general path says so)
        keys.append(pa.array(packed.view(np.int64)))
    # Arrow codes a chunked array by one hash table: every chunk's codes
    # index the last chunk's dictionary, in order of first appearance
    encoded = pa.chunked_array(keys, pa.int64()).dictionary_encode()
    codes = np.concatenate([c.indices.to_numpy() for c in encoded.chunks])
    distinct = encoded.chunks[-1].dictionary.to_numpy().view(np.uint64)
    labels = _dask_labels.key_labels(distinct, "bytes").to_pylist()
    return codes, labels, np.argsort(distinct)


def _arrow_string_codes(series):
    """(codes, distinct labels) of a pyarrow-backed string column, by Arrow's
    dictionary encoding (no Python string per row); None for other columns
    and for one with missing labels (the general path reports them)."""
    dtype = series.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    import pyarrow as pa

    array = pa.array(_values_of(series))
    if array.null_count:
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    encoded = array.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    return codes, encoded.dictionary.to_pylist()


def _short_string_codes(series):
    """(codes, distinct labels) of a short pandas string column, by a dict
    over its Python strings; None for other columns and for one with missing
    labels (the general path reports them).

    In a loop of small fits this costs ~40% less than ``pandas.factorize``
    (no object array nor hash table of pandas'), and reading a pyarrow
    column's strings through Arrow (``to_pylist``) half what ``tolist``
    costs.
    """
    dtype = series.dtype
    if not isinstance(dtype, pd.StringDtype):
        return None
    if dtype.storage == "pyarrow":
        import pyarrow as pa

        return _dict_codes(pa.array(_values_of(series)).to_pylist())
    return _dict_codes(series.tolist())


def _values_of(column):
    """A Series' array, or the array itself."""
    return column.array if isinstance(column, pd.Series) else column


def _dict_codes(labels):
    """(codes, distinct labels in order of appearance) of a list of labels
    by a dict; None unless every label is a string (``True``, ``1`` and
    ``1.0`` are one dict key, and missing labels are the general path's)."""
    index = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    if not all(type(label) is str for label in index):
        return None
    codes = np.fromiter(map(index.__getitem__, labels), np.intp, len(labels))
    return codes, list(index)


def missing_groups_error(name, count):
    """The error for ``count`` rows without a label of grouping factor
    ``name`` (in memory as from Dask)."""
    return ValueError(
        f"Grouping factor {name!r} contains missing values "
        f"(NaN/None) in {count} row(s); drop or fill them, or "
        "fit with missing='drop' to drop those rows as R's na.omit does."
    )


def _check_no_missing(missing, name):
    if missing.any():
        raise missing_groups_error(name, int(missing.sum()))


def _categorical_factor(series, name):
    """A categorical column's factor: its category order kept, unused
    categories dropped (labels that clash as strings: row by row)."""
    # a copy of the Categorical's own codes (the .cat accessor would build a
    # Series of them); the factor must not share the caller's memory
    codes = np.array(series.array.codes)
    _check_no_missing(codes < 0, name)
    labels, full_dtype = _category_labels(series.dtype)
    used = np.bincount(codes, minlength=len(labels)) > 0
    if full_dtype is not None and used.all():
        return _from_codes(codes, full_dtype)
    levels = list(labels[used])
    if full_dtype is None and len(set(levels)) != len(levels):
        return _as_factor_by_row(series, name)
    renumber = np.cumsum(used) - 1
    return _categorical(renumber[codes], levels)


#: id(CategoricalDtype) -> (the dtype, its categories' labels, the dtype of
#: those labels as levels or None when two labels clash); see _category_labels
_CATEGORY_LABELS = {}
_CACHE_LOCK = threading.Lock()  # fits may run in threads


def _remember(cache, key, entry, size=16):
    """``cache[key] = entry``, the oldest entries dropped past ``size``."""
    with _CACHE_LOCK:
        while len(cache) >= size:
            cache.pop(next(iter(cache)))
        cache[key] = entry


def _category_labels(dtype):
    """The string labels of a categorical dtype's categories, and their
    categorical dtype when they are distinct (else None).

    Cached for the last few dtype objects with up to ``_SMALL_LEVELS``
    categories: a loop of fits on one categorical column sees the same dtype
    every time, and turning its categories into strings is most of what
    coding the column costs. Keyed by identity (the entry keeps the dtype
    alive, so its id is not reused): unordered dtypes whose categories come
    in different orders compare equal, but their levels do not.
    """
    entry = _CATEGORY_LABELS.get(id(dtype))
    if entry is not None and entry[0] is dtype:
        return entry[1], entry[2]
    labels = _label_strings(np.asarray(dtype.categories))
    small = len(labels) <= _SMALL_LEVELS
    levels_dtype = None
    if small and len(set(labels)) == len(labels):
        levels_dtype = _levels_dtype(tuple(labels))
    if small:
        _remember(_CATEGORY_LABELS, id(dtype), (dtype, labels, levels_dtype))
    return labels, levels_dtype


#: id(pandas.Index) -> (the Index, its labels as a read-only object array);
#: see index_labels
_INDEX_LABELS = {}


def index_labels(index):
    """A pandas Index's labels as a read-only object array.

    Index objects are immutable, so the array is kept for the last few
    Index objects with up to ``_SMALL_LEVELS`` labels: a loop of fits on one
    frame reads the same column Index and the same (cached) levels every
    time, and converting an Arrow-backed Index costs more than the rest of
    coding a small factor. Keyed by identity (the entry keeps the Index
    alive, so its id is not reused).
    """
    entry = _INDEX_LABELS.get(id(index))
    if entry is not None and entry[0] is index:
        return entry[1]
    labels = np.array(index, dtype=object)  # a copy, never the Index's own
    if len(labels) > _SMALL_LEVELS:
        return labels
    labels.setflags(write=False)
    _remember(_INDEX_LABELS, id(index), (index, labels))
    return labels


def _as_factor_by_row(series, name):
    """Row-by-row labels: the reference behaviour, for unusual columns."""
    missing = series.isna().to_numpy()
    _check_no_missing(missing, name)
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.remove_unused_categories().cat.categories
        labels = _label_strings(np.asarray(series.astype(object)))
        levels = list(dict.fromkeys(_label_strings(np.asarray(categories))))
    else:
        raw = series.to_numpy()
        if raw.dtype.kind == "f" and not np.all(np.isfinite(raw)):
            raise ValueError(f"Grouping factor {name!r} contains inf values.")
        labels = _label_strings(raw)
        levels = _r_level_order(labels)
    return pd.Categorical(labels, categories=levels)


def level_positions(labels, levels):
    """Each label's position in ``levels`` (-1 for a label not among them).

    Parameters
    ----------
    labels, levels : sequence of str
        Distinct string labels (a factor's categories at predict; the levels
        seen at fit).

    Returns
    -------
    ndarray of int of shape (len(labels),)
    """
    labels = np.asarray(labels, dtype=object)
    levels = np.asarray(levels, dtype=object)
    if len(labels) <= _SMALL_LEVELS and len(levels) <= _SMALL_LEVELS:
        # a dict: pandas' Index builds a hash table (and, for strings, may
        # infer an Arrow array) at ~20x the cost for a few levels
        position = {level: i for i, level in enumerate(levels.tolist())}
        return np.array([position.get(c, -1) for c in labels.tolist()], dtype=np.intp)
    return pd.Index(levels, dtype=object).get_indexer(pd.Index(labels, dtype=object))


def interaction(factors, name):
    """The interaction factor ``a:b``: labels joined by ``:``, unused combos dropped."""
    labels = factors[0].astype(str).to_numpy(dtype=object)
    for factor in factors[1:]:
        labels = labels + ":" + factor.astype(str).to_numpy(dtype=object)
    return as_factor(labels, name)


def _renamed_column_hint(X, name):
    """If a transformer renamed the grouping column, say how to keep its name."""
    if not isinstance(X, pd.DataFrame):
        return ""
    renamed = [c for c in map(str, X.columns) if c.endswith(f"__{name}")]
    if not renamed:
        return ""
    return (
        f" X has {renamed[0]!r}: a ColumnTransformer renamed it. Use "
        "ColumnTransformer(..., remainder='passthrough', "
        "verbose_feature_names_out=False) and set_output(transform='pandas') "
        "so the column keeps its name."
    )
