"""Estimator plumbing shared by the three regressors.

Input checks happen once, at the edge, in :func:`skmixed._inputs.prepare_inputs`:
the estimator says what it needs (:meth:`GroupedRegressor._input_request`)
and gets back one validated bundle (features, response, grouping factors,
random-slope columns). This module adds parameter validation, ``score`` and
metadata routing.
"""

import dataclasses

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted, validate_data

from skmixed._groups import index_labels
from skmixed._inputs import (
    _PREDICT_HINT,
    InputRequest,
    ModelInputs,
    _as_two_dimensional,
    _check_response,
    _num_samples,
    _report_nonfinite,
    as_pandas,
    prepare_inputs,
    with_dot_expanded,
)
from skmixed._malloc import small_pages_for

#: Validated input (the name the estimators' ``_fit(data)`` hooks know).
GroupedData = ModelInputs

#: Parameter constraints every estimator shares.
COMMON_CONSTRAINTS = {
    "fixed_effects": [None, str, list, tuple],
    "missing": [StrOptions({"error", "drop"})],
}

#: Class -> the names of its __init__ parameters (see _get_param_names).
_PARAM_NAMES = {}
#: (class, parameters) found valid (see GroupedRegressor._validate_params).
_VALID_PARAMS = set()

__all__ = ["GroupedData", "GroupedRegressor", "_check_response"]


#: What a fit from Dask keeps of its rows (skmixed._dask_lm,
#: skmixed.mixed.dask_fit); an in-memory fit drops it.
_DASK_STATE = ("_dask_input", "_dask_weighted", "_dask_rows", "_dask_weights_vary")


class GroupedRegressor(RegressorMixin, BaseEstimator):
    """Base class: grouped input handling, ``score`` and metadata routing.

    Subclasses implement ``_group_names()`` (the grouping factors the model
    needs, possibly none), ``_fit(data)`` and ``_predict(data)``.
    """

    # With sklearn.set_config(enable_metadata_routing=True), meta-estimators
    # route ``groups`` to fit, predict and score without set_*_request calls.
    # ``sample_weight`` travels the same way: R's prior weights at fit, and
    # the weights of the R² at score (summary.lm's R² of a weighted fit is
    # the weighted one; set_score_request(sample_weight=False) unweights it).
    __metadata_request__fit = {"groups": True, "sample_weight": True}
    __metadata_request__predict = {"groups": True}
    __metadata_request__score = {"groups": True, "sample_weight": True}

    # scikit-learn's parameter validation; subclasses extend it.
    _parameter_constraints = dict(COMMON_CONSTRAINTS)

    @classmethod
    def _get_param_names(cls):
        # scikit-learn reads __init__'s signature (inspect.signature) at every
        # get_params: every fit validates its parameters, every clone copies
        # them. A class's signature does not change, so read it once.
        names = _PARAM_NAMES.get(cls)
        if names is None:
            names = _PARAM_NAMES[cls] = tuple(super()._get_param_names())
        return list(names)

    def _validate_params(self):
        # scikit-learn's check builds every constraint object at each call;
        # a set of hashable values (strings, numbers, None) found valid for
        # this class is not checked again (a list fixed_effects always is).
        params = self.get_params(deep=False)
        try:
            key = (type(self), tuple((k, type(v), v) for k, v in params.items()))
            known = key in _VALID_PARAMS
        except TypeError:
            key, known = None, False
        if known:
            return
        validate_parameter_constraints(
            self._parameter_constraints, params, caller_name=type(self).__name__
        )
        if key is not None and len(_VALID_PARAMS) < 1024:
            _VALID_PARAMS.add(key)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        return tags

    # -- input validation -------------------------------------------------
    def _group_names(self):
        """Grouping factors the model needs (components listed separately)."""
        return []

    def _slope_names(self):
        """Numeric columns the random part reads (random slopes)."""
        return []

    def _groups_optional(self, reset):
        """Whether missing groups are expected (no GroupsMissingWarning)."""
        return False

    def _response_hint(self):
        """What to say after refusing a y that is not numbers."""
        return ""

    def _input_request(self, reset):
        """What this model asks of its input (see :class:`InputRequest`)."""
        return InputRequest(
            estimator=type(self).__name__,
            group_names=tuple(self._group_names()),
            fixed_effects=getattr(self, "fixed_effects", None),
            slope_names=tuple(self._slope_names()),
            groups_optional=self._groups_optional(reset),
            missing=getattr(self, "missing", "error"),
            offset=getattr(self, "offset", None),
            response_hint=self._response_hint(),
            random_effects=getattr(self, "random_effects", None),
        )

    def _keep_fit_request(self):
        """Keep what the parameters ask of the input, as this fit reads it.

        scikit-learn's set_params changes what the next fit does: until
        then, predict and the scorers read the grouping factors, slopes,
        features and random-effects terms the model was fitted with, not a
        changed random_effects. Every fit path calls this (the Dask fit too).
        """
        self._fit_request = self._input_request(True)
        return self._fit_request

    def _request_for(self, reset):
        """At fit, the parameters' request (kept); later, the one fit used."""
        if reset:
            return self._keep_fit_request()
        fitted = getattr(self, "_fit_request", None)
        if fitted is None:  # (unpickled from a version that kept none)
            return self._input_request(reset)
        return dataclasses.replace(fitted, groups_optional=self._groups_optional(reset))

    def _validate(
        self,
        X,
        y=None,
        groups=None,
        *,
        reset,
        stage=None,
        sample_weight=None,
        population=False,
    ):
        """The validated bundle of X, y and groups (at fit: keep the layout).

        ``population=True`` (a prediction without the random effects) reads
        groups given but does not warn when none are: the caller asked for
        the population level.
        """
        from skmixed._model_formula import with_offset_column

        X, y, groups = as_pandas(X), as_pandas(y), as_pandas(groups)
        request = self._request_for(reset)
        if reset:
            request = self._fit_request = with_dot_expanded(request, X, y)
        if population:
            request = dataclasses.replace(request, groups_optional=True)
        # An offset given as an R expression ("log(exposure)", lme4's
        # offset(log(exposure))) is computed from these rows' columns.
        with_offset = with_offset_column(X, request.offset)
        if reset:
            X = _as_two_dimensional(X)
            # scikit-learn's n_features_in_ / feature_names_in_ describe the
            # caller's X, not the column computed for the offset
            names = _reset_feature_names(self, X)
            if with_offset is not X:
                X, names = with_offset, None
            inputs = prepare_inputs(
                X, y, groups, request, sample_weight=sample_weight, column_names=names
            )
            self._input_layout = inputs.layout
            # the fitted FixedFormula of a string fixed_effects (else None)
            self.fixed_formula_ = inputs.layout.formula
            if inputs.layout.group_columns:
                self.group_columns_in_ = list(inputs.layout.group_columns)
            elif hasattr(self, "group_columns_in_"):
                del self.group_columns_in_
            return inputs
        return prepare_inputs(
            with_offset, y, groups, request, layout=self._input_layout
        )

    def _prediction_data(self, X, groups, include_random=True):
        """The validated bundle of rows to predict, with or without the
        random effects (without them, missing groups are no warning)."""
        return self._validate(
            X, None, groups, reset=False, stage="predict", population=not include_random
        )

    # -- public API ---------------------------------------------------------
    def fit(self, X, y, groups=None, sample_weight=None):
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
        sample_weight : array-like of shape (n_samples,), default=None
            Precision weights, R's ``weights=``: row i has residual variance
            ``sigma² / sample_weight[i]``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        with small_pages_for(X):  # fresh huge pages cost large fits most
            data = self._validate(
                X, y, groups, reset=True, stage="fit", sample_weight=sample_weight
            )
            self._weights_name = weights_name(sample_weight)
            self.n_dropped_ = data.n_dropped
            # a fit from Dask before this one left its frame: summary() and
            # anova() would read those rows for this fit's
            for name in _DASK_STATE:
                self.__dict__.pop(name, None)
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
        from skmixed import _dask, _dask_predict

        if _dask.any_dask(X, groups):
            return _dask_predict.predict(self, X, groups)
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
        from skmixed import _dask, _dask_predict

        if _dask.any_dask(X, y, groups):
            return _dask_predict.score(self, X, y, groups, sample_weight)
        y_array = _check_response(y, _num_samples(X))
        _report_nonfinite(y_array, None, "y", _PREDICT_HINT)
        y_pred = self.predict(X, groups)
        if sample_weight is None:
            score = _r2_score(y_array, y_pred)
            if score is not None:
                return score
        return r2_score(y_array, y_pred, sample_weight=sample_weight)


def _r2_score(y_true, y_pred):
    """``sklearn.metrics.r2_score`` of checked 1-D float arrays, unweighted.

    The same operations in the same order (one column, sums down it), so
    the same number, without the metric's input checks and parameter
    validation, which cost a small model's score ~50x more than the
    arithmetic (in cross-validation, every fold's). None when r2_score must
    decide (fewer than two rows: it warns; predictions not finite: it
    raises).
    """
    if y_true.shape[0] < 2 or not np.isfinite(y_pred).all():
        return None
    y_true = y_true.reshape(-1, 1)
    numerator = np.sum((y_true - y_pred.reshape(-1, 1)) ** 2, axis=0)
    denominator = np.sum((y_true - np.average(y_true, axis=0)) ** 2, axis=0)
    # r2_score's force_finite: perfect predictions score 1, a constant y 0
    if numerator[0] == 0:
        return 1.0
    if denominator[0] == 0:
        return 0.0
    return float(1 - numerator[0] / denominator[0])


def _reset_feature_names(estimator, X):
    """Set ``n_features_in_`` and ``feature_names_in_`` as at fit.

    What ``validate_data(estimator, X, skip_check_array=True, reset=True)``
    sets; a pandas X whose column names are all strings (the usual case) and
    a 2-D numpy X take a direct path, since scikit-learn's generic container
    check costs more than the rest of a small fit's input checks.

    Returns the column names (an object array) when they are all strings,
    else None: the input path reads them from here, not again from X.
    """
    if isinstance(X, pd.DataFrame) and X.shape[1]:
        names = index_labels(X.columns)
        if all(type(name) is str for name in names):
            estimator.feature_names_in_ = names.copy()  # the caller's own
            estimator.n_features_in_ = X.shape[1]
            return names
    elif isinstance(X, np.ndarray) and X.ndim == 2:
        # a numpy X has no names: forget those of an earlier fit
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        estimator.n_features_in_ = X.shape[1]
        return None
    validate_data(estimator, X, skip_check_array=True, reset=True)
    return None


def fixed_intercept(fit_intercept, data, estimator="The model"):
    """Whether the fixed part has an intercept.

    The formula's when ``fixed_effects`` is a formula (``"0 + x"`` has
    none; see :func:`skmixed._formula.resolve_intercept`), else
    ``fit_intercept``.
    """
    if data.layout is None or data.layout.formula is None:
        return bool(fit_intercept)
    from skmixed._formula import resolve_intercept

    return bool(resolve_intercept(data.layout.formula, fit_intercept, estimator))


def weights_name(sample_weight):
    """What summaries call the weights: a named Series' name, else
    ``"sample_weight"`` (None without weights)."""
    if sample_weight is None:
        return None
    name = getattr(sample_weight, "name", None)
    return str(name) if name is not None else "sample_weight"


def fitted_weights(estimator):
    """The precision weights a fitted model was fitted with, or None."""
    weights = getattr(estimator, "_summary_weights", None)  # lm fits
    if weights is None:
        weights = getattr(estimator, "_weights", None)  # MixedLMRegressor
    return weights
