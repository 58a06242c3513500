"""Grouping factors: how their labels are coded.

Where a grouping factor comes from (a column of X or ``groups=``) is decided
in :mod:`skmixed._inputs`. Here its labels become strings, as R's factor
levels are, with levels ordered as R orders them: numerically when every
label is a number, otherwise byte-wise.
"""

from functools import lru_cache

import numpy as np
import pandas as pd

# Up to this many levels, labels are placed in the level order through a dict
# and the categorical's dtype is kept for the next fit with the same levels
# (building the dtype's index costs more than a whole small fit's input
# check; bootstraps, grid searches and per-gene loops refit the same levels).
_SMALL_LEVELS = 10_000
# A pyarrow string column longer than this is coded by Arrow's dictionary
# encoding (no Python string per row: 4x faster than pandas.factorize at 100k
# rows); a shorter one by a dict over its strings, since in a loop of small
# fits Arrow's calls cost more than they save (sleepstudy: ~50 us a fit, CPU
# time, measured within the loop).
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


def _label_strings(values):
    """String labels for a 1-D array of non-missing group values."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        integral = np.all(values == np.round(values))
        if integral:
            return np.array([str(int(v)) for v in values], dtype=object)
        return np.array([repr(float(v)) for v in values], dtype=object)
    if values.dtype.kind == "b":
        return np.where(values, "TRUE", "FALSE").astype(object)
    return np.array([str(v) for v in values.tolist()], dtype=object)


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
    Rows are coded once (``pandas.factorize``, or the codes of a categorical)
    and only the distinct labels are turned into strings and sorted, so a
    million rows with thousands of groups cost a few tens of milliseconds.
    Object columns mixing types (``1`` and ``"1"``, which hash alike) take
    the row-by-row path so that each keeps its own label.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if series.ndim != 1:
        raise ValueError(f"Grouping factor {name!r} must be one-dimensional.")
    if isinstance(series.dtype, pd.CategoricalDtype):
        # the Categorical's own codes and the dtype's categories: the .cat
        # accessor builds a Series of the codes (~16 µs, a small fit's
        # largest input cost)
        codes = np.asarray(series.array.codes)
        _check_no_missing(codes < 0, name)
        factor = _from_categorical(codes, series.dtype.categories)
        if factor is not None:
            return factor
        return _as_factor_by_row(series, name)
    if len(series) > _ARROW_MIN_ROWS:
        coded = _arrow_string_codes(series)
    else:
        coded = _short_string_codes(series)
    if coded is not None:
        codes, uniques = coded
    else:
        raw = series.to_numpy()
        if raw.dtype.kind == "O" and not isinstance(series.dtype, pd.StringDtype):
            kind = pd.api.types.infer_dtype(raw, skipna=True)
            if kind not in ("string", "integer", "floating", "boolean", "empty"):
                return _as_factor_by_row(series, name)
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        _check_no_missing(codes < 0, name)
    uniques = np.asarray(uniques)
    if uniques.dtype.kind == "f" and not np.all(np.isfinite(uniques)):
        raise ValueError(f"Grouping factor {name!r} contains inf values.")
    labels = _label_strings(uniques)
    if len(labels) <= _SMALL_LEVELS:
        position, dtype = _small_coding(tuple(labels))
        return pd.Categorical.from_codes(position[codes], dtype=dtype)
    levels = _r_level_order(labels)
    position = pd.Index(levels, dtype=object).get_indexer(
        pd.Index(labels, dtype=object)
    )
    return pd.Categorical.from_codes(position[codes], categories=levels)


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
        return pd.Categorical.from_codes(codes, dtype=_levels_dtype(tuple(levels)))
    return pd.Categorical.from_codes(codes, categories=levels)


def _arrow_string_codes(series):
    """(codes, distinct labels) of a pyarrow-backed string column, by Arrow's
    dictionary encoding (no Python string per row); None for other columns
    and for one with missing labels (the general path reports them)."""
    dtype = series.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    import pyarrow as pa

    array = pa.array(series.array)
    if array.null_count:
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    encoded = array.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    return codes, np.array(encoded.dictionary.to_pylist(), dtype=object)


def _short_string_codes(series):
    """(codes, distinct labels) of a short pandas string column, by a dict
    over its Python strings; None for other columns and for one with missing
    labels (the general path reports them).

    In a loop of small fits this costs ~40% less than ``pandas.factorize``
    (one ``tolist``, no object array nor hash table of pandas').
    """
    if not isinstance(series.dtype, pd.StringDtype):
        return None
    index = {}
    codes = [index.setdefault(label, len(index)) for label in series.tolist()]
    if not all(type(label) is str for label in index):
        return None
    return np.array(codes, dtype=np.intp), np.array(list(index), dtype=object)


def _check_no_missing(missing, name):
    if missing.any():
        raise ValueError(
            f"Grouping factor {name!r} contains missing values "
            f"(NaN/None) in {int(missing.sum())} row(s); drop or fill them, or "
            "fit with missing='drop' to drop those rows as R's na.omit does."
        )


def _from_categorical(codes, categories):
    """Keep a categorical's order, drop unused categories; None if labels clash."""
    used = np.bincount(codes, minlength=len(categories)) > 0
    levels = list(_label_strings(np.asarray(categories)[used]))
    if len(set(levels)) != len(levels):
        return None
    renumber = np.cumsum(used) - 1
    return _categorical(renumber[codes], levels)


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
