"""PooledRegressor: ordinary least squares, R's ``lm(y ~ x)``."""

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils._param_validation import StrOptions

from skmixed._base import COMMON_CONSTRAINTS, GroupedRegressor, fixed_intercept
from skmixed._inputs import GROUPS_ARGUMENT, response_name
from skmixed._linalg import group_sums
from skmixed._lm import (
    LMResultsMixin,
    feature_names,
    fit_rows,
    lm_statistics,
    r_formula,
    shifted_least_squares,
)
from skmixed._stacklevel import user_stacklevel

_COV_TYPES = ("nonrobust", "cluster")


def warn_aliased(names, estimator):
    """Warn that columns were dropped as aliased, naming them (R gives NA)."""
    if names:
        warnings.warn(
            f"{estimator}: X is rank deficient; {len(names)} coefficient(s) not "
            f"defined because of singularities (aliased, set to NaN as R's NA): "
            f"{', '.join(names)}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def check_some_column(n_features, intercept, fixed_effects, shape):
    """An lm needs a column: a feature, or the intercept asked for by name
    (``fixed_effects=[]``, R's ``y ~ 1``). ``shape`` is X's, as it prints."""
    if n_features == 0 and (not intercept or fixed_effects is None):
        raise ValueError(
            f"0 feature(s) (shape={shape}) while a minimum of 1 is "
            "required (X is empty, or held only the group column). For "
            "the intercept-only model say so: fixed_effects=[]."
        )


def groups_label(groups, default="group"):
    """Name of a grouping factor given as ``groups=``: its name, else ``default``.

    A pandas or Dask Series' name, a one-column DataFrame's column, as
    :func:`~skmixed._inputs.response_name` reads y's (a Dask fit names the
    levels as memory's).
    """
    return response_name(groups, default)


class PooledRegressor(LMResultsMixin, GroupedRegressor):
    """Ordinary least squares that ignores groups: R's ``lm(y ~ x)``.

    The pooled model is the baseline a hierarchical model is compared with.
    It accepts ``groups`` (so that it drops into the same pipelines and
    cross-validation as the other estimators) and ignores them, except for
    cluster-robust standard errors with ``cov_type="cluster"``.

    Parameters
    ----------
    fit_intercept : bool, default=True
        Include an intercept (R's ``y ~ x``; False is ``y ~ 0 + x``).
    cov_type : {"nonrobust", "cluster"}, default="nonrobust"
        ``"cluster"``: cluster-robust covariance by group, CR1 as R's
        ``sandwich::vcovCL`` default (HC1 adjustment ``G/(G-1) * (n-1)/(n-k)``);
        t tests keep the residual degrees of freedom (as ``lmtest::coeftest``)
        and the F statistic becomes the robust Wald test of the slopes (NaN,
        and said so in the summary, when there are more slopes than clusters
        minus one: the robust covariance then has too low a rank).
    group : str, default=None
        Name of the cluster column, looked up in a pandas X first, then in
        ``groups``. None: the ``groups=`` argument. A column of X named here
        is never used as a feature, even with ``cov_type="nonrobust"``.
    missing : {"error", "drop"}, default="error"
        Rows with NaN or inf: raise, or drop them as R's ``na.omit`` does.
    fixed_effects : None, list of str or str, default=None
        The features. None: every column of X but the cluster column
        (non-numeric ones are ignored, with one warning). A list of column
        names: exactly those (``[]``: intercept only). A string: the
        right-hand side of an R formula (``"nitro + Variety"``), with R's
        treatment contrasts and coefficient names. For a numpy X the columns
        are named ``x0, x1, ...``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Slopes of the features (NaN for an aliased one).
    intercept_ : float
        The intercept (0.0 with ``fit_intercept=False``).
    params_ : pandas.Series
        All coefficients named as R names them (``(Intercept)``, feature
        names); NaN for aliased ones, as R's ``coef()``.
    vcov_ : pandas.DataFrame
        Covariance of ``params_`` (R's ``vcov``; cluster-robust with
        ``cov_type="cluster"``).
    sigma_, df_resid_, rank_, nobs_ : float, int, int, int
        Residual standard error and its degrees of freedom, rank, rows used.
    rsquared_, rsquared_adj_ : float
    fvalue_, f_pvalue_, df_model_ : float, float, int
        F statistic against the intercept-only model, its p-value and
        numerator degrees of freedom.
    loglik_, aic_, bic_ : float
        As R's ``logLik``, ``AIC``, ``BIC`` (``rank + 1`` parameters).
    fittedvalues_, residuals_ : ndarray of shape (n_samples,)
    aliased_ : list of str
        Coefficients dropped as aliased (rank-deficient X).
    formula_ : str
        The equivalent R formula.
    n_groups_ : int
        Number of clusters (``cov_type="cluster"`` only, else 0).

    Examples
    --------
    >>> from skmixed import PooledRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> m = PooledRegressor().fit(df[["Days"]], df["Reaction"])
    >>> m.params_.round(4)
    (Intercept)    251.4051
    Days            10.4673
    dtype: float64
    >>> round(m.sigma_, 4), round(m.rsquared_, 4)
    (47.7147, 0.2865)
    >>> m = PooledRegressor(cov_type="cluster", group="Subject")
    >>> m.fit(df[["Days", "Subject"]], df["Reaction"]).summary().coefficients.round(3)
                 estimate  std_error  t_value  p_value
    (Intercept)   251.405      6.844   36.735      0.0
    Days           10.467      1.550    6.753      0.0
    """

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "fit_intercept": ["boolean"],
        "cov_type": [StrOptions(set(_COV_TYPES))],
        "group": [str, None],
    }

    def __init__(
        self,
        fit_intercept=True,
        cov_type="nonrobust",
        group=None,
        missing="error",
        fixed_effects=None,
    ):
        self.fit_intercept = fit_intercept
        self.cov_type = cov_type
        self.group = group
        self.missing = missing
        self.fixed_effects = fixed_effects

    @classmethod
    def from_formula(cls, formula, **params):
        """A model from lm's formula, e.g. ``"yield ~ nitro + Variety"``.

        The right-hand side becomes ``fixed_effects`` (an R formula, stored as
        given). Fit it on a DataFrame that holds the formula's columns, with
        the response as ``y``; ``summary()`` then prints R's ``Call:``.

        Parameters
        ----------
        formula : str
        **params
            Other parameters (``cov_type``, ``group``, ``missing``).

        Returns
        -------
        PooledRegressor
            Unfitted.

        Examples
        --------
        >>> from skmixed import PooledRegressor
        >>> PooledRegressor.from_formula("Reaction ~ Days + Subject").fixed_effects
        'Days + Subject'
        """
        from skmixed._model_formula import pooled_from_formula

        return pooled_from_formula(cls, formula, params)

    def _group_names(self):
        if self.group is not None:
            return [str(self.group)]
        return [GROUPS_ARGUMENT] if self.cov_type == "cluster" else []

    def _groups_optional(self, reset):
        # Without clustering, groups are only read to keep a named group
        # column out of the features; the model needs none.
        return self.cov_type != "cluster"

    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit by least squares (weighted least squares with ``sample_weight``).

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Numeric features; a pandas X may also hold the cluster column.
        y : array-like of shape (n_samples,)
        groups : array-like or pandas.Series, default=None
            Clusters for ``cov_type="cluster"``, when not a column of X.
        sample_weight : array-like of shape (n_samples,), default=None
            Precision weights, R's ``lm(weights=)``: row i has variance
            ``sigma² / w_i``. The summary, ``loglik_`` (with R's
            ``sum(log w) / 2``), R² and F are R's for a weighted fit; rows of
            weight 0 are left out of the fit and of ``nobs_`` but get fitted
            values and residuals, as in R.

        Returns
        -------
        self : PooledRegressor
        """
        from skmixed import _dask

        if _dask.any_dask(X, y, groups, sample_weight):
            from skmixed._dask_lm import fit_pooled

            self._validate_params()
            fit_pooled(self, X, y, groups, sample_weight)
            return self
        self._fit_labels = (response_name(y), groups_label(groups))
        return super().fit(X, y, groups, sample_weight)

    def _fit(self, data):
        names = feature_names(data)
        intercept = fixed_intercept(self.fit_intercept, data, type(self).__name__)
        self._has_intercept = intercept
        n, p = data.X.shape
        check_some_column(p, intercept, self.fixed_effects, data.X.shape)
        design = np.empty((n, p + int(intercept)))
        if intercept:
            design[:, 0] = 1.0
        design[:, int(intercept) :] = data.X
        weights, rows = data.weights, fit_rows(data.weights)
        fit = shifted_least_squares(
            design, data.y, weights, rows, has_intercept=intercept
        )
        fitted = design[:, ~fit.aliased] @ fit.coef[~fit.aliased]
        residuals = data.y - fitted
        y_fit, w_fit = data.y, weights
        if rows is not None:
            y_fit, w_fit = data.y[rows], weights[rows]
        statistics = lm_statistics(y_fit, fit.rss, fit.rank, intercept, weights=w_fit)
        scores = None
        if self.cov_type == "cluster":
            scores = self._cluster_scores(data, design, residuals, fit)
        self._set_results(fit, names, statistics, fitted, residuals, scores, weights)

    def _set_results(self, fit, names, statistics, fitted, residuals, scores, weights):
        """Every fitted attribute from the least-squares fit (and the cluster
        scores with cov_type='cluster'); shared by in-memory and Dask fits."""
        response, default_label = self._fit_labels
        intercept = self._has_intercept
        columns = (["(Intercept)"] if intercept else []) + names
        aliased = [c for c, a in zip(columns, fit.aliased, strict=True) if a]
        warn_aliased(aliased, type(self).__name__)
        cov = fit.cov_unscaled * statistics.sigma**2
        self.n_groups_ = 0
        if self.cov_type == "cluster":
            n = statistics.nobs if weights is None else len(weights)
            cov = self._cluster_cov(scores, fit, n)
        params = pd.Series(fit.coef, index=pd.Index(columns, dtype=object))
        vcov = pd.DataFrame(cov, index=params.index, columns=params.index)
        self._store_lm(
            params, vcov, statistics, fitted, residuals, statistics.df_resid, weights
        )
        if self.cov_type == "cluster":
            self._robust_wald(fit)
        self.intercept_ = float(fit.coef[0]) if intercept else 0.0
        self.coef_ = fit.coef[int(intercept) :].copy()
        terms = names if intercept else ["0", *names]
        self.formula_ = self._formula_of_fit(response, r_formula(response, terms))
        self.response_name_ = response
        self.cluster_name_ = None
        if self.cov_type == "cluster":
            self.cluster_name_ = (
                str(self.group) if self.group is not None else default_label
            )
        del self._fit_labels

    def _cluster_scores(self, data, design, residuals, fit):
        """Per cluster, the sums of the score rows: (G, rank).

        With weights the scores are ``w_i r_i x_i`` (``sandwich``'s
        ``estfun.lm``).
        """
        if data.factors is None:
            raise ValueError(
                "cov_type='cluster' needs the clusters: pass groups= or name a "
                "column of X with group=."
            )
        if data.weights is not None and not data.weights.all():
            # sandwich::vcovCL counts zero-weight rows in n (its bread does
            # not): the covariance would change with rows that carry no
            # information. Refuse rather than match that or differ silently.
            raise ValueError(
                "cov_type='cluster' with zero weights: sandwich::vcovCL counts "
                "zero-weight rows in its sample size, so the covariance would "
                "depend on them. Drop the rows with sample_weight == 0 first."
            )
        factor = next(iter(data.factors.values()))
        codes = np.asarray(factor.codes, dtype=np.intp)
        n_clusters = len(factor.categories)
        kept = ~fit.aliased
        working = residuals if data.weights is None else data.weights * residuals
        return group_sums(codes, n_clusters, design[:, kept] * working[:, None])

    def _cluster_cov(self, scores, fit, n):
        """CR1 cluster-robust covariance (sandwich::vcovCL's default), the
        bread the (weighted) ``(XᵀWX)⁻¹`` as ``bread.lm`` has it."""
        n_clusters = scores.shape[0]
        if n_clusters < 2:
            raise ValueError(
                f"cov_type='cluster' needs at least 2 clusters; got {n_clusters}."
            )
        kept = ~fit.aliased
        bread = fit.cov_unscaled[np.ix_(kept, kept)]
        k = fit.rank
        adjust = n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
        cov = np.full_like(fit.cov_unscaled, np.nan)
        cov[np.ix_(kept, kept)] = adjust * bread @ (scores.T @ scores) @ bread
        self.n_groups_ = n_clusters
        return cov

    def _robust_wald(self, fit):
        """Wald F test of all slopes with the robust covariance (lmtest::waldtest)."""
        kept = np.flatnonzero(~fit.aliased)
        slopes = kept[kept > 0] if self._has_intercept else kept
        self._wald_undefined = None
        if slopes.size == 0 or self.df_resid_ <= 0:
            return
        b = fit.coef[slopes]
        cov = self.vcov_.to_numpy()[np.ix_(slopes, slopes)]
        # The clusters' score sums add up to Xᵀr = 0, so the CR1 covariance
        # has rank at most G - 1: with more slopes than that the Wald
        # statistic is rounding noise (lmtest's waldtest gives a huge or
        # negative F). Report it as undefined, as Stata does.
        scale = 1.0 / np.sqrt(np.diagonal(cov))
        rank = np.linalg.matrix_rank(cov * np.outer(scale, scale), tol=1e-10)
        if slopes.size > min(rank, self.n_groups_ - 1):
            self.fvalue_ = self.f_pvalue_ = float("nan")
            self._wald_undefined = (
                f"no robust F: {slopes.size} slopes tested with {self.n_groups_} "
                f"clusters (the cluster-robust covariance has rank at most "
                f"{self.n_groups_ - 1})"
            )
            return
        self.fvalue_ = float(b @ np.linalg.solve(cov, b)) / slopes.size
        self.f_pvalue_ = float(stats.f.sf(self.fvalue_, slopes.size, self.df_resid_))

    def _summary_notes(self):
        if self.cov_type != "cluster":
            return []
        undefined = getattr(self, "_wald_undefined", None)
        test = f"{undefined}." if undefined else "F is the robust Wald test."
        return [
            "",
            f"Standard errors: cluster-robust (CR1, as sandwich::vcovCL) by "
            f"{self.cluster_name_}, {self.n_groups_} clusters; {test}",
        ]

    def _predict(self, data):
        coef = np.where(np.isnan(self.coef_), 0.0, self.coef_)
        return data.X @ coef + self.intercept_
