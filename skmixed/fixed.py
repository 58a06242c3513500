"""FixedEffectsRegressor: one intercept (and slope) shift per group.

R's ``lm(y ~ x + g)`` and ``lm(y ~ x * g)`` with treatment coding. Two ways to
the same numbers:

- *dummy*: the design matrix with one indicator column per non-reference
  level (and, for group slopes, the products of the slope columns with those
  indicators), solved by :func:`skmixed._linalg.least_squares` -- R's full
  coefficient table, for a moderate number of groups;
- *within*: the groups are absorbed instead. Every column is projected on the
  per-group basis ``[1, z]`` (its group mean removed -- and, with group
  slopes, its per-group regression on the slope columns ``z``); the remaining
  slopes come from the projected columns (Frisch-Waugh-Lovell: the same
  estimates, and the same standard errors once the residual degrees of
  freedom count the absorbed parameters), and the group intercepts and slopes
  are recovered afterwards from per-group means. No n x G matrix is built;
  the per-group sums are ``np.bincount`` passes over the rows.
"""

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import StrOptions

from skmixed._base import COMMON_CONSTRAINTS, GroupedRegressor, fixed_intercept
from skmixed._groups import level_positions
from skmixed._inputs import GROUPS_ARGUMENT, no_feature_error, response_name
from skmixed._linalg import (
    ALIAS_TOL,
    demean,
    group_sums,
    tall_least_squares,
)
from skmixed._lm import (
    LMResultsMixin,
    feature_names,
    fit_rows,
    intercept_shift,
    lm_statistics,
    lm_statistics_from_sums,
    r_formula,
    shifted_least_squares,
)
from skmixed.pooled import groups_label, warn_aliased

_METHODS = ("auto", "dummy", "within")
_UNKNOWN = ("error", "mean")
#: method="auto" absorbs the groups beyond this many dummy columns...
_MAX_DUMMY_COLUMNS = 100
#: ...or when the dummy design would hold more than this many numbers.
_MAX_DUMMY_CELLS = 10_000_000


class FixedEffectsRegressor(LMResultsMixin, GroupedRegressor):
    """Group intercepts (and slopes) as fixed effects: R's ``lm(y ~ x + g)``.

    Each group gets its own intercept, coded as R codes a factor
    (``contr.treatment``): ``(Intercept)`` is the reference level's
    intercept and ``Subject309`` the shift of level ``309`` from it. With
    ``group_slopes=["Days"]`` each group also gets its own slope of ``Days``:
    R's ``lm(y ~ Days * g)``, with ``Days`` the reference level's slope and
    ``Days:Subject309`` the shifts.

    Parameters
    ----------
    group : str, default=None
        Name of the grouping column: a column of a pandas X, or of a
        ``groups`` DataFrame. None: the ``groups=`` argument, named after
        the Series (``groups.name``) or, unnamed, ``"group"`` -- the prefix
        of the coefficient names (``Subject309``, ``group309``).
    group_slopes : str or list of str, default=None
        Features whose slope varies by group (R's ``x * g``).
    reference : str, default=None
        The reference level; None: the first level in R's order (numeric
        labels numerically, others alphabetically).
    handle_unknown : {"error", "mean"}, default="error"
        A level unseen at fit, at ``predict``: raise a ``ValueError`` naming
        it, or use the average group effect -- the mean of the group
        intercepts of all fitted levels, reference included (and likewise the
        mean of the group slopes). Predictions without any groups (with a
        ``GroupsMissingWarning``) also use the average group effect.
    method : {"auto", "dummy", "within"}, default="auto"
        ``"dummy"`` builds the indicator columns and reports R's full
        coefficient table; ``"within"`` absorbs the groups (fast for
        thousands of groups; ``params_``, ``vcov_`` and the summary table then
        hold only the features not absorbed, the group effects are in
        ``group_intercepts_`` / ``group_slopes_``). ``"auto"`` uses ``"within"``
        beyond 100 dummy columns or 10 million design cells.
    missing : {"error", "drop"}, default="error"
        Rows with NaN or inf: raise, or drop them as R's ``na.omit`` does.
    fixed_effects : None, list of str or str, default=None
        The features besides the group effects. None: every column of X but
        the grouping column (non-numeric ones are ignored, with one warning).
        A list of column names: exactly those (``[]``: group intercepts
        only, R's ``y ~ g``). A string: the right-hand side of an R formula
        (``"nitro + Variety"``), with R's treatment contrasts and coefficient
        names. For a numpy X the columns are named ``x0, x1, ...``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        R's coefficient of each feature: its slope (the reference level's
        slope for a feature in ``group_slopes``).
    intercept_ : float
        The reference level's intercept (R's ``(Intercept)``).
    group_intercepts_ : pandas.Series
        Each level's intercept (level -> ``intercept_`` + its shift).
    group_slopes_ : pandas.DataFrame
        With ``group_slopes``: level x slope column -> that level's slope.
    params_, vcov_ : pandas.Series, pandas.DataFrame
        Coefficients named as R names them, and their covariance; NaN for
        aliased ones. With the within method, only the features that are
        not absorbed.
    sigma_, df_resid_, rank_, nobs_, rsquared_, rsquared_adj_, fvalue_, \
f_pvalue_, df_model_, loglik_, aic_, bic_ : float or int
        As R's ``summary.lm``, ``logLik``, ``AIC`` and ``BIC`` of the full
        model (the same for both methods).
    fittedvalues_, residuals_ : ndarray of shape (n_samples,)
    aliased_ : list of str
        Coefficients not defined because of singularities (a feature
        constant within every group is absorbed by the group effects and
        dropped, whichever the method).
    method_ : str
        ``"dummy"`` or ``"within"``.
    levels_ : list of str
        The fitted levels; ``reference_`` is the reference level.
    n_groups_ : int
        Number of levels (0 when fitted without groups).
    group_name_ : str or None
        The factor's name in coefficient names (None without groups).
    formula_ : str
        The equivalent R formula.

    Examples
    --------
    >>> from skmixed import FixedEffectsRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> X, y = df[["Days"]], df["Reaction"]
    >>> m = FixedEffectsRegressor().fit(X, y, groups=df["Subject"])
    >>> m.params_.round(3).head(3)
    (Intercept)     295.031
    Days             10.467
    Subject309     -126.901
    dtype: float64
    >>> m.group_intercepts_.round(3).head(2)
    308    295.031
    309    168.130
    dtype: float64
    >>> slopes = FixedEffectsRegressor(group="Subject", group_slopes=["Days"])
    >>> slopes.fit(df[["Days", "Subject"]], y).group_slopes_.head(2).round(3)
           Days
    308  21.765
    309   2.262
    """

    def __init__(
        self,
        group=None,
        group_slopes=None,
        reference=None,
        handle_unknown="error",
        method="auto",
        missing="error",
        fixed_effects=None,
    ):
        self.group = group
        self.group_slopes = group_slopes
        self.reference = reference
        self.handle_unknown = handle_unknown
        self.method = method
        self.missing = missing
        self.fixed_effects = fixed_effects

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "group": [str, None],
        "group_slopes": [str, Integral, list, tuple, None],
        "reference": [str, Integral, None],
        "handle_unknown": [StrOptions(set(_UNKNOWN))],
        "method": [StrOptions(set(_METHODS))],
    }

    # -- groups ---------------------------------------------------------------
    @classmethod
    def from_formula(cls, formula, group=None, **params):
        """A model from ``lm(y ~ x + g)`` or ``lm(y ~ x * g)``'s formula.

        The grouping factor is ``group``, or else the formula's last term of
        one variable (``g`` in ``y ~ x + g`` and ``y ~ x * g``); its
        interactions (``x:g``) are group slopes; the other terms are the
        fixed part (an R formula).

        Parameters
        ----------
        formula : str
        group : str, default=None
        **params
            Other parameters (``reference``, ``method``, ...).

        Returns
        -------
        FixedEffectsRegressor
            Unfitted.

        Examples
        --------
        >>> from skmixed import FixedEffectsRegressor
        >>> m = FixedEffectsRegressor.from_formula("Reaction ~ Days * Subject")
        >>> m.group, m.group_slopes, m.fixed_effects
        ('Subject', ['Days'], 'Days')
        """
        from skmixed._model_formula import fixed_effects_from_formula

        return fixed_effects_from_formula(cls, formula, group, params)

    def _group_names(self):
        return [str(self.group) if self.group is not None else GROUPS_ARGUMENT]

    def _groups_optional(self, reset):
        # Fitted without groups: the pooled model needs none to predict.
        return not reset and getattr(self, "group_name_", "") is None

    # -- fit --------------------------------------------------------------------
    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the fixed-effects model.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Numeric features; a pandas X may also hold the grouping column.
        y : array-like of shape (n_samples,)
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
            The grouping factor, when not a column of X. Without any groups
            the pooled model is fitted, with a ``GroupsMissingWarning``.
        sample_weight : array-like of shape (n_samples,), default=None
            Precision weights, R's ``lm(weights=)``: weighted least squares,
            with R's weighted summary, ``loglik_``, R² and F (both methods).
            Rows of weight 0 are left out of the fit and of ``nobs_``, as R's
            ``lm`` does; a group whose rows all have weight 0 has no
            estimable effect (an error with ``method="within"``, an aliased
            coefficient with ``"dummy"``, as in R).

        Returns
        -------
        self : FixedEffectsRegressor
        """
        from skmixed import _dask

        if _dask.any_dask(X, y, groups, sample_weight):
            from skmixed._dask_lm import fit_fixed

            self._validate_params()
            fit_fixed(self, X, y, groups, sample_weight)
            return self
        self._fit_labels = (response_name(y), groups_label(groups))
        return super().fit(X, y, groups, sample_weight)

    def _fit(self, data):
        response, default_label = self._fit_labels
        del self._fit_labels
        if not fixed_intercept(True, data, type(self).__name__):
            raise intercept_dropped_error(self.fixed_effects)
        names = feature_names(data)
        if data.X.shape[1] == 0 and data.factors is None:
            raise no_feature_error(data.X.shape, "y ~ g")
        slope_idx = self._slope_indices(names)
        self.response_name_ = response
        if data.factors is None:
            self._fit_pooled(data, names, response)
            return
        label = str(self.group) if self.group is not None else default_label
        factor = next(iter(data.factors.values()))
        levels = [str(level) for level in factor.categories.tolist()]
        if len(levels) < 2:
            raise ValueError(
                f"Grouping factor {label!r} has a single level ({levels[0]!r}); "
                "fixed effects need at least 2 groups. Use PooledRegressor for "
                "one group."
            )
        ref = self._reference_index(levels)
        codes = np.asarray(factor.codes, dtype=np.intp)
        n, p = data.X.shape
        k = len(slope_idx)
        n_dummy = (len(levels) - 1) * (1 + k)
        method = self.method
        if method == "auto":
            big = (
                n_dummy > _MAX_DUMMY_COLUMNS or n * (1 + p + n_dummy) > _MAX_DUMMY_CELLS
            )
            method = "within" if big else "dummy"
        self.group_name_ = label
        self.levels_ = levels
        self.reference_ = levels[ref]
        self.n_groups_ = len(levels)
        self.method_ = method
        self._slope_idx = slope_idx
        rows = fit_rows(data.weights)
        fitted_rows = slice(None) if rows is None else rows
        _check_reference_slopes(
            data.X[fitted_rows][:, slope_idx],
            codes[fitted_rows],
            ref,
            names,
            slope_idx,
            levels,
        )
        if method == "dummy":
            self._fit_dummy(data, names, codes, ref, label)
        else:
            self._fit_within(data, names, codes, ref, label)
        self.formula_ = self._formula_of_fit(
            response, _fe_formula(response, names, label, slope_idx)
        )

    def _slope_indices(self, names):
        slopes = self.group_slopes
        if slopes is None:
            return []
        if isinstance(slopes, str | int):
            slopes = [slopes]
        idx = []
        for s in slopes:
            if isinstance(s, int | np.integer) and not isinstance(s, bool):
                if not 0 <= s < len(names):
                    raise ValueError(f"group_slopes index {s} out of range.")
                idx.append(int(s))
            elif str(s) in names:
                idx.append(names.index(str(s)))
            else:
                raise ValueError(
                    f"group_slopes names {s!r}, which is not a numeric feature of "
                    f"X (features: {names})."
                )
        if len(set(idx)) != len(idx):
            raise ValueError(f"group_slopes lists a feature twice: {slopes}.")
        return idx

    def _reference_index(self, levels):
        if self.reference is None:
            return 0
        ref = str(self.reference)
        if ref not in levels:
            shown = levels[:10] + (["..."] if len(levels) > 10 else [])
            raise ValueError(
                f"reference={self.reference!r} is not a level; levels: {shown}."
            )
        return levels.index(ref)

    def _fit_pooled(self, data, names, response):
        """No groups reached fit (a warning was issued): the pooled model."""
        n, p = data.X.shape
        design = np.column_stack([np.ones(n), data.X])
        columns = ["(Intercept)", *names]
        rows = fit_rows(data.weights)
        fit = shifted_least_squares(
            design, data.y, data.weights, rows, has_intercept=True
        )
        warn_aliased(
            [c for c, a in zip(columns, fit.aliased, strict=True) if a],
            "FixedEffectsRegressor",
        )
        coef = np.where(fit.aliased, 0.0, fit.coef)
        self._finish(data, design @ coef, fit, columns, has_group_rank=0)
        self._pooled_effects(fit, names, response)

    def _pooled_effects(self, fit, names, response):
        """The attributes of a fit without groups (in memory or from Dask)."""
        coef = np.where(fit.aliased, 0.0, fit.coef)
        self.group_name_ = None
        self.levels_, self.reference_, self.n_groups_ = [], None, 0
        self.method_ = "dummy"
        self._slope_idx = []
        self.intercept_ = float(coef[0])
        self.coef_ = fit.coef[1:].copy()
        self._intercepts = np.array([self.intercept_])
        self._slopes = np.zeros((1, 0))
        self._other_coef = np.where(np.isnan(self.coef_), 0.0, self.coef_)
        self.group_intercepts_ = pd.Series(dtype=float)
        self.formula_ = self._formula_of_fit(response, r_formula(response, names))

    def _finish(self, data, fitted, fit, columns, has_group_rank, sums=None):
        """Statistics and the R-named coefficients, common to all paths.

        A fit from Dask partitions has no rows here (``data`` None): it
        gives ``sums``, the number of rows, the total sum of squares and the
        sum of the log weights.
        """
        rank = fit.rank + has_group_rank
        if data is None:
            residuals, weights = None, None
            n, tss, log_weights = sums
            statistics = lm_statistics_from_sums(
                n, tss, fit.rss, rank, True, log_weights
            )
        else:
            residuals, weights = data.y - fitted, data.weights
            y_fit, w_fit = data.y, data.weights
            rows = fit_rows(data.weights)
            if rows is not None:
                y_fit, w_fit = y_fit[rows], w_fit[rows]
            statistics = lm_statistics(
                y_fit, fit.rss, rank, has_intercept=True, weights=w_fit
            )
        params = pd.Series(fit.coef, index=pd.Index(columns, dtype=object))
        cov = fit.cov_unscaled * statistics.sigma**2
        vcov = pd.DataFrame(cov, index=params.index, columns=params.index)
        self._store_lm(
            params, vcov, statistics, fitted, residuals, statistics.df_resid, weights
        )

    def _fit_dummy(self, data, names, codes, ref, label):
        """Indicator columns, R's column order, one QR."""
        design, columns, order = _dummy_design(
            data.X, codes, ref, self.levels_, self._slope_idx, names, label
        )
        rows = fit_rows(data.weights)
        fit = shifted_least_squares(
            design, data.y, data.weights, rows, has_intercept=True, order=order
        )
        coef = np.where(fit.aliased, 0.0, fit.coef)
        self._finish(data, design @ coef, fit, columns, has_group_rank=0)
        self._dummy_effects(fit, columns, names, ref)

    def _dummy_effects(self, fit, columns, names, ref):
        """Group intercepts and slopes from the dummy fit's coefficients."""
        levels, slope_idx, p = self.levels_, self._slope_idx, len(names)
        warn_aliased(
            [c for c, a in zip(columns, fit.aliased, strict=True) if a],
            "FixedEffectsRegressor",
        )
        coef = np.where(fit.aliased, 0.0, fit.coef)
        other_idx = np.array([i for i in range(len(levels)) if i != ref], dtype=np.intp)
        g1 = len(other_idx)
        shifts = np.zeros(len(levels))
        shifts[other_idx] = coef[1 + p : 1 + p + g1]
        intercepts = coef[0] + shifts
        slopes = np.empty((len(levels), len(slope_idx)))
        for col, j in enumerate(slope_idx):
            start = 1 + p + g1 * (1 + col)
            dev = np.zeros(len(levels))
            dev[other_idx] = coef[start : start + g1]
            slopes[:, col] = coef[1 + j] + dev
        self._store_effects(intercepts, slopes, fit.coef[1 : 1 + p], names)

    def _fit_within(self, data, names, codes, ref, label):
        """Absorb the groups: project on the per-group basis, solve, recover.

        With weights the projections are weighted (group means and
        within-group regressions weighted by w) and the projected columns
        are scaled by ``sqrt(w)`` before the solve: the same WLS estimates
        as the weighted dummy-variable fit.
        """
        X_all, codes_all, levels = data.X, codes, self.levels_
        n_groups = len(levels)
        weights, rows = data.weights, fit_rows(data.weights)
        X, y = X_all, data.y
        if rows is not None:
            X, y, codes, weights = X[rows], y[rows], codes[rows], weights[rows]
            _check_weighted_levels(codes, n_groups, levels, label)
        slope_idx = self._slope_idx
        rest = [j for j in range(X.shape[1]) if j not in slope_idx]
        counts = np.bincount(codes, weights=weights, minlength=n_groups)
        counts = counts.astype(np.float64)
        root = None if weights is None else np.sqrt(weights)
        # [X_rest | y], column-major: every column pass below is contiguous.
        values = np.empty((X.shape[0], len(rest) + 1), order="F")
        values[:, :-1] = X[:, rest]
        shift = intercept_shift(y, has_intercept=True)  # the groups absorb it
        values[:, -1] = y - shift
        scaled = values[:, :-1] if root is None else values[:, :-1] * root[:, None]
        norms = np.sqrt(np.einsum("ij,ij->j", scaled, scaled))
        basis = _GroupBasis(codes, n_groups, counts, X[:, slope_idx], weights)
        if basis.k == 0:
            weighted = values if weights is None else values * weights[:, None]
            means = group_sums(codes, n_groups, weighted) / counts[:, None]
            for j in range(values.shape[1]):
                values[:, j] -= means[:, j][codes]
            projected = values
        else:
            projected = basis.residualize(values)
        if root is not None:
            projected *= root[:, None]
        fit, residuals = tall_least_squares(projected, norms)
        rest_names = [names[j] for j in rest]
        aliased = [c for c, a in zip(rest_names, fit.aliased, strict=True) if a]
        for g, col in zip(*np.nonzero(~basis.identified), strict=True):
            aliased.append(f"{names[slope_idx[col]]}:{label}{levels[g]}")
        warn_aliased(aliased, "FixedEffectsRegressor")
        beta = np.where(fit.aliased, 0.0, fit.coef)
        if basis.k == 0:
            # Group means of y - X b, without another pass over the rows.
            intercepts = means[:, -1] - means[:, :-1] @ beta + shift
            slopes = np.zeros((n_groups, 0))
        else:
            # y less the shift (values[:, -1]): its group means keep their digits
            partial = values[:, -1] - X[:, rest] @ beta
            intercepts, slopes = basis.recover(partial, ref)
            intercepts += shift
        if basis.k == 0 and root is None:
            fitted = y - residuals  # the within residuals are the model's
        else:
            fitted = X_all[:, rest] @ beta + intercepts[codes_all]
            for col, j in enumerate(slope_idx):
                fitted += slopes[codes_all, col] * X_all[:, j]
        group_rank = n_groups + int(basis.identified.sum())
        self._finish(data, fitted, fit, rest_names, has_group_rank=group_rank)
        coef = np.full(X_all.shape[1], np.nan)
        coef[rest] = fit.coef
        self._store_effects(intercepts, slopes, coef, names, ref=ref)

    def _store_effects(self, intercepts, slopes, feature_coef, names, ref=None):
        ref = self.levels_.index(self.reference_) if ref is None else ref
        index = pd.Index(self.levels_, dtype=object)
        self._intercepts = intercepts
        self._slopes = slopes
        slope_idx = self._slope_idx
        coef = np.asarray(feature_coef, dtype=float).copy()
        for col, j in enumerate(slope_idx):
            coef[j] = slopes[ref, col]
        self.coef_ = coef
        self.intercept_ = float(intercepts[ref])
        self._other_coef = np.where(np.isnan(coef), 0.0, coef)
        self._other_coef[slope_idx] = 0.0
        self.group_intercepts_ = pd.Series(intercepts, index=index)
        if slope_idx:
            self.group_slopes_ = pd.DataFrame(
                slopes, index=index, columns=[names[j] for j in slope_idx]
            )

    # -- predict ----------------------------------------------------------------
    def _predict(self, data):
        X = data.X
        pred = X @ self._other_coef
        intercepts = np.append(self._intercepts, self._intercepts.mean())
        slopes = np.vstack([self._slopes, self._slopes.mean(axis=0, keepdims=True)])
        if self.n_groups_ == 0:
            return pred + intercepts[0]
        if data.factors is None:
            codes = np.full(X.shape[0], self.n_groups_, dtype=np.intp)
        else:
            codes = self._codes_at_predict(next(iter(data.factors.values())))
        pred += intercepts[codes]
        for col, j in enumerate(self._slope_idx):
            pred += slopes[codes, col] * X[:, j]
        return pred

    def _codes_at_predict(self, factor):
        """Codes into the fitted levels; unseen levels -> the 'mean' slot."""
        position = level_positions(factor.categories.astype(str), self.levels_)
        unseen = [
            str(c)
            for c, pos in zip(factor.categories, position, strict=True)
            if pos < 0
        ]
        if unseen and self.handle_unknown == "error":
            shown = unseen[:10] + (["..."] if len(unseen) > 10 else [])
            raise ValueError(
                f"{len(unseen)} level(s) of {self.group_name_!r} unseen at fit: "
                f"{shown}. Use handle_unknown='mean' to predict them with the "
                "average group effect."
            )
        position = np.where(position < 0, self.n_groups_, position)
        return position[np.asarray(factor.codes, dtype=np.intp)]

    def _summary_notes(self):
        if getattr(self, "method_", "") != "within":
            return []
        what = "intercepts"
        if self._slope_idx:
            what += " and slopes of " + ", ".join(self.group_slopes_.columns)
        return [
            "",
            f"Absorbed (within transformation): {self.n_groups_} group {what} of "
            f"{self.group_name_}; see group_intercepts_"
            + (" and group_slopes_." if self._slope_idx else "."),
        ]


def intercept_dropped_error(fixed_effects):
    """The error for a formula fixed part without the intercept (``"0 +
    x"``): the reference level's is always there (in memory as from Dask)."""
    return ValueError(
        "FixedEffectsRegressor always has an intercept (the reference "
        f"level's); fixed_effects={fixed_effects!r} drops it."
    )


def _dummy_design(X, codes, ref, levels, slope_idx, names, label):
    """R's ``x + g`` (``x * g``) design: (matrix, column names, aliasing order).

    Aliasing is tested with the group effects first, so that a feature
    constant within groups is the one dropped (as the within method must),
    then slope columns, their interactions, other features.
    """
    n, p = X.shape
    others = [lv for i, lv in enumerate(levels) if i != ref]
    other_idx = np.array([i for i in range(len(levels)) if i != ref], dtype=np.intp)
    dummies = (codes[:, None] == other_idx[None, :]).astype(np.float64)
    blocks = [np.ones((n, 1)), X, dummies]
    blocks += [X[:, [j]] * dummies for j in slope_idx]
    design = np.hstack(blocks)
    columns = ["(Intercept)", *names, *[f"{label}{lv}" for lv in others]]
    for j in slope_idx:
        columns += [f"{names[j]}:{label}{lv}" for lv in others]
    g1 = len(others)
    dummy_pos = list(range(1 + p, 1 + p + g1))
    inter_pos = list(range(1 + p + g1, design.shape[1]))
    rest = [1 + j for j in range(p) if j not in slope_idx]
    order = [0, *dummy_pos, *[1 + j for j in slope_idx], *inter_pos, *rest]
    return design, columns, order


def _fe_formula(response, names, label, slope_idx):
    if len(slope_idx) == len(names) == 1:
        return r_formula(response, [f"{names[0]} * {label}"])
    terms = [*names, label, *[f"{names[j]}:{label}" for j in slope_idx]]
    return r_formula(response, terms)


def _check_weighted_levels(codes, n_groups, levels, label):
    """Within method: every level needs a row of positive weight."""
    empty = np.flatnonzero(np.bincount(codes, minlength=n_groups) == 0)
    if empty.size:
        shown = [levels[g] for g in empty[:10]] + (["..."] if empty.size > 10 else [])
        raise ValueError(
            f"{empty.size} level(s) of {label!r} have only rows of weight 0, so "
            f"their effects are not estimable: {shown}. Drop those rows, or use "
            "method='dummy' (R's lm: an aliased, NA coefficient)."
        )


def _check_reference_slopes(Z, codes, ref, names, slope_idx, levels):
    """A slope varying by group needs the reference level's slope identified."""
    if not slope_idx:
        return
    rows = codes == ref
    zr = Z[rows]
    centred = zr - zr.mean(axis=0)
    for col, j in enumerate(slope_idx):
        if np.linalg.norm(centred[:, col]) < ALIAS_TOL * max(
            np.linalg.norm(zr[:, col]), 1e-300
        ):
            raise ValueError(
                f"{names[j]!r} is constant within the reference level "
                f"{levels[ref]!r}, so its slope there is not identified; choose "
                "another level with reference=."
            )


class _GroupBasis:
    """The per-group basis ``[1, z_1, ..., z_k]`` of the absorbed effects.

    Projections use group means and the within-group (centred) cross-products
    of the slope columns, all by ``np.bincount``; a slope column that is
    (nearly) a combination of the others within a group -- constant there, for
    one column -- is not identified in that group (R's aliasing rule,
    relative to the column's norm within the group) and left out of that
    group's basis.
    """

    def __init__(self, codes, n_groups, counts, Z, weights=None):
        self.codes, self.n_groups, self.counts = codes, n_groups, counts
        self.Z = Z
        self.weights = weights
        k = Z.shape[1]
        self.k = k
        self.identified = np.ones((n_groups, k), dtype=bool)
        if k == 0:
            return
        self.Zc, self.zbar = demean(codes, n_groups, Z, counts, weights)
        # Zw: the centred columns times the weights, for weighted products.
        self.Zw = self.Zc if weights is None else self.Zc * weights[:, None]
        gram = np.empty((n_groups, k, k))
        for a in range(k):
            for b in range(a, k):
                s = np.bincount(
                    codes, weights=self.Zw[:, a] * self.Zc[:, b], minlength=n_groups
                )
                gram[:, a, b] = gram[:, b, a] = s
        squares = Z * Z if weights is None else Z * Z * weights[:, None]
        norms = np.sqrt(group_sums(codes, n_groups, squares))
        self.identified = _identified(gram, norms)
        ok = self.identified[:, :, None] & self.identified[:, None, :]
        eye = np.broadcast_to(np.eye(k), gram.shape)
        self.gram = np.where(ok, gram, eye)

    def _slopes_of(self, centred):
        """Per-group regression of centred columns on the centred basis."""
        m = centred.shape[1]
        cross = np.empty((self.n_groups, self.k, m))
        for a in range(self.k):
            cross[:, a, :] = group_sums(
                self.codes, self.n_groups, self.Zw[:, [a]] * centred
            )
        cross[~self.identified] = 0.0
        return np.linalg.solve(self.gram, cross)

    def residualize(self, values):
        """``values`` minus their projection on the per-group basis."""
        centred, _ = demean(
            self.codes, self.n_groups, values, self.counts, self.weights
        )
        if self.k == 0:
            return centred
        coef = self._slopes_of(centred)
        for a in range(self.k):
            centred -= self.Zc[:, [a]] * coef[self.codes, a, :]
        return centred

    def recover(self, partial, ref):
        """Group intercepts and slopes of ``partial`` (y minus the other features).

        A slope not identified in a group is the reference level's slope, as
        R's ``predict.lm`` treats the NA shift as zero.
        """
        if self.k == 0:
            weighted = partial if self.weights is None else partial * self.weights
            means = group_sums(self.codes, self.n_groups, weighted) / self.counts
            return means, np.zeros((self.n_groups, 0))
        ref_slopes = self._fit_groups(partial)[1][ref]
        fixed = np.where(self.identified, 0.0, ref_slopes[None, :])
        adjusted = partial - np.einsum("ij,ij->i", self.Z, fixed[self.codes])
        intercepts, slopes = self._fit_groups(adjusted)
        return intercepts, np.where(self.identified, slopes, ref_slopes[None, :])

    def _fit_groups(self, values):
        centred, means = demean(
            self.codes, self.n_groups, values[:, None], self.counts, self.weights
        )
        slopes = self._slopes_of(centred)[:, :, 0]
        intercepts = means[:, 0] - np.einsum("ij,ij->i", self.zbar, slopes)
        return intercepts, slopes


def _identified(gram, norms):
    """Which slope columns are identified in each group (batched Cholesky test).

    Column ``j`` is identified in a group when its within-group residual,
    after the intercept and the identified columns before it, has a norm of
    at least ``1e-7`` times the column's norm in that group (R's rule).
    """
    n_groups, k = norms.shape
    chol = np.zeros((n_groups, k, k))
    ok = np.zeros((n_groups, k), dtype=bool)
    for j in range(k):
        for i in range(j):
            s = gram[:, j, i] - np.einsum("gl,gl->g", chol[:, j, :i], chol[:, i, :i])
            chol[:, j, i] = np.where(
                ok[:, i], s / np.where(ok[:, i], chol[:, i, i], 1.0), 0.0
            )
        r2 = gram[:, j, j] - np.einsum("gl,gl->g", chol[:, j, :j], chol[:, j, :j])
        resid = np.sqrt(np.maximum(r2, 0.0))
        ok[:, j] = resid >= ALIAS_TOL * np.where(norms[:, j] > 0, norms[:, j], 1.0)
        chol[:, j, j] = np.where(ok[:, j], resid, 1.0)
        chol[:, j, :j] = np.where(ok[:, j, None], chol[:, j, :j], 0.0)
    return ok
