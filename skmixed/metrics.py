"""Scorers for choosing grouped models by cross-validation.

A scorer is called as ``scorer(estimator, X, y, groups=None)`` and returns a
number where higher is better, so each of these works as ``scoring=`` in
:func:`~sklearn.model_selection.cross_validate` and
:class:`~sklearn.model_selection.GridSearchCV`.

- :func:`marginal_log_likelihood`: the log-density of the held-out rows with
  the random effects integrated out. It answers "how well does the model
  describe *new groups*?" (split with ``GroupKFold``) and, unlike R², it can
  tell random-effect structures apart.
- :func:`conditional_log_likelihood`: the log-density of the held-out rows
  given each known group's conditional modes. It answers "how well does the
  model predict *new rows of known groups*?".
- :func:`make_grouped_scorer`: any scikit-learn metric of predictions
  (``r2_score``, ``mean_absolute_error``, ``log_loss`` of ``predict_proba``
  ...) as a scorer that hands the groups to the model.

Both log-likelihoods also score the GLMMs (:class:`~skmixed.MixedGLMRegressor`,
:class:`~skmixed.MixedLogisticRegression`): with the family's own density
(binomial, Poisson), the marginal one integrating each scored group's random
effects out by the Laplace approximation (or adaptive Gauss-Hermite
quadrature for a model fitted with ``nAGQ > 1``).

How the groups reach the scorer. Grouping columns kept in a pandas ``X``
always do. The ``groups=`` argument does only with
``sklearn.set_config(enable_metadata_routing=True)``: these scorers request
``groups`` by default, as the estimators do, so no ``set_score_request``
call is needed. The two log-likelihood scorers also request
``sample_weight`` (the scored rows' precision weights, as at fit). Where no
groups arrive, the estimator's
:class:`~skmixed.GroupsMissingWarning` says so.

Pipelines. Given a :class:`~sklearn.pipeline.Pipeline` (or a fitted search
such as ``GridSearchCV``), the scorers transform ``X`` with every step but the
last (``pipeline[:-1].transform(X)``) and score the last step, which must be
one of skmixed's estimators for the log-likelihoods.
"""

import copy
import inspect

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import MetadataRequest, _routing_enabled

from skmixed._base import GroupedRegressor, _check_response, fitted_weights
from skmixed._groups import as_factor
from skmixed._inputs import check_sample_weight

__all__ = [
    "conditional_log_likelihood",
    "make_grouped_scorer",
    "marginal_log_likelihood",
]

_LOG_2PI = np.log(2.0 * np.pi)


# -- scorer objects that carry metadata requests ------------------------------
class _GroupedScorer:
    """A scorer ``(estimator, X, y, groups=None, **metadata)`` with requests.

    Parameters
    ----------
    score : callable
        ``score(estimator, X, y, groups=None, **metadata)`` -> float, higher
        is better.
    requests : dict
        Metadata requested by the scorer under routing, ``{param: alias}``.
    name : str
        Shown in ``repr``.
    """

    def __init__(self, score, requests, name):
        self._score = score
        self._requests = dict(requests)
        self._name = name

    def __call__(self, estimator, X, y, groups=None, **metadata):
        return self._score(estimator, X, y, groups=groups, **metadata)

    def __repr__(self):
        return self._name

    def get_metadata_routing(self):
        """Metadata this scorer requests: ``groups`` unless told otherwise.

        Returns
        -------
        sklearn.utils.metadata_routing.MetadataRequest
        """
        request = MetadataRequest(owner=self._name)
        for param, alias in self._requests.items():
            request.score.add_request(param=param, alias=alias)
        return request

    def set_score_request(self, **requests):
        """A copy of the scorer with other metadata requests.

        Unlike scikit-learn's scorers this returns a new scorer and leaves
        this one unchanged (the module-level scorers are shared).

        Parameters
        ----------
        **requests : dict
            ``param=alias`` with alias ``True``, ``False``, ``None`` or a
            string, e.g. ``groups="subject"`` or ``sample_weight=True``.

        Returns
        -------
        scorer
        """
        if not _routing_enabled():
            raise RuntimeError(
                "set_score_request is only available when metadata routing is "
                "enabled: sklearn.set_config(enable_metadata_routing=True)."
            )
        new = copy.copy(self)
        new._requests = {**self._requests, **requests}
        return new


def _carries_requests(func):
    """Give a scorer function ``get_metadata_routing``/``set_score_request``.

    scikit-learn asks any scorer for ``get_metadata_routing()``; a plain
    function has none and would never receive ``groups``. The likelihood
    scorers also request ``sample_weight`` by default: precision weights are
    part of the likelihood, as they are of the fit.
    """
    requests = {"groups": True, "sample_weight": True}
    scorer = _GroupedScorer(func, requests, func.__name__)
    func.get_metadata_routing = scorer.get_metadata_routing
    func.set_score_request = scorer.set_score_request
    return func


# -- reaching the model ------------------------------------------------------------
def _final_estimator(estimator, X):
    """The model that predicts, and X as it sees it.

    A Pipeline's steps before the last transform X; a fitted search
    (``GridSearchCV``) stands for its ``best_estimator_``.
    """
    while True:
        if isinstance(estimator, Pipeline):
            if len(estimator.steps) > 1:
                X = estimator[:-1].transform(X)
            estimator = estimator.steps[-1][1]
        elif hasattr(estimator, "best_estimator_"):
            estimator = estimator.best_estimator_
        else:
            return estimator, X


def _accepts_groups(estimator):
    try:
        parameters = inspect.signature(estimator.predict).parameters
    except (TypeError, ValueError):
        return False
    return "groups" in parameters


def _predict(estimator, X, groups, **kwargs):
    """``estimator.predict`` with groups when the model takes them."""
    if groups is not None or kwargs:
        return estimator.predict(X, groups=groups, **kwargs)
    return estimator.predict(X)


def _gaussian_loglik(residuals, sigma, weights=None):
    """Sum of log N(r_i; 0, σ²/w_i) (w = 1 without weights).

    Rows of weight 0 (infinite variance) carry no information and are left
    out, as R's ``logLik.lm`` leaves them out.
    """
    if weights is None:
        n = residuals.shape[0]
        rss = float(residuals @ residuals)
        return -0.5 * (n * (_LOG_2PI + 2.0 * np.log(sigma)) + rss / sigma**2)
    keep = weights > 0
    residuals, weights = residuals[keep], weights[keep]
    n = residuals.shape[0]
    wrss = float(weights @ residuals**2)
    log_w = float(np.log(weights).sum())
    return -0.5 * (n * (_LOG_2PI + 2.0 * np.log(sigma)) - log_w + wrss / sigma**2)


def _model_kind(estimator):
    """ "mixed" (MixedLMRegressor), "glmm" (the GLMMs), "lm" (least squares)."""
    # Imported here: skmixed.mixed imports the package's shared modules.
    from skmixed.glmm.estimator import _MixedGLMBase
    from skmixed.mixed.estimator import MixedLMRegressor

    if isinstance(estimator, _MixedGLMBase):
        # The binomial numbers of trials are prior weights of the family.
        return "glmm"
    if isinstance(estimator, MixedLMRegressor):
        return "mixed"
    if isinstance(estimator, GroupedRegressor) and hasattr(estimator, "residuals_"):
        return "lm"
    raise TypeError(
        "The log-likelihood scorers need a fitted PooledRegressor, "
        "FixedEffectsRegressor, MixedLMRegressor, MixedGLMRegressor or "
        "MixedLogisticRegression (alone or as the last step of a Pipeline); "
        f"got {type(estimator).__name__}. For other models use "
        "make_grouped_scorer with a metric of predictions."
    )


def _scored_weights(model, kind, sample_weight, n):
    """Precision weights of the scored rows, or None (all 1).

    A model fitted with weights has residual variances σ²/w: its scored
    rows need their weights too.
    """
    if sample_weight is None:
        if fitted_weights(model) is not None:
            raise ValueError(
                f"{type(model).__name__} was fitted with sample_weight: its "
                "rows have residual variances sigma²/w, so the scored rows "
                "need their precision weights too: pass sample_weight= (under "
                "metadata routing it is requested by default)."
            )
        return None
    weights = check_sample_weight(sample_weight, n)
    if kind == "mixed" and not weights.all():
        raise ValueError(
            "sample_weight has zero weights: a mixed model refuses them (as at "
            "fit); drop those rows."
        )
    return weights


def _ml_sigma(estimator):
    """σ of a least-squares fit as its log-likelihood uses it: sqrt(RSS/n).

    Weighted: ``sqrt(Σ w r² / n)`` over the rows of positive weight, the σ
    of R's ``logLik.lm``.
    """
    residuals = np.asarray(estimator.residuals_, dtype=np.float64)
    weights = fitted_weights(estimator)
    if weights is None:
        return float(np.sqrt(residuals @ residuals / residuals.shape[0]))
    keep = weights > 0
    wrss = float(weights[keep] @ residuals[keep] ** 2)
    return float(np.sqrt(wrss / keep.sum()))


# -- the marginal density of a mixed model -------------------------------------------
def _each_row_its_own_level(estimator, n):
    """Factors that put every row in a level of its own (groups unknown)."""
    labels = np.arange(n)
    return {name: as_factor(labels, name) for name in estimator._group_names()}


def _mixed_marginal(estimator, X, y, groups, weights=None):
    """log N(y; Xβ, σ²(W⁻¹ + ZΛΛᵀZᵀ)) through the fit's blocked Cholesky."""
    from skmixed.mixed.criterion import ProfiledCriterion
    from skmixed.mixed.design import build_design

    data = estimator._validate(X, None, groups, reset=False, stage="predict")
    y = _check_response(y, data.X.shape[0])
    if not estimator._term_designs_fit:
        # Fitted without groups (GroupsMissingWarning at fit): a linear model.
        residuals = y - estimator._population(data)
        return _gaussian_loglik(residuals, estimator.sigma_, weights)
    if data.factors is None:
        # The GroupsMissingWarning has been issued. Without group labels the
        # only density left is the one of rows from distinct new groups.
        data.factors = _each_row_its_own_level(estimator, y.shape[0])
    residuals = y - estimator._population(data)
    terms = estimator._random_design(data)
    design = build_design(np.empty((y.shape[0], 0)), residuals, terms, weights)
    parts = ProfiledCriterion(design, reml=False).decompose(estimator.theta_)
    sigma2 = estimator.sigma_**2
    n = y.shape[0]
    return -0.5 * (
        parts.logdet_L
        + n * (_LOG_2PI + np.log(sigma2))
        + parts.pwrss / sigma2
        - design.sum_log_weights
    )


# -- GLMMs: the family's density ------------------------------------------------------
def _glmm_response(model, y, n, sample_weight):
    """(y, prior weights) of scored rows, coded as the model was fitted."""
    if hasattr(model, "classes_"):
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(
                f"y has shape {labels.shape}; expected ({n},), one label per row."
            )
        unknown = ~np.isin(labels, model.classes_)
        if unknown.any():
            raise ValueError(
                f"y has labels not seen at fit: {sorted(set(labels[unknown]))[:5]}; "
                f"the model's classes are {list(model.classes_)}."
            )
        y01 = (labels == model.classes_[1]).astype(np.float64)
    else:
        y01 = _check_response(y, n)
    if sample_weight is None:
        prior = np.ones(n)
    else:
        prior = model._prior_weights(sample_weight, n)
    model._family_.check_response(y01, prior)
    return y01, prior


def _glmm_fixed(model, data):
    """The held-out rows' fixed-effects columns, as at fit."""
    X = data.X
    if getattr(model, "_has_intercept", model.fit_intercept):
        X = np.column_stack([np.ones(X.shape[0]), X])
    return np.ascontiguousarray(X[:, model._kept])


def _glmm_offset(data):
    """The scored rows' own offsets (zeros for a model without one)."""
    return np.zeros(data.X.shape[0]) if data.offset is None else data.offset


def _glmm_conditional(model, X, y, groups, sample_weight):
    """Σ log p(y_i | μ_i), μ from the fixed effects and the conditional modes."""
    data = model._validate(X, None, groups, reset=False, stage="predict")
    y01, prior = _glmm_response(model, y, data.X.shape[0], sample_weight)
    mu = model._family_.link.inverse(model._linear_predictor(data))
    return float(np.sum(model._family_.loglik_rows(y01, mu, prior)))


def _glmm_marginal(model, X, y, groups, sample_weight):
    """log ∫ p(y | b) p(b) db over the scored groups' effects, at (θ̂, β̂)."""
    from skmixed.glmm.agq import agq_minus2_loglik
    from skmixed.glmm.blocks import RandomEffects, Term
    from skmixed.glmm.pirls import GLMMProblem
    from skmixed.mixed.optimize import blas_single_thread

    data = model._validate(X, None, groups, reset=False, stage="predict")
    n = data.X.shape[0]
    y01, prior = _glmm_response(model, y, n, sample_weight)
    family = model._family_
    X_fixed = _glmm_fixed(model, data)
    if not model._designs:
        # Fitted without groups (GroupsMissingWarning at fit): a GLM.
        mu = family.link.inverse(_glmm_offset(data) + X_fixed @ model._beta)
        return float(np.sum(family.loglik_rows(y01, mu, prior)))
    if data.factors is None:
        # The GroupsMissingWarning has been issued: every row a new group.
        data.factors = _each_row_its_own_level(model, n)
    designs = model._random_design(data)
    system = RandomEffects([Term(d.codes, d.m, d.Z) for d in designs])
    problem = GLMMProblem(X_fixed, y01, prior, family, system, _glmm_offset(data))
    n_agq = int(model.nAGQ)
    with blas_single_thread():
        mode = problem.modes(model.theta_, model._beta)
        if n_agq > 1 and len(designs) == 1 and designs[0].k == 1:
            value = agq_minus2_loglik(problem, mode, n_agq)
        else:
            value = mode.laplace
    return -0.5 * float(value)


# -- public scorers ------------------------------------------------------------------
@_carries_requests
def marginal_log_likelihood(estimator, X, y, groups=None, sample_weight=None):
    r"""Held-out log-likelihood with the random effects integrated out.

    For a :class:`~skmixed.MixedLMRegressor` the rows are scored under the
    fitted model's marginal distribution,
    :math:`y \sim N(X\beta, \sigma^2 (I + Z \Lambda_\theta \Lambda_\theta^T Z^T))`,
    using the group labels of the *scored* rows: rows of one group are
    correlated through their shared random effects, rows of different groups
    are independent. Conditional modes from the training data are not used,
    so the score measures how well the model describes new groups -- split
    with :class:`~sklearn.model_selection.GroupKFold`. It depends on the
    random-effect structure where R² cannot. It is computed with the fit's
    own blocked Cholesky factor, never with an ``n x n`` covariance matrix.

    For :class:`~skmixed.PooledRegressor` and
    :class:`~skmixed.FixedEffectsRegressor` it is the Gaussian log-density of
    the residuals of ``predict`` with the maximum-likelihood σ of the fit,
    ``sqrt(RSS / n)`` (the σ that R's ``logLik.lm`` uses, not the unbiased
    ``sigma_``). On a model's own training data it therefore equals the
    model's ``loglik_`` -- for a mixed model fitted with ``reml=False``.

    For the GLMMs (:class:`~skmixed.MixedGLMRegressor`,
    :class:`~skmixed.MixedLogisticRegression`) it is
    :math:`\log \int p(y \mid b)\, p(b)\, db` over the random effects of
    the scored groups at the fitted (θ, β), with the binomial or Poisson
    density and every normalising constant: the Laplace approximation
    (PIRLS finds each scored group's conditional mode from the scored rows
    alone), or adaptive Gauss-Hermite quadrature with the model's ``nAGQ``
    nodes for a model with one scalar random-effects term fitted with
    ``nAGQ > 1``. On the training data it equals ``loglik_absolute_``.
    Under :class:`~sklearn.model_selection.GroupKFold` it compares
    random-effect structures of a binary outcome, where accuracy and log
    loss of population-level predictions cannot.

    Parameters
    ----------
    estimator : fitted estimator
        One of skmixed's regressors, or a Pipeline (or fitted search) ending
        in one; the steps before the last transform ``X``.
    X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        Held-out features (and grouping columns).
    y : array-like of shape (n_samples,)
        Held-out response.
    groups : array-like, pandas.Series or pandas.DataFrame, default=None
        Grouping factors not given as columns of ``X``. Requested by default
        under metadata routing. Without any, a
        :class:`~skmixed.GroupsMissingWarning` is issued and every row is
        scored as a group of its own.
    sample_weight : array-like of shape (n_samples,), default=None
        Precision weights of the scored rows (as at fit: row i has residual
        variance σ²/w_i); required for a model fitted with ``sample_weight``.
        Requested by default under metadata routing. On the training data of
        a weighted fit the score is again the model's ``loglik_``. For a
        GLMM, the prior weights of the family: the numbers of trials of
        binomial proportions.

    Returns
    -------
    float
        The log-likelihood (higher is better; it grows with the number of
        rows, so compare models on the same rows).

    Examples
    --------
    >>> from skmixed import MixedLMRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> from skmixed.metrics import marginal_log_likelihood
    >>> df = load_sleepstudy()
    >>> X, y = df[["Days", "Subject"]], df["Reaction"]
    >>> model = MixedLMRegressor("(Days | Subject)", reml=False).fit(X, y)
    >>> round(marginal_log_likelihood(model, X, y), 4)
    -875.9697
    >>> round(model.loglik_, 4)
    -875.9697
    """
    model, X = _final_estimator(estimator, X)
    kind = _model_kind(model)
    if kind == "glmm":
        return _glmm_marginal(model, X, y, groups, sample_weight)
    weights = _scored_weights(model, kind, sample_weight, len(y))
    if kind == "mixed":
        return float(_mixed_marginal(model, X, y, groups, weights))
    y_true = _check_response(y, len(y))
    residuals = y_true - _predict(model, X, groups)
    return float(_gaussian_loglik(residuals, _ml_sigma(model), weights))


@_carries_requests
def conditional_log_likelihood(estimator, X, y, groups=None, sample_weight=None):
    r"""Held-out log-likelihood given the conditional modes of known groups.

    Each row is scored as :math:`N(\hat y_i, \sigma^2)` with
    :math:`\hat y_i` the model's ``predict`` -- for a
    :class:`~skmixed.MixedLMRegressor` the fixed effects plus the
    conditional modes (BLUPs) of the row's groups, with ``sigma_`` of the
    fit. A group not seen in training contributes no random effect, so under
    :class:`~sklearn.model_selection.GroupKFold` prefer
    :func:`marginal_log_likelihood`; use this one when the test rows are new
    observations of known groups (a per-group time split, ``KFold``).

    For :class:`~skmixed.PooledRegressor` and
    :class:`~skmixed.FixedEffectsRegressor` it equals
    :func:`marginal_log_likelihood` (σ is the maximum-likelihood
    ``sqrt(RSS / n)`` of the fit).

    For the GLMMs it is :math:`\sum_i \log p(y_i \mid \hat\mu_i)` with the
    binomial or Poisson density and :math:`\hat\mu_i` the conditional mean
    of ``predict`` (fixed effects plus the conditional modes of known
    groups); for binary labels that is minus the summed log loss.

    Parameters
    ----------
    estimator : fitted estimator
        One of skmixed's regressors, or a Pipeline (or fitted search) ending
        in one.
    X : array-like or pandas.DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    groups : array-like, pandas.Series or pandas.DataFrame, default=None
        Grouping factors not given as columns of ``X``. Requested by default
        under metadata routing.
    sample_weight : array-like of shape (n_samples,), default=None
        Precision weights of the scored rows: row i is scored as
        :math:`N(\hat y_i, \sigma^2 / w_i)`. Required for a model fitted
        with ``sample_weight``; requested by default under metadata routing.
        For a GLMM, the numbers of trials of binomial proportions.

    Returns
    -------
    float
        The log-likelihood, higher is better.

    Examples
    --------
    >>> from skmixed import MixedLMRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> from skmixed.metrics import conditional_log_likelihood
    >>> df = load_sleepstudy()
    >>> train, test = df[df.Days < 8], df[df.Days >= 8]
    >>> model = MixedLMRegressor("(Days | Subject)").fit(
    ...     train[["Days", "Subject"]], train["Reaction"])
    >>> score = conditional_log_likelihood(
    ...     model, test[["Days", "Subject"]], test["Reaction"])
    >>> bool(score < 0)
    True
    """
    model, X = _final_estimator(estimator, X)
    kind = _model_kind(model)
    if kind == "glmm":
        return _glmm_conditional(model, X, y, groups, sample_weight)
    weights = _scored_weights(model, kind, sample_weight, len(y))
    y_true = _check_response(y, len(y))
    residuals = y_true - _predict(model, X, groups)
    sigma = model.sigma_ if kind == "mixed" else _ml_sigma(model)
    return float(_gaussian_loglik(residuals, sigma, weights))


def make_grouped_scorer(
    metric, greater_is_better=True, *, response_method="predict", **kwargs
):
    """Turn a metric of predictions into a scorer that passes groups.

    scikit-learn's string scorers (``scoring="r2"``, ``"neg_log_loss"``)
    call ``predict(X)`` or ``predict_proba(X)`` without groups, so a grouped
    model predicts at population level (and warns). The scorer made here
    calls ``predict(X, groups=groups)`` (or ``predict_proba``,
    ``decision_function``): groups come from columns of a pandas ``X`` as
    always, or from the ``groups`` metadata, which the scorer requests under
    metadata routing.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred, **kwargs)``, e.g.
        :func:`sklearn.metrics.r2_score`.
    greater_is_better : bool, default=True
        False for losses (``mean_squared_error``, ``log_loss``): the scorer
        then returns the negated metric, as scikit-learn's ``make_scorer``
        does.
    response_method : {"predict", "predict_proba", "decision_function"}, \
default="predict"
        The model's method that gives the metric its ``y_pred``. For a
        binary classifier ``"predict_proba"`` gives the probability of
        ``classes_[1]`` (as scikit-learn's scorers do), which suits
        ``log_loss``, ``roc_auc_score`` and ``brier_score_loss``.
    **kwargs
        Passed to ``metric``.

    Returns
    -------
    callable
        ``scorer(estimator, X, y, groups=None, **metadata)``. It has
        ``get_metadata_routing`` and ``set_score_request`` (which returns a
        copy), so further metadata such as ``sample_weight`` can be
        requested and is passed to ``metric``.

    Examples
    --------
    >>> from sklearn.metrics import mean_absolute_error, r2_score
    >>> from skmixed import MixedLMRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> from skmixed.metrics import make_grouped_scorer
    >>> df = load_sleepstudy()
    >>> model = MixedLMRegressor("(Days | Subject)").fit(
    ...     df[["Days"]], df["Reaction"], groups=df["Subject"])
    >>> r2 = make_grouped_scorer(r2_score)
    >>> round(r2(model, df[["Days"]], df["Reaction"], groups=df["Subject"]), 3)
    0.826
    >>> mae = make_grouped_scorer(mean_absolute_error, greater_is_better=False)
    >>> bool(mae(model, df[["Days"]], df["Reaction"], groups=df["Subject"]) < 0)
    True

    A grouped log loss for a mixed-effects classifier:

    >>> from sklearn.metrics import log_loss
    >>> neg_log_loss = make_grouped_scorer(
    ...     log_loss, greater_is_better=False, response_method="predict_proba")
    """
    if not callable(metric):
        raise TypeError(
            f"metric must be a callable metric(y_true, y_pred); got {metric!r}."
        )
    if response_method not in _RESPONSE_METHODS:
        raise ValueError(
            f"response_method must be one of {_RESPONSE_METHODS}; got "
            f"{response_method!r}."
        )
    sign = 1.0 if greater_is_better else -1.0
    name = getattr(metric, "__name__", repr(metric))
    arguments = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    flag = "" if greater_is_better else ", greater_is_better=False"
    if response_method != "predict":
        flag += f", response_method={response_method!r}"
    return _GroupedScorer(
        _PointMetric(metric, sign, kwargs, response_method),
        {"groups": True},
        f"make_grouped_scorer({name}{flag}{arguments})",
    )


_RESPONSE_METHODS = ("predict", "predict_proba", "decision_function")


class _PointMetric:
    """``sign * metric(y, predict(X, groups))``; a class so that it pickles."""

    def __init__(self, metric, sign, kwargs, response_method="predict"):
        self.metric = metric
        self.sign = sign
        self.kwargs = kwargs
        self.response_method = response_method

    def __call__(self, estimator, X, y, groups=None, **metadata):
        model, X = _final_estimator(estimator, X)
        if groups is not None and not _accepts_groups(model):
            groups = None
        method = getattr(model, self.response_method, None)
        if method is None:
            raise TypeError(
                f"{type(model).__name__} has no {self.response_method}; the "
                f"scorer needs it (response_method={self.response_method!r})."
            )
        y_pred = method(X) if groups is None else method(X, groups=groups)
        if self.response_method == "predict_proba" and y_pred.ndim == 2:
            if y_pred.shape[1] == 2:
                y_pred = y_pred[:, 1]  # the positive class, as scikit-learn
        return self.sign * self.metric(y, y_pred, **{**self.kwargs, **metadata})
