"""GLMM estimators: lme4's ``glmer`` as scikit-learn estimators.

``MixedGLMRegressor`` predicts the conditional mean of a binomial or Poisson
response; ``MixedLogisticRegression`` is a classifier for binary labels.
Both share :class:`_MixedGLMBase`: the input plumbing of the LMM
(:class:`skmixed._base.GroupedRegressor`), the random-effects terms in
lme4's syntax, and lme4's pipeline (terms -> the random-effects system ->
PIRLS -> two-stage optimisation -> fitted attributes).
"""

import warnings

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from skmixed._base import (
    fixed_intercept,
    weights_name,
)
from skmixed._inputs import check_sample_weight, response_name
from skmixed._linalg import least_squares
from skmixed._stacklevel import user_stacklevel
from skmixed.glmm.agq import agq_minus2_loglik
from skmixed.glmm.blocks import (
    RandomEffects,
    Term,
    lambdas_from_theta,
    theta_lower_bounds,
    theta_start,
)
from skmixed.glmm.families import Family, get_family
from skmixed.glmm.optimize import (
    convergence_problems,
    finite_difference_hessian,
    fit_two_stages,
    is_singular,
)
from skmixed.glmm.pirls import HESSIAN_STEP_TOL, GLMMProblem, glm_fit
from skmixed.glmm.reporting import GLMMReporting
from skmixed.glmm.slopes import SlopeScaling
from skmixed.mixed.centring import FixedCentring, column_scales, shift_matrix
from skmixed.mixed.estimator import (
    _lazy_attribute,
    _levels_per_factor,
    _lme4_order,
    _RandomEffectsModel,
    _variance_components,
)
from skmixed.mixed.identifiable import spanned_columns_of_rows, spanned_message
from skmixed.mixed.optimize import blas_single_thread

_VCOV_METHODS = ("hessian", "rx")
_PREDICT_TYPES = ("response", "link")
# lme4 (glmerControl) checks the gradient for at most 1e4 rows; the
# finite-difference Hessian costs O(n_par²) objective evaluations.
_CHECK_NOBS_MAX = 10_000
_CHECK_NPAR_MAX = 12


class _lazy(_lazy_attribute):
    """A fitted attribute computed on first access, kept in ``_cache`` (with
    the covariances and derivatives computed on demand)."""

    store = "_cache"


class _MixedGLMBase(GLMMReporting, _RandomEffectsModel):
    """Fitting and fitted attributes shared by the GLMM estimators."""

    # Parameters checked with scikit-learn's machinery, as the LMM's are
    # (InvalidParameterError naming the parameter and the allowed values);
    # the family (a name or a Family) and its link are checked together, and
    # nAGQ by hand, to explain lme4's nAGQ = 0.
    _parameter_constraints = {
        **_RandomEffectsModel._parameter_constraints,
        "family": [str, Family],
        "link": [None, str],
        "vcov_method": [StrOptions(set(_VCOV_METHODS))],
    }

    # no residual variance: glmer allows as many random effects as rows
    _has_residual = False

    @classmethod
    def from_formula(cls, formula, **params):
        """A model from glmer's formula, e.g. ``"y ~ x + (1 | g) + offset(log(e))"``.

        The bar terms give ``random_effects``, the rest ``fixed_effects``
        (an R formula) and the ``offset(...)`` terms ``offset`` (an
        expression of X's columns, computed at fit and at predict). Fit it
        on a DataFrame holding the formula's columns, with the response as
        ``y``: for :class:`MixedGLMRegressor` a ``cbind(s, f)`` response as
        ``y = s / (s + f)`` and ``sample_weight = s + f``
        (:func:`skmixed.glmer` does this), for
        :class:`MixedLogisticRegression` the labels.

        Parameters
        ----------
        formula : str
        **params
            Other parameters (``family``, ``link``, ``nAGQ``, ...).

        Returns
        -------
        MixedGLMRegressor or MixedLogisticRegression
            Unfitted, of the class it is called on.

        Examples
        --------
        >>> from skmixed import MixedGLMRegressor, MixedLogisticRegression
        >>> m = MixedGLMRegressor.from_formula(
        ...     "y ~ x + (1 | g) + offset(log(e))", family="poisson")
        >>> m.random_effects, m.fixed_effects, m.offset
        ('(1 | g)', 'x', 'log(e)')
        >>> clf = MixedLogisticRegression.from_formula("y ~ x + (1 | g)")
        >>> clf.random_effects, clf.fixed_effects
        ('(1 | g)', 'x')
        """
        from skmixed._model_formula import mixed_from_formula

        return mixed_from_formula(cls, formula, params, glmer=True)

    # -- plumbing ------------------------------------------------------------
    def _family(self):
        return get_family(self.family, self.link)

    def _check_params(self):
        # the others are checked by _parameter_constraints (fit validates
        # them first); nAGQ here, to explain lme4's nAGQ = 0
        n_agq = self.nAGQ
        if not isinstance(n_agq, int | np.integer) or isinstance(n_agq, bool):
            raise ValueError(f"nAGQ must be a positive integer; got {n_agq!r}.")
        if n_agq < 1:
            raise ValueError(
                f"nAGQ must be >= 1 (1 = Laplace; lme4's nAGQ = 0 is the first "
                f"stage of every fit); got {n_agq}."
            )

    def _refuse_dask(self, *inputs):
        """PIRLS reweights every row at each step: no one-pass Dask fit yet."""
        from skmixed._dask import any_dask

        if any_dask(*inputs):
            raise NotImplementedError(
                f"{type(self).__name__} does not fit from Dask collections yet "
                "(its weights change at every PIRLS step, so it cannot use the "
                "one-pass sums of the linear models). Fit on data in memory, "
                "e.g. X.compute(), or use MixedLMRegressor for a Gaussian "
                "response."
            )

    def _validate_fit(self, X, y, groups, sample_weight):
        """Validated rows at fit; with missing='drop' the weights go along.

        Rows dropped for NaN/inf (or a missing weight, as R's na.omit drops
        it) lose their weight too; without dropping the weights are checked
        by :meth:`_prior_weights`.
        """
        carry = sample_weight is not None and self.missing == "drop"
        return self._validate(
            X,
            y,
            groups,
            reset=True,
            stage="fit",
            sample_weight=sample_weight if carry else None,
        )

    def _prior_for(self, data, sample_weight, n):
        """Prior weights for the validated rows (ones without sample_weight)."""
        if sample_weight is None:
            return np.ones(len(data.y))
        if data.weights is not None:  # missing='drop': the kept rows' weights
            return self._prior_weights(data.weights, len(data.y))
        return self._prior_weights(sample_weight, n)

    def _prior_weights(self, sample_weight, n):
        # the linear models' checks and messages (rows named, missing='drop'
        # suggested for NaN); all zero is refused there too
        return check_sample_weight(sample_weight, n)

    # -- fit -------------------------------------------------------------------
    def _fit_glmm(self, data, prior):
        self._check_params()
        family = self._family()
        family.check_response(data.y, prior)
        with blas_single_thread():
            self._fit_pinned(data, prior, family)

    def _fit_pinned(self, data, prior, family):
        self._has_intercept = fixed_intercept(self.fit_intercept, data)
        names = self._feature_names(data)
        X, x_names, kept, _ = self._fixed_design(data.X, names, data.y, prior > 0)
        self._x_names, self._kept = x_names, kept
        self._family_ = family
        self.family_ = family.name
        self.link_ = family.link.name
        self._y, self._prior = data.y, prior
        n = X.shape[0]
        # lme4's offset(...): added to η with coefficient 1 (zeros without)
        offset = np.zeros(n) if data.offset is None else data.offset
        self._offset = offset
        self.nobs_ = n
        self._require_columns(data)
        if data.factors is None:
            self._fit_glm(X, data.y, prior, family, offset)
            return
        terms = self._terms()
        designs = _lme4_order(self._term_designs(terms, data, names))
        self._check_levels(designs, n)
        for term, columns in spanned_columns_of_rows(X, data.y, designs):
            warnings.warn(
                spanned_message(term, columns),
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        # Random-slope columns far from 0 or badly scaled are fitted
        # standardised (θ̃, b̃ mapped back; see skmixed.glmm.slopes)
        self._slopes = slopes = SlopeScaling(designs)
        system = RandomEffects(
            [Term(d.codes, d.m, slopes.columns(i, d.Z)) for i, d in enumerate(designs)]
        )
        # Columns far from 0 beside the intercept (x = 1e4 + N(0, 1), a
        # year) are fitted centred, and columns of a spread far from 1
        # scaled: the same model, but (β0, β1) of the data's columns are
        # nearly collinear, and lme4's finite-difference check in (θ, β)
        # with steps of 1e-4 moved η by 1 along such a column (a spurious
        # "failed to converge", Hessian SEs off 200-fold). self._problem
        # and self._beta_fit are the fitted columns'; β and vcov are mapped
        # back to the user's (see skmixed.mixed.centring).
        shifts = shift_matrix(X, x_names)
        self._centring = FixedCentring(shifts, column_scales(X, shifts))
        problem = GLMMProblem(
            self._centring.columns(X), data.y, prior, family, system, offset
        )
        ks = system.ks
        n_agq = int(self.nAGQ)
        if n_agq > 1 and not (len(designs) == 1 and ks[0] == 1):
            raise ValueError(
                f"nAGQ = {n_agq} > 1 needs a single scalar random-effects term "
                f"(e.g. '(1 | g)'), as in lme4; got {self.random_effects!r}. "
                "Use nAGQ=1 (Laplace)."
            )
        lower = theta_lower_bounds(ks)
        fit = fit_two_stages(
            problem,
            theta_start(ks),
            lower,
            np.zeros(X.shape[1]),
            n_agq=n_agq,
            max_iter=self.max_iter,
        )
        self._problem, self._designs, self._lower = problem, designs, lower
        self._term_designs_fit = [
            (d.factor, d.group, list(d.names), np.asarray(d.levels)) for d in designs
        ]
        self._set_results(theta_fit=fit.theta, beta_fit=fit.beta)
        self.n_evaluations_ = int(fit.n_evaluations)
        self.n_iter_ = self.n_evaluations_
        problems = []
        if not fit.converged:
            problems.append(f"optimizer did not converge: {fit.message}")
        n_par = len(fit.theta) + len(fit.beta)
        if not self.is_singular_ and n < _CHECK_NOBS_MAX and n_par <= _CHECK_NPAR_MAX:
            grad, hess = self._derivatives()
            problems += convergence_problems(grad, hess)
        self._report_fit(problems)

    def _screen_columns(self, X, y, used):
        """R's rule for aliased columns, on the rows of positive weight
        (rows of zero weight carry no information)."""
        # p = 0 (y ~ 0 + offset(log(e)) + (1 | g)) is a model too, as in
        # lme4; without grouping factors _fit_pinned has refused it already
        return ~least_squares(X[used], y[used]).aliased, None

    def _fit_glm(self, X, y, prior, family, offset):
        """No grouping factors reached fit: the GLM without random effects."""
        beta, RX, mu, eta = glm_fit(X, y, prior, family, offset)
        self._problem, self._designs, self._lower = None, [], np.zeros(0)
        self._centring = FixedCentring(np.eye(len(beta)))
        self._slopes = SlopeScaling([])
        self._theta_fit = np.zeros(0)
        self._term_designs_fit, self._b = [], []
        # no PIRLS factor to read conditional covariances from: none, as
        # MixedLMRegressor's pooled fit
        self._cache = {"random_effects_cov_": {}}
        self._mode = None
        self._RX_glm, self._X_glm = RX, X
        self._beta = self._beta_fit = beta
        self._eta, self._mu = eta, mu
        self.theta_ = np.zeros(0)
        self._set_coef(beta)
        m2ll = family.minus2_loglik(y, mu, prior)
        self._set_criteria(m2ll, m2ll, len(beta))
        self.deviance_ = family.deviance(y, mu, prior)
        self.n_groups_ = {}
        self.is_singular_ = False
        self.converged_ = True
        self.n_evaluations_ = 0
        self.n_iter_ = 1

    def _set_criteria(self, m2ll_absolute, m2ll_reported, df):
        self._set_information_criteria(m2ll_reported, self.nobs_, df)
        self.loglik_absolute_ = -0.5 * m2ll_absolute
        self.df_ = int(df)

    def _set_results(self, theta=None, beta=None, *, theta_fit=None, beta_fit=None):
        """Every fitted attribute at (θ, β); tables are built on first access.

        θ and β of the user's columns, or ``theta_fit`` and ``beta_fit`` of
        the fitted problem's (standardised, centred) ones.
        """
        problem = self._problem
        if theta_fit is None:
            theta_fit = self._slopes.theta_fit(theta)
        theta_fit = np.asarray(theta_fit, dtype=np.float64)
        theta = self._slopes.theta(theta_fit)
        if beta_fit is None:
            beta_fit = self._centring.beta_centred(beta)
        beta_fit = np.asarray(beta_fit, dtype=np.float64)
        beta = self._centring.beta(beta_fit)
        mode = problem.modes(theta_fit, beta_fit)
        self._cache = {}
        self._mode = mode
        self._beta, self._beta_fit = beta, beta_fit
        self._theta_fit = theta_fit
        self._eta, self._mu = mode.eta, mode.mu
        self.theta_ = theta.copy()
        self._set_coef(beta)
        n_agq = int(self.nAGQ)
        family = self._family_
        absolute = self._objective_fit(theta_fit, beta_fit)
        # lme4 reports the nAGQ > 1 value relative to the saturated model
        reported = absolute - problem.saturated_m2ll if n_agq > 1 else absolute
        self._set_criteria(absolute, reported, len(theta) + len(beta))
        self.deviance_ = family.deviance(self._y, mode.mu, self._prior)
        # singular on the standardised scale (as the LMM: a slope of 1e6 x
        # has θ ~ 1e-7)
        self.is_singular_ = is_singular(theta_fit, self._lower)
        self.n_groups_ = _levels_per_factor(self._designs)
        self._b = self._slopes.effects(problem.system.b_from_u(mode.u, mode.lambdas))

    def _objective_at(self, theta, beta):
        """-2 log L (absolute scale) at (θ, β) of the user's columns."""
        return self._objective_fit(
            self._slopes.theta_fit(theta), self._centring.beta_centred(beta)
        )

    def _objective_fit(self, theta_fit, beta_fit, step_tol=None):
        """-2 log L (absolute scale) at (θ̃, β̃) of the fitted problem's
        columns: Laplace or AGQ (PIRLS to a Newton step of ``step_tol``,
        None for the fit's)."""
        mode = self._problem.modes(theta_fit, beta_fit, step_tol=step_tol)
        if int(self.nAGQ) > 1:
            return agq_minus2_loglik(self._problem, mode, int(self.nAGQ))
        return mode.laplace

    def _restore_modes(self):
        """Leave PIRLS's warm start at the estimates."""
        self._problem.modes(self._theta_fit, self._beta_fit)

    def _derivatives(self):
        """lme4's finite-difference gradient and Hessian (cached), in (θ̃, β̃)
        of the fitted problem's columns: centred and scaled where the
        user's are shifted or badly scaled, so that a step moves η by the
        step times a spread near 1, not by the column's distance from 0 or
        its scale."""
        cache = self._cache
        if "_derivs" not in cache:
            n_theta = len(self.theta_)
            x = np.concatenate([self._theta_fit, self._beta_fit])
            lower = np.concatenate([self._lower, np.full(len(self._beta), -np.inf)])

            def fun(z):
                return self._objective_fit(
                    z[:n_theta], z[n_theta:], step_tol=HESSIAN_STEP_TOL
                )

            fx = fun(x)
            with blas_single_thread():
                cache["_derivs"] = finite_difference_hessian(fun, x, fx, lower)
            self._restore_modes()
        return cache["_derivs"]

    # -- fitted attributes built on first access ----------------------------
    @_lazy
    def fixed_effects_(self):
        """β (pandas Series indexed by ``"(Intercept)"`` and feature names)."""
        return pd.Series(self._beta, index=self._x_names, name="estimate")

    def _vcov_rx_fit(self):
        """``(R_Xᵀ R_X)⁻¹`` of the fitted problem's columns."""
        if self._problem is None:
            RX = self._RX_glm
        else:
            RX = self._problem.rx_at(self._mode)
        p = RX.shape[0]
        inv = solve_triangular(RX, np.eye(p), lower=False)
        return inv @ inv.T

    def _vcov_rx(self):
        return self._centring.covariance(self._vcov_rx_fit())

    def _vcov_hessian(self):
        """lme4's default: 2 [H⁻¹]_ββ from the Hessian of -2 log L, or None."""
        _, hess = self._derivatives()
        try:
            np.linalg.cholesky(hess)
        except np.linalg.LinAlgError:
            return None
        n_theta = len(self.theta_)
        inv = np.linalg.inv(hess)[n_theta:, n_theta:]
        return self._centring.covariance(inv + inv.T)

    def vcov(self, method=None):
        """Covariance matrix of β.

        Parameters
        ----------
        method : {"hessian", "rx"} or None, default=None
            ``"hessian"``: lme4's default for GLMMs, ``2 [H⁻¹]_ββ`` with H
            the finite-difference Hessian of -2 log L in (θ, β) (the
            uncertainty in θ included; falls back to ``"rx"``, as lme4 does,
            when H is not positive definite). ``"rx"``: ``(R_Xᵀ R_X)⁻¹`` of
            the final PIRLS step, conditional on θ (lme4's
            ``vcov(m, use.hessian = FALSE)``). None: ``vcov_method``.

        Returns
        -------
        pandas.DataFrame
        """
        check_is_fitted(self)
        method = self.vcov_method if method is None else method
        if method not in _VCOV_METHODS:
            raise ValueError(f"method must be one of {_VCOV_METHODS}; got {method!r}.")
        key = f"_vcov_{method}"
        if key not in self._cache:
            value, source = None, "rx"
            if method == "hessian" and self._problem is not None:
                value = self._vcov_hessian()
                source = "hessian" if value is not None else "rx"
            if value is None:
                value = self._vcov_rx()
            self._cache[key] = (
                pd.DataFrame(value, index=self._x_names, columns=self._x_names),
                source,
            )
        return self._cache[key][0]

    @_lazy
    def vcov_(self):
        """Covariance matrix of β by ``vcov_method`` (see :meth:`vcov`)."""
        return self.vcov()

    @_lazy
    def vcov_source_(self):
        """Where ``vcov_`` came from: ``"hessian"`` or ``"rx"``."""
        self.vcov()
        return self._cache[f"_vcov_{self.vcov_method}"][1]

    @_lazy
    def variance_components_(self):
        """lme4's ``as.data.frame(VarCorr(m))`` without a Residual row."""
        lambdas = lambdas_from_theta(self.theta_, [d.k for d in self._designs])
        return _variance_components(self._designs, lambdas)

    @_lazy
    def random_effects_(self):
        """Conditional modes per factor (dict of DataFrames, lme4's ``ranef``)."""
        return self._modes_by_factor(self._designs, self._b)

    @_lazy
    def random_effects_cov_(self):
        """Conditional covariances per factor: dict of (m, k, k) arrays.

        lme4's ``condVar``: ``Λ (L Lᵀ)⁻¹ Λᵀ`` blocks, L the PIRLS factor at
        the conditional modes.
        """
        inv = self._mode.factor.inverse_diagonal_blocks()
        covs = self._slopes.covariances(
            [
                np.einsum("ab,mbc,dc->mad", lam, block, lam)
                for lam, block in zip(self._mode.lambdas, inv, strict=True)
            ]
        )
        return self._covariances_by_factor(self._designs, covs)

    @_lazy
    def random_effects_sd_(self):
        """Conditional standard deviations per factor (lme4's ``condsd``)."""
        out = {}
        for factor, frame in self.random_effects_.items():
            cov = self.random_effects_cov_[factor]
            sd = np.sqrt(np.einsum("mii->mi", cov))
            out[factor] = pd.DataFrame(sd, index=frame.index, columns=frame.columns)
        return out

    @_lazy
    def fittedvalues_(self):
        """Conditional means μ = g⁻¹(Xβ + Zb + offset) (lme4's ``fitted``)."""
        return self._mu.copy()

    @_lazy
    def linear_predictor_(self):
        """Xβ + Zb + offset (lme4's ``predict(m, type = "link")``)."""
        return self._eta.copy()

    def residuals(self, type="deviance"):
        """Residuals of the fit, as R's ``residuals(m, type)``.

        Parameters
        ----------
        type : {"deviance", "pearson", "response"}, default="deviance"
            ``sign(y - μ) sqrt(d_i)`` (d_i the weighted unit deviance),
            ``(y - μ) sqrt(w) / sqrt(V(μ))``, or ``y - μ``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        y, mu, prior, family = self._y, self._mu, self._prior, self._family_
        if type == "response":
            return y - mu
        if type == "pearson":
            return (y - mu) * np.sqrt(prior) / np.sqrt(family.variance(mu))
        if type == "deviance":
            d = family.unit_deviance(y, mu, prior)
            return np.sign(y - mu) * np.sqrt(np.maximum(d, 0.0))
        raise ValueError(
            f"type must be 'deviance', 'pearson' or 'response'; got {type!r}."
        )

    # -- objective for other parameters or data -----------------------------
    def objective(self, theta=None, beta=None):
        """-2 log L (absolute scale) of the training data at (θ, β).

        The Laplace approximation (nAGQ = 1) or the adaptive Gauss-Hermite
        one, with every normalising constant; at the estimates it is
        ``-2 * loglik_absolute_``.

        Parameters
        ----------
        theta : array-like, default=None
            θ in lme4's order (``theta_`` when None).
        beta : array-like, default=None
            β of the kept fixed-effect columns (``fixed_effects_`` when None).

        Returns
        -------
        float
        """
        check_is_fitted(self)
        theta = (
            self.theta_ if theta is None else np.atleast_1d(np.asarray(theta, float))
        )
        beta = self._beta if beta is None else np.atleast_1d(np.asarray(beta, float))
        if self._problem is None:
            eta = self._offset + self._X_glm @ beta
            mu = self._family_.link.inverse(eta)
            return self._family_.minus2_loglik(self._y, mu, self._prior)
        with blas_single_thread():
            value = self._objective_at(theta, beta)
            self._restore_modes()
        return value

    # -- prediction ------------------------------------------------------------
    def _predict(self, data):
        return self._family_.link.inverse(self._linear_predictor(data))


class MixedGLMRegressor(_MixedGLMBase):
    """Generalized linear mixed model (binomial or Poisson), as lme4's ``glmer``.

    ``g(E[y | b]) = X β + Z b`` with ``b ~ N(0, Λθ Λθᵀ)``, fitted by maximum
    likelihood: the Laplace approximation (``nAGQ=1``) or adaptive
    Gauss-Hermite quadrature (``nAGQ > 1``, one scalar random-effects term),
    optimised in lme4's two stages (θ with β from PIRLS, then (θ, β)): with
    L-BFGS-B on the objective's analytic gradient for the Laplace
    approximation, stage 1 on a subsample of groups above 60,000 rows, and
    lme4's derivative-free BOBYQA for nAGQ > 1 and to check singular fits
    (see the GLMM user guide, "How the fit is optimised").

    Parameters
    ----------
    random_effects : str, default="(1 | groups)"
        Random-effects terms in lme4's syntax (see
        :class:`skmixed.MixedLMRegressor`).
    fixed_effects : None, list of str or str, default=None
        The fixed-effect columns: every non-grouping column (None), the
        listed ones, or an R formula's right-hand side (as for
        :class:`skmixed.MixedLMRegressor`).
    offset : str, int or None, default=None
        A column of X added to the linear predictor with coefficient 1
        (lme4's ``offset(log(exposure))``): its label, or its position in a
        numpy X. It is not a feature (unless ``fixed_effects`` names it) and
        travels with X, so ``fit``, ``predict``, ``score`` and
        cross-validation all read each row's own offset. For a pandas X it
        may also be an R expression of X's columns, ``"log(exposure)"``,
        computed from the rows given (at fit and at predict); the columns
        it reads are no features either, unless ``fixed_effects`` names
        them (R's ``y ~ x + exposure + offset(log(exposure))``).
    family : {"binomial", "poisson"}, default="binomial"
        Binomial: y is a proportion of successes in [0, 1] and
        ``sample_weight`` the number of trials (lme4's ``cbind(s, f)``
        response is ``y = s / (s + f)`` with ``sample_weight = s + f``), or
        0/1 outcomes without weights. Poisson: y are counts.
    link : str or None, default=None
        ``"logit"`` (binomial's default), ``"probit"``, ``"cloglog"``;
        ``"log"`` for Poisson.
    nAGQ : int, default=1
        Number of adaptive Gauss-Hermite nodes per level: 1 = Laplace.
    fit_intercept : bool, default=True
    vcov_method : {"hessian", "rx"}, default="hessian"
        How ``vcov_`` is computed (see :meth:`vcov`); "hessian" is lme4's
        default.
    handle_unknown : {"population", "warn", "error"}, default="population"
        Levels not seen at fit contribute 0 (lme4's ``allow.new.levels``),
        with a warning, or raise.
    max_iter : int, default=10000
        Maximum objective evaluations per optimisation stage.
    missing : {"error", "drop"}, default="error"
        Rows with NaN/inf (in X, y or a random slope), a missing group label
        or a NaN ``sample_weight``: an error, or dropped with a warning (as
        R's ``na.omit``), their weights with them.

    Attributes
    ----------
    fixed_effects_ : pandas.Series
        β (link scale), indexed by ``"(Intercept)"`` and feature names.
    intercept_, coef_ : float, ndarray
    theta_ : ndarray
        Relative covariance factors in lme4's order (the covariance itself,
        as there is no residual scale).
    vcov_ : pandas.DataFrame
        Covariance of β (``vcov_method``); ``vcov_source_`` says which.
    variance_components_ : pandas.DataFrame
        ``group, var1, var2, vcov, sdcor`` (no Residual row).
    random_effects_, random_effects_sd_ : dict of DataFrame
        Conditional modes and conditional SDs per factor.
    random_effects_cov_ : dict of ndarray
    loglik_ : float
        lme4's ``logLik(m)``: Laplace, or for nAGQ > 1 lme4's AGQ value,
        which is relative to the saturated model.
    loglik_absolute_ : float
        The log-likelihood with every normalising constant (equal to
        ``loglik_`` for nAGQ = 1).
    aic_, bic_ : float
        From ``loglik_``, as lme4.
    deviance_ : float
        The GLM deviance at the conditional modes (lme4's ``deviance(m)``).
    df_ : int
        Number of parameters (θ and β).
    nobs_ : int
    n_groups_ : dict
    is_singular_, converged_ : bool
    n_evaluations_ : int
        Objective evaluations of both stages (those of a subsampled stage 1
        included).
    fittedvalues_, linear_predictor_ : ndarray
        Conditional means (response scale) and Xβ + Zb (+ the offset).

    Notes
    -----
    ``score`` is the R² of :meth:`predict` (the conditional mean on the
    response scale), as for every scikit-learn regressor: higher is better,
    weighted by ``sample_weight`` only when it is passed to ``score``. For a
    likelihood-based choice, score with ``"neg_mean_poisson_deviance"``, or
    with :func:`skmixed.metrics.marginal_log_likelihood` when the test
    groups are new (``GroupKFold``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmixed import MixedGLMRegressor
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 10)
    >>> x = rng.standard_normal(200)
    >>> y = rng.poisson(np.exp(0.5 + 0.3 * x + rng.normal(0, 0.5, 20)[g]))
    >>> X = pd.DataFrame({"x": x, "g": g})
    >>> m = MixedGLMRegressor("(1 | g)", family="poisson").fit(X, y)
    >>> m.fixed_effects_.round(2).to_dict()
    {'(Intercept)': 0.62, 'x': 0.29}
    """

    def __init__(
        self,
        random_effects="(1 | groups)",
        *,
        fixed_effects=None,
        offset=None,
        family="binomial",
        link=None,
        nAGQ=1,
        fit_intercept=True,
        vcov_method="hessian",
        handle_unknown="population",
        max_iter=10_000,
        missing="error",
    ):
        self.random_effects = random_effects
        self.fixed_effects = fixed_effects
        self.offset = offset
        self.family = family
        self.link = link
        self.nAGQ = nAGQ
        self.fit_intercept = fit_intercept
        self.vcov_method = vcov_method
        self.handle_unknown = handle_unknown
        self.max_iter = max_iter
        self.missing = missing

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags

    def _response_hint(self):
        # labels ("yes"/"no", "0"/"1") are a classifier's target, as R's
        # glmer takes a factor response but refuses character
        if self._family().name != "binomial":
            return ""
        return (
            " A binomial MixedGLMRegressor takes 0/1 or proportions; for class "
            "labels use MixedLogisticRegression, which takes them."
        )

    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the GLMM by maximum likelihood (Laplace or AGQ).

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Numeric features; a pandas X may also hold the grouping columns.
        y : array-like of shape (n_samples,)
            Binomial: proportions in [0, 1] (or 0/1); Poisson: counts. A y
            of one value on the rows used (after ``missing="drop"``) is
            refused, as lme4's glmer refuses it (Response is constant).
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
            Grouping factor(s) not given as columns of X.
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights: the numbers of trials of a binomial proportion.
            Non-integer weights of a binomial model warn as R does
            ("non-integer #successes"); a 0/1 row of weight w then adds
            ``w log p`` to log L, as in lme4 for w >= 0.5. lme4 leaves a row
            of 0 < w < 0.5 (round(w) = 0 trials) out of its log L but not out
            of PIRLS; skmixed keeps it, so such fits differ from glmer's.

        Returns
        -------
        self : MixedGLMRegressor
        """
        self._validate_params()
        self._refuse_dask(X, y, groups, sample_weight)
        data = self._validate_fit(X, y, groups, sample_weight)
        prior = self._prior_for(data, sample_weight, len(data.y))
        self.n_dropped_ = data.n_dropped
        _refuse_constant_response(
            data.y, prior, response_name(y), getattr(self, "_cbind_response", False)
        )
        self._fit_glmm(data, prior)
        self.response_name_ = response_name(y)
        self._weights_name = weights_name(sample_weight)
        return self

    def predict(self, X, groups=None, *, include_random=True, type="response"):
        """Predict the conditional mean (or the linear predictor).

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
        include_random : bool, default=True
            Add the conditional modes of levels seen at fit (unseen levels
            contribute 0); False gives the population-level ``Xβ`` (lme4's
            ``re.form = NA``). Both add the offset column of these rows.
        type : {"response", "link"}, default="response"
            The mean ``g⁻¹(η)`` or the linear predictor η (lme4's ``type``).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        if type not in _PREDICT_TYPES:
            raise ValueError(f"type must be one of {_PREDICT_TYPES}; got {type!r}.")
        data = self._prediction_data(X, groups, include_random)
        eta = self._linear_predictor(data, include_random)
        return eta if type == "link" else self._family_.link.inverse(eta)


class MixedLogisticRegression(ClassifierMixin, _MixedGLMBase):
    """Mixed-effects logistic (or probit, cloglog) regression: a classifier.

    lme4's ``glmer(y ~ ..., family = binomial(link))`` for binary labels of
    any type: the second of the two sorted classes is the event (as R's
    ``glm`` takes every level after the first).

    Parameters
    ----------
    random_effects : str, default="(1 | groups)"
    fixed_effects : None, list of str or str, default=None
    offset : str, int or None, default=None
        A column of X added to the linear predictor (see
        :class:`MixedGLMRegressor`), e.g. ``log(time)`` at risk with the
        cloglog link.
    link : {"logit", "probit", "cloglog"}, default="logit"
    nAGQ : int, default=1
    fit_intercept : bool, default=True
    vcov_method : {"hessian", "rx"}, default="hessian"
    handle_unknown : {"population", "warn", "error"}, default="population"
    max_iter : int, default=10000
    missing : {"error", "drop"}, default="error"
        Rows with NaN/inf (in X, y or a random slope), a missing group label
        or a NaN ``sample_weight``: an error, or dropped with a warning (as
        R's ``na.omit``), their weights with them.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    Otherwise those of :class:`MixedGLMRegressor`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmixed import MixedLogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(30), 20)
    >>> x = rng.standard_normal(600)
    >>> eta = -0.5 + x + rng.normal(0, 1.0, 30)[g]
    >>> y = np.where(rng.random(600) < 1 / (1 + np.exp(-eta)), "yes", "no")
    >>> clf = MixedLogisticRegression("(1 | g)").fit(pd.DataFrame({"x": x, "g": g}), y)
    >>> clf.classes_
    array(['no', 'yes'], dtype='<U3')
    """

    family = "binomial"

    # Under metadata routing, groups reach every prediction method of the
    # classifier, as they reach predict (see GroupedRegressor): a Pipeline's
    # predict_proba(X, groups=g) needs no set_predict_proba_request call.
    __metadata_request__predict_proba = {"groups": True}
    __metadata_request__predict_log_proba = {"groups": True}
    __metadata_request__decision_function = {"groups": True}

    def __init__(
        self,
        random_effects="(1 | groups)",
        *,
        fixed_effects=None,
        offset=None,
        link="logit",
        nAGQ=1,
        fit_intercept=True,
        vcov_method="hessian",
        handle_unknown="population",
        max_iter=10_000,
        missing="error",
    ):
        self.random_effects = random_effects
        self.fixed_effects = fixed_effects
        self.offset = offset
        self.link = link
        self.nAGQ = nAGQ
        self.fit_intercept = fit_intercept
        self.vcov_method = vcov_method
        self.handle_unknown = handle_unknown
        self.max_iter = max_iter
        self.missing = missing

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags = None
        tags.classifier_tags.multi_class = False
        return tags

    def _family(self):
        return get_family("binomial", self.link)

    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the model to binary labels.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two classes of any type. A missing label (NaN, None, pd.NA)
            is an error, or with ``missing="drop"`` its row is dropped; the
            classes are then those of the rows kept.
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
        sample_weight : array-like of shape (n_samples,), default=None
            Prior weights (frequency weights of the rows). A row of weight
            w adds ``w log p`` to log L; weights that are not whole numbers
            warn as R does, and below 0.5 the fit differs from glmer's,
            which leaves such rows out of log L (see
            :meth:`skmixed.MixedGLMRegressor.fit`).

        Returns
        -------
        self : MixedLogisticRegression
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None."
            )
        self._validate_params()
        self._refuse_dask(X, y, groups, sample_weight)
        name = response_name(y)
        all_labels = column_or_1d(y, warn=True)
        # Missing labels are found before the classes: None or pd.NA among
        # strings cannot be sorted, and NaN is no class. missing='drop'
        # drops their rows with the others (as R's na.omit).
        unlabelled = np.asarray(pd.isna(all_labels), dtype=bool)
        if unlabelled.any() and self.missing != "drop":
            raise ValueError(
                f"y has a missing label (NaN/None) in {int(unlabelled.sum())} "
                f"row(s), e.g. row {int(np.flatnonzero(unlabelled)[0])}: remove "
                "those rows, or use missing='drop' to drop them as R's na.omit "
                "does."
            )
        labels = all_labels[~unlabelled]
        check_classification_targets(labels)
        drop = self.missing == "drop"
        classes, codes = np.unique(labels, return_inverse=True)
        if not drop:
            self._check_binary(labels, classes)
        y_codes = np.full(all_labels.shape[0], np.nan)
        y_codes[~unlabelled] = codes  # two classes: 0 and 1
        # named as y: the input checks refuse X's copy of the response
        data = self._validate_fit(
            X, pd.Series(y_codes, name=name), groups, sample_weight
        )
        if drop:
            # the classes of the rows the fit keeps, as glmer's factor
            # response has the levels na.omit leaves
            labels = all_labels[data.kept] if data.kept is not None else labels
            classes = np.unique(labels)
            self._check_binary(labels, classes)
            data.y = np.asarray(labels == classes[1], dtype=np.float64)
        self.classes_ = classes
        prior = self._prior_for(data, sample_weight, len(data.y))
        weighted = np.unique(data.y[prior > 0])
        if len(weighted) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of 2 classes with positive "
                f"sample_weight; got 1 class: {classes[int(weighted[0])]!r}."
            )
        self.n_dropped_ = data.n_dropped
        self._fit_glmm(data, prior)
        self.response_name_ = name
        self._weights_name = weights_name(sample_weight)
        return self

    def _check_binary(self, labels, classes):
        """Two classes among ``labels`` (the rows fitted), as scikit-learn's
        binary classifiers say it."""
        y_type = type_of_target(labels, input_name="y")
        if len(classes) > 2 or y_type not in ("binary", "unknown"):
            raise ValueError(
                "Only binary classification is supported. The type of the target "
                f"is {y_type} ({len(classes)} classes: {classes[:10].tolist()})."
            )
        if labels.shape[0] == 0:
            raise ValueError(
                "Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 "
                "is required."
            )
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of 2 classes in y; got 1 "
                f"class: {classes[:1].tolist()[0]!r}."
            )

    def decision_function(self, X, groups=None, *, include_random=True):
        """The linear predictor η (log-odds for the logit link).

        For the logit and probit links η > 0 is where :meth:`predict` gives
        ``classes_[1]`` (probability above 0.5), as scikit-learn expects of
        a decision function. For the cloglog link the probability is 0.5 at
        η = log(log 2) ≈ -0.367, not at 0: threshold :meth:`predict_proba`
        instead (e.g. ``FixedThresholdClassifier(response_method=
        "predict_proba")``).

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
        include_random : bool, default=True

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        data = self._prediction_data(X, groups, include_random)
        return self._linear_predictor(data, include_random)

    def predict_proba(self, X, groups=None, *, include_random=True):
        """Class probabilities: columns ``classes_``.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
        include_random : bool, default=True

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        eta = self.decision_function(X, groups, include_random=include_random)
        p = self._family_.link.inverse(eta)
        return np.column_stack([1.0 - p, p])

    def predict_log_proba(self, X, groups=None, *, include_random=True):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X, groups, include_random=include_random))

    def predict(self, X, groups=None, *, include_random=True):
        """The more probable class.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
        include_random : bool, default=True

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X, groups, include_random=include_random)
        return self.classes_[(proba[:, 1] > 0.5).astype(int)]

    def score(self, X, y, groups=None, sample_weight=None):
        """Mean accuracy of :meth:`predict` on (X, y).

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X, groups), sample_weight=sample_weight)


def _refuse_constant_response(y, prior, name, cbind=False):
    """lme4's glmer refuses a response of one value ("Response is constant",
    its checkResponse), on the rows it uses (after na.omit): every row a
    failure (or a success, or one count) has no estimable intercept. A
    ``cbind(s, f)`` response (``cbind``: y is s / (s + f), ``prior`` s + f)
    is constant when every row has the same pair, as R's unique() of its
    matrix; a proportion with weights compares the proportions only, as
    glmer does."""
    values = y[:, None]
    if cbind:
        successes = y * prior
        values = np.column_stack([successes, prior - successes])
    distinct = np.unique(values, axis=0)
    if len(distinct) != 1:
        return
    value = distinct[0]
    said = (
        "cbind(" + ", ".join(f"{v:g}" for v in value) + ")"
        if cbind
        else f"{value[0]:g}"
    )
    used = f"the {len(y)} rows used" if len(y) > 1 else "the 1 sample used"
    raise ValueError(
        f"The response {name} is constant (every row {said} among {used}): "
        "lme4's glmer refuses it (Response is constant). A model of one "
        "outcome has no estimable intercept."
    )
