"""What ``lm`` reports, shared by PooledRegressor and FixedEffectsRegressor.

:func:`lm_statistics` turns a least-squares fit into R's numbers (sigma,
R-squared, F, log-likelihood, ...); :class:`LMResultsMixin` gives both
estimators ``summary()``, ``conf_int()`` and the fitted attributes.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils.validation import check_is_fitted

from skmixed._linalg import least_squares
from skmixed.mixed.centring import response_shift
from skmixed.summary import LMSummary, coefficient_frame


@dataclass
class LMStatistics:
    """R's ``summary.lm`` and ``logLik.lm`` numbers for one fit."""

    nobs: int
    rank: int
    df_resid: int
    sigma: float
    rsquared: float
    rsquared_adj: float
    fvalue: float
    df_model: int
    f_pvalue: float
    loglik: float
    aic: float
    bic: float


def lm_statistics(y, rss, rank, has_intercept, weights=None):
    """R's fit statistics from the response, the RSS and the rank.

    R-squared and F compare with the intercept-only model when there is an
    intercept (with ``y = 0`` otherwise), as ``summary.lm`` does. With
    precision ``weights`` (all > 0: R's ``lm.wfit`` leaves zero-weight rows
    out of the fit, and ``nobs`` does not count them) ``rss`` is the weighted
    RSS, the total sum of squares is weighted about the weighted mean, and
    the log-likelihood gains ``sum(log w) / 2`` (``logLik.lm``).
    """
    n = y.shape[0]
    w = np.ones(n) if weights is None else weights
    if has_intercept:
        centred = y - (w @ y) / w.sum()
        tss = float(w @ centred**2)
    else:
        tss = float(w @ y**2)
    log_weights = 0.0 if weights is None else float(np.log(weights).sum())
    return lm_statistics_from_sums(n, tss, rss, rank, has_intercept, log_weights)


def lm_statistics_from_sums(n, tss, rss, rank, has_intercept, log_weights=0.0):
    """:func:`lm_statistics` from ``n`` and the total sum of squares ``tss``
    (about the mean with an intercept, about 0 without) and the sum of the
    log weights: what a fit from chunks of rows has instead of y."""
    df_resid = n - rank
    df_int = 1 if has_intercept else 0
    sigma = math.sqrt(rss / df_resid) if df_resid > 0 else float("nan")
    df_model = rank - df_int
    if df_model > 0 and tss > 0:
        rsquared = 1.0 - rss / tss
        rsquared_adj = (
            1.0 - (1.0 - rsquared) * (n - df_int) / df_resid
            if df_resid > 0
            else float("nan")
        )
    else:
        rsquared = rsquared_adj = 0.0 if df_model == 0 else float("nan")
    if df_model > 0 and df_resid > 0:
        fvalue = ((tss - rss) / df_model) / (rss / df_resid)
        f_pvalue = float(stats.f.sf(fvalue, df_model, df_resid))
    else:
        fvalue = f_pvalue = float("nan")
    # logLik.lm: the Gaussian likelihood at the ML variance RSS / n.
    # (+inf for a perfect fit, as R's logLik gives Inf).
    log_rss = math.log(rss) if rss > 0 else -math.inf
    loglik = -0.5 * n * (math.log(2 * math.pi) + 1 - math.log(n) + log_rss)
    loglik += 0.5 * log_weights
    n_params = rank + 1
    return LMStatistics(
        nobs=n,
        rank=rank,
        df_resid=df_resid,
        sigma=sigma,
        rsquared=rsquared,
        rsquared_adj=rsquared_adj,
        fvalue=fvalue,
        df_model=df_model,
        f_pvalue=f_pvalue,
        loglik=loglik,
        aic=-2 * loglik + 2 * n_params,
        bic=-2 * loglik + math.log(n) * n_params,
    )


def fit_rows(weights):
    """Rows that enter a weighted lm fit: those with a positive weight.

    R's ``lm.wfit`` fits without the zero-weight rows and then gives them
    fitted values and residuals from the coefficients; None (every row)
    without weights.
    """
    if weights is None or weights.all():
        return None
    return weights > 0


def weighted_design(design, y, weights, rows):
    """``sqrt(w)``-scaled design and response of the rows that are fitted.

    Weighted least squares on these is ordinary least squares: R's
    ``lm.wfit`` factors ``sqrt(w) * X`` the same way.
    """
    if weights is None:
        return design, y
    if rows is not None:
        design, y, weights = design[rows], y[rows], weights[rows]
    root = np.sqrt(weights)
    return design * root[:, None], y * root


def intercept_shift(y, has_intercept):
    """The constant taken from y before a least-squares fit with an
    intercept (0.0 if none): the middle of y's range when y is far from 0
    relative to it (:func:`skmixed.mixed.centring.response_shift`).

    ``y = 1e8 + ...`` keeps ~8 digits of the residual sum of squares in a QR
    of ``[X | y]``; ``y - c`` is the same model, the intercept less c.
    """
    if not has_intercept or not len(y):
        return 0.0
    return response_shift(["(Intercept)"], (np.min(y), np.max(y)))


def shifted_least_squares(design, y, weights, rows, *, has_intercept, order=None):
    """:func:`least_squares` of (weighted) y on a design whose column 0 is
    the intercept (when ``has_intercept``), fitted as y less
    :func:`intercept_shift`, which the intercept's coefficient gets back."""
    shift = intercept_shift(y, has_intercept)
    fit = least_squares(*weighted_design(design, y - shift, weights, rows), order=order)
    fit.coef[0] += shift
    return fit


def r_formula(response, terms):
    """An R formula string: ``Reaction ~ Days + Subject``."""
    return f"{response} ~ {' + '.join(terms) if terms else '1'}"


def feature_names(data):
    """Feature names of validated data (``x0, x1, ...`` for an array)."""
    if data.feature_names is not None:
        return list(data.feature_names)
    return [f"x{j}" for j in range(data.X.shape[1])]


class LMResultsMixin:
    """``summary()``, ``conf_int()`` and the result attributes of an lm fit.

    The estimator's ``_fit`` calls :meth:`_store_lm` with the coefficients
    (named as R names them), their covariance and the fit statistics.
    """

    def _store_lm(
        self, params, vcov, statistics, fitted, residuals, df_tests, weights=None
    ):
        self.params_ = params
        self.vcov_ = vcov
        stats_ = statistics
        self.nobs_ = stats_.nobs
        self.rank_ = stats_.rank
        self.df_resid_ = stats_.df_resid
        self.df_model_ = stats_.df_model
        self.sigma_ = stats_.sigma
        self.rsquared_ = stats_.rsquared
        self.rsquared_adj_ = stats_.rsquared_adj
        self.fvalue_ = stats_.fvalue
        self.f_pvalue_ = stats_.f_pvalue
        self.loglik_ = stats_.loglik
        self.aic_ = stats_.aic
        self.bic_ = stats_.bic
        self.fittedvalues_ = fitted
        self.residuals_ = residuals
        self.aliased_ = [str(n) for n in params.index[params.isna()]]
        self._df_tests = df_tests
        # summary.lm prints the weighted residuals sqrt(w) * r.
        self._summary_weights = weights

    def _formula_of_fit(self, response, rebuilt):
        """R's formula of this fit: the one the model was written as, if any.

        ``rebuilt`` (from the fitted columns) serves when the fixed part is
        not a formula.
        """
        from skmixed._model_formula import lm_formula_text

        found = lm_formula_text(self, response)
        self._made_from_formula = bool(found and found[1])
        return found[0] if found else rebuilt

    def _coefficient_frame(self):
        """Estimates, standard errors, t and p as R's coefficient table."""
        params = self.params_
        se = np.sqrt(np.diag(self.vcov_.to_numpy()))
        with np.errstate(invalid="ignore", divide="ignore"):
            t = params.to_numpy() / se
        p = 2 * stats.t.sf(np.abs(t), self._df_tests)
        return coefficient_frame(params.to_numpy(), se, t, p, params.index)

    def conf_int(self, level=0.95):
        """Confidence intervals of the coefficients (t-based, as R's ``confint``).

        Parameters
        ----------
        level : float, default=0.95

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, one row per coefficient (NaN for
            aliased ones).

        Examples
        --------
        >>> from skmixed import PooledRegressor
        >>> from skmixed.datasets import load_sleepstudy
        >>> df = load_sleepstudy()
        >>> m = PooledRegressor().fit(df[["Days"]], df["Reaction"])
        >>> m.conf_int().round(3)
                       lower    upper
        (Intercept)  238.361  264.449
        Days           8.024   12.911
        """
        check_is_fitted(self)
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1; got {level!r}.")
        table = self._coefficient_frame()
        quantile = stats.t.ppf(0.5 + level / 2, self._df_tests)
        half = quantile * table["std_error"]
        return pd.DataFrame(
            {"lower": table["estimate"] - half, "upper": table["estimate"] + half},
            index=table.index,
        )

    def summary(self):
        """R's ``summary(lm(...))``: print it, or read ``.coefficients``.

        Returns
        -------
        LMSummary
            ``str()`` gives R's text; ``.coefficients`` is a DataFrame with
            columns ``estimate, std_error, t_value, p_value``.
        """
        check_is_fitted(self)
        fstat = None
        if not math.isnan(self.fvalue_):
            fstat = (self.fvalue_, self._f_df[0], self._f_df[1])
        weights = getattr(self, "_summary_weights", None)
        residuals = self.residuals_
        weighted = weights is not None and bool(np.ptp(weights) > 0)
        dask_weights = None
        if getattr(self, "_dask_input", None) is not None:
            # fitted from Dask partitions: exact quantiles, by passes
            from skmixed import _dask_predict

            residuals = _dask_predict.summary_residuals(
                _dask_predict.pearson_residuals(self), self._dask_rows, self.df_resid_
            )
            dask_weights = self._dask_weights_vary
            weighted = bool(dask_weights)
        call = f"lm(formula = {self.formula_})"
        if weights is not None or dask_weights is not None:
            if weights is not None:
                residuals = np.sqrt(weights) * residuals
            name = getattr(self, "_weights_name", None) or "sample_weight"
            call = f"lm(formula = {self.formula_}, weights = {name})"
        call = [repr(self), call]
        if getattr(self, "_made_from_formula", False):
            call = call[1:]  # R's own Call: line
        return LMSummary(
            call=call,
            coefficients=self._coefficient_frame(),
            residuals=residuals,
            weighted=weighted,
            df_resid=self.df_resid_,
            sigma=self.sigma_,
            rsquared=self.rsquared_,
            rsquared_adj=self.rsquared_adj_,
            fstatistic=fstat,
            notes=self._summary_notes(),
            n_dropped=self.n_dropped_,
        )

    @property
    def _f_df(self):
        return (self.df_model_, self.df_resid_)

    def _summary_notes(self):
        return []
