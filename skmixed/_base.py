"""Estimator plumbing shared by the three regressors.

Input checks happen here, once, at the edge: the numeric features become a
float array with their names, the grouping factors become categoricals, and
every problem is reported with the column (and the number of rows) at fault.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from skmixed._groups import _from_groups_argument, resolve_groups

_MISSING_OPTIONS = ("error", "drop")


@dataclass
class GroupedData:
    """Validated input: numeric features, response, grouping factors."""

    X: np.ndarray
    feature_names: list
    y: np.ndarray | None
    factors: dict | None
    n_dropped: int = 0


def _column_label(feature_names, j):
    return repr(feature_names[j]) if feature_names is not None else f"{j}"


def _check_numeric_frame(frame):
    """Reject feature columns that are not numbers, naming them."""
    bad = [
        str(c)
        for c in frame.columns
        if not (
            pd.api.types.is_numeric_dtype(frame[c].dtype)
            or pd.api.types.is_bool_dtype(frame[c].dtype)
        )
    ]
    if bad:
        raise ValueError(
            f"Column(s) {bad} of X are not numeric. A grouping column must be "
            "named in the model (e.g. group='Subject', or in the random-effects "
            "spec); any other categorical feature must be encoded first (e.g. "
            "with OneHotEncoder)."
        )


def _features_as_float(X_features):
    """Numeric features as a C-contiguous float64 array (NaN for pandas NA)."""
    if isinstance(X_features, pd.DataFrame):
        _check_numeric_frame(X_features)
        return X_features.to_numpy(dtype=np.float64, na_value=np.nan)
    return X_features


def _nonfinite_rows(array):
    return ~np.isfinite(array)


_FIT_HINT = (
    "Remove or impute those rows, or use missing='drop' to drop them as R's "
    "na.omit does."
)
# missing='drop' drops rows at fit only: predict returns one value per row.
_PREDICT_HINT = "Remove or impute those rows: predict needs one value per row."


def _report_nonfinite(array, names, what, hint=_FIT_HINT):
    """Raise a ValueError naming the column(s) and row counts with NaN or inf."""
    bad = _nonfinite_rows(array)
    if array.ndim == 1:
        bad = bad[:, None]
        array = array[:, None]
    columns = np.flatnonzero(bad.any(axis=0))
    if columns.size == 0:
        return
    parts = []
    for j in columns[:5]:
        n_nan = int(np.isnan(array[:, j]).sum())
        n_inf = int(bad[:, j].sum()) - n_nan
        kinds = " and ".join(
            f"{kind} in {count} row(s)"
            for kind, count in (("NaN", n_nan), ("inf", n_inf))
            if count
        )
        where = f"column {_column_label(names, j)}" if names is not None else what
        parts.append(f"{where}: {kinds}")
    raise ValueError(f"Input {what} contains NaN or inf ({'; '.join(parts)}). {hint}")


class GroupedRegressor(RegressorMixin, BaseEstimator):
    """Base class: grouped input handling, ``score`` and metadata routing.

    Subclasses implement ``_group_names()`` (the grouping factors the model
    needs, possibly none), ``_fit(data)`` and ``_predict(data)``.
    """

    # With sklearn.set_config(enable_metadata_routing=True), meta-estimators
    # route ``groups`` to fit, predict and score without set_*_request calls.
    __metadata_request__fit = {"groups": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__score = {"groups": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        return tags

    # -- input validation -------------------------------------------------
    def _group_names(self):
        return []

    def _groups_optional(self, reset):
        """Whether missing groups are expected (no GroupsMissingWarning)."""
        return False

    def _validate(self, X, y=None, groups=None, *, reset, stage):
        """Validate X (and y) and resolve the grouping factors."""
        if reset and y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None."
            )
        missing = getattr(self, "missing", "error")
        if missing not in _MISSING_OPTIONS:
            raise ValueError(
                f"missing must be one of {_MISSING_OPTIONS}; got {missing!r}."
            )
        if isinstance(X, pd.DataFrame) and not reset:
            X = self._reorder_columns(X)
        X = _as_two_dimensional(X)
        validate_data(self, X, skip_check_array=True, reset=reset)
        n_samples = _num_samples(X)
        n_unlabelled = 0
        if missing == "drop" and stage == "fit":
            X, y, groups, n_unlabelled = _drop_unlabelled_rows(
                X, y, groups, self._group_names(), n_samples
            )
            n_samples = _num_samples(X)
        factors, group_columns = resolve_groups(
            X,
            groups,
            self._group_names(),
            n_samples,
            stage=stage,
            warn=not self._groups_optional(reset),
        )
        if isinstance(X, pd.DataFrame):
            array, names = _feature_array(X, group_columns)
        else:
            array = check_array(
                X, dtype=np.float64, ensure_all_finite=False, ensure_min_features=0
            )
            names = None
        if array.shape[1] == 0 and not self._allows_no_features():
            raise ValueError("X has no feature columns (0 columns after grouping).")
        y_array = None
        if y is not None:
            y_array = _check_response(y, n_samples)
        if reset and group_columns:
            self.group_columns_in_ = list(group_columns)
        data = GroupedData(array, names, y_array, factors)
        return self._handle_missing(data, missing, stage, n_unlabelled)

    def _allows_no_features(self):
        return True

    def _reorder_columns(self, X):
        """Columns in another order at predict: take them by name, as R does."""
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is None:
            return X
        if list(X.columns) != list(fitted) and set(X.columns) >= set(fitted):
            return X[list(fitted)]
        return X

    def _handle_missing(self, data, missing, stage, n_unlabelled=0):
        """Raise on NaN/inf, or (missing='drop', at fit) drop those rows.

        ``n_unlabelled`` rows without a group label were already dropped.
        """
        bad_rows = ~np.isfinite(data.X).all(axis=1)
        if data.y is not None:
            bad_rows |= ~np.isfinite(data.y)
        if not bad_rows.any() and not n_unlabelled:
            return data
        if bad_rows.any() and (missing == "error" or stage != "fit"):
            hint = _FIT_HINT if stage == "fit" else _PREDICT_HINT
            names = data.feature_names or _positional(data.X)
            _report_nonfinite(data.X, names, "X", hint)
            if data.y is not None:
                _report_nonfinite(data.y, None, "y", hint)
        keep = ~bad_rows
        if not keep.any():
            raise ValueError("Every row has NaN or inf; nothing left to fit.")
        n_dropped = int(bad_rows.sum()) + n_unlabelled
        warnings.warn(
            f"missing='drop': dropped {n_dropped} row(s) with NaN or inf or a "
            f"missing group label ({int(keep.sum())} rows remain), as R's "
            "na.omit does.",
            UserWarning,
            stacklevel=4,
        )
        factors = None
        if data.factors is not None:
            factors = {
                name: factor[keep].remove_unused_categories()
                for name, factor in data.factors.items()
            }
        y = data.y[keep] if data.y is not None else None
        return GroupedData(data.X[keep], data.feature_names, y, factors, n_dropped)

    # -- public API ---------------------------------------------------------
    def fit(self, X, y, groups=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Numeric features. A pandas X may also hold the grouping columns
            named by the model; they are never used as numeric features.
        y : array-like of shape (n_samples,)
            Response.
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
            Grouping factor(s) not given as columns of X.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        data = self._validate(X, y, groups, reset=True, stage="fit")
        self.n_dropped_ = data.n_dropped
        self._fit(data)
        return self

    def predict(self, X, groups=None):
        """Predict the response for X.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Features (and grouping columns) as at fit.
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
            Grouping factor(s) not given as columns of X.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predicted response.
        """
        check_is_fitted(self)
        data = self._validate(X, None, groups, reset=False, stage="predict")
        return self._predict(data)

    def score(self, X, y, groups=None, sample_weight=None):
        """Coefficient of determination R² of the predictions.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
            R² of ``self.predict(X, groups)`` against ``y``.
        """
        from skmixed import _dask

        if _dask.any_dask(X, y, groups):
            return _dask.score(self, X, y, groups, sample_weight)
        y_array = _check_response(y, _num_samples(X))
        _report_nonfinite(y_array, None, "y", _PREDICT_HINT)
        return r2_score(y_array, self.predict(X, groups), sample_weight=sample_weight)


def _feature_array(X, group_columns):
    """The non-grouping columns of a DataFrame as float64, and their names.

    Column by column for the usual few columns: building the feature frame
    (``X.drop``) and re-checking the array cost more than a small fit.
    """
    drop = set(group_columns)
    columns = [c for c in X.columns if c not in drop]
    if len(columns) > 64 or X.columns.has_duplicates:
        features = X.drop(columns=group_columns)
        array = check_array(
            _features_as_float(features),
            dtype=np.float64,
            ensure_all_finite=False,
            ensure_min_features=0,
        )
        return array, [str(c) for c in features.columns]
    series = [X[c] for c in columns]
    bad = [
        str(c)
        for c, col in zip(columns, series, strict=True)
        if not (
            pd.api.types.is_numeric_dtype(col.dtype)
            or pd.api.types.is_bool_dtype(col.dtype)
        )
    ]
    if bad:
        _check_numeric_frame(X[columns])
    if X.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={(0, len(columns))}) while a "
            "minimum of 1 is required."
        )
    array = np.empty((X.shape[0], len(columns)))
    for j, col in enumerate(series):
        array[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return array, [str(c) for c in columns]


def _positional(array):
    return [f"x{j}" for j in range(array.shape[1])]


def _take_rows(values, rows):
    """Rows of a DataFrame, Series or array-like (None stays None)."""
    if values is None:
        return None
    if isinstance(values, pd.DataFrame | pd.Series):
        return values.iloc[rows]
    return np.asarray(values)[rows]


def _drop_unlabelled_rows(X, y, groups, names, n_samples):
    """missing='drop': rows whose group label is missing go, as with na.omit.

    Returns ``(X, y, groups, n_dropped)``. A grouping column whose length
    disagrees with X is left for :func:`resolve_groups` to report.
    """
    missing = np.zeros(n_samples, dtype=bool)
    x_columns = list(X.columns) if isinstance(X, pd.DataFrame) else []
    for name in names:
        column = X[name] if name in x_columns else None
        if column is None:
            column = _from_groups_argument(groups, name, len(names))
        if column is not None and len(column) == n_samples:
            missing |= np.asarray(pd.isna(pd.Series(column)), dtype=bool)
    if not missing.any():
        return X, y, groups, 0
    if missing.all():
        raise ValueError("Every row has a missing group label; nothing left to fit.")
    rows = np.flatnonzero(~missing)
    return (
        _take_rows(X, rows),
        _take_rows(y, rows),
        _take_rows(groups, rows),
        int(missing.sum()),
    )


def _num_samples(X):
    if hasattr(X, "shape") and len(X.shape) >= 1:
        return X.shape[0]
    try:
        return len(X)
    except TypeError:
        raise ValueError(
            f"Expected array-like X (array, DataFrame or list of rows); got "
            f"{type(X).__name__}."
        ) from None


def _as_two_dimensional(X):
    """Array-likes without a shape become arrays; 1-D X is refused."""
    if not isinstance(X, pd.DataFrame) and not hasattr(X, "shape"):
        if hasattr(X, "__array__"):
            X = np.asarray(X)
    if getattr(X, "ndim", 2) == 1:
        raise ValueError(
            "Expected a 2-D X, got a 1-D array. Reshape your data with "
            "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a "
            "single sample."
        )
    return X


def _check_response(y, n_samples):
    """y as a finite-checked-later 1-D float array of the right length."""
    if isinstance(y, pd.DataFrame) and y.shape[1] == 1:
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        if not (
            pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y)
        ):
            raise ValueError(f"y must be numeric; got dtype {y.dtype}.")
        y = y.to_numpy(dtype=np.float64, na_value=np.nan)
    if not (isinstance(y, np.ndarray) and y.dtype == np.float64 and y.ndim == 1):
        y = check_array(y, ensure_2d=False, dtype=np.float64, ensure_all_finite=False)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; "
            "using y.ravel().",
            DataConversionWarning,
            stacklevel=5,
        )
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array (one response); got shape {y.shape}.")
    if y.shape[0] != n_samples:
        raise ValueError(
            f"X has {n_samples} rows but y has {y.shape[0]}; they must match."
        )
    return y
