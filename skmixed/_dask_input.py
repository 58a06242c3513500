"""Dask input for the estimators: X, y, groups, offset and weights checked
and assembled into one dask DataFrame (:class:`DaskInput`), with the
in-memory messages for missing, duplicate and non-finite columns.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from skmixed._dask import (
    _DESIGN,
    _FEATURE,
    _GROUP,
    _W,
    _Y,
    tree_reduce,
)
from skmixed._dask_formula import _formula_columns, _learn_formula
from skmixed._formula import (
    resolve_intercept,
)
from skmixed._inputs import (
    _FIT_HINT,
    InputLayout,
    _check_columns_present,
    _check_offset_present,
    _groups_column,
    _labels,
    _offset_columns,
    _offset_values,
    _same_labels,
    _x_column_of,
    check_features_numeric,
    default_feature_named,
    feature_columns,
    find_groups,
    groups_disagree_error,
    nonfinite_counts,
    offset_name,
    raise_nonfinite,
    refuse_duplicate_columns,
    response_feature_error,
    response_name,
    warn_ignored,
    warn_weight_feature,
    with_dot_expanded,
)


# -- the input: one dask DataFrame of features, grouping columns and y --------
@dataclass
class DaskInput:
    """Dask input assembled into one frame, with what every column is.

    Attributes
    ----------
    frame : dask.dataframe.DataFrame
        Features, grouping columns and (at fit) y, partition by partition.
    features : list
        Column labels of the features in ``frame``, in X's order.
    feature_names : list of str or None
        The features' names (None for an array X: ``x0, x1, ...``).
    groups : dict
        Grouping factor name -> column label in ``frame``.
    intercept : bool or None
        Whether a formula fixed part keeps the intercept (None without one).
    """

    frame: object
    features: list
    feature_names: list | None
    groups: dict = field(default_factory=dict)
    #: A formula's intercept (None: the estimator's fit_intercept decides).
    intercept: bool | None = None
    #: Random-slope columns that are not features (read by the fit only).
    slope_columns: list = field(default_factory=list)
    #: The offset's column label (lme4's offset): y in ``frame`` is then
    #: y - offset, the response the fit reads.
    offset: object = None
    #: y's name (a named Series: lmer's ``count``), for messages; or None.
    y_name: str | None = None
    #: The offset's name in messages (its column, or its expression).
    offset_name: str | None = None
    #: The fitted FixedFormula of a formula fixed part (at fit), or None.
    formula: object = None
    #: The label of each of X's columns by name (``frame`` holds those the
    #: model reads, not necessarily first nor in X's positions).
    x_labels: dict = field(default_factory=dict)

    @property
    def names(self):
        if self.feature_names is not None:
            return list(self.feature_names)
        return [f"x{j}" for j in range(len(self.features))]

    @property
    def y_names(self):
        """``names`` for messages about y: its name as a list, or None."""
        return None if self.y_name is None else [self.y_name]


def _is_frame(obj):
    """A dask DataFrame (not a Series, not an array)."""
    return getattr(obj, "ndim", 0) == 2 and hasattr(obj, "columns")


def _dd():
    import dask.dataframe as dd

    return dd


def _as_frame(X):
    """X as a dask DataFrame (columns of an array X get private names)."""
    dd = _dd()
    if _is_frame(X):
        return X, list(X.columns), [str(c) for c in X.columns]
    if getattr(X, "ndim", 2) != 2:
        raise ValueError(
            "Expected a 2-D X, got a 1-D array. Reshape your data with "
            "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a "
            "single sample."
        )
    columns = [_FEATURE.format(j) for j in range(X.shape[1])]
    return dd.from_dask_array(X.astype(np.float64), columns=columns), columns, None


def _as_column(values, name):
    """A 1-D dask collection (Series, one-column frame, array) as a Series."""
    from skmixed._dask_rows import _shown

    dd = _dd()
    if _is_frame(values):
        if len(values.columns) != 1:
            raise ValueError(
                f"{_shown(name)} should be one column; got "
                f"{len(values.columns)} columns: "
                f"{[str(c) for c in values.columns][:5]}."
            )
        values = values[values.columns[0]]
    if not hasattr(values, "index"):
        values = dd.from_dask_array(values)
    return values.rename(name)


def _with_column(frame, X, values, label, what):
    """``frame`` (of ``X``) with ``column`` (a Series, frame or array) added
    as ``label``.

    Rows pair up by position, as in memory, where X and the column are of
    different kinds: a dask array has an index of its own (0, 1, ...), so
    that Dask's alignment by index would pair the rows of a frame whose
    index is not that with the wrong rows of an array -- a wrong model, no
    error. Collections of one kind are aligned by index, as Dask does (the
    same rows when they come from one frame).
    """
    column = _as_column(values, label)
    if hasattr(X, "index") == hasattr(values, "index"):
        _check_same_index_range(frame, column, what)
        return frame.assign(**{label: column})
    if frame.npartitions != column.npartitions:
        raise ValueError(
            f"X has {frame.npartitions} partition(s) and {what} "
            f"{column.npartitions}: a dask array and a dask DataFrame or Series "
            "pair their rows by position, which needs the same partitions. "
            "Pass the DataFrame itself (X = ddf[columns], with "
            f"{what} from ddf too): Dask pairs the rows of two frames by their "
            "index, whatever their partitions (a dd.read_parquet frame may read "
            "few columns in fewer partitions than many, so that even "
            "to_dask_array(lengths=True) cannot pair them)."
        )
    meta = frame._meta.assign(**{label: column._meta.set_axis(frame._meta.index)})
    return frame.map_partitions(
        _add_by_position, column, label, what, meta=meta, align_dataframes=False
    )


def _not_numeric(what, values, dtype):
    """The in-memory message for a y or weight that is no numbers, from the
    metadata (no example value: that would need the data)."""
    name = getattr(values, "name", None)
    named = f" ({str(name)!r})" if name is not None else ""
    text = pd.api.types.is_string_dtype(dtype) and not isinstance(
        dtype, pd.CategoricalDtype
    )
    convert = f" Convert numbers stored as text first: {what}.astype(float)."
    return (
        f"{what}{named} must be numeric (numbers or bools); got "
        f"{'text ' if text else ''}(dtype {dtype}).{convert if text else ''}"
    )


def _check_same_index_range(frame, column, what):
    """Refuse, before any data is read, a column whose index labels cannot
    be X's: Dask pairs the rows of two frames or Series by label, so a y
    with another index (say, reset to 1000, 1001, ...) would leave X's rows
    without a value, reported as missing values in some other column.
    Known divisions with other first or last labels show it."""
    if not (frame.known_divisions and column.known_divisions):
        return
    ours, theirs = frame.divisions, column.divisions
    if (ours[0], ours[-1]) != (theirs[0], theirs[-1]):
        raise ValueError(
            f"The index of {what} does not match X's: Dask pairs the rows of "
            "two DataFrames or Series by their index labels, and X's run from "
            f"{ours[0]!r} to {ours[-1]!r} while those of {what} run from "
            f"{theirs[0]!r} to {theirs[-1]!r}. Take both from one DataFrame "
            "(X = ddf[columns], y = ddf['y']) or give them the same index."
        )


def _add_by_position(part, column, label, what):
    if len(column) != len(part):
        raise ValueError(
            f"A partition of X has {len(part)} rows and the same partition of "
            f"{what} {len(column)}: they must pair up row by row."
        )
    return part.assign(**{label: column.set_axis(part.index)})


def _kind(obj):
    """What ``obj`` is, for a message: "a Dask Series", "a pandas DataFrame",
    "a numpy ndarray", "a str"."""
    package = (type(obj).__module__ or "").split(".")[0]
    package = {"dask": "Dask", "builtins": ""}.get(package, package)
    return f"a {package} {type(obj).__name__}".replace("  ", " ")


def refuse_in_memory_inputs(**inputs):
    """Refuse a Dask X with an in-memory y, groups= or sample_weight (or the
    other way round) before anything is built on them.

    Dask collections pair their rows by partition and index; an in-memory
    array has neither, and Dask then failed inside its own code
    ("'Series' object has no attribute '_meta'"). A scikit-learn
    transformer before the model (a Pipeline's StandardScaler) is how a
    user gets there without meaning to: it computes X into a NumPy array
    and passes the Dask y on.
    """
    from skmixed._dask import is_dask_collection

    given = {name: v for name, v in inputs.items() if v is not None}
    first = next(iter(given))  # X
    others = [
        name
        for name, v in given.items()
        if is_dask_collection(v) != is_dask_collection(given[first])
    ]
    if not others:
        return
    other = others[0]
    raise ValueError(
        f"{first} is {_kind(given[first])} but {other} is "
        f"{_kind(given[other])}: give every input a Dask collection of the same "
        "rows, or all in memory (y = ddf['y'], sample_weight = ddf['w'] "
        "from the frame X comes from; or X.compute(), y.compute()). A "
        "scikit-learn transformer before the model (a Pipeline step such as "
        "StandardScaler) turns a Dask X into an in-memory array: transform in "
        "the formula instead (scale(x), poly(x, 2)) or on the Dask frame."
    )


def dask_input(estimator, X, y, groups, *, reset, stage, sample_weight=None):
    """Check Dask input against its metadata and assemble it into one frame.

    Every check here reads only the collections' metadata (column names and
    dtypes), so wrong input fails before any data is read, with the
    messages of an in-memory fit.
    """
    from sklearn.utils.validation import validate_data

    from skmixed._model_formula import with_offset_column

    refuse_in_memory_inputs(X=X, y=y, groups=groups, sample_weight=sample_weight)
    frame, columns, names = _as_frame(X)
    meta = frame._meta
    refuse_duplicate_columns(meta.columns)
    if reset:
        validate_data(
            estimator,
            meta if names is not None else np.empty((0, len(columns))),
            skip_check_array=True,
            reset=True,
        )
    request = estimator._request_for(reset)  # at predict: the fit's
    if reset:
        request = estimator._fit_request = with_dot_expanded(request, X, y)
    offset_expression = False
    if reset and request.offset is not None:
        # an offset expression (log(e)) computed in each partition from its
        # own columns, as in memory (an array X is refused there); its column
        # is added after the projection below, which it would stop
        with_offset_column(X, request.offset)
        computed = with_offset_column(meta, request.offset)
        if computed is not meta:
            meta, offset_expression = computed, True
            columns, names = list(meta.columns), [str(c) for c in meta.columns]
    formula_rhs = (
        request.fixed_effects if isinstance(request.fixed_effects, str) else None
    )
    if formula_rhs is not None and names is None:
        raise ValueError(
            f"A formula for the fixed effects ({formula_rhs!r}) needs X as a "
            "DataFrame with the named columns; got a dask Array."
        )
    groups_meta = None
    if groups is not None:
        groups_meta = groups._meta if hasattr(groups, "_meta") else None
        if groups_meta is None:  # a dask array
            groups_meta = np.empty(0, dtype=groups.dtype)
    # an array X's columns are named by position, as a numpy X's in memory
    x_meta = meta if names is not None else np.empty((0, len(columns)))
    # the in-memory rules (skmixed._inputs), applied to the metadata
    factors, x_columns = find_groups(x_meta, groups_meta, request, 0, stage)
    if not reset and names is not None:
        _check_predict_columns(estimator, meta, request)
    offset, offset_columns = None, ()
    if reset and request.offset is not None:
        positional = [f"x{j}" for j in range(len(columns))]
        offset = offset_name(request, names or positional, list(x_columns))
        offset_columns = _offset_columns(request, offset, names or positional)
        if names is not None:  # (an array X is float) its dtype, as in memory
            _offset_values(meta, names, offset, type(estimator).__name__)
    all_names = names if names is not None else [f"x{j}" for j in range(len(columns))]
    # the in-memory choice of features (skmixed._inputs), from the metadata
    ignored = {}
    if formula_rhs is not None:  # (its design is built below)
        features, chosen = [], _formula_reads(formula_rhs, meta) if reset else []
        if not reset:
            feature_names = list(estimator._input_layout.feature_names)
    elif names is not None:
        features, chosen, ignored = feature_columns(
            meta, names, True, x_columns, request, offset=offset_columns
        )
        feature_names = chosen
    else:
        _, chosen, ignored = feature_columns(
            meta, all_names, False, [], request, offset=offset_columns
        )
        features = [columns[all_names.index(c)] for c in chosen]
        feature_names = None
    if names is not None:
        # the columns the model reads, before anything is built on X: Dask
        # then reads only those (a Parquet file's other columns are never
        # decoded); a projection after a map_partitions would not reach the
        # read
        read = _columns_read(
            estimator, request, reset, chosen, x_columns, offset_columns
        )
        frame = frame[[c for c in frame.columns if str(c) in read]]
    if offset_expression:
        frame = frame.map_partitions(
            with_offset_column,
            request.offset,
            meta=with_offset_column(frame._meta, request.offset),
        )
    resolved = {}
    if factors is not None:
        for name in factors:
            column = _groups_part(groups, groups_meta, name, len(factors))
            x_label = _x_label(x_meta, groups_meta, name, x_columns)
            twice = x_label is not None and column is not None
            if twice and reset:
                _check_same_groups(frame, X, x_label, column)
            elif twice and not _same_expression(X, x_label, column):
                # predict is lazy: each partition's in-memory call gets both
                # and compares them, as memory does
                label = _GROUP.format(name)
                frame = _with_column(frame, X, column, label, "groups")
                resolved[name] = label
                continue
            if name in x_columns:
                resolved[name] = name
                continue
            label = _GROUP.format(name)
            frame = _with_column(frame, X, column, label, "groups")
            resolved[name] = label
    x_frame = frame  # X (and groups): y's own values are compared with it
    if y is not None:
        dtype = _as_column(y, _Y)._meta.dtype
        if not (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        ):
            raise ValueError(_not_numeric("y", y, dtype))
        frame = _with_column(frame, X, y, _Y, "y")
    offset_label = None
    if offset is not None and y is not None:
        offset_label = columns[all_names.index(offset)]
        frame = frame.map_partitions(
            _minus_offset,
            offset_label,
            meta=frame._meta.astype({_Y: np.float64}),
        )
    if sample_weight is not None:
        dtype = _as_column(sample_weight, _W)._meta.dtype
        if not pd.api.types.is_numeric_dtype(dtype):
            raise ValueError(_not_numeric("sample_weight", sample_weight, dtype))
        frame = _with_column(frame, X, sample_weight, _W, "sample_weight")
    intercept = None
    if formula_rhs is not None:  # the formula's design, partition by partition
        if reset:
            kept = None
            if request.missing == "drop":  # R's na.omit before the levels
                slopes = [c for c in request.slope_names if c in names]
                kept = (list(resolved.values()), slopes)
            formula, levels = _learn_formula(formula_rhs, frame, list(x_columns), kept)
            kept = kept if levels else None  # (no level to learn: every row)
            intercept = resolve_intercept(
                # (FixedEffectsRegressor has no fit_intercept: always one)
                formula,
                getattr(estimator, "fit_intercept", True),
                type(estimator).__name__,
            )
            features = [_DESIGN.format(j) for j in range(len(formula.names))]
            meta_out = _formula_columns(frame._meta, formula, features)
            frame = frame.map_partitions(
                _formula_columns, formula, features, kept, meta=meta_out
            )
            feature_names = list(formula.names)
        else:
            formula = estimator._input_layout.formula
    if reset:
        warn_ignored(ignored, request)
        formula = None if formula_rhs is None else formula
        estimator.fixed_formula_ = formula
        estimator._input_layout = InputLayout(
            names is not None,
            list(all_names),
            chosen if formula is None else list(feature_names),
            chosen,
            formula,
            list(x_columns),
            offset,
        )
    if reset and formula_rhs is None:
        chosen_labels = dict(zip(chosen, features, strict=True))
        _check_default_features(X, x_frame, chosen_labels, y, sample_weight, request)
    if reset and x_columns:
        estimator.group_columns_in_ = list(x_columns)
    return DaskInput(
        frame,
        features,
        feature_names,
        resolved,
        intercept,
        offset=offset_label,
        y_name=response_name(y, None),
        offset_name=offset,
        formula=formula if reset and formula_rhs is not None else None,
        x_labels=dict(zip(all_names, columns, strict=True)),
    )


def _columns_read(estimator, request, reset, chosen, x_columns, offset_columns):
    """The names of the columns of X that a fit (``reset``) or a prediction
    reads: the features (``chosen``: their names, or the columns a formula
    reads), the grouping columns, the random slopes and the offset with an
    offset expression's inputs. A prediction reads those the fit read."""
    if not reset:
        layout = estimator._input_layout
        chosen = layout.feature_columns
        offset_columns = _offset_columns(request, layout.offset_column, layout.columns)
    return {*chosen, *x_columns, *request.slope_names, *offset_columns}


def _formula_reads(rhs, meta):
    """The columns of X the formula ``rhs`` reads; one that X lacks is the
    in-memory error (which lists X's columns)."""
    from skmixed._formula import FixedFormula

    formula = FixedFormula(rhs)
    if any(c not in meta.columns for c in formula.columns_used):
        formula._prepare(meta, fitting=True)  # the in-memory message
    return [str(c) for c in formula.columns_used]


# -- columns given twice: in X and as y, sample_weight or groups= ---------------
#: The label of a column compared with one of X's (see _same_values).
_OTHER = "__skmixed_other__"


def _same_expression(X, label, values):
    """Whether ``values`` is X's column ``label`` by its task graph
    (``fit(ddf, ddf["y"])``): told without reading a row."""
    if _is_frame(values) and len(values.columns) == 1:
        values = values[values.columns[0]]
    if not (_is_frame(X) and getattr(values, "ndim", 0) == 1):
        return False
    if not (hasattr(X, "expr") and hasattr(values, "expr")):
        return False
    return X[label].optimize()._name == values.optimize()._name


def _equal_columns(part, a, b):
    """Whether two columns of a partition hold the same numbers (NaN too)."""
    left = part[a].to_numpy(dtype=np.float64, na_value=np.nan)
    right = part[b].to_numpy(dtype=np.float64, na_value=np.nan)
    return bool(np.array_equal(left, right, equal_nan=True))


def _equal_labels(part, a, b):
    """Whether two grouping columns of a partition hold the same labels."""
    if not len(part):
        return True
    return _same_labels(part[a], part[b])


def _same_values(X, frame, label, values, what, equal=_equal_columns):
    """Whether column ``label`` of X (``frame`` holds it) and the collection
    ``values`` hold the same values: from the task graphs when ``values``
    is that column, else by one pass over the two columns (run only when
    their names agree, which is rare)."""
    import dask

    if _same_expression(X, label, values):
        return True
    pair = _with_column(frame[[label]], X, values, _OTHER, what)
    parts = [dask.delayed(equal)(part, label, _OTHER) for part in pair.to_delayed()]
    return all(dask.compute(*parts))


def _check_default_features(X, frame, features, y, sample_weight, request):
    """The in-memory rules for a default feature set (``fixed_effects=None``)
    holding y (an error) or the weights (a warning) as a column of X.

    ``features``: feature name -> its label in ``frame``. As in memory, a
    name and the values must both match; the values are read only when the
    names match and the column is not X's own (``fit(ddf, ddf["y"])`` is
    refused before any row is read).
    """
    name = default_feature_named(y, list(features), request)
    if name is not None and _same_values(X, frame, features[name], y, "y"):
        raise response_feature_error(name, request)
    if sample_weight is None:
        return
    name = default_feature_named(sample_weight, list(features), request)
    label = None if name is None else features[name]
    if label is not None and _same_values(
        X, frame, label, sample_weight, "sample_weight"
    ):
        warn_weight_feature(name, request)


def _groups_part(groups, groups_meta, name, n_names):
    """The collection in ``groups=`` that serves the factor ``name`` (the
    in-memory rule on the metadata), or None."""
    served = _groups_column(groups_meta, name, n_names)
    if served is None:
        return None
    if _is_frame(groups):
        return groups[served.name]
    return groups


def _x_label(x_meta, groups_meta, name, x_columns):
    """The column of X that holds the factor ``name`` (the in-memory rule:
    its own name, or the name of the Series given as ``groups=``)."""
    if not isinstance(x_meta, pd.DataFrame):
        return None
    label = _x_column_of(x_meta, groups_meta, name)
    return label if label is not None and str(label) in x_columns else None


def _check_same_groups(frame, X, x_label, column):
    """A grouping column of X also given in ``groups=`` must agree with it,
    as in memory (one pass over the two columns, unless ``groups=`` is X's
    column itself, as in ``groups=ddf["g"]``)."""
    if not _same_values(X, frame, x_label, column, "groups", _equal_labels):
        raise groups_disagree_error(x_label)


def fit_input(model, X, y, groups, sample_weight):
    """:func:`dask_input` at fit."""
    return dask_input(
        model, X, y, groups, reset=True, stage="fit", sample_weight=sample_weight
    )


def _check_predict_columns(estimator, meta, request):
    """The in-memory predict's checks that X has the offset and every column
    fit read, on the metadata: before a partition is read."""
    from skmixed._model_formula import with_offset_column

    meta = with_offset_column(meta, request.offset)  # an expression's column
    columns = [str(c) for c in meta.columns]
    layout = estimator._input_layout
    _check_offset_present(columns, layout, request, True)
    _check_columns_present(meta, columns, layout, request, True)
    if layout.formula is None:
        check_features_numeric(meta, _labels(meta, layout.feature_columns))


def _minus_offset(part, label):
    """The partition with y - offset as its response (lme4 fits that); a
    missing offset makes the response missing: with missing='drop' the row
    is dropped, otherwise :func:`raise_nonfinite_response` names the offset."""
    offset = part[label].to_numpy(dtype=np.float64, na_value=np.nan)
    y = part[_Y].to_numpy(dtype=np.float64, na_value=np.nan)
    return part.assign(**{_Y: y - offset})


def _nonfinite_offsets(part, label):
    offset = part[label].to_numpy(dtype=np.float64, na_value=np.nan)
    return nonfinite_counts(offset[:, None])


def raise_nonfinite_features(inp, counts, names):
    """The in-memory error for NaN or inf in the features (``counts``, per
    column, summed over the partitions).

    A formula's design is NaN on every column of a row with a missing
    value, so, as in memory, the message names the data columns the
    formula reads: one more pass counts them (only on this error path).
    """
    formula = inp.formula
    if formula is not None and counts.any():
        import dask

        columns = list(formula.columns_used)
        parts = [
            dask.delayed(formula.missing_counts)(part)
            for part in inp.frame[columns].to_delayed()
        ]
        found = formula.missing_words(tree_reduce(parts, np.add).compute())
        if found:
            raise ValueError(
                f"Input X contains NaN or inf ({'; '.join(found)}). {_FIT_HINT}"
            )
    raise_nonfinite(counts, names, "X", _FIT_HINT)


def raise_nonfinite_response(inp, counts):
    """The in-memory error for NaN or inf in the response the fit read
    (``counts``, summed over the partitions), or first in the offset.

    That response is y - offset: a missing offset made it missing. Only
    then one more pass counts the offset's rows in every partition, for
    the in-memory message (which names the offset before y).
    """
    if inp.offset is not None and counts.any():
        import dask

        parts = [
            dask.delayed(_nonfinite_offsets)(part, inp.offset)
            for part in inp.frame.to_delayed()
        ]
        offsets = tree_reduce(parts, np.add).compute()
        raise_nonfinite(offsets, [inp.offset_name], "X (offset column)", _FIT_HINT)
    raise_nonfinite(counts, inp.y_names, "y", _FIT_HINT)


def _response(inp, frame):
    """y of the fit's rows: the frame holds y - offset when there is one."""
    return frame[_Y] if inp.offset is None else frame[_Y] + frame[inp.offset]
