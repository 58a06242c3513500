"""Checks of a Dask partition's rows: its dtypes against the collection's
metadata, its complete rows, and the precision weights (counted per
partition, checked on the client), with the in-memory messages.
"""

import numbers

import numpy as np
import pandas as pd

from skmixed._dask import _DESIGN, _FEATURE, _GROUP, _W, _Y
from skmixed._inputs import _FIT_HINT


# -- a partition's rows: the dtypes of the metadata, complete rows ----------------
def _check_dtypes(part, meta, index):
    """A partition whose dtypes differ from the collection's is an error."""
    for column in meta.columns:
        if column not in part.columns or part[column].dtype == meta[column].dtype:
            continue
        if _unknown_categories(meta[column].dtype) and isinstance(
            part[column].dtype, pd.CategoricalDtype
        ):
            continue  # dd.read_parquet's categoricals: each partition's own
        if isinstance(part[column].dtype, pd.CategoricalDtype) and isinstance(
            meta[column].dtype, pd.CategoricalDtype
        ):
            raise _other_categories(column, part[column].dtype, meta, index)
        raise ValueError(
            f"Column {_shown(column)!r} has dtype {part[column].dtype} in partition "
            f"{index} but {meta[column].dtype} in the collection's metadata: "
            "every partition must have the same dtypes."
            + _cast_hint(column, part, meta)
        )


def _cast_hint(column, part, meta):
    """How to go on: cast the column (Parquet files written by different
    tools hold int32 here, int64 there), numbers to float64, which the fit
    reads them as."""
    if _shown(column) != column:  # y, weights, groups=: the user's own Series
        return ""
    ours, theirs = part[column].dtype, meta[column].dtype
    numbers = all(
        pd.api.types.is_numeric_dtype(d) and not pd.api.types.is_bool_dtype(d)
        for d in (ours, theirs)
    )
    target = "float64" if numbers else str(theirs)
    cast = f"X.astype({{{column!r}: {target!r}}})"
    return f" Cast it to one dtype before the fit: X = {cast}."


def _other_categories(column, dtype, meta, index):
    """The error for a partition whose categorical column has other
    categories than the metadata's ("dtype category ... but category" said
    nothing): which labels differ, and how to read such a column."""
    ours = {str(c) for c in dtype.categories}
    theirs = {str(c) for c in meta[column].dtype.categories}
    name = _shown(column)
    return ValueError(
        f"Column {name!r} has other categories in partition {index} than in "
        f"the collection's metadata (only in the partition: "
        f"{sorted(ours - theirs)[:5]}; only in the metadata: "
        f"{sorted(theirs - ours)[:5]}): every partition must have the same "
        "dtypes. For categories that differ by partition, declare them "
        f"unknown (X[{name!r}].cat.as_unknown(), as dd.read_parquet does) or "
        "give the labels as strings."
    )


def _shown(column):
    """The name a message gives a column of the assembled frame: the
    user's, not the label the assembly gave y, weights, groups= or the
    columns of an array X or of a formula's design."""
    if column == _Y:
        return "y"
    if column == _W:
        return "sample_weight"
    named = ((_GROUP, "groups= {}"), (_FEATURE, "x{}"), (_DESIGN, "formula column {}"))
    if not isinstance(column, str):
        return column
    for template, shown in named:
        head, tail = template.split("{}")
        if column.startswith(head) and column.endswith(tail):
            return shown.format(column[len(head) : len(column) - len(tail)])
    return column


def _unknown_categories(dtype):
    """A Dask categorical whose categories are not known (read_parquet's)."""
    from dask.dataframe.utils import UNKNOWN_CATEGORIES

    return (
        isinstance(dtype, pd.CategoricalDtype)
        and UNKNOWN_CATEGORIES in dtype.categories
    )


def _complete_rows(part, features, group_columns, drop):
    """Rows kept by missing='drop' (all True otherwise): R's na.omit."""
    keep = np.ones(len(part), dtype=bool)
    if not drop:
        return keep
    for column in group_columns:
        keep &= ~np.asarray(pd.isna(part[column]), dtype=bool)
    columns = list(features) + ([_Y] if _Y in part.columns else [])
    if columns:
        values = part[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        keep &= np.isfinite(values).all(axis=1)
    if _W in part.columns:  # a missing weight is a missing value; inf is an error
        keep &= ~np.isnan(part[_W].to_numpy(dtype=np.float64, na_value=np.nan))
    return keep


def refuse_no_rows(n_kept, drop, n_partitions):
    """Refuse a fit with no rows left, as in memory, before the levels or
    sums of nothing reach the model (which then said "math domain error",
    "list index out of range" or "grouping factors must have > 1 sampled
    level")."""
    if n_kept:
        return
    if drop:
        raise ValueError(
            "Every row has NaN or inf or a missing group label; nothing left to "
            "fit (missing='drop' dropped them all)."
        )
    raise ValueError(
        f"The Dask input has no rows: every partition ({n_partitions}) is "
        "empty; nothing left to fit."
    )


# -- precision weights, checked from counts summed over partitions --------------
def first_negative_weight(part):
    """(index label, value) of a partition's first negative weight, or None."""
    if _W not in part.columns:
        return None
    raw = part[_W].to_numpy(dtype=np.float64, na_value=np.nan)
    negative = np.flatnonzero(raw < 0)
    if not negative.size:
        return None
    # the row's index label: its position for a default (range) index
    return (part.index[negative[0]], float(raw[negative[0]]))


def label_order(first_negative):
    """Sort key of index labels (numbers by value, others as text)."""
    label = first_negative[0]
    if isinstance(label, numbers.Real):
        return (0, float(label), "")
    return (1, 0.0, str(label))


def weight_counts(w):
    if w is None:
        return {"nan": 0, "inf": 0, "negative": 0, "zero": 0, "positive": 0}
    return {
        "nan": int(np.isnan(w).sum()),
        "inf": int(np.isinf(w).sum()),
        "negative": int((w < 0).sum()),
        "zero": int((w == 0).sum()),
        "positive": int((w > 0).sum()),
    }


def check_weights(counts, first_negative):
    """The in-memory fit's checks of sample_weight, from the summed counts."""
    if counts["nan"]:
        raise ValueError(
            f"sample_weight contains NaN in {counts['nan']} row(s). {_FIT_HINT}"
        )
    if counts["inf"]:
        raise ValueError(
            f"sample_weight contains inf in {counts['inf']} row(s); weights must "
            "be finite."
        )
    if first_negative is not None:
        row, value = first_negative
        raise ValueError(
            f"sample_weight has {counts['negative']} negative weight(s) (first at "
            f"row {row}: {value!r}); precision weights must be >= 0, as R's lm "
            "requires."
        )
    if counts["zero"] and not counts["positive"]:
        raise ValueError(
            "sample_weight is zero (or missing) for every row: no row carries "
            "information, nothing to fit."
        )
