"""Where every column of the input goes, decided in one place.

:func:`prepare_inputs` is the whole input path of the three estimators. It
reads X, y and ``groups`` once, in this order, and returns a
:class:`ModelInputs` bundle:

1. the response y (a 1-D float array of the right length);
2. the grouping factors the model names: each from a column of a pandas X,
   else from ``groups=`` (a DataFrame column or a Series of that name; an
   unnamed 1-D array serves a model with one factor). A grouping column is
   never a feature, whatever its dtype;
3. the fixed-effect features, as ``fixed_effects`` chooses them: every
   other column (None; non-numeric ones are ignored, with one warning), the
   listed columns, or an R formula's right-hand side (through
   :mod:`skmixed._formula`);
4. the numeric columns the random part reads (random slopes);
5. the precision weights (``sample_weight``, R's ``weights=``), at fit;
6. the offset column a GLMM names (lme4's ``offset(...)``): never a
   feature, read at fit and at predict;
7. rows with NaN or inf (or a missing group label or weight): an error
   naming the column, or dropped with ``missing="drop"`` at fit;
8. the labels coded as categoricals (:func:`skmixed._groups.as_factor`).

At fit it also returns the :class:`InputLayout` the estimator keeps, so that
predict takes the same columns again, by name (or by position, with a
warning, from a numpy X), and groups from X or ``groups=`` whichever way
they came at fit.
"""

import difflib
import math
import warnings
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from skmixed._groups import (
    GroupsMissingWarning,
    _renamed_column_hint,
    as_factor,
)
from skmixed._stacklevel import user_stacklevel

#: The grouping name that stands for the ``groups=`` argument itself
#: (``"(1 | groups)"``, ``FixedEffectsRegressor(group=None)``).
GROUPS_ARGUMENT = "groups"

_FIT_HINT = (
    "Remove or impute those rows, or use missing='drop' to drop them as R's "
    "na.omit does."
)
# missing='drop' drops rows at fit only: predict returns one value per row.
_PREDICT_HINT = "Remove or impute those rows: predict needs one value per row."

_FIX_HINT = (
    "Keep the grouping column(s) in a pandas X (they survive every "
    "scikit-learn path), or pass groups= with "
    "sklearn.set_config(enable_metadata_routing=True)."
)
_ROUTING_FIX_HINT = (
    "Metadata routing is enabled, but no groups reached this call: "
    "cross_val_predict, GridSearchCV.predict, permutation_importance and "
    "string scorers (scoring='r2') never pass them to predict. Keep the "
    "grouping column(s) in a pandas X (they survive every scikit-learn path), "
    "score with skmixed.metrics (make_grouped_scorer for metrics such as "
    "r2_score), or check that groups= was passed."
)


class IgnoredColumnsWarning(UserWarning):
    """Columns of X that are neither features nor grouping factors.

    With ``fixed_effects=None`` a non-numeric column that the model does not
    name is left out of the fit, as R leaves out the columns a formula does
    not use. Choose the features explicitly with ``fixed_effects=``.
    """


@dataclass(frozen=True)
class InputRequest:
    """What a model asks of its input; built from the estimator's parameters.

    Attributes
    ----------
    estimator : str
        The estimator's class name, for messages.
    group_names : tuple of str
        Grouping factors the model needs (components of ``a:b`` and ``a/b``
        listed separately). ``"groups"`` stands for the ``groups=`` argument.
    fixed_effects : None, list of str or str
        The estimator's ``fixed_effects`` parameter.
    slope_names : tuple of str
        Numeric columns the random part reads (random slopes).
    groups_optional : bool
        The model can do without the grouping factors (no warning when none
        is given, no error for a name found nowhere).
    missing : {"error", "drop"}
    offset : str, int or None
        The column of X added to the linear predictor (a label, or a
        position for a numpy X); never a feature unless ``fixed_effects``
        names it.
    response_hint : str
        Ends the message refusing a y that is not numbers (the estimator's
        pointer to what takes such a y).
    random_effects : str or None
        The random-effects spec the names come from (None: no random part),
        kept so that a fitted model reads its own terms after set_params.
    """

    estimator: str
    group_names: tuple
    fixed_effects: object = None
    slope_names: tuple = ()
    groups_optional: bool = False
    missing: str = "error"
    offset: object = None
    response_hint: str = ""
    random_effects: str | None = None


@dataclass
class InputLayout:
    """What fit saw, kept by the estimator and reapplied at predict.

    Attributes
    ----------
    from_frame : bool
        X was a pandas DataFrame at fit.
    columns : list of str
        The columns of X at fit (``x0, x1, ...`` for an array).
    feature_names : list of str
        Names of the fixed-effect columns (the formula's, for a formula).
    feature_columns : list of str
        The data columns the fixed part reads.
    formula : FixedFormula or None
        The fitted formula of a string ``fixed_effects``.
    group_columns : list of str
        Grouping columns found in X at fit.
    offset_column : str or None
        The name of the offset column (``x<j>`` for a numpy X).
    """

    from_frame: bool
    columns: list
    feature_names: list
    feature_columns: list
    formula: object = None
    group_columns: list = field(default_factory=list)
    offset_column: str | None = None


@dataclass
class ModelInputs:
    """The validated input of one fit or predict.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The fixed-effect columns as float64, without an intercept column.
    feature_names : list of str
        Their names (``x0, x1, ...`` for a numpy X; R's names for a formula).
    y : ndarray of shape (n_samples,) or None
        The response (None at predict).
    factors : dict of str to pandas.Categorical, or None
        Grouping factor name -> its labels coded as R codes a factor; ``{}``
        for a model without factors; None when the model needs factors and
        none was given (a ``GroupsMissingWarning`` has been issued).
    covariates : dict of str to ndarray
        The numeric columns the random part reads (random slopes), by name.
    ignored : dict of str to str
        Columns of X left out of the model -> why.
    intercept : bool or None
        Whether a formula fixed part has an intercept; None when the fixed
        part is not a formula (the estimator's ``fit_intercept`` decides).
    terms : dict of str to list of int, or None
        A formula's terms -> their columns of ``X`` (None without a formula).
    n_dropped : int
        Rows dropped by ``missing="drop"``.
    layout : InputLayout
        What fit saw (at fit: the layout to keep).
    weights : ndarray of shape (n_samples,) or None
        Precision weights (R's ``weights=``), None when not given.
    offset : ndarray of shape (n_samples,) or None
        The offset column's values, None when the model has no offset.
    kept : ndarray of bool or None
        At fit with ``missing="drop"``: which rows of the input were kept
        (R's model frame after na.omit); None when every row was.
    """

    X: np.ndarray
    feature_names: list
    y: np.ndarray | None
    factors: dict | None
    covariates: dict = field(default_factory=dict)
    ignored: dict = field(default_factory=dict)
    intercept: bool | None = None
    terms: dict | None = None
    n_dropped: int = 0
    layout: InputLayout | None = None
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    kept: np.ndarray | None = None


# -- the input path --------------------------------------------------------------------
def prepare_inputs(
    X, y, groups, request, layout=None, sample_weight=None, column_names=None
):
    """Validate X, y and ``groups`` and say where every column goes.

    Parameters
    ----------
    X : array-like or pandas.DataFrame of shape (n_samples, n_columns)
    y : array-like of shape (n_samples,) or None
        Required at fit; None at predict.
    groups : None, array-like, pandas.Series or pandas.DataFrame
        Grouping factor(s) not given as columns of X.
    request : InputRequest
        What the model needs.
    layout : InputLayout, default=None
        None at fit; at predict, the layout returned at fit.
    sample_weight : array-like of shape (n_samples,), default=None
        Precision weights (fit only), checked by :func:`check_sample_weight`.
    column_names : ndarray of str, default=None
        A DataFrame X's column names when the caller has read them already
        (all strings); None: read from X.

    Returns
    -------
    ModelInputs
        At fit, ``inputs.layout`` is the layout to keep for predict.
    """
    stage = "fit" if layout is None else "predict"
    if stage == "fit" and y is None:
        raise ValueError(
            f"{request.estimator} requires y to be passed, but the target y is None."
        )
    X = _as_two_dimensional(X)
    frame, columns, from_frame = _columns_of(X, layout, request.estimator, column_names)
    n = _num_samples(X)
    y_array = _check_response(y, n, request.response_hint) if y is not None else None
    weights = None
    if sample_weight is not None:
        weights = check_sample_weight(sample_weight, n, request.missing)
    raw_groups, group_columns = find_groups(frame, groups, request, n, stage)
    ignored = {}
    if stage == "fit":
        offset_column = offset_name(request, columns, group_columns)
        offset = _offset_values(frame, columns, offset_column, request.estimator)
        fixed = _choose_features(
            frame,
            columns,
            from_frame,
            group_columns,
            request,
            _offset_columns(request, offset_column, columns),
            _rows_kept(request, frame, y_array, weights, raw_groups, offset),
        )
        ignored = fixed.ignored
        _refuse_response_feature(y, y_array, fixed, request)
        _warn_weight_feature(sample_weight, weights, fixed, request)
        warn_ignored(ignored, request)
        layout = InputLayout(
            from_frame,
            columns,
            fixed.names,
            fixed.columns,
            fixed.formula,
            group_columns,
            offset_column,
        )
    else:
        _check_offset_present(columns, layout, request, from_frame)
        _check_columns_present(frame, columns, layout, request, from_frame)
        fixed = _features_again(frame, layout)
        offset = _offset_values(frame, columns, layout.offset_column, request.estimator)
    covariates = _covariates(frame, request.slope_names, group_columns, fixed, layout)
    inputs = ModelInputs(
        fixed.X,
        list(layout.feature_names),
        y_array,
        None,
        covariates,
        ignored,
        fixed.intercept,
        fixed.terms,
        0,
        layout,
        weights,
        offset,
    )
    _handle_missing(
        inputs, raw_groups, request.missing, stage, frame, response_name(y, None)
    )
    if raw_groups is not None:
        inputs.factors = {
            name: as_factor(column, name) for name, column in raw_groups.items()
        }
    return inputs


# -- 1. the shape of X and its column names --------------------------------------------
def as_pandas(data):
    """A polars or pyarrow frame (or series) as pandas; anything else as is.

    scikit-learn reads a polars DataFrame as a frame with column names
    (``feature_names_in_``, ``set_output(transform="polars")``), so its
    columns must reach the input rules by name: as an array, a grouping
    column would be taken for a numeric feature.
    """
    library = type(data).__module__.partition(".")[0]
    if library in ("polars", "pyarrow") and hasattr(data, "to_pandas"):
        return data.to_pandas()
    return data


def _as_two_dimensional(X):
    """Array-likes without a shape become arrays; 1-D X is refused."""
    if not isinstance(X, pd.DataFrame) and not hasattr(X, "shape"):
        if hasattr(X, "__array__") or isinstance(X, list | tuple):
            X = np.asarray(X)
    if getattr(X, "ndim", 2) == 1:
        raise ValueError(
            "Expected a 2-D X, got a 1-D array. Reshape your data with "
            "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a "
            "single sample."
        )
    return X


def _num_samples(X):
    shape = getattr(X, "shape", None)  # once: a DataFrame's is computed
    if shape is not None and len(shape) >= 1:
        return shape[0]
    try:
        return len(X)
    except TypeError:
        raise ValueError(
            f"Expected array-like X (array, DataFrame or list of rows); got "
            f"{type(X).__name__}."
        ) from None


def _positional(n_columns):
    return [f"x{j}" for j in range(n_columns)]


def _columns_of(X, layout, estimator, column_names=None):
    """(frame or array, column names, is-a-frame) of X, as fit saw them.

    At predict a numpy X after a DataFrame fit is read by position (with
    scikit-learn's warning) when it has as many columns as at fit; a
    DataFrame after a numpy fit likewise. ``column_names``: a DataFrame's
    string column names, already read.
    """
    if isinstance(X, pd.DataFrame):
        refuse_duplicate_columns(X.columns)
        if layout is not None and not layout.from_frame:
            warnings.warn(
                f"X has feature names, but {estimator} was fitted without "
                "feature names; its columns are taken by position.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return _array_columns(X.to_numpy(), layout, estimator)
        if column_names is not None:
            return X, list(column_names), True
        return X, [str(c) for c in X.columns], True
    array = X
    if getattr(array, "ndim", 2) != 2:
        from sklearn.utils.validation import check_array

        array = check_array(
            X, dtype=None, ensure_all_finite=False, ensure_min_features=0
        )
    if layout is not None and layout.from_frame:
        if array.shape[1] != len(layout.columns):
            raise ValueError(
                f"X is an array with {array.shape[1]} column(s), but "
                f"{estimator} was fitted on a DataFrame with columns "
                f"{layout.columns}: pass a DataFrame with the columns "
                f"{_needed_columns(layout)} (by name)."
            )
        warnings.warn(
            f"X does not have valid feature names, but {estimator} was fitted "
            f"with feature names; its columns are taken by position as "
            f"{layout.columns}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        frame = pd.DataFrame(array, columns=layout.columns)
        return frame.infer_objects(), list(layout.columns), True
    return _array_columns(array, layout, estimator)


def groups_disagree_error(column):
    """The error for a grouping column of X also given, with other labels,
    in ``groups=`` (in memory as from Dask)."""
    return ValueError(
        f"Grouping factor {column!r} is both a column of X and given in "
        "groups=, and the two disagree; pass it once."
    )


def no_feature_error(shape, needs_groups):
    """The error for a fit without a feature or a grouping factor
    (scikit-learn's minimum of 1 feature): ``needs_groups`` is the model
    that wanted them, in words."""
    return ValueError(
        f"0 feature(s) (shape={shape}) while a minimum of 1 is required when "
        f"no grouping factor is given ({needs_groups} needs its grouping column "
        "in X or groups=)."
    )


def refuse_duplicate_columns(columns):
    """A frame's columns Index with a label twice is an error naming it."""
    if columns.has_duplicates:
        twice = sorted({str(c) for c in columns[columns.duplicated()]})
        raise ValueError(f"X has duplicate column names: {twice}.")


def _array_columns(array, layout, estimator):
    array = np.asarray(array) if not hasattr(array, "shape") else array
    n_columns = array.shape[1]
    if layout is not None and n_columns != len(layout.columns):
        raise ValueError(
            f"X has {n_columns} features, but {estimator} is expecting "
            f"{len(layout.columns)} features as input."
        )
    return array, _positional(n_columns), False


def _needed_columns(layout):
    offset = [layout.offset_column] if layout.offset_column is not None else []
    return list(
        dict.fromkeys([*layout.feature_columns, *layout.group_columns, *offset])
    )


def _closest(name, candidates):
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1)
    return f" Did you mean {match[0]!r}?" if match else ""


# -- 2. grouping factors ---------------------------------------------------------------
def _fix_hint():
    """What to do about missing groups, given whether routing is on."""
    import sklearn

    if sklearn.get_config().get("enable_metadata_routing", False):
        return _ROUTING_FIX_HINT
    return _FIX_HINT


def _one_dimensional(groups):
    """``groups`` as a 1-D array (a one-column 2-D array is flattened)."""
    array = np.asarray(groups)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            "groups must be 1-D (one grouping factor) or a pandas DataFrame "
            f"whose columns are named after the grouping factors; got shape "
            f"{array.shape}."
        )
    return array


def _groups_column(groups, name, n_names):
    """The part of ``groups=`` that serves the factor ``name``, or None.

    A DataFrame serves its columns by name. A named Series serves only the
    factor of its name; an unnamed 1-D array or Series serves a model with
    one factor. The name ``"groups"`` (the argument itself) takes any 1-D
    ``groups`` and a one-column DataFrame.
    """
    if groups is None:
        return None
    if isinstance(groups, pd.DataFrame):
        if name in groups.columns:
            return groups[name]
        if name == GROUPS_ARGUMENT and groups.shape[1] == 1:
            return groups.iloc[:, 0]
        return None
    if isinstance(groups, pd.Series):
        if groups.name is None:
            return groups if n_names == 1 else None
        if str(groups.name) == name or name == GROUPS_ARGUMENT:
            return groups
        return None
    array = _one_dimensional(groups)
    return array if n_names == 1 or name == GROUPS_ARGUMENT else None


def _x_column_of(frame, groups, name):
    """The column of X that holds the grouping factor ``name``, or None.

    The column of that name; for the ``groups=`` argument itself (the
    factor ``"groups"``), the column named as the Series (or one-column
    DataFrame) passed: ``fit(X, y, groups=X["school"])`` makes ``school``
    a grouping column, so never a feature.
    """
    if name in frame.columns:
        return name
    if name != GROUPS_ARGUMENT:
        return None
    label = None
    if isinstance(groups, pd.Series):
        label = groups.name
    elif isinstance(groups, pd.DataFrame) and groups.shape[1] == 1:
        label = groups.columns[0]
    if label is not None and label in frame.columns:
        return label
    return None


def _same_labels(a, b):
    a = as_factor(a, "a").astype(str)
    b = as_factor(b, "b").astype(str)
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def find_groups(frame, groups, request, n, stage):
    """The raw label columns of the model's grouping factors.

    Returns ``(raw, x_columns)``: name -> labels (None when nothing was
    given for any name, after a ``GroupsMissingWarning``), and the columns of
    X that are grouping columns (never features).
    """
    names = request.group_names
    if not names:
        return {}, []
    in_frame = isinstance(frame, pd.DataFrame)
    raw, x_columns, unresolved = {}, [], []
    for name in names:
        column = _x_column_of(frame, groups, name) if in_frame else None
        from_x = None if column is None else frame_column(frame, column)
        from_arg = _groups_column(groups, name, len(names))
        if from_arg is not None and len(from_arg) != n:
            raise ValueError(
                f"groups has {len(from_arg)} rows but X has {n}; they must have "
                "the same number of rows."
            )
        if from_x is not None:
            x_columns.append(str(column))
            if from_arg is not None and not _same_labels(from_x, from_arg):
                raise groups_disagree_error(column)
            raw[name] = from_x
        elif from_arg is not None:
            raw[name] = from_arg
        else:
            unresolved.append(name)
    if not unresolved:
        return raw, x_columns
    _report_unresolved(frame, groups, request, unresolved, raw, stage)
    return None, x_columns


def _report_unresolved(frame, groups, request, unresolved, found, stage):
    """Raise for a grouping name found nowhere, or warn that none was given."""
    name = unresolved[0]
    hint = _renamed_column_hint(frame, name)
    if hint:
        raise ValueError(f"Grouping column {name!r} not found.{hint}")
    if isinstance(groups, pd.Series) and groups.name is not None:
        raise ValueError(
            f"groups= is a Series named {str(groups.name)!r}, but {request.estimator} "
            f"needs the grouping factor {name!r}, which is not a column of X "
            "either. A named groups= serves only the factor of its name: pass "
            f"the {name!r} labels (a column of X, or groups= named {name!r})."
        )
    in_frame = isinstance(frame, pd.DataFrame)
    named = name != GROUPS_ARGUMENT
    if stage == "fit" and in_frame and named:
        candidates = [str(c) for c in frame.columns]
        where = "and no groups= was given"
        if isinstance(groups, pd.DataFrame):
            where = f"nor of groups= (columns: {[str(c) for c in groups.columns]})"
            candidates += [str(c) for c in groups.columns]
        elif groups is not None:
            where = "nor of groups="
        raise ValueError(
            f"Grouping factor {name!r} of {request.estimator} not found: not a "
            f"column of X (columns: {[str(c) for c in frame.columns]}) {where}."
            f"{_closest(name, candidates)} {_fix_hint()}"
        )
    if groups is None and not found:
        if not request.groups_optional:
            _warn_groups_missing(frame, request, stage)
        return
    available = list(groups.columns) if isinstance(groups, pd.DataFrame) else []
    columns = [str(c) for c in frame.columns] if in_frame else []
    raise ValueError(
        f"Grouping factor(s) {unresolved} not found: not a column of X "
        f"(columns: {columns}) nor of groups (columns: {available}). A single "
        "unnamed 1-D groups serves only a model with one grouping factor."
    )


def _warn_groups_missing(frame, request, stage):
    """Say exactly what is fitted (or predicted) without grouping factors."""
    names = ", ".join(map(repr, request.group_names))
    hint = _fix_hint()
    if stage == "fit" and isinstance(frame, pd.DataFrame):
        # a frame's columns have names: the model names none of them (a
        # named factor missing from a frame is an error, so this is the
        # groups= argument's factor)
        example = _naming_example(frame, request)
        action = (
            f"{request.estimator} fits a linear model without group effects, "
            f"with {_features_said(request)} as fixed-effect features (no column "
            f"of X is named as a grouping factor: {names} stands for the groups= "
            "argument, which was not given)"
        )
        hint = (
            f"Name the grouping column of X ({example}), or pass groups= "
            "(through scikit-learn's meta-estimators with "
            "sklearn.set_config(enable_metadata_routing=True))."
        )
    elif stage == "fit":
        action = (
            f"{request.estimator} fits a linear model without group effects, "
            f"with all {frame.shape[1]} column(s) of the numpy X as fixed-effect "
            "features (a numpy X has no column names, so none of its columns can "
            "be a grouping column: pass groups=, or choose the features with "
            "fixed_effects=)"
        )
    else:
        action = "predicting at population level (fixed effects only)"
    warnings.warn(
        f"No grouping factor given for {names} at {stage}; {action}. {hint}",
        GroupsMissingWarning,
        stacklevel=user_stacklevel(),
    )


def _features_said(request):
    """Which columns of a frame X the features are, in words."""
    if request.fixed_effects is None:
        return "X's numeric columns"
    if isinstance(request.fixed_effects, str):
        return f"the columns of the formula {request.fixed_effects!r}"
    return "the columns fixed_effects lists"


def _naming_example(frame, request):
    """How to name a column of ``frame`` as the grouping factor, for a
    message: its first non-numeric column (a label column), else a
    placeholder (a numeric column may be a feature: naming one as the
    grouping factor would be bad advice)."""
    labels = [c for c in frame.columns if not _is_numeric(frame[c].dtype)]
    column = str(labels[0]) if labels else "<column>"
    if request.random_effects is not None:
        return f"{request.estimator}('(1 | {column})')"
    return f"{request.estimator}(group={column!r})"


# -- 3. the fixed-effect features ------------------------------------------------------
@dataclass
class _Features:
    X: np.ndarray
    names: list
    columns: list
    ignored: dict = field(default_factory=dict)
    formula: object = None
    intercept: bool | None = None
    terms: dict | None = None


def _is_numeric(dtype):
    if isinstance(dtype, np.dtype):
        return _is_numeric_numpy(dtype)
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


@lru_cache(maxsize=64)
def _is_numeric_numpy(dtype):
    """:func:`_is_numeric` of a numpy dtype (cached: pandas' dtype checks
    cost a few µs each, and a fit checks every column and y)."""
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _float_columns(frame, columns, read=None):
    """Numeric columns of a frame as one C-contiguous float64 array.

    ``read``: columns already read (label -> Series), not read again.
    """
    n = frame.shape[0]
    if n == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={(0, len(columns))}) while a "
            "minimum of 1 is required."
        )
    read = read or {}
    sources = []
    for c in columns:
        values = read[c] if c in read else frame_column(frame, c)
        if isinstance(values.dtype, np.dtype):
            # numpy-backed: the assignment below converts (NaN stays NaN)
            sources.append(np.asarray(values))
        else:
            sources.append(values.to_numpy(dtype=np.float64, na_value=np.nan))
    array = np.empty((n, len(columns)))
    # Block by block of rows: a whole column written into the row-major
    # array touches all of its cache lines once per column; a block's rows
    # stay in cache while every column is written (10M rows, 5 columns:
    # 0.35 -> 0.23 s). mixed/dask_fit.py's _fill_rows writes a Dask lane's
    # rows the same way, with its columns of ones in the same blocks.
    for first in range(0, n, ROW_BLOCK):
        rows = slice(first, first + ROW_BLOCK)
        block = array[rows]
        for j, values in enumerate(sources):
            block[:, j] = values[rows]
    return array


#: Rows written (or read) at a time when a row-major array is filled from
#: (or read into) columns: a block of them stays in cache.
ROW_BLOCK = 4096


def frame_column(frame, label):
    """The values of a DataFrame's column: a numpy array or a pandas
    extension array (a Series where pandas offers no other way).

    ``frame[label]`` builds a Series, ~10 µs in pandas 3 (a tenth of a
    small fit's input checks); the column's array costs ~0.5 µs. X's labels
    are unique here (duplicates are refused first).
    """
    values = getattr(frame, "_get_column_array", None)
    if values is not None:
        loc = frame.columns.get_loc(label)
        if isinstance(loc, int):
            return values(loc)
    return frame[label]


def _not_numeric(frame, columns, read=None):
    """The columns whose dtype is not numeric; each column read is kept in
    ``read`` (a dict), if given (see :func:`frame_column`)."""
    bad = []
    for c in columns:
        values = frame_column(frame, c)
        if read is not None:
            read[c] = values
        if not _is_numeric(values.dtype):
            bad.append(c)
    return bad


def _raise_not_numeric(bad, what):
    raise ValueError(
        f"Column(s) {bad} of X are not numeric but are {what}. Encode them "
        "first (e.g. with OneHotEncoder), or give the fixed part as a formula "
        "(fixed_effects='x + Variety') for R's treatment contrasts."
    )


def factor_slope_error(names):
    """The error for a factor inside a random-effects term (lme4's
    ``(0 + f | g)``): a formula fixed part does not reach the random part,
    so the message names the indicator columns that do. It reads no rows,
    so that a Dask fit says the same before reading its data."""
    name = names[0]
    return ValueError(
        f"Column(s) {names} of X are not numeric but are random-slope columns "
        f"of the model: a factor in a random-effects term (lme4's "
        f"'(0 + {name} | g)') is not supported. Give one 0/1 column per level "
        f"of {name!r} (pd.get_dummies(X[{name!r}], prefix={name!r}, "
        f"prefix_sep='', dtype=float) names them as R does) and name them all "
        f"in the term: '(0 + {name}<level 1> + {name}<level 2> + ... | g)' is "
        f"lme4's '(0 + {name} | g)'."
    )


def _as_float_array(array):
    """A 2-D numeric array as float64 (NaN and inf are checked later)."""
    if (
        isinstance(array, np.ndarray)
        and array.ndim == 2
        and array.shape[0]
        and array.dtype.kind in "biuf"
    ):
        # what check_array returns for a plain numeric array, without its
        # container checks (the larger part of a small fit's input cost)
        return np.asarray(array, dtype=np.float64)
    from sklearn.utils.validation import check_array

    return check_array(
        array, dtype=np.float64, ensure_all_finite=False, ensure_min_features=0
    )


def _choose_features(
    frame, columns, from_frame, group_columns, request, offset=(), rows=None
):
    """At fit: the features ``fixed_effects`` chooses, and what is ignored.

    ``offset``: the columns of the offset (see :func:`_offset_columns`),
    never features unless listed. ``rows``: the rows missing='drop' keeps
    for y, the weights and the group labels (None: all), whose levels are
    a formula's factor levels.
    """
    if isinstance(request.fixed_effects, str):
        features = _formula_features(
            frame, columns, from_frame, group_columns, request, rows
        )
        for name in offset:
            features.ignored.pop(name, None)
        return features
    read = {}
    labels, names, ignored = feature_columns(
        frame, columns, from_frame, group_columns, request, read, offset
    )
    if not from_frame:
        array = _as_float_array(frame)
        index = [columns.index(c) for c in names]
        if index != list(range(array.shape[1])):
            array = array[:, index]
        return _Features(array, names, names, ignored)
    return _Features(_float_columns(frame, labels, read), names, names, ignored)


def _refuse_response_feature(y, y_array, features, request):
    """Refuse a default feature set that holds the response itself.

    ``fixed_effects=None`` takes every other column of X. A column named as
    the response Series and equal to it (``fit(df, df["y"])``, R's
    ``lm(y ~ ., df)``) would predict y from itself; R's ``.`` leaves the
    response out, but dropping a column unasked would break the rule that
    the features are what the user said, so the user is told to choose.
    The values are compared as well as the name, since pandas arithmetic
    names a simulated ``y = 2 * X["x"] + noise`` after ``x``. A list or
    formula naming the column is the user's choice and is not checked.
    """
    name = _same_default_feature(y, y_array, features, request)
    if name is not None:
        raise response_feature_error(name, request)


def _same_default_feature(values, array, features, request):
    """The name of ``values`` (y, the weights; ``array`` their numbers)
    when ``fixed_effects=None`` made a feature of that name that holds the
    same numbers, else None."""
    name = default_feature_named(values, features.names, request)
    if name is None:
        return None
    column = features.X[:, features.names.index(name)]
    return name if np.array_equal(column, array, equal_nan=True) else None


def default_feature_named(values, names, request):
    """The name of ``values`` (a Series: y, the weights) when
    ``fixed_effects=None`` made a feature of that name (``names``), else
    None: whether it is that column is for its values to say."""
    name = response_name(values, default=None)
    if request.fixed_effects is not None or name not in names:
        return None
    return name


def response_feature_error(name, request):
    """The error for X holding the response ``name`` as a default feature."""
    return ValueError(
        f"X holds the column {name!r}, which is the response y: with "
        "fixed_effects=None every other column of X is a feature, so "
        f"{request.estimator} would predict y from itself. Drop it from X "
        f"(X.drop(columns={name!r})), or choose the features with "
        "fixed_effects= (a list of columns or a formula); R's 'y ~ .' "
        "leaves the response out the same way."
    )


def _warn_weight_feature(sample_weight, weights, features, request):
    """Say when ``sample_weight`` is a column of X that is also a feature.

    ``fit(X, y, sample_weight=X["w"])`` with ``fixed_effects=None`` fits a
    slope on w as well as weighting by it: what R's ``lm(y ~ ., d,
    weights = w)`` does (its ``.`` keeps w), and what scikit-learn's "X is
    the features" means, so it is kept; but it is rarely meant, so it is
    said. As for the response, the values must match the name.
    """
    if weights is None:
        return
    name = _same_default_feature(sample_weight, weights, features, request)
    if name is not None:
        warn_weight_feature(name, request)


def warn_weight_feature(name, request):
    """The warning of :func:`_warn_weight_feature` (the Dask path's too)."""
    warnings.warn(
        f"sample_weight is the column {name!r} of X, which with "
        f"fixed_effects=None is also a feature: {request.estimator} fits a "
        f"coefficient of {name!r} as well as weighting the rows by it, as R's "
        f"lm(y ~ ., data, weights = {name}) does. If {name!r} is only the "
        f"weights, drop it from X (X.drop(columns={name!r})) or choose the "
        "features with fixed_effects=.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def feature_columns(
    frame, columns, from_frame, group_columns, request, read=None, offset=()
):
    """Which columns are features, from the column names and dtypes only.

    For ``fixed_effects`` None or a list (a formula is read by formulaic).
    Returns ``(labels, names, ignored)``: the frame's labels of the features,
    their names, and the ignored columns -> why. Reads no rows, so that it
    also serves a Dask collection's metadata. ``read`` (a dict), if given,
    keeps the columns whose dtype was read (see :func:`_not_numeric`).
    ``offset``: the columns of the offset, features only when listed.
    """
    choice = request.fixed_effects
    if choice is None:
        if not from_frame:
            chosen = [c for c in columns if c not in offset]
            return chosen, chosen, {}
        grouping = set(group_columns) | set(offset)
        if _string_labels(frame.columns):
            # the labels are the names: no pass over the (Arrow-backed) Index
            candidates = [c for c in columns if c not in grouping]
        else:
            candidates = [c for c in frame.columns if str(c) not in grouping]
        bad = _not_numeric(frame, candidates, read)
        slopes = set(request.slope_names)
        used_bad = [str(c) for c in bad if str(c) in slopes]
        if used_bad:
            raise factor_slope_error(used_bad)
        ignored = {
            str(c): "not numeric and not a grouping factor of the model" for c in bad
        }
        chosen = [c for c in candidates if str(c) not in ignored]
        return chosen, [str(c) for c in chosen], ignored
    chosen = _listed_columns(choice, columns, group_columns)
    ignored = {
        c: "not listed in fixed_effects"
        for c in columns
        if c not in chosen and c not in group_columns and c not in offset
    }
    if not from_frame:
        return chosen, chosen, ignored
    labels = [frame.columns[columns.index(c)] for c in chosen]
    bad = [str(c) for c in _not_numeric(frame, labels, read)]
    if bad:
        _raise_not_numeric(bad, "listed in fixed_effects")
    return labels, chosen, ignored


def _listed_columns(choice, columns, group_columns):
    """Check a list ``fixed_effects``: names of X's non-grouping columns."""
    if not isinstance(choice, list | tuple):
        raise ValueError(
            "fixed_effects must be None, a list of column names or a formula "
            f"string; got {type(choice).__name__}."
        )
    chosen = [str(c) for c in choice]
    for name in chosen:
        if name in group_columns:
            raise ValueError(
                f"fixed_effects lists {name!r}, a grouping factor of the model: "
                "a grouping column is never a fixed-effect feature."
            )
        if name not in columns:
            raise ValueError(
                f"fixed_effects lists {name!r}, which is not a column of X "
                f"(columns: {columns}).{_closest(name, columns)}"
            )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"fixed_effects lists a column twice: {chosen}.")
    return chosen


def _rows_kept(request, frame, y, weights, groups, offset=None):
    """At fit with missing='drop', the rows that y, the weights, the group
    labels, the random-slope columns and the offset keep (R's na.omit,
    before a formula's factor levels are taken); None when nothing is
    dropped."""
    if request.missing != "drop" or not isinstance(request.fixed_effects, str):
        return None
    keep = ~_unlabelled_rows(groups, frame.shape[0])
    for name in request.slope_names:
        column = frame.get(name) if isinstance(frame, pd.DataFrame) else None
        if isinstance(column, pd.Series) and _is_numeric(column.dtype):
            keep &= np.isfinite(column.to_numpy(dtype=np.float64, na_value=np.nan))
    if y is not None:
        keep &= np.isfinite(y)
    if weights is not None:
        keep &= ~np.isnan(weights)
    if offset is not None:
        # glmer's offset(log(t)) is a column of R's model frame: na.omit
        # drops its missing rows before the factors' unused levels go
        keep &= np.isfinite(offset)
    return None if keep.all() else keep


def _formula_features(frame, columns, from_frame, group_columns, request, rows=None):
    """A formula's right-hand side, through skmixed._formula."""
    try:
        from skmixed._formula import FixedFormula
    except ImportError as exc:  # until the formula module lands
        raise NotImplementedError(
            "fixed_effects as a formula string needs skmixed._formula."
        ) from exc

    data = frame if from_frame else pd.DataFrame(frame, columns=columns)
    formula = FixedFormula(request.fixed_effects)
    matrix, names = formula.fit_transform(data, rows=rows)
    # A formula may use a grouping column, as R's does: Variety is both a
    # fixed effect and part of the factor Block:Variety in Oats'
    # yield ~ nitro + Variety + (1 | Block/Variety).
    used = [str(c) for c in formula.columns_used]
    ignored = {
        c: "not used by the fixed_effects formula"
        for c in columns
        if c not in used and c not in group_columns
    }
    return _Features(
        np.ascontiguousarray(matrix, dtype=np.float64),
        [str(nm) for nm in names],
        used,
        ignored,
        formula,
        bool(formula.has_intercept),
        dict(formula.terms),
    )


def warn_ignored(ignored, request):
    """One warning for the non-numeric columns that fixed_effects=None skips."""
    skipped = [c for c, why in ignored.items() if why.startswith("not numeric")]
    if skipped:
        warnings.warn(
            f"{request.estimator} ignores column(s) {skipped} of X: not numeric "
            "and not a grouping factor of the model, so not a feature. Choose "
            "the features with fixed_effects= (a list of columns, or a formula "
            "such as 'x + Variety' for categorical features).",
            IgnoredColumnsWarning,
            stacklevel=user_stacklevel(),
        )


def _check_columns_present(frame, columns, layout, request, from_frame):
    """At predict: every column the model reads is in X (by name)."""
    if not (from_frame and layout.from_frame):
        return
    present = set(columns)
    needed = [*layout.feature_columns, *request.slope_names]
    missing = [c for c in dict.fromkeys(needed) if c not in present]
    if not missing:
        return
    unseen = [c for c in columns if c not in set(layout.columns)]
    message = "The feature names should match those that were passed during fit.\n"
    if unseen:
        message += "Feature names unseen at fit time:\n"
        message += "".join(f"- {c}\n" for c in unseen)
    message += "Feature names seen at fit time, yet now missing:\n"
    message += "".join(f"- {c}\n" for c in missing)
    raise ValueError(message)


def check_features_numeric(frame, labels, read=None):
    """At predict: the fixed-effect columns (``labels`` of a DataFrame
    ``frame``) are numeric, as at fit (columns read are kept in ``read``)."""
    bad = [str(c) for c in _not_numeric(frame, labels, read)]
    if bad:
        _raise_not_numeric(bad, "fixed-effect features of the fitted model")


def _features_again(frame, layout):
    """At predict: the fixed-effect columns fit chose, from this X."""
    if layout.formula is not None:
        data = (
            frame
            if isinstance(frame, pd.DataFrame)
            else pd.DataFrame(frame, columns=layout.columns)
        )
        matrix = layout.formula.transform(data)
        return _Features(
            np.ascontiguousarray(matrix, dtype=np.float64),
            layout.feature_names,
            layout.feature_columns,
            intercept=bool(layout.formula.has_intercept),
            terms=dict(layout.formula.terms),
        )
    if not layout.from_frame or not isinstance(frame, pd.DataFrame):
        array = _as_float_array(frame)
        index = [layout.columns.index(c) for c in layout.feature_columns]
        if index != list(range(array.shape[1])):
            array = array[:, index]
        return _Features(array, layout.feature_names, layout.feature_columns)
    labels = _labels(frame, layout.feature_columns)
    read = {}
    check_features_numeric(frame, labels, read)
    return _Features(
        _float_columns(frame, labels, read),
        layout.feature_names,
        layout.feature_columns,
    )


def _labels(frame, names):
    """The frame's own column labels for string names (non-string labels kept)."""
    if _string_labels(frame.columns):
        return list(names)
    lookup = {str(c): c for c in frame.columns}
    return [lookup[nm] for nm in names]


def _string_labels(columns):
    """Whether every label of a columns Index is a string (its dtype says
    so for pandas' string Index without a pass over the labels)."""
    if isinstance(columns.dtype, pd.StringDtype):
        return not columns.hasnans
    return all(isinstance(c, str) for c in columns)


# -- 4. the columns the random part reads ----------------------------------------------
def _covariates(frame, slope_names, group_columns, fixed, layout):
    """Random-slope columns by name; a name not found is left to the model.

    A slope that is also a feature (not through a formula) is read from the
    feature array already built.
    """
    covariates = {}
    if not slope_names:
        return covariates
    if layout.formula is None:
        position = {name: j for j, name in enumerate(layout.feature_names)}
        for s in slope_names:
            if s in position:
                covariates[s] = fixed.X[:, position[s]]
        slope_names = [s for s in slope_names if s not in covariates]
        if not slope_names:
            return covariates
    if not isinstance(frame, pd.DataFrame):
        array = _as_float_array(frame)
        names = _positional(array.shape[1])
        for s in slope_names:
            if s in names:
                covariates[s] = array[:, names.index(s)]
        return covariates
    columns = {str(c): c for c in frame.columns}
    for s in slope_names:
        if s not in columns or s in group_columns:
            continue
        label = columns[s]
        if not _is_numeric(frame[label].dtype):
            raise factor_slope_error([s])
        covariates[s] = frame[label].to_numpy(dtype=np.float64, na_value=np.nan)
    return covariates


# -- the offset column (GLMMs) --------------------------------------------------------
def offset_name(request, columns, group_columns):
    """At fit: the name of the offset column ``request.offset``, or None.

    A label of X's columns, or an int position (a numpy X's columns are
    named ``x0, x1, ...``); a grouping column cannot be the offset.
    """
    choice = request.offset
    if choice is None:
        return None
    if isinstance(choice, bool | np.bool_) or not isinstance(
        choice, str | int | np.integer
    ):
        raise ValueError(
            f"offset must be the name (or position) of a column of X; got {choice!r}."
        )
    if isinstance(choice, str):
        quoted = len(choice) > 2 and choice[0] == choice[-1] == "`"
        if quoted and choice not in columns and choice[1:-1] in columns:
            choice = choice[1:-1]  # glmer's offset(`log e`): the column "log e"
        if choice not in columns:
            raise ValueError(
                f"offset column {choice!r} of {request.estimator} is not a column "
                f"of X (columns: {columns}).{_closest(choice, columns)} Keep the "
                "offset as a column of X, or give it as an R expression of X's "
                "columns (offset='log(exposure)'), so that it goes with its rows "
                "through cross-validation and predict."
            )
        name = choice
    else:
        if not 0 <= int(choice) < len(columns):
            raise ValueError(
                f"offset={int(choice)} is not a column position of X, which has "
                f"{len(columns)} column(s) (positions 0 to {len(columns) - 1})."
            )
        name = columns[int(choice)]
    if name in group_columns:
        raise ValueError(
            f"offset column {name!r} is a grouping factor of the model; the "
            "offset must be a numeric column of its own."
        )
    return name


def _offset_columns(request, name, columns):
    """The columns of the offset ``name``: itself and, for an R expression
    (``log(exposure)``, computed into X by the GLMM), the columns it reads.

    Like a column named by ``offset=``, the input of an offset expression
    is no feature unless ``fixed_effects`` lists it: a model given
    ``offset="log(exposure)"`` does not also fit a slope of exposure.
    """
    if name is None:
        return ()
    from skmixed._model_formula import offset_expression_columns

    reads = offset_expression_columns(request.offset) or []
    return (name, *(c for c in reads if c in columns and c != name))


def _check_offset_present(columns, layout, request, from_frame):
    """At predict: a pandas X has the offset column (read by name)."""
    name = layout.offset_column
    if name is None or not from_frame or name in columns:
        return
    raise ValueError(
        f"X has no column {name!r}, the offset of {request.estimator}: "
        "predictions need each row's offset (lme4's predict(newdata) reads "
        "it from newdata too). Add the column (e.g. log(exposure)); for a "
        "prediction per unit of exposure, set it to 0."
    )


def _offset_values(frame, columns, name, estimator):
    """The offset column as a float array (NaN and inf checked later)."""
    if name is None:
        return None
    if isinstance(frame, pd.DataFrame):
        values = frame_column(frame, _labels(frame, [name])[0])
        if not _is_numeric(values.dtype):
            raise ValueError(
                f"offset column {name!r} of X is not numeric (dtype "
                f"{values.dtype}); the offset is added to the linear predictor "
                f"of {estimator}: give numbers, such as log(exposure)."
            )
        if isinstance(values.dtype, np.dtype):
            return np.asarray(values, dtype=np.float64)
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    column = np.asarray(frame)[:, columns.index(name)]
    try:
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"offset column {name!r} of X (position {columns.index(name)}) is "
            "not numeric; the offset is added to the linear predictor of "
            f"{estimator}: give numbers, such as log(exposure)."
        ) from None


# -- 5. the response -------------------------------------------------------------------
def _check_response(y, n_samples, hint=""):
    """y as a 1-D float array of the right length (NaN checked later).

    Text is refused, numbers stored as text ("0", "3") too, as R's lmer and
    glmer refuse a character response; ``hint`` ends that message (the
    estimator's pointer, e.g. to a classifier for labels).
    """
    if isinstance(y, pd.DataFrame) and y.shape[1] == 1:
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        dtype = y.dtype  # (read once: a Series' dtype goes through its manager)
        if not _is_numeric(dtype):
            raise ValueError(_non_numeric_response(y, dtype, hint))
        if isinstance(dtype, np.dtype) and dtype == np.float64:
            y = y.to_numpy()  # numpy's float64: as it is (NaN checked later)
        else:
            y = y.to_numpy(dtype=np.float64, na_value=np.nan)
    if not (isinstance(y, np.ndarray) and y.dtype == np.float64 and y.ndim == 1):
        from sklearn.utils.validation import check_array

        values = np.asarray(y)
        if _holds_text(values):
            raise ValueError(_non_numeric_response(values, values.dtype, hint))
        y = check_array(y, ensure_2d=False, dtype=np.float64, ensure_all_finite=False)
    if y.ndim == 2 and y.shape[1] == 1:
        from sklearn.exceptions import DataConversionWarning

        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; "
            "using y.ravel().",
            DataConversionWarning,
            stacklevel=user_stacklevel(),
        )
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array (one response); got shape {y.shape}.")
    if y.shape[0] != n_samples:
        raise ValueError(
            f"X has {n_samples} rows but y has {y.shape[0]}; they must match."
        )
    return y


def first_text(values):
    """The first string (or bytes) among ``values``, else None."""
    cells = np.asarray(values, dtype=object).ravel()
    return next((v for v in cells if isinstance(v, (str, bytes))), None)


def _holds_text(values):
    """Whether a numpy array holds strings (scikit-learn's check_array would
    read "3" as 3.0); an object array of numbers is numbers."""
    return values.dtype.kind in "SUO" and first_text(values) is not None


def _non_numeric_response(values, dtype, hint):
    """The message for a y that is not numbers: what it is, with an example."""
    name = getattr(values, "name", None)
    named = f" ({str(name)!r})" if name is not None else ""
    example = first_text(values)
    got, convert = f"dtype {dtype}", ""
    if isinstance(dtype, pd.CategoricalDtype):
        got = f"labels (dtype category, e.g. {example!r})"
    elif example is not None:
        got = f"text (dtype {dtype}, e.g. {example!r})"
        convert = " Convert numbers stored as text first: y.astype(float)."
    return f"y{named} must be numeric (numbers or bools); got {got}.{convert}{hint}"


# -- 6. rows with NaN or inf -----------------------------------------------------------
def nonfinite_counts(values):
    """Per column of a 2-D array, (rows with NaN, rows with inf)."""
    if np.isfinite(values).all():  # the usual case: one cheap pass
        return np.zeros((values.shape[1], 2), dtype=np.int64)
    nan = np.isnan(values)
    inf = np.isinf(values)
    return np.stack([nan.sum(axis=0), inf.sum(axis=0)], axis=1)


def raise_nonfinite(counts, names, what, hint):
    """Raise a ValueError naming the column(s) and row counts with NaN or inf,
    from per-column counts (:func:`nonfinite_counts`; summed over
    partitions for Dask input)."""
    columns = np.flatnonzero(counts.sum(axis=1))
    if columns.size == 0:
        return
    parts = []
    for j in columns[:5]:
        n_nan, n_inf = int(counts[j, 0]), int(counts[j, 1])
        kinds = " and ".join(
            f"{kind} in {count} row(s)"
            for kind, count in (("NaN", n_nan), ("inf", n_inf))
            if count
        )
        where = f"column {names[j]!r}" if names is not None else what
        parts.append(f"{where}: {kinds}")
    raise ValueError(f"Input {what} contains NaN or inf ({'; '.join(parts)}). {hint}")


def _report_nonfinite(array, names, what, hint=_FIT_HINT):
    """Raise a ValueError naming the column(s) and row counts with NaN or inf."""
    values = array[:, None] if array.ndim == 1 else array
    raise_nonfinite(nonfinite_counts(values), names, what, hint)


def _unlabelled_rows(raw_groups, n):
    """Rows whose group label is missing (NaN, None, pandas NA)."""
    missing = np.zeros(n, dtype=bool)
    for column in (raw_groups or {}).values():
        values = column if isinstance(column, pd.Series) else pd.Series(column)
        if isinstance(values.dtype, pd.CategoricalDtype):
            missing |= values.cat.codes.to_numpy() < 0
        elif not (isinstance(values.dtype, np.dtype) and values.dtype.kind in "biu"):
            # (numpy integers and booleans hold no missing value; pandas'
            # nullable Int64 and boolean do)
            missing |= np.asarray(values.isna(), dtype=bool)
    return missing


def _all_finite(inputs):
    """Whether X, the slope columns and y hold no NaN or inf (one sum each:
    NaN and inf propagate; a sum that overflows only sends the check down
    the row-by-row path). NaN weights reach here only with missing='drop'."""
    total = float(inputs.X.sum())
    for values in inputs.covariates.values():
        total += float(values.sum())
    if inputs.y is not None:
        total += float(inputs.y.sum())
    if inputs.offset is not None:
        total += float(inputs.offset.sum())
    return math.isfinite(total)


def response_name(y, default="y"):
    """The response's name (a pandas or Dask Series' name, a one-column
    DataFrame's column, as a string), else ``default``: the formula's
    left-hand side, and the column a message about y names (``lmer``'s
    ``count``; ``default=None`` there: an unnamed y is "y")."""
    name = getattr(y, "name", None) if getattr(y, "ndim", 1) == 1 else None
    columns = getattr(y, "columns", None) if getattr(y, "ndim", 0) == 2 else None
    if name is None and columns is not None and len(columns) == 1:
        name = columns[0]  # (a pandas or Dask one-column DataFrame)
    return str(name) if name is not None else default


def with_dot_expanded(request, X, y):
    """At fit: the request with R's ``.`` in a formula fixed part spelled
    out as every column of X but the response (R's ``y ~ .``).

    ``X``: the caller's (a pandas or Dask DataFrame; columns computed for
    an offset expression are not the data's). Grouping, weight and offset
    columns are among them, as in R (``lmer(y ~ . + (1 | g), d)`` has g as
    a fixed factor too; ``. - g`` leaves it out).
    """
    from skmixed._rsyntax import expand_dot

    rhs = request.fixed_effects
    columns = getattr(X, "columns", None)
    if not isinstance(rhs, str) or columns is None:
        return request  # (a numpy X: the formula is refused later)
    response = response_name(y, default=None)
    available = [str(c) for c in columns if str(c) != response]
    expanded = expand_dot(rhs, available)
    return request if expanded == rhs else replace(request, fixed_effects=expanded)


def warn_dropped(n_dropped, n_kept):
    """missing='drop''s warning, in memory and from Dask alike."""
    warnings.warn(
        f"missing='drop': dropped {n_dropped} row(s) with NaN or inf, a "
        f"missing weight or a missing group label ({n_kept} rows "
        "remain), as R's na.omit does.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def _handle_missing(inputs, raw_groups, missing, stage, frame=None, y_name=None):
    """Raise on NaN/inf, or (missing='drop', at fit) drop those rows in place.

    A missing group label is reported by :func:`as_factor` when rows are not
    dropped. A formula's message names the data columns (``frame``'s), not
    the design columns, which are all NaN on a row with a missing value.
    """
    drop = missing == "drop" and stage == "fit"
    if not drop and _all_finite(inputs):
        return
    bad = ~np.isfinite(inputs.X).all(axis=1)
    for values in inputs.covariates.values():
        bad |= ~np.isfinite(values)
    if inputs.y is not None:
        bad |= ~np.isfinite(inputs.y)
    if inputs.offset is not None:
        bad |= ~np.isfinite(inputs.offset)
    if inputs.weights is not None:
        # NaN weights get here only with missing='drop' (na.omit drops them)
        bad |= np.isnan(inputs.weights)
    unlabelled = _unlabelled_rows(raw_groups, bad.shape[0]) if drop else None
    if not bad.any() and (unlabelled is None or not unlabelled.any()):
        return
    if not drop:
        hint = _FIT_HINT if stage == "fit" else _PREDICT_HINT
        formula = inputs.layout.formula if inputs.layout is not None else None
        found = []
        if formula is not None and frame is not None:
            if not isinstance(frame, pd.DataFrame):
                frame = pd.DataFrame(frame, columns=inputs.layout.columns)
            found = formula.missing_values(frame)
        if found:
            raise ValueError(
                f"Input X contains NaN or inf ({'; '.join(found)}). {hint}"
            )
        _report_nonfinite(inputs.X, inputs.feature_names, "X", hint)
        if inputs.covariates:
            names = list(inputs.covariates)
            stacked = np.column_stack([inputs.covariates[c] for c in names])
            _report_nonfinite(stacked, names, "X", hint)
        if inputs.offset is not None:
            name = inputs.layout.offset_column
            _report_nonfinite(inputs.offset, [name], "X (offset column)", hint)
        if inputs.y is not None:
            names = None if y_name is None else [y_name]
            _report_nonfinite(inputs.y, names, "y", hint)
        return
    if unlabelled.all():
        raise ValueError("Every row has a missing group label; nothing left to fit.")
    keep = ~(bad | unlabelled)
    if not keep.any():
        raise ValueError("Every row has NaN or inf; nothing left to fit.")
    n_dropped = int((~keep).sum())
    warn_dropped(n_dropped, int(keep.sum()))
    inputs.X = inputs.X[keep]
    inputs.covariates = {c: v[keep] for c, v in inputs.covariates.items()}
    if inputs.y is not None:
        inputs.y = inputs.y[keep]
    if inputs.offset is not None:
        inputs.offset = inputs.offset[keep]
    if inputs.weights is not None:
        inputs.weights = inputs.weights[keep]
    if raw_groups is not None:
        for name, column in raw_groups.items():
            # (a pandas array is indexed as it is: a Categorical made an
            # object array would lose its category order, the level order)
            if not isinstance(column, pd.Series | pd.api.extensions.ExtensionArray):
                column = np.asarray(column)
            raw_groups[name] = column[keep]
    inputs.n_dropped = n_dropped
    inputs.kept = keep


# -- the precision weights ------------------------------------------------------------
def check_sample_weight(sample_weight, n_samples, missing="error"):
    """Precision weights as a float array, checked as R's ``lm`` checks them.

    One weight per row, finite and not negative (R: "missing or negative
    weights not allowed"). A NaN weight is a missing value: an error, or with
    ``missing="drop"`` its row is dropped, as R's ``na.omit`` does. Zero
    weights pass; each estimator decides what they mean.
    """
    if isinstance(sample_weight, pd.DataFrame) and sample_weight.shape[1] == 1:
        sample_weight = sample_weight.iloc[:, 0]
    if isinstance(sample_weight, pd.Series):
        if not pd.api.types.is_numeric_dtype(sample_weight.dtype):
            raise ValueError(
                f"sample_weight must be numeric; got dtype {sample_weight.dtype}."
            )
        weights = sample_weight.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            weights = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                "sample_weight must be numeric: one weight per row of X."
            ) from None
    if weights.ndim == 0:
        raise ValueError(
            "sample_weight must be one weight per row of X, not a scalar "
            f"({float(weights)!r}); pass None for equal weights."
        )
    if weights.ndim != 1:
        raise ValueError(
            f"sample_weight must be 1-D (one weight per row); got shape "
            f"{weights.shape}."
        )
    if weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight has {weights.shape[0]} weights but X has {n_samples} "
            "rows; they must match."
        )
    n_nan = int(np.isnan(weights).sum())
    if n_nan and missing != "drop":
        raise ValueError(f"sample_weight contains NaN in {n_nan} row(s). {_FIT_HINT}")
    n_inf = int(np.isinf(weights).sum())
    if n_inf:
        raise ValueError(
            f"sample_weight contains inf in {n_inf} row(s); weights must be finite."
        )
    negative = np.flatnonzero(weights < 0)
    if negative.size:
        raise ValueError(
            f"sample_weight has {negative.size} negative weight(s) (first at row "
            f"{int(negative[0])}: {float(weights[negative[0]])!r}); precision "
            "weights must be >= 0, as R's lm requires."
        )
    if not (weights > 0).any():
        raise ValueError(
            "sample_weight is zero (or missing) for every row: no row carries "
            "information, nothing to fit."
        )
    return weights
