"""Grouping factors: where they come from and how their labels are coded.

A grouping name (``"Subject"``) resolves to a column of a pandas ``X`` first,
then to a column of a ``groups`` DataFrame or the name of a ``groups`` Series;
a single 1-D ``groups`` serves a model with exactly one grouping factor.
Labels become strings, as R's factor levels are, with levels ordered as R
orders them: numerically when every label is a number, otherwise byte-wise.
"""

import warnings

import numpy as np
import pandas as pd
import sklearn


class GroupsMissingWarning(UserWarning):
    """The model needs grouping factors but none reached it.

    scikit-learn drops the ``groups=`` argument on several paths (without
    metadata routing: ``cross_val_score`` gives it only to the splitter,
    ``Pipeline.score`` and string scorers drop it). The estimator then fits
    the pooled model (at ``fit``) or predicts at population level (at
    ``predict`` / ``score``) and says so with this warning. Keep the grouping
    columns in a pandas ``X``, or enable metadata routing, to avoid it.
    """


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


def _fix_hint():
    """What to do about missing groups, given whether routing is on."""
    if sklearn.get_config().get("enable_metadata_routing", False):
        return _ROUTING_FIX_HINT
    return _FIX_HINT


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
        codes = series.cat.codes.to_numpy()
        _check_no_missing(codes < 0, name)
        factor = _from_categorical(codes, series.cat.categories)
        if factor is not None:
            return factor
        return _as_factor_by_row(series, name)
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
    levels = _r_level_order(labels)
    position = pd.Index(levels, dtype=object).get_indexer(
        pd.Index(labels, dtype=object)
    )
    return pd.Categorical.from_codes(position[codes], categories=levels)


def _check_no_missing(missing, name):
    if missing.any():
        raise ValueError(
            f"Grouping factor {name!r} contains missing values "
            f"(NaN/None) in {int(missing.sum())} row(s); drop or fill them."
        )


def _from_categorical(codes, categories):
    """Keep a categorical's order, drop unused categories; None if labels clash."""
    used = np.bincount(codes, minlength=len(categories)) > 0
    levels = list(_label_strings(np.asarray(categories)[used]))
    if len(set(levels)) != len(levels):
        return None
    renumber = np.cumsum(used) - 1
    return pd.Categorical.from_codes(renumber[codes], categories=levels)


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


def _from_groups_argument(groups, name, n_names):
    """The column of ``groups`` that serves grouping factor ``name``, or None."""
    if groups is None:
        return None
    if isinstance(groups, pd.DataFrame):
        return groups[name] if name in groups.columns else None
    if isinstance(groups, pd.Series):
        return groups if (groups.name == name or n_names == 1) else None
    array = np.asarray(groups)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            "groups must be 1-D (one grouping factor) or a pandas DataFrame "
            f"whose columns are named after the grouping factors; got shape "
            f"{array.shape}."
        )
    return array if n_names == 1 else None


def _same_labels(a, b):
    return len(a) == len(b) and bool(np.all(np.asarray(a) == np.asarray(b)))


def resolve_groups(X, groups, names, n_samples, *, stage, warn=True):
    """Find the grouping columns named ``names`` in X or in ``groups``.

    Parameters
    ----------
    X : array-like or pandas.DataFrame
    groups : None, array-like, pandas.Series or pandas.DataFrame
    names : sequence of str
        Grouping factor names the model needs (components of interactions
        listed separately).
    n_samples : int
        Number of rows of X.
    stage : {"fit", "predict"}
        Used in warning messages.
    warn : bool, default=True
        Whether missing groups raise a ``GroupsMissingWarning``; False where
        the model can do without them.

    Returns
    -------
    factors : dict of str to pandas.Categorical, or None
        None when nothing was given for any name (a ``GroupsMissingWarning``
        has then been issued).
    x_columns : list of str
        Columns of X consumed as grouping factors (never features).
    """
    if not names:
        return {}, []
    x_columns_all = list(X.columns) if isinstance(X, pd.DataFrame) else []
    found, x_columns, unresolved = {}, [], []
    for name in names:
        from_x = X[name] if name in x_columns_all else None
        from_arg = _from_groups_argument(groups, name, len(names))
        if from_arg is not None and len(from_arg) != n_samples:
            raise ValueError(
                f"groups has {len(from_arg)} rows but X has {n_samples}; "
                "they must have the same number of rows."
            )
        if from_x is not None:
            x_columns.append(name)
            factor = as_factor(from_x, name)
            if from_arg is not None:
                other = as_factor(from_arg, name)
                if not _same_labels(factor.astype(str), other.astype(str)):
                    raise ValueError(
                        f"Grouping factor {name!r} is both a column of X and "
                        "given in groups=, and the two disagree; pass it once."
                    )
            found[name] = factor
        elif from_arg is not None:
            found[name] = as_factor(from_arg, name)
        else:
            unresolved.append(name)
    if not unresolved:
        return found, x_columns
    hint = _renamed_column_hint(X, unresolved[0])
    if hint:
        raise ValueError(f"Grouping column {unresolved[0]!r} not found.{hint}")
    if groups is None and not found:
        action = (
            "fitting the pooled model with fixed effects only"
            if stage == "fit"
            else "predicting at population level (fixed effects only)"
        )
        if warn:
            warnings.warn(
                f"No grouping factor given for {', '.join(map(repr, names))} at "
                f"{stage}; {action}. {_fix_hint()}",
                GroupsMissingWarning,
                stacklevel=4,
            )
        return None, x_columns
    available = list(groups.columns) if isinstance(groups, pd.DataFrame) else []
    raise ValueError(
        f"Grouping factor(s) {unresolved} not found: not a column of X "
        f"(columns: {[str(c) for c in x_columns_all]}) nor of groups "
        f"(columns: {available}). A single unnamed 1-D groups serves only a "
        "model with one grouping factor."
    )
