"""``MixedLMRegressor``: lme4's linear mixed model as a scikit-learn estimator.

The pipeline is lme4's ``lFormula -> mkLmerDevfun -> optimizeLmer ->
mkMerMod``: parse the random-effects spec (``terms``), compute the
cross-products once (``design``), minimise the profiled criterion over θ
(``criterion``, ``optimize``), then package β, σ, the variance components
and the conditional modes as fitted attributes.
"""

import math
import warnings
from dataclasses import dataclass, replace
from numbers import Integral

import numpy as np
import pandas as pd
from scipy.linalg.lapack import dpotrf
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skmixed._base import COMMON_CONSTRAINTS, GroupedRegressor, fixed_intercept
from skmixed._groups import (
    _r_level_order,
    index_labels,
    interaction,
    level_positions,
)
from skmixed._inputs import ROW_BLOCK, no_feature_error, response_name
from skmixed._linalg import block_diagonal, least_squares
from skmixed._stacklevel import user_stacklevel
from skmixed.mixed.centring import (
    lower_factor,
    response_shift,
    shift_matrix,
    slope_transform,
)
from skmixed.mixed.cost import announce, estimate_cost
from skmixed.mixed.criterion import (
    ProfiledCriterion,
    lower_triangle_indices,
    solve_triangular,
)
from skmixed.mixed.design import TermDesign, build_design
from skmixed.mixed.identifiable import spanned_columns, spanned_message
from skmixed.mixed.optimize import (
    blas_single_thread,
    check_convergence,
    is_singular,
    minimize_theta,
)
from skmixed.mixed.r2 import SINGULAR_TOL
from skmixed.mixed.rows import RowsCriterion, SinhTheta, needs_rows, row_effects
from skmixed.mixed.small import batch_criterion
from skmixed.mixed.start import interior_start, moment_start
from skmixed.mixed.terms import (
    grouping_columns,
    parse_random_effects,
    slope_columns,
)

_HANDLE_UNKNOWN = ("population", "warn", "error")
_OPTIMIZERS = ("auto", "bobyqa", "lbfgsb", "cobyqa", "nelder-mead")
_SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"
# lme4 checks the gradient only for small problems (check.conv.nobsmax,
# check.conv.nparmax); the finite differences cost O(n_theta²) evaluations.
_CHECK_NOBS_MAX = 10_000
_CHECK_NPAR_MAX = 10
_LOG_2PI = np.log(2.0 * np.pi)


class _lazy_attribute:
    """A fitted attribute built on first access from the stored factorisation.

    Building pandas tables and O(n) arrays costs more than the whole fit on
    small data; most uses of a fitted model need only some of them. The
    values are kept in the instance's dict named by ``store``, which each
    fit replaces.
    """

    store = "_lazy"

    def __init__(self, build):
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        cache = obj.__dict__.get(self.store)
        if cache is None:
            raise AttributeError(
                f"'{type(obj).__name__}' object has no attribute '{self.name}'"
            )
        if self.name not in cache:
            cache[self.name] = self.build(obj)
        return cache[self.name]


@dataclass
class _PooledFit:
    """β and R of the pooled least-squares fit (no grouping factors)."""

    beta: np.ndarray
    RX: np.ndarray


class _RandomEffectsModel(GroupedRegressor):
    """What the linear and the generalized mixed models share.

    The random-effects terms in lme4's syntax (``random_effects``), the
    fixed-effect coefficients, and the prediction with the conditional
    modes of the levels seen at fit (``handle_unknown`` for the others).
    Subclasses set ``_b`` (the modes per term) and ``_term_designs_fit``
    (the fitted terms, in lme4's order; empty without grouping factors).
    """

    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "random_effects": [str],
        "offset": [None, str, Integral],
        "fit_intercept": ["boolean"],
        "handle_unknown": [StrOptions(set(_HANDLE_UNKNOWN))],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    # -- plumbing ------------------------------------------------------------
    def _terms(self):
        return parse_random_effects(self.random_effects)

    def _group_names(self):
        return grouping_columns(self._terms())

    def _slope_names(self):
        return slope_columns(self._terms())

    def _feature_names(self, data):
        return list(data.feature_names)

    @staticmethod
    def _term_designs(terms, data, names, fixed=None):
        """Per term: codes, levels and Z from validated data (``fixed``:
        see :func:`term_designs`)."""
        return term_designs(terms, data, names, fixed)

    # -- results per grouping factor -------------------------------------------
    def _terms_by_factor(self, terms):
        """Factor -> the positions of its terms (factors as in ``n_groups_``)."""
        return {
            factor: [i for i, t in enumerate(terms) if t.factor == factor]
            for factor in self.n_groups_
        }

    def _modes_by_factor(self, terms, b):
        """lme4's ``ranef``: per factor, its terms' modes ``b`` (per term,
        (m, k)) side by side, one row per level."""
        out = {}
        for factor, idx in self._terms_by_factor(terms).items():
            columns = [nm for i in idx for nm in terms[i].names]
            values = np.concatenate([b[i] for i in idx], axis=1)
            levels = pd.Index(terms[idx[0]].levels.astype(str), name=factor)
            out[factor] = pd.DataFrame(values, index=levels, columns=columns)
        return out

    def _covariances_by_factor(self, terms, covs):
        """Per factor, its terms' (m, k, k) covariances as one block diagonal."""
        return {
            factor: block_diagonal([covs[i] for i in idx])
            for factor, idx in self._terms_by_factor(terms).items()
        }

    # -- the fitted terms on other rows ----------------------------------------
    def _fitted_spec(self):
        """The random_effects the model was fitted with (set_params since
        changes the next fit only)."""
        request = getattr(self, "_fit_request", None)
        return self.random_effects if request is None else request.random_effects

    def _fitted_terms(self):
        """The parsed random-effects terms of the fit, in lme4's order."""
        terms = parse_random_effects(self._fitted_spec())
        return _lme4_sorted_terms(terms, self._term_designs_fit)

    def _random_design(self, data):
        """Per-term designs for validated data, with the levels present in it.

        The terms come in the fitted order (that of ``theta_``); levels unseen
        at fit are included.
        """
        if data.factors is None:
            raise ValueError("The data have no grouping factors.")
        designs = self._term_designs(
            self._fitted_terms(), data, self._feature_names(data)
        )
        for d, (_, group, _, _) in zip(designs, self._term_designs_fit, strict=True):
            d.group = group
        return designs

    # -- prediction ------------------------------------------------------------
    def _population(self, data):
        """``Xβ`` plus these rows' offset (lme4's ``re.form = NA``)."""
        return _plus_offset(data.X @ self.coef_ + self.intercept_, data.offset)

    def _linear_predictor(self, data, include_random=True):
        """η of these rows: :meth:`_population`, plus with ``include_random``
        their random effects at the conditional modes (0 for levels not seen
        at fit, reported as ``handle_unknown`` says)."""
        eta = self._population(data)
        if not include_random or data.factors is None or not self._term_designs_fit:
            return eta
        effects, unseen = random_part(
            self._fitted_terms(),
            self._b,
            self._term_designs_fit,
            data,
            self._feature_names(data),
        )
        if unseen:
            self._report_unseen(unseen)
        return eta + effects

    def _report_unseen(self, unseen):
        """handle_unknown's error or warning for levels not seen at fit."""
        text = "; ".join(
            f"{factor}: {levels[:5]}{' ...' if len(levels) > 5 else ''}"
            for factor, levels in unseen.items()
        )
        if self.handle_unknown == "error":
            raise ValueError(
                f"Levels not seen at fit: {text}. Use handle_unknown='population' "
                "to predict them at population level (random effect 0)."
            )
        if self.handle_unknown == "warn":
            # at the line that called predict (or decision_function)
            warnings.warn(
                "Levels not seen at fit get the population-level prediction "
                f"(random effect 0): {text}.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )

    # -- fit -------------------------------------------------------------------
    def _fixed_design(self, features, names, y, used=None, joined=False):
        """[1 | features] without the columns R's rule finds aliased.

        lme4 drops them, with its warning. ``_screen_columns(X, y, used)``
        tells which (``used``: the rows that count, None for all).

        ``joined``: return ``[X y]`` instead of X, one column-major array,
        the layout the design's per-level sums read (see
        :func:`_joined_columns`).

        Returns
        -------
        X, x_names, kept, screened
            The kept columns (``[X y]`` when ``joined``) and their names, the
            kept mask over ``[1 | features]``, and what else the screen found.
        """
        n = features.shape[0]
        all_names = (["(Intercept)"] if self._has_intercept else []) + list(names)
        if joined:
            XY = _joined_columns(features, self._has_intercept, y)
            X, y = XY[:, :-1], XY[:, -1]
        elif self._has_intercept:
            X = np.empty((n, features.shape[1] + 1))
            X[:, 0] = 1.0
            X[:, 1:] = features
        else:
            X = np.ascontiguousarray(features)
        kept, screened = self._screen_columns(X, y, used)
        x_names = [nm for nm, k in zip(all_names, kept, strict=True) if k]
        if not kept.all():
            _warn_rank_deficient(
                [nm for nm, k in zip(all_names, kept, strict=True) if not k]
            )
            if joined:
                return np.asfortranarray(XY[:, [*kept, True]]), x_names, kept, screened
            X = np.ascontiguousarray(X[:, kept])
        if joined:
            return XY, x_names, kept, screened
        return X, x_names, kept, screened

    #: The model has a residual variance (lmer; not glmer's binomial and
    #: Poisson families): see :meth:`_check_levels`.
    _has_residual = True

    def _check_levels(self, designs, n):
        """lme4's checks of the grouping factors against the data.

        A residual variance makes lmer stricter than glmer: one observation
        per level, or as many random effects as observations, leaves it
        unidentifiable from the random effects.
        """
        seen = _levels_per_factor(designs)
        few = [f for f, m in seen.items() if m < 2]
        if few:
            raise ValueError(
                f"grouping factors must have > 1 sampled level (problems: "
                f"{', '.join(few)})"
            )
        many = [f for f, m in seen.items() if m >= n]
        if many:
            why = (
                ": with one observation per level the random effect cannot be "
                "told apart from the residual."
                if self._has_residual
                else ""
            )
            raise ValueError(
                "number of levels of each grouping factor must be < number of "
                f"observations (problems: {', '.join(many)}){why}"
            )
        for d in designs:
            size = d.m * d.k
            if size > n or (self._has_residual and size == n):
                relation, parameters = "<", "the random-effects parameters"
                if self._has_residual:
                    relation = "<="
                    parameters += " and the residual variance (or scale parameter)"
                raise ValueError(
                    f"number of observations (={n}) {relation} number of random "
                    f"effects (={size}) for term ({' + '.join(d.names)} | "
                    f"{d.factor}); {parameters} are probably unidentifiable"
                )

    @staticmethod
    def _require_columns(data):
        """Without grouping factors a model needs a feature (scikit-learn's
        minimum of 1) and says where the intercept-only model's groups go."""
        if data.X.shape[1] == 0 and data.factors is None:
            raise no_feature_error(data.X.shape, "an intercept-only model")

    def _report_fit(self, problems):
        """``converged_``, and lme4's warnings: a singular fit, and each of
        the optimiser's ``problems``."""
        self.converged_ = not problems
        if self.is_singular_:
            warnings.warn(_SINGULAR_MESSAGE, UserWarning, stacklevel=user_stacklevel())
        for problem in problems:
            warnings.warn(problem, ConvergenceWarning, stacklevel=user_stacklevel())

    # -- Nakagawa's R² and the ICC ------------------------------------------------
    def r2_nakagawa(self, tolerance=SINGULAR_TOL):
        """Marginal and conditional R² (Nakagawa; performance::r2_nakagawa).

        The variance of the fixed-effects predictions (marginal R²), plus
        that of the random effects (conditional R²), over the total with the
        residual variance: σ² for :class:`MixedLMRegressor`; for a GLMM, on
        the latent scale, the distribution-specific one: π²/3 for the logit
        link, 1 for probit, π²/6 for cloglog; for Poisson ``log(1 + 1/μ)``
        with μ from the refitted intercept-only model (see
        :mod:`skmixed.glmm.reporting`).

        The same numbers as performance, except for uncorrelated terms
        ``(x || g)`` of a linear mixed model: performance leaves their slope
        variance out of the random part, we keep it (see
        :mod:`skmixed.mixed.r2`).

        Parameters
        ----------
        tolerance : float, default=1e-5
            A fit with a relative standard deviation below this is singular:
            warn and leave the random effects out, as performance does.

        Returns
        -------
        dict
            ``marginal`` and ``conditional``.

        Examples
        --------
        >>> import skmixed
        >>> from skmixed.datasets import load_sleepstudy
        >>> m = skmixed.lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy())
        >>> {k: round(v, 4) for k, v in m.r2_nakagawa().items()}
        {'marginal': 0.2787, 'conditional': 0.7992}
        """
        check_is_fitted(self)
        return self._variance_split().r2_nakagawa(self, tolerance)

    def icc(self, tolerance=SINGULAR_TOL):
        """Adjusted and conditional intraclass correlation (performance::icc).

        From the variance parts of :meth:`r2_nakagawa` (for a GLMM on the
        latent scale, with its distribution-specific residual variance), as
        performance computes them, except for the uncorrelated terms
        ``(x || g)`` of a linear mixed model, whose slope variance we keep
        in the random part.

        Parameters
        ----------
        tolerance : float, default=1e-5
            As for :meth:`r2_nakagawa` (singular fits give NaN).

        Returns
        -------
        dict
            ``adjusted`` and ``conditional``.
        """
        check_is_fitted(self)
        return self._variance_split().icc(self, tolerance)

    @staticmethod
    def _variance_split():
        """The module that splits this kind of model's variance for
        Nakagawa: its ``r2_nakagawa(model, tolerance)`` and ``icc``."""
        raise NotImplementedError

    # -- results ---------------------------------------------------------------
    def _set_information_criteria(self, m2ll, n, df):
        """``loglik_``, ``aic_`` and ``bic_`` from -2 log L, with ``df``
        parameters and ``n`` rows (lme4's ``logLik``, ``AIC``, ``BIC``)."""
        self.loglik_ = -0.5 * m2ll
        self.aic_ = m2ll + 2.0 * df
        self.bic_ = m2ll + np.log(n) * df

    def _set_coef(self, beta):
        """``intercept_`` and ``coef_`` from β of the kept columns (0 for
        aliased ones, as R's NA)."""
        full = np.zeros(len(self._kept))
        full[self._kept] = beta
        if self._has_intercept:
            self.intercept_ = float(full[0])
            self.coef_ = full[1:]
        else:
            self.intercept_ = 0.0
            self.coef_ = full


class MixedLMRegressor(_RandomEffectsModel):
    """Linear mixed model fitted by REML or ML, as lme4's ``lmer``.

    ``y = X β + Z b + ε`` with ``b ~ N(0, σ² Λθ Λθᵀ)`` and ``ε ~ N(0, σ² I)``
    (``N(0, σ² W⁻¹)`` with precision weights ``sample_weight=w`` at fit, as
    lme4's ``weights=``); the random-effects structure is given in lme4's
    syntax.

    Parameters
    ----------
    random_effects : str, default="(1 | groups)"
        Random-effects terms in lme4's syntax: ``"(1 | g)"``, ``"(x | g)"``,
        ``"(0 + x | g)"``, ``"(x || g)"`` (uncorrelated), ``"(1 | a) + (1 | b)"``
        (crossed), ``"(1 | a:b)"``, ``"(1 | a/b)"`` (nested), ``"(x1 + x2 | g)"``.
        Slope names are feature columns of ``X``. A grouping name is a column
        of a pandas ``X``, else of the ``groups`` DataFrame; a single 1-D
        ``groups`` serves a model with one grouping column (so the default
        ``"(1 | groups)"`` is the random-intercept model for ``groups=``).
        A grouping column of X is never a feature, whatever its dtype.
    fixed_effects : None, list of str or str, default=None
        The fixed-effect features. None: every column of X that is not a
        grouping column (non-numeric ones are ignored, with one warning).
        A list of column names: exactly those (``[]``: intercept only); every
        other column is ignored, so a search over ``random_effects`` compares
        models with the same fixed part. A string: the right-hand side of an
        R formula (``"nitro + Variety"``, ``"age * Sex"``), with R's treatment
        contrasts and coefficient names. For a numpy X the columns are named
        ``x0, x1, ...``.
    offset : str, int or None, default=None
        A column of X with known values added to the model with coefficient
        1 (lme4's ``lmer(..., offset = o)`` and ``offset(o)`` terms): the
        model is ``y = offset + X β + Z b + ε``, fitted as lme4 fits it, to
        ``y - offset``. Its label, or its position in a numpy X. It is not a
        feature (unless ``fixed_effects`` names it) and travels with X, so
        ``fit``, ``predict``, ``score`` and cross-validation all read each
        row's own offset, and ``fittedvalues_`` and predictions include it
        (as lme4's ``fitted`` and ``predict``, ``re.form = NA`` too). For a
        pandas X it may also be an R expression of X's columns,
        ``"log(e)"`` or ``"log(e) + o"``, computed from the rows given (at
        fit and at predict); the columns it reads are no features either,
        unless ``fixed_effects`` names them. From Dask collections each
        partition computes it from its own rows.
    reml : bool, default=True
        Restricted maximum likelihood (lme4's default) or maximum likelihood.
    fit_intercept : bool, default=True
        Include a fixed intercept (lme4's ``y ~ 1 + ...``).
    handle_unknown : {"population", "warn", "error"}, default="population"
        Prediction for a level not seen at fit: the population-level
        prediction (random effect 0, lme4's ``allow.new.levels = TRUE``),
        the same with a warning, or an error.
    max_iter : int, default=10000
        Maximum number of criterion evaluations by the optimiser.
    optimizer : {"auto", "bobyqa", "lbfgsb", "cobyqa", "nelder-mead"}, default="auto"
        Bounded minimiser of the profiled criterion over θ. ``"auto"``:
        with one random-effects term on at most 2,000 levels, bounded
        Newton steps on the analytic gradient (the criterion at several θ
        per call, :mod:`skmixed.mixed.small`); L-BFGS-B on the analytic
        gradient where an evaluation is dominated by a large crossed later
        factor; BOBYQA elsewhere. Every optimum is then polished by Newton
        steps on the analytic gradient, so that it does not depend on the
        order of the rows.
    missing : {"error", "drop"}, default="error"
        Rows with NaN or inf: raise, or drop them (R's ``na.omit``).

    Attributes
    ----------
    fixed_effects_ : pandas.Series
        β, indexed by ``"(Intercept)"`` and the feature names (columns
        dropped for rank deficiency left out).
    intercept_ : float
    coef_ : ndarray of shape (n_features,)
        β of the features (0 for dropped columns).
    vcov_ : pandas.DataFrame
        Covariance matrix of β.
    variance_components_ : pandas.DataFrame
        lme4's ``as.data.frame(VarCorr(m))``: columns ``group, var1, var2,
        vcov, sdcor``.
    sigma_ : float
        Residual standard deviation.
    theta_ : ndarray
        Relative covariance factors, lme4's ``getME(m, "theta")`` order.
    reml_criterion_ : float or None
        REML criterion at the optimum (REML fits).
    deviance_ : float or None
        ML deviance at the optimum (ML fits).
    loglik_, aic_, bic_ : float
    nobs_ : int
    n_groups_ : dict
        Factor name -> number of levels.
    is_singular_ : bool
    converged_ : bool
    n_evaluations_ : int
    fit_cost_ : FitCost
        The optimiser's time and memory as estimated before it started
        (:mod:`skmixed.mixed.cost`); logged to the ``"skmixed"`` logger, and
        an ``EfficiencyWarning`` names the factor sizes at once when it is
        beyond ten minutes.
    random_effects_ : dict of pandas.DataFrame
        Factor name -> conditional modes (lme4's ``ranef``), one row per level.
    random_effects_cov_ : dict of ndarray
        Factor name -> (n_levels, k, k) conditional covariances (``condVar``).
    fittedvalues_, residuals_ : ndarray of shape (n_samples,)
        Conditional fitted values ``Xβ + Zb`` (plus the offset) and ``y``
        minus them.

    Examples
    --------
    >>> from skmixed import MixedLMRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> m = MixedLMRegressor("(Days | Subject)").fit(
    ...     df[["Days"]], df["Reaction"], groups=df["Subject"])
    >>> round(m.reml_criterion_, 2)
    1743.63
    >>> m.fixed_effects_.round(3).to_dict()
    {'(Intercept)': 251.405, 'Days': 10.467}
    """

    _parameter_constraints = {
        **_RandomEffectsModel._parameter_constraints,
        "reml": ["boolean"],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
    }

    def __init__(
        self,
        random_effects="(1 | groups)",
        *,
        fixed_effects=None,
        offset=None,
        reml=True,
        fit_intercept=True,
        handle_unknown="population",
        max_iter=10_000,
        optimizer="auto",
        missing="error",
    ):
        self.random_effects = random_effects
        self.fixed_effects = fixed_effects
        self.offset = offset
        self.reml = reml
        self.fit_intercept = fit_intercept
        self.handle_unknown = handle_unknown
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.missing = missing

    # -- plumbing ------------------------------------------------------------
    @classmethod
    def from_formula(cls, formula, **params):
        """A model from lme4's formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.

        The formula is split into ``random_effects`` (the bar terms),
        ``offset`` (the ``offset(...)`` terms, summed) and ``fixed_effects``
        (the rest, an R formula), stored as given: the
        model clones and searches like any other. Fit it on a DataFrame that
        holds the formula's columns, with the response as ``y``; its
        ``summary()`` prints the formula as lme4 does.

        Parameters
        ----------
        formula : str
        **params
            Other parameters (``reml``, ``optimizer``, ...).

        Returns
        -------
        MixedLMRegressor
            Unfitted.

        Examples
        --------
        >>> from skmixed import MixedLMRegressor
        >>> m = MixedLMRegressor.from_formula("Reaction ~ Days + (Days | Subject)")
        >>> m.random_effects, m.fixed_effects
        ('(Days | Subject)', 'Days')
        """
        from skmixed._model_formula import mixed_from_formula

        return mixed_from_formula(cls, formula, params)

    # -- fit -------------------------------------------------------------------
    def _fit(self, data):
        with blas_single_thread():
            self._fit_pinned(data)

    def _fit_pinned(self, data):
        self._has_intercept = fixed_intercept(
            self.fit_intercept, data, type(self).__name__
        )
        terms = self._terms()
        self._require_columns(data)
        names = self._feature_names(data)
        # lme4 fits y - offset; fitted values and predictions add it back
        self._offset = data.offset
        y = data.y if data.offset is None else data.y - data.offset
        XY, x_names, kept, exact = self._fixed_design(data.X, names, y, joined=True)
        X, y = XY[:, :-1], XY[:, -1]
        self._x_names, self._kept = x_names, kept
        n = X.shape[0]
        if n <= X.shape[1]:
            raise ValueError(
                f"n_samples={n} observations leave no residual degrees of "
                f"freedom with {X.shape[1]} fixed effect(s)."
            )
        weights = data.weights
        if weights is not None and not weights.all():
            # lme4 fits them with an infinite criterion (log 0 in the
            # likelihood's constant); refuse instead.
            raise ValueError(
                f"sample_weight has {int((weights == 0).sum())} zero weight(s): "
                "a row of weight 0 has infinite residual variance, and lme4's "
                "criterion is then infinite. Drop the rows with sample_weight "
                "== 0 (they carry no information)."
            )
        self._weights = weights
        if data.factors is None:
            self._fit_pooled(X, y, weights)
            return
        if y.min() == y.max():
            # σ = 0: the criterion is log(0) plus rounding noise, so any θ
            # "fits" (lme4 returns one with convergence warnings).
            said = "y" if data.offset is None else "y - offset"
            raise ValueError(
                f"{said} is constant (every value is {float(y[0])!r}): the "
                "residual and random-effect variances are 0 and not estimable. "
                "A mixed model needs a response that varies."
            )
        designs = self._term_designs(terms, data, names, fixed=(X, x_names))
        self._check_levels(designs, n)
        designs = _lme4_order(designs)
        first_in_x = _columns_in_x(designs[0], X, x_names)
        design = build_design(X, y, designs, weights, first_in_x, xy=XY)
        self._fit_design(design, fitted_exactly=exact)

    def _fit_design(
        self, design, x_moments=None, centred_design=None, fitted_exactly=None
    ):
        """Optimise θ on the cross-products and set the fitted attributes.

        ``design`` holds the rows (an in-memory fit) or only their sums (a
        fit from Dask partitions, ``x_moments`` then giving each fixed-effect
        column's mean and sd, and ``centred_design(centring)`` the design of
        the centred columns by another pass); everything from here on is the
        same. ``fitted_exactly``: whether y is a combination of X's columns,
        when the rank screen of unweighted rows told (see
        :func:`_rank_screen`).
        """
        X, designs, x_names, n = design.X, design.terms, self._x_names, design.n
        # the screen of shifted columns reads XᵀX where it is unweighted
        gram = design.Bxx if X is not None and design.weights is None else None
        y_range = design.y_range if X is None else (design.y.min(), design.y.max())
        centring = _Centring(X, x_names, designs, x_moments, gram, y_range)
        centred = None
        if centring.active:
            if X is None:  # the centred columns' sums, by another pass
                centred = centred_design(centring)
            else:
                Xc, designs_c = centring.design_inputs(X, designs)
                yc = centring.response(design.y)
                centred = build_design(Xc, yc, designs_c, design.weights)
        if centring.y_shift:
            # the data's own [X y]ᵀ[X y] lost y's digits (see response_shift)
            fitted_exactly = _fitted_exactly(centred)
        elif fitted_exactly is None or design.weights is not None:
            fitted_exactly = _fitted_exactly(design)
        if fitted_exactly:
            raise ValueError(
                "y is, to rounding error, a linear combination of the fixed-effect "
                "columns (fitted exactly by the fixed effects): the residual and "
                "random-effect variances are 0 and not estimable."
            )
        for term, columns in spanned_columns(design):
            warnings.warn(
                spanned_message(term, columns),
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        criterion = ProfiledCriterion(design, reml=self.reml)
        # Shifted slope columns: fit the centred design (see _Centring) and
        # map the results back. self._criterion stays the data's own: the
        # inference code evaluates it at θ_ with the user's X, β and b, and
        # near that optimum it is accurate enough for derivatives and
        # profiles (the digits lost there cost the optimiser its way, not
        # the value at a given θ). Otherwise the centred criterion is the
        # criterion itself: the identical old path.
        fit_criterion = criterion
        if centring.active:
            fit_criterion = ProfiledCriterion(centred, reml=self.reml)
        # y far from 0 and no intercept to take it out: r² from the rows
        # (its cross-product form keeps too few digits; see rows.py), and
        # the inference code evaluates the same
        far_y = needs_rows(x_names, y_range)
        from_rows = X is not None and far_y
        if from_rows:
            criterion = RowsCriterion(criterion)
            fit_criterion = (
                RowsCriterion(fit_criterion) if centring.active else criterion
            )
        # θ is optimised (and checked) through standardised slope columns
        # when some are badly scaled; the identity otherwise.
        scaled = _StandardisedTheta(
            fit_criterion, None if centring.active else centring.slope_transforms
        )
        if from_rows:  # θ of y's offset's size: relative steps (see SinhTheta)
            scaled = SinhTheta(scaled)
        # said before minutes of work, never after (memory: MemoryError
        # from the set-up above)
        self.fit_cost_ = estimate_cost(
            fit_criterion,
            gradient=self.optimizer == "lbfgsb"
            or (self.optimizer == "auto" and fit_criterion.gradient_pays),
            newton=self.optimizer == "auto" and scaled.batch is not None,
        )
        announce(self.fit_cost_)
        start, first_step, close = scaled.theta_start, None, None
        if fit_criterion.gradient_pays and scaled.identity:
            # expensive evaluations: start from moment estimates (scalar
            # terms), a tenth of θ's scale from the optimum or closer
            moments = moment_start(fit_criterion.design)
            if moments is not None:
                start, first_step = moments, 0.1 * max(1.0, float(moments.max()))
        elif (
            scaled.batch is None
            and scaled.identity
            and self.optimizer == "auto"
            and not from_rows
        ):
            # one term on many levels: Newton from moment estimates where
            # they are close to an optimum inside the bounds
            close = interior_start(
                fit_criterion.design, fit_criterion.first_term_levels
            )
        try:
            opt = minimize_theta(
                scaled,
                start,
                scaled.theta_lower,
                method=self.optimizer,
                max_iter=self.max_iter,
                value_and_gradient=scaled.value_and_gradient
                if scaled.gradient
                else None,
                prefer_gradient=fit_criterion.gradient_pays,
                batch=scaled.batch,
                first_step=first_step,
                close_start=close,
                hessian=fit_criterion.value_gradient_hessian
                if close is not None and fit_criterion.has_hessian
                else None,
            )
        except FloatingPointError as exc:
            raise ValueError(
                f"{exc} The random-effect columns are too badly scaled for the "
                "cross-products (e.g. a slope column 1e9 + 1e6 x): centre and "
                "scale them."
            ) from exc
        if from_rows:
            opt = _restart_from_the_stop(scaled, opt, self.optimizer, self.max_iter)
        opt = _restart_off_a_degenerate_boundary(
            scaled, opt, self.optimizer, self.max_iter
        )
        # singular on the standardised scale (a slope of 1e6 x has θ ~ 1e-7)
        singular = is_singular(opt.x, scaled.theta_lower)
        problems = self._diagnose(scaled, opt, n, singular)
        self._criterion = criterion
        self._centred = None
        if centring.active:
            theta_c = scaled.to_theta(opt.x)
            dec_c = fit_criterion.decompose(theta_c)
            # the tests of β run on the centred fit (see results.py), with
            # y's shift in β̃0 (M's column 0 is e0: M β̃ then has it in β0)
            beta_c = centring.with_y_shift(dec_c.beta)
            self._centred = _CentredFit(
                fit_criterion,
                theta_c,
                beta_c,
                centring.M,
                centring.slopes_centred,
                centring.y_far,
            )
            dec = centring.map_back(dec_c)
            self._results_at(dec.theta, dec)
        else:
            self._results_at(scaled.to_theta(opt.x))
        if X is None and far_y:
            # from Dask partitions only the sums are here, not the rows
            _warn_far_y_from_sums(fit_criterion.design, self._dec.pwrss)
        elif not from_rows:
            _warn_lost_precision(fit_criterion.design, self._dec.pwrss)
        self.is_singular_ = singular
        self.n_evaluations_ = int(opt.n_evaluations)
        self.n_iter_ = self.n_evaluations_
        self._report_fit(problems)

    def _screen_columns(self, X, y, used=None):
        """lme4's rank check (:func:`_rank_screen`): the kept mask, and
        whether y is fitted exactly (None where the screen did not tell)."""
        return _rank_screen(X, y)

    def _diagnose(self, criterion, opt, n, singular):
        """lme4's checks after the optimiser (``singular``: whether θ is on
        its boundary, where lme4 skips the gradient check)."""
        problems = []
        if not opt.converged:
            problems.append(f"optimizer ({opt.method}) did not converge: {opt.message}")
        if singular or n >= _CHECK_NOBS_MAX or criterion.n_theta >= _CHECK_NPAR_MAX:
            return problems
        return problems + check_convergence(
            criterion, opt.x, opt.fun, gradient=opt.gradient
        )

    # -- results ---------------------------------------------------------------
    def _results_at(self, theta, dec=None):
        """Set every θ-dependent fitted attribute from the criterion at θ.

        Scalars and arrays are set here; the tables (pandas objects), the
        conditional covariances and the fitted values are built from the
        stored factorisation on first access.
        """
        criterion = self._criterion
        design = criterion.design
        n, p = design.n, design.p
        theta = np.asarray(theta, dtype=np.float64)
        # dec: given when the fit was made on the centred design (mapped back)
        dec = criterion.decompose(theta) if dec is None else dec
        dof = n - p if self.reml else n
        sigma = float(np.sqrt(dec.pwrss / dof))
        self._lazy = {}
        self._dec = dec
        self.theta_ = theta.copy()
        self.sigma_ = sigma
        self._set_coef(dec.beta)
        value = float(criterion.profiled(dec.logdet_L, dec.logdet_RX, dec.pwrss))
        self._set_criteria(value, n, p + criterion.n_theta + 1)
        self.nobs_ = n
        terms = design.terms
        # tuples throughout (names too): nothing in them is tracked by the
        # garbage collector, which a loop of small fits would walk again
        self._term_designs_fit = tuple(
            (t.factor, t.group, tuple(t.names), np.asarray(t.levels)) for t in terms
        )
        self._b = None  # the factorisation's modes, formed on first use
        self.n_groups_ = _levels_per_factor(terms)

    @property
    def _b(self):
        """Per term, the conditional modes (m, k): the fit's factorisation's
        (formed on first use: a fit on a million levels reads none) unless
        a fit without one set them."""
        given = self.__dict__.get("_b_given")
        return self._dec.b if given is None else given

    @_b.setter
    def _b(self, value):
        self.__dict__["_b_given"] = value

    def _set_criteria(self, value, n, df):
        if self.reml:
            self.reml_criterion_, self.deviance_ = value, None
        else:
            self.reml_criterion_, self.deviance_ = None, value
        self._set_information_criteria(value, n, df)

    # -- fitted attributes built on first access ----------------------------------
    @_lazy_attribute
    def fixed_effects_(self):
        """β (pandas Series indexed by ``"(Intercept)"`` and feature names)."""
        return pd.Series(self._dec.beta, index=self._x_names, name="estimate")

    @_lazy_attribute
    def vcov_(self):
        """Covariance matrix of β (DataFrame): ``σ² (RXᵀ RX)⁻¹``."""
        RX, p = self._dec.RX, len(self._x_names)
        if p:
            inv = solve_triangular(RX, np.eye(p), lower=False)
            vcov = self.sigma_**2 * (inv @ inv.T)
        else:
            vcov = np.zeros((0, 0))
        return pd.DataFrame(vcov, index=self._x_names, columns=self._x_names)

    @_lazy_attribute
    def variance_components_(self):
        """lme4's ``as.data.frame(VarCorr(m))`` (DataFrame)."""
        terms = self._criterion.design.terms
        return _variance_components(terms, self._dec.lambdas, self.sigma_)

    @_lazy_attribute
    def random_effects_(self):
        """Conditional modes per factor (dict of DataFrames, lme4's ``ranef``)."""
        return self._modes_by_factor(self._criterion.design.terms, self._dec.b)

    @_lazy_attribute
    def random_effects_cov_(self):
        """Conditional covariances per factor (dict of (m, k, k), ``condVar``)."""
        covs = self._dec.conditional_covariances(self.sigma_)
        return self._covariances_by_factor(self._criterion.design.terms, covs)

    @_lazy_attribute
    def fittedvalues_(self):
        """Conditional fitted values ``Xβ + Zb`` (+ the offset, as lme4's)."""
        design = self._criterion.design
        if design.X is None:  # fitted from Dask partitions: another pass
            from skmixed import _dask_predict

            return _dask_predict.fitted_values(self)
        fitted = design.X @ self._dec.beta
        for term, b in zip(design.terms, self._dec.b, strict=True):
            fitted += row_effects(term.Z, b, term.codes)
        return _plus_offset(fitted, self._offset)

    @_lazy_attribute
    def residuals_(self):
        """``y`` minus the conditional fitted values."""
        if self._criterion.design.y is None:
            from skmixed import _dask_predict

            return _dask_predict.residuals(self)
        # the design's response is y - offset
        return _plus_offset(self._criterion.design.y, self._offset) - (
            self.fittedvalues_
        )

    def _fit_pooled(self, X, y, weights=None):
        """No grouping factors reached fit: the fixed-effects-only model."""
        p = X.shape[1]
        Xw, yw = X, y
        if weights is not None:
            root = np.sqrt(weights)
            Xw, yw = X * root[:, None], y * root
        fit = least_squares(Xw, yw)
        R = np.linalg.qr(Xw, mode="r") if p else np.zeros((0, 0))
        log_weights = None if weights is None else float(np.log(weights).sum())
        self._pooled_results(fit.coef, fit.rss, R, X.shape[0], log_weights)
        self._lazy["fittedvalues_"] = _plus_offset(X @ fit.coef, self._offset)
        self._lazy["residuals_"] = (
            _plus_offset(y, self._offset) - (self._lazy["fittedvalues_"])
        )

    def _pooled_results(self, beta, rss, R, n, log_weights=None):
        """The attributes of the fixed-effects-only model from its least
        squares (in memory, or from a Dask fit's reduced R of [X | y]):
        β, the residual sum of squares, the R factor of the (weighted) X, n
        and Σ log w (None: unweighted)."""
        p = R.shape[1]
        dof = n - p if self.reml else n
        sigma = float(np.sqrt(rss / dof))
        R = R * np.sign(np.diagonal(R))[:, None] if p else R
        logdet_RX = 2.0 * np.log(np.abs(np.diagonal(R))).sum() if p else 0.0
        value = dof * (1.0 + _LOG_2PI + np.log(rss / dof))
        if log_weights is not None:
            value -= log_weights
        if self.reml:
            value += logdet_RX
        self._criterion, self._centred = None, None
        self._dec = _PooledFit(beta, R)
        self._lazy = {
            "variance_components_": _variance_components([], [], sigma),
            "random_effects_": {},
            "random_effects_cov_": {},
        }
        self.theta_ = np.zeros(0)
        self.sigma_ = sigma
        self._set_coef(beta)
        self._set_criteria(float(value), n, p + 1)
        self.nobs_ = n
        self.n_evaluations_ = 0
        self.n_iter_ = 1  # one least-squares solve
        self.is_singular_ = False
        self.converged_ = True
        self.n_groups_ = {}
        self._b, self._term_designs_fit = [], []

    # -- prediction ------------------------------------------------------------
    def predict(self, X, groups=None, include_random=True):
        """Predict the response.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Features (and grouping columns) as at fit.
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
            Grouping factor(s) not given as columns of X.
        include_random : bool, default=True
            Add the conditional modes of the levels seen at fit (lme4's
            default); False gives the population-level prediction ``Xβ``
            (lme4's ``re.form = NA``). Both include the offset of these
            rows, as lme4's ``predict(newdata)``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        from skmixed import _dask, _dask_predict

        if _dask.any_dask(X, groups):
            return _dask_predict.predict(self, X, groups, include_random=include_random)
        data = self._prediction_data(X, groups, include_random)
        return self._linear_predictor(data, include_random)

    def _predict(self, data):
        return self._linear_predictor(data)

    # -- inference and reporting (skmixed.mixed.results; issue 4) -------------
    def fit(self, X, y, groups=None, sample_weight=None):
        """Fit the model by REML or ML.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Numeric features; a pandas X may also hold the grouping columns.
        y : array-like of shape (n_samples,)
            Response (a named Series gives the summary's formula its name).
        groups : array-like, pandas.Series or pandas.DataFrame, default=None
            Grouping factor(s) not given as columns of X.
        sample_weight : array-like of shape (n_samples,), default=None
            Precision weights, lme4's ``weights=``: row i has residual
            variance ``sigma_**2 / sample_weight[i]``. They are not
            frequency weights (a weight of 2 is not a repeated row: the
            random effects see one observation). Weights must be positive;
            the criteria include lme4's ``-sum(log w)``.

        Returns
        -------
        self : MixedLMRegressor
        """
        from skmixed import _dask

        if _dask.any_dask(X, y, groups, sample_weight):
            from skmixed._base import weights_name
            from skmixed.mixed import dask_fit

            self._validate_params()
            self._keep_fit_request()
            # (the partitions fit y - offset: skmixed._dask_input.dask_input)
            self._weights, self._offset = None, None
            self._weights_name = weights_name(sample_weight)
            with blas_single_thread():
                dask_fit.fit(self, X, y, groups, sample_weight)
        else:
            super().fit(X, y, groups, sample_weight)
        self.response_name_ = response_name(y)
        return self

    def summary(self, ddf="satterthwaite", correlation=None):
        """lmerTest's ``summary(lmer(...))``: print it, or read its tables.

        Parameters
        ----------
        ddf : {"satterthwaite", "kenward-roger"}, default="satterthwaite"
            Denominator degrees of freedom of the t tests (Kenward-Roger:
            REML fits of at most a few thousand rows).
        correlation : bool or None, default=None
            Print the correlation of the fixed effects (lme4's
            ``print(x, correlation=)``). None does as lme4: shown for at most
            12 fixed effects, otherwise a note says so.

        Returns
        -------
        MixedLMSummary
            ``str()`` is lmerTest's text; ``.coefficients`` (``estimate,
            std_error, df, t_value, p_value``), ``.random_effects`` and
            ``.correlation`` are DataFrames.

        Examples
        --------
        >>> import skmixed
        >>> from skmixed.datasets import load_sleepstudy
        >>> m = skmixed.lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy())
        >>> m.summary().coefficients.round(3)
                     estimate  std_error    df  t_value  p_value
        term
        (Intercept)   251.405      6.825  17.0   36.838      0.0
        Days           10.467      1.546  17.0    6.771      0.0
        """
        from skmixed.mixed import results

        check_is_fitted(self)
        return results.summary(self, ddf, show_correlation=correlation)

    def anova(self, ddf="satterthwaite"):
        """Type III F tests of the fixed effects (lmerTest's ``anova(m)``).

        With a formula fixed part (``fixed_effects="nitro + Variety"``), one
        row per term of the formula, tested as lmerTest tests it: a factor's
        columns jointly (``Variety`` on 2 df), and a term contained in an
        interaction (``recipe`` in ``recipe * temperature``) by lmerTest's
        type III hypothesis, averaged over the other factor. Without a
        formula, each feature column is one term; a joint test of several
        columns is :meth:`contest`. For a likelihood-ratio test between
        models, :func:`skmixed.anova`.

        Parameters
        ----------
        ddf : {"satterthwaite", "kenward-roger"}, default="satterthwaite"

        Returns
        -------
        pandas.DataFrame
            Indexed by term; columns ``sum_sq, mean_sq, num_df, den_df,
            F_value, p_value``.

        Examples
        --------
        >>> import skmixed
        >>> from skmixed.datasets import load_oats
        >>> m = skmixed.lmer("yield ~ nitro + Variety + (1 | Block/Variety)",
        ...                  load_oats())
        >>> m.anova()[["num_df", "F_value", "p_value"]].round(4)
                 num_df   F_value  p_value
        term
        nitro         1  118.0030   0.0000
        Variety       2    1.4853   0.2724
        """
        from skmixed.mixed import results

        check_is_fitted(self)
        return results.anova_type3(self, ddf)

    def contest(self, L, ddf="satterthwaite"):
        """F test of ``L β = 0`` (lmerTest's ``contest``).

        Parameters
        ----------
        L : array-like of shape (n_fixed,) or (q, n_fixed), dict or str
            One contrast, ``q`` contrasts (one per row), a dict mapping
            fixed-effect names to coefficients, or a term of a formula fixed
            part (``"Variety"``: its row of :meth:`anova`).
        ddf : {"satterthwaite", "kenward-roger"}, default="satterthwaite"

        Returns
        -------
        pandas.DataFrame
            One row, labelled with the hypothesis
            (``VarietyMarvellous - VarietyVictory``, the term, or the
            contrasts joined by ``"; "``): ``sum_sq, mean_sq, num_df,
            den_df, F_value, p_value``.
        """
        from skmixed.mixed import results

        check_is_fitted(self)
        return results.contest(self, L, ddf)

    def conf_int(
        self,
        level=0.95,
        method="wald",
        parm=None,
        *,
        n_boot=1000,
        random_state=None,
        progress="auto",
    ):
        """Confidence intervals (lme4's ``confint``).

        Parameters
        ----------
        level : float, default=0.95
        method : {"wald", "profile", "bootstrap"}, default="wald"
            Wald (fixed effects only), profile likelihood (on the ML
            deviance, as lme4), or parametric-bootstrap percentile intervals.
        parm : str or list of str, optional
            Parameter names (``"sd_(Intercept)|Subject"``,
            ``"cor_Days.(Intercept)|Subject"``, ``"sigma"``, fixed effects),
            or ``"theta_"`` / ``"beta_"``; all by default.
        n_boot : int, default=1000
            Bootstrap refits (``method="bootstrap"``).
        random_state : int, RandomState instance or None, default=None
            Seed of the bootstrap.
        progress : {"auto", True, False}, default="auto"
            Progress line on stderr for long bootstrap runs.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, one row per parameter.

        Examples
        --------
        >>> import skmixed
        >>> from skmixed.datasets import load_sleepstudy
        >>> m = skmixed.lmer("Reaction ~ Days + (1 | Subject)", load_sleepstudy())
        >>> m.conf_int().round(2)
                      lower   upper
        (Intercept)  232.30  270.51
        Days           8.89   12.04
        >>> m.conf_int(method="profile").round(2)
                                 lower   upper
        sd_(Intercept)|Subject   26.01   52.94
        sigma                    27.81   34.59
        (Intercept)             231.99  270.82
        Days                      8.89   12.05
        """
        from skmixed.mixed import intervals

        check_is_fitted(self)
        results_random = method in ("profile", "bootstrap", "boot")
        if results_random and self._criterion is None:
            raise ValueError("The model has no random effects to profile.")
        options = {}
        if str(method).lower() in ("bootstrap", "boot"):
            options = {
                "n_boot": n_boot,
                "random_state": random_state,
                "progress": progress,
            }
        return intervals.conf_int(self, level, method, parm, **options)

    @staticmethod
    def _variance_split():
        from skmixed.mixed import r2

        return r2


# -- helpers ---------------------------------------------------------------------
def _plus_offset(values, offset):
    """``values`` plus the offset (lme4's ``offset``), or as they are without."""
    return values if offset is None else values + offset


def _term_columns(term, covariates, names):
    """The term's Z columns: None for intercept-only, else [1, slopes...].

    ``covariates`` holds the numeric columns of X the random part reads
    (see :func:`skmixed._inputs.prepare_inputs`); ``names`` are the features,
    for the message.
    """
    if not term.slopes:
        return None
    missing = [s for s in term.slopes if s not in covariates]
    if missing:
        raise ValueError(
            f"Random slope column(s) {missing} in {term} are not numeric "
            f"feature columns of X (features: {names})."
        )
    n = covariates[term.slopes[0]].shape[0]
    Z = np.empty((n, term.n_columns))
    start = 0
    if term.intercept:
        Z[:, 0] = 1.0
        start = 1
    for j, slope in enumerate(term.slopes):
        Z[:, start + j] = covariates[slope]
    return Z


def _columns_of_x(term, covariates, X, x_names):
    """The term's Z as a view of X's columns, or None.

    A random intercept and slopes are usually fixed effects too, and
    ``(1 + x1 | g)`` with X = ``[1 x1 ...]`` has them side by side: a view
    saves a copy of them (10M rows: 160 MB of fresh pages, ~0.5 s). Only
    columns at even steps make a view; each is compared by value, as the
    same name is not enough (a formula's fixed part builds its own columns).
    """
    if any(s not in covariates for s in term.slopes):
        return None  # (_term_columns says which)
    wanted = list(term.names)
    if any(name not in x_names for name in wanted):
        return None
    index = [x_names.index(name) for name in wanted]
    step = index[1] - index[0] if len(index) > 1 else 1
    if step <= 0 or index != list(range(index[0], index[-1] + 1, step)):
        return None
    for name, i in zip(wanted, index, strict=True):
        same = (
            np.all(X[:, i] == 1.0)
            if name == "(Intercept)"
            else np.array_equal(X[:, i], covariates[name])
        )
        if not same:
            return None
    return X[:, index[0] : index[-1] + 1 : step]


def _interaction(factors, name):
    """The factor ``a:b`` (labels joined by ``:``) from the components' codes.

    The same factor as :func:`skmixed._groups.interaction`, built from the
    integer codes: only the combinations present are turned into labels.
    """
    combined = np.zeros(len(factors[0]), dtype=np.int64)
    size = 1
    for factor in factors:
        m = len(factor.categories)
        combined = combined * m + np.asarray(factor.codes, dtype=np.int64)
        size *= m
    if size > 1 << 26:  # too many combinations to count: the label path
        return interaction(factors, name)
    counts = np.bincount(combined, minlength=size)
    present = np.flatnonzero(counts)
    parts, rest = [], present
    for factor in reversed(factors):
        m = len(factor.categories)
        parts.append(np.asarray(factor.categories, dtype=object)[rest % m])
        rest = rest // m
    labels = [":".join(p) for p in zip(*reversed(parts), strict=True)]
    levels = _r_level_order(labels)
    rank = pd.Index(levels, dtype=object).get_indexer(pd.Index(labels, dtype=object))
    position = np.full(size, -1, dtype=np.int64)
    position[present] = rank
    return pd.Categorical.from_codes(position[combined], categories=levels)


def _codes_in(factor, levels):
    """Codes of a categorical's rows in the fitted levels (-1 where unseen)."""
    mapping = level_positions(factor.categories, levels)
    return mapping[np.asarray(factor.codes, dtype=np.intp)]


def factor_of(term, factors):
    """The term's grouping factor (interactions built from components)."""
    if len(term.components) == 1:
        return factors[term.components[0]]
    return _interaction([factors[c] for c in term.components], term.factor)


def term_designs(terms, data, names, fixed=None):
    """Per term: codes, levels and Z from validated data.

    ``fixed``: ``(X, x_names)``, the fit's fixed design, whose columns a
    term's Z may view rather than copy (see :func:`_columns_of_x`).
    """
    designs = []
    cache = {}
    for term in terms:
        if term.factor not in cache:
            cache[term.factor] = factor_of(term, data.factors)
        factor = cache[term.factor]
        Z = None
        if fixed is not None and term.slopes:
            Z = _columns_of_x(term, data.covariates, *fixed)
        if Z is None:
            Z = _term_columns(term, data.covariates, names)
        designs.append(
            TermDesign(
                np.asarray(factor.codes, dtype=np.intp),
                index_labels(factor.categories),
                Z,
                term.names,
                term.factor,
            )
        )
    return designs


def random_part(terms, b_per_term, fitted_designs, data, names):
    """Per row, the sum over terms of ``Z_i · b[level_i]`` at the fitted modes.

    Levels not seen at fit contribute 0 (lme4's ``allow.new.levels``).
    Shared by the linear and the generalized mixed models' predictions.

    Returns
    -------
    effects : ndarray of shape (n_samples,)
    unseen : dict
        Factor name -> sorted labels not seen at fit (empty when none).
    """
    effects = np.zeros(data.X.shape[0])
    cache, unseen = {}, {}
    for term, b, (factor, _, _, levels) in zip(
        terms, b_per_term, fitted_designs, strict=True
    ):
        if factor not in cache:
            labels = factor_of(term, data.factors)
            codes = _codes_in(labels, levels)
            cache[factor] = codes
            if (codes < 0).any():
                strings = np.asarray(labels.categories, dtype=object)
                unseen[factor] = sorted(set(strings[labels.codes[codes < 0]]))
        codes = cache[factor]
        Z = _term_columns(term, data.covariates, names)
        known = codes >= 0
        effect = row_effects(Z, b, np.where(known, codes, 0))
        effects += np.where(known, effect, 0.0)
    return effects, unseen


def _levels_per_factor(terms):
    """Factor -> its number of levels, in the terms' order (a factor's terms
    share its levels)."""
    levels = {}
    for term in terms:
        levels.setdefault(term.factor, term.m)
    return levels


def _lme4_order(designs):
    """Terms by decreasing number of levels, as lme4's mkReTrms orders them.

    lme4 reorders only when some term has more levels than the one before,
    and then by ``rev(order(nl))``: ties end up in reverse order. The
    variance-component names follow R's ``make.unique`` (``g``, ``g.1``).
    """
    nl = [d.m for d in designs]
    if any(b > a for a, b in zip(nl[:-1], nl[1:], strict=True)):
        ascending = sorted(range(len(nl)), key=lambda i: nl[i])
        designs = [designs[i] for i in reversed(ascending)]
    counts = {}
    for d in designs:
        seen = counts.get(d.factor, 0)
        d.group = d.factor if seen == 0 else f"{d.factor}.{seen}"
        counts[d.factor] = seen + 1
    return designs


def _lme4_sorted_terms(terms, fitted):
    """The parsed terms in the fitted order (matched by factor and names)."""
    pool = list(terms)
    out = []
    for factor, _, names, _ in fitted:
        for i, term in enumerate(pool):
            if term.factor == factor and list(term.names) == list(names):
                out.append(pool.pop(i))
                break
    return out


class _StandardisedTheta:
    """The criterion as a function of θ̃, θ of standardised slope columns.

    The model with ``Z̃ = Z A`` and ``Λ̃`` is the model with Z and any Λ with
    ``ΛΛᵀ = (AΛ̃)(AΛ̃)ᵀ``: the same criterion, but θ̃ is on the scale lme4's
    start (θ = 1) and the optimiser's tolerances assume. Without it a slope
    column scaled by 1e3 or 1e-6, or shifted by 1e4, stopped at a wrong
    optimum. Only the optimiser sees θ̃; well-scaled data (every A the
    identity) give the very same evaluations as the criterion itself.
    """

    def __init__(self, criterion, transforms=None):
        self.criterion = criterion
        # transforms: the terms' slope_transform results, when known already
        if transforms is None:
            transforms = [slope_transform(t) for t in criterion.design.terms]
        self.transforms = transforms
        self.identity = all(A is None for A in self.transforms)
        #: whether there is an analytic gradient (not with r² from the rows)
        self.gradient = not isinstance(criterion, RowsCriterion)
        # small one-factor models: the criterion at a stack of θ at once
        # (from the cross-products: not with r² from the rows)
        self.batch = (
            batch_criterion(criterion) if self.identity and self.gradient else None
        )
        self.theta_lower = criterion.theta_lower
        self.theta_start = criterion.theta_start
        self.n_theta = criterion.n_theta

    def lambdas(self, theta_tilde):
        """Per term, Λ̃ (the standardised relative covariance factor)."""
        return self.criterion.lambdas(theta_tilde)

    @staticmethod
    def coordinates(theta_tilde):
        """The optimiser's coordinates of a θ̃: θ̃ itself (see rows.SinhTheta)."""
        return theta_tilde

    def to_theta(self, theta_tilde):
        """θ on the data's scale (lme4's θ) from θ̃."""
        if self.identity:
            return np.asarray(theta_tilde, dtype=np.float64)
        parts = []
        for lam, A in zip(self.lambdas(theta_tilde), self.transforms, strict=True):
            factor = lam if A is None else lower_factor(A @ lam)
            rows, cols = lower_triangle_indices(lam.shape[0])
            parts.append(factor[rows, cols])
        return np.concatenate(parts)

    def __call__(self, theta_tilde):
        if self.identity:
            return self.criterion(theta_tilde)
        return self.criterion(self.to_theta(theta_tilde))

    def value_and_gradient(self, theta_tilde):
        """The criterion and its gradient in θ̃ (chain rule through θ(θ̃))."""
        if self.identity:
            return self.criterion.value_and_gradient(theta_tilde)
        theta_tilde = np.asarray(theta_tilde, dtype=np.float64)
        value, grad = self.criterion.value_and_gradient(self.to_theta(theta_tilde))
        # θ(θ̃) is a small QR per term: its Jacobian by central differences
        jacobian = np.empty((len(grad), len(theta_tilde)))
        for j in range(len(theta_tilde)):
            h = 1e-6 * max(1.0, abs(theta_tilde[j]))
            step = np.zeros(len(theta_tilde))
            step[j] = h
            plus, minus = (
                self.to_theta(theta_tilde + step),
                self.to_theta(theta_tilde - step),
            )
            jacobian[:, j] = (plus - minus) / (2.0 * h)
        return value, jacobian.T @ grad


class _Centring:
    """Centred copies of shifted slope columns, and the maps back.

    A random-slope column far from 0 relative to its spread (``Days + 1e4``,
    ``1e6 Days + 1e9``) loses most of its digits in the cross-products of the
    data's own scale, which no reparametrisation of θ can recover. In a
    correlated term with an intercept, ``b0 + b1 x = (b0 + b1 c) + b1 (x - c)``:
    the term with ``Z A`` (centred and scaled columns, computed elementwise
    from the data) is the same model, with ``b = A b̃`` and ``ΛΛᵀ = A Λ̃Λ̃ᵀ Aᵀ``.
    The fixed part likewise uses ``X M`` (shifted columns centred, M unit
    upper triangular): ``β = M β̃``, ``vcov = M ṽcov Mᵀ``. det A is constant
    and det M = 1, so the criterion is the same function of the model. A
    shifted fixed-effect column loses the same digits in XᵀX, so X M is
    used whenever some column is shifted, even with no shifted random slope
    (θ is then the data's own: ``slopes_centred`` False).
    """

    def __init__(self, X, x_names, designs, x_moments=None, gram=None, y_range=None):
        # every term's standardising transform (None: well scaled), and the
        # shifted ones, which the centred design takes
        self.slope_transforms = [slope_transform(d) for d in designs]
        self.transforms = []
        for A in self.slope_transforms:
            shifted = A is not None and np.any(A[0, 1:] != 0.0)
            self.transforms.append(A if shifted else None)
        #: whether some random-slope column is centred (the fit's θ is then
        #: not the data's own; see intervals._check_not_centred)
        self.slopes_centred = any(A is not None for A in self.transforms)
        self.M = shift_matrix(X, x_names, x_moments, gram)
        #: a constant taken from y (see centring.response_shift), given
        #: back in β0
        self.y_shift = 0.0 if y_range is None else response_shift(x_names, y_range)
        #: so far that y's own cross-products keep too few digits for the
        #: profiles and refits that use them (~1e-7 of the deviance: 3676
        #: times sleepstudy's range moved its θ by 4e-3); nearer, they are
        #: accurate enough there (367 times: 2e-10 of the deviance)
        self.y_far = bool(self.y_shift) and abs(self.y_shift) > 1e3 * float(
            np.ptp(np.asarray(y_range, dtype=np.float64))
        )
        # a shifted fixed-effect column alone (x = 1e4 + N(0, 1) beside
        # (1 | g)) costs XᵀX the same digits: its criterion varied by 2e-7
        # relative when the rows were permuted, and θ by 1e-3
        # (any() of the Python floats: NaN counts, as != 0 would)
        self.active = (
            self.slopes_centred
            or any(self.M[:1, 1:].ravel().tolist())
            or bool(self.y_shift)
        )

    def design_inputs(self, X, designs):
        """X M and the terms with Z A, both computed from the data."""
        Xc = np.array(X, dtype=np.float64, order="C")
        Xc[:, 1:] += self.M[0, 1:]  # column 0 is the intercept
        out = []
        for d, A in zip(designs, self.transforms, strict=True):
            if A is None:
                out.append(d)
                continue
            # (x - mean) / sd: subtract first, so the shift costs no digits
            scale = np.diagonal(A)
            Z = (d.Z + A[0] / scale) * scale
            Z[:, 0] = d.Z[:, 0]  # the column of ones
            out.append(replace(d, Z=np.ascontiguousarray(Z)))
        return Xc, out

    def response(self, y):
        """y less its shift, computed from the data (a copy when shifted)."""
        return y - self.y_shift if self.y_shift else y

    def with_y_shift(self, beta_centred):
        """The centred fit's β̃ with y's shift given back in β̃0."""
        if not self.y_shift:
            return beta_centred
        beta = np.array(beta_centred, dtype=np.float64)
        beta[0] += self.y_shift
        return beta

    def map_back(self, dec):
        """The centred fit's decomposition on the data's scale."""
        return _MappedDecomposition(dec, self.transforms, self.M, self.y_shift)


@dataclass
class _CentredFit:
    """The centred fit behind a model fitted through _Centring."""

    criterion: object
    theta: np.ndarray
    beta: np.ndarray
    M: np.ndarray
    #: a random-slope column was centred (else only fixed-effect columns,
    #: and θ is the data's own)
    slopes_centred: bool = True
    #: y is so far from 0 that the data's own cross-products, which
    #: profiles and refits use, lost its digits (see _Centring.y_far)
    y_far: bool = False


class _MappedDecomposition:
    """What the fitted attributes read from a Decomposition, mapped back."""

    def __init__(self, dec, transforms, M, y_shift=0.0):
        self._dec, self._transforms = dec, transforms
        self.lambdas, parts = [], []
        for lam, A in zip(dec.lambdas, transforms, strict=True):
            lam = lam if A is None else lower_factor(A @ lam)
            rows, cols = lower_triangle_indices(lam.shape[0])
            self.lambdas.append(lam)
            parts.append(lam[rows, cols])
        self.theta = np.concatenate(parts)
        self.b = [
            b if A is None else b @ A.T for b, A in zip(dec.b, transforms, strict=True)
        ]
        self.beta = M @ dec.beta
        if y_shift:
            self.beta[0] += y_shift  # (M's column 0 is e0)
        # RXᵀRX = M⁻ᵀ R̃XᵀR̃X M⁻¹; M⁻¹ is unit upper triangular (row 0 negated)
        Minv = np.eye(M.shape[0])
        Minv[0, 1:] = -M[0, 1:]
        self.RX = dec.RX @ Minv
        self.logdet_L, self.logdet_RX = dec.logdet_L, dec.logdet_RX
        self.pwrss = dec.pwrss

    def conditional_covariances(self, sigma):
        covs = self._dec.conditional_covariances(sigma)
        return [
            c if A is None else A @ c @ A.T
            for c, A in zip(covs, self._transforms, strict=True)
        ]


def _restart_from_the_stop(criterion, opt, method, max_iter):
    """The optimiser once more from where it stopped (a fresh trust region);
    the better optimum. For θ of y's offset's size (r² from the rows, see
    rows.py), where BOBYQA's region closed early: (1 + x | g) with an offset
    of 1e8 stopped 3.0 above lme4's optimum (ML), and met it after one
    restart, as it did at every offset from 1e4 on."""
    again = minimize_theta(
        criterion, opt.x, criterion.theta_lower, method=method, max_iter=max_iter
    )
    best = again if again.fun < opt.fun else opt
    best.n_evaluations = opt.n_evaluations + again.n_evaluations
    return best


def _restart_off_a_degenerate_boundary(criterion, opt, method, max_iter):
    """Restart once when a vector term's factor has a zero before its last
    diagonal element; keep the better optimum.

    There the lower-triangular θ is degenerate (with ``λ11 = 0`` the
    elements below it can rotate freely), and BOBYQA -- lme4's too -- can
    stop although a lower criterion lies along another rank-deficient
    direction (a brute-force multi-start found one 0.29 lower on a small
    crossed ``(x1 | a) + (1 | b)`` fit, as lme4's Nelder-Mead does). The
    restart is the Cholesky factor of ``ΛΛᵀ`` plus a ridge of half its mean
    variance: off the boundary, same scale.
    """
    if opt.method == "newton":
        # Newton's optimum is never there: it hands such stops to BOBYQA
        return opt
    lambdas = criterion.lambdas(opt.x)
    if not any(np.any(np.diagonal(lam)[:-1] == 0.0) for lam in lambdas):
        return opt
    start = []
    for lam in lambdas:
        k = lam.shape[0]
        cov = lam @ lam.T
        ridge = 0.5 * max(np.trace(cov) / k, 1e-2)
        factor = np.linalg.cholesky(cov + ridge * np.eye(k))
        rows, cols = lower_triangle_indices(k)
        start.append(factor[rows, cols])
    starts = [np.concatenate(start)] + _rank_one_starts(lambdas)
    starts = [criterion.coordinates(x0) for x0 in starts]
    best, spent = opt, opt.n_evaluations
    for x0 in starts:
        other = minimize_theta(
            criterion,
            x0,
            criterion.theta_lower,
            method=method,
            max_iter=max_iter,
            value_and_gradient=criterion.value_and_gradient
            if criterion.gradient
            else None,
            prefer_gradient=criterion.criterion.gradient_pays,
            batch=criterion.batch,
        )
        spent += other.n_evaluations
        if other.fun < best.fun:
            best = other
    best.n_evaluations = spent
    return best


def _rank_one_starts(lambdas):
    """Starts near the rank-one covariances of a two-column term stopped
    with no intercept variance (λ00 = 0: the slope's variance r² rotating
    freely in λ10, λ11), one per sign of the correlation: the lower optimum
    can be a rank-one covariance with both variances (λ11 = 0), where lme4
    ends from its start. BOBYQA from lme4's start and from the ridge stopped
    on the λ00 = 0 set 0.056 above it (REML, 2,300 levels, a slope variance
    ~1e-4 of the residual's)."""
    base = []
    for lam in lambdas:
        rows, cols = lower_triangle_indices(lam.shape[0])
        base.append(lam[rows, cols])
    starts = []
    for t, lam in enumerate(lambdas):
        if lam.shape[0] != 2 or lam[0, 0] != 0.0:
            continue
        r = float(np.hypot(lam[1, 0], lam[1, 1]))
        if not r > 0.0:
            continue
        for sign in (1.0, -1.0):
            parts = list(base)
            parts[t] = np.array([0.1 * r, sign * r, 0.1 * r])
            starts.append(np.concatenate(parts))
    return starts


#: yᵀWy over the penalised residual sum of squares beyond which the fit
#: says it lost precision: the PRSS, formed from [X y]ᵀW[X y], then keeps
#: fewer than ~6 of its ~16 digits (σ, θ and the criterion with it).
_LOST_PRECISION_RATIO = 1e10


def _precision_ratio(design, pwrss):
    """yᵀWy over the PRSS, and about how many significant digits the PRSS
    keeps (0 for a PRSS cancelled to 0 or below: no log of infinity)."""
    yty = float(design.Bxx[-1, -1])
    ratio = yty / pwrss if pwrss > 0.0 else math.inf
    digits = 0
    if math.isfinite(ratio):
        digits = max(0, int(np.floor(-np.log10(np.finfo(float).eps * ratio))))
    return ratio, digits


def _warn_lost_precision(design, pwrss):
    """Warn when yᵀWy dwarfs the penalised residual sum of squares at the
    optimum.

    The PRSS is yᵀWy less a quadratic form of the cross-products: when y's
    own size is many orders above what the model leaves unexplained, the
    difference cancels most digits. A fit with an intercept takes a far
    mean out of y first (see ``centring.response_shift``); without one
    (``fit_intercept=False``, ``0 +``) an in-memory fit forms the PRSS from
    the rows (see rows.py), as lme4 does, and does not come here.
    """
    if not pwrss > 0.0:
        return
    ratio, digits = _precision_ratio(design, pwrss)
    if ratio <= _LOST_PRECISION_RATIO:
        return
    warnings.warn(
        f"The fit lost precision: y's sum of squares is {ratio:.1e} times "
        "the penalised residual sum of squares, so σ, θ and the criterion keep "
        f"only about {digits} significant digit(s). Almost all of y's size is "
        "explained: by random effects whose variance dwarfs the residual's (a "
        "random intercept with a standard deviation ~1e6 times σ, when y "
        "varies so much between groups), or by the fixed effects (a nearly "
        "exact fit): the numbers are uncertain beyond those digits; check that "
        "y is not (almost) a function of the predictors.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def _warn_far_y_from_sums(design, pwrss):
    """Warn that a fit from Dask partitions, with y far from 0 and no fixed
    intercept, formed its PRSS as a difference of sums.

    In memory such a fit forms the PRSS from the rows (see rows.py); from
    partitions the client has only the sums, so it says how many digits
    the difference kept and how to keep them all.
    """
    ratio, digits = _precision_ratio(design, pwrss)
    warnings.warn(
        "y is far from 0 relative to its range and the model has no fixed "
        "intercept to absorb its mean (fit_intercept=False or '0 +'): "
        "fitted from Dask partitions, the penalised residual sum of "
        f"squares is a difference of the sums, {ratio:.1e} times smaller "
        f"than y's sum of squares, so σ, θ and the criterion keep only "
        f"about {digits} significant digit(s). Fit the intercept, or centre "
        "y if the model of the centred y is the one you mean, or fit from "
        "in-memory data (pandas or numpy), where it is formed from the rows.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def _warn_rank_deficient(dropped):
    """lme4's warning for fixed-effect columns dropped as aliased."""
    count = len(dropped)
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {count} "
        f"column{'s' if count > 1 else ''} / coefficient"
        f"{'s' if count > 1 else ''}: {dropped}",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def _columns_in_x(term, X, x_names):
    """The column of X equal to each of the term's columns, or None.

    A random intercept and slopes are usually fixed effects too: the
    term's per-level ``ZᵀZ`` is then read from its ``ZᵀX`` (one pass over
    the rows fewer). Compared by value: the same name is not enough (a
    formula's fixed part builds its own columns).
    """
    if term.Z is None:
        return [0] if x_names[:1] == ["(Intercept)"] else None
    columns = []
    for j, name in enumerate(term.names):
        if name not in x_names:
            return None
        i = x_names.index(name)
        if not (term.is_ones(j) or np.array_equal(term.Z[:, j], X[:, i])):
            return None
        columns.append(i)
    return columns


def _fitted_exactly(design):
    """Whether y is (to rounding) a combination of X's columns: RSS = 0.

    From ``[X y]ᵀ[X y]``, the trailing block of B (see :func:`_exactly`).
    """
    return _exactly(design.Bxx)


def _exactly(gram, factor=None, info=None):
    """:func:`_fitted_exactly` from the cross-products of ``[X y]``.

    Scaled to unit diagonal, their Cholesky factor's last element is
    ``sqrt(RSS) / |y|`` of the least squares fit; at rounding level the
    profiled criterion is noise. ``factor`` and ``info``: that
    factorisation, when done already (with every norm positive).
    """
    p = gram.shape[0] - 1
    if factor is None:
        norms = np.sqrt(gram.diagonal())
        if norms[-1] == 0.0:
            return True
        norms = np.where(norms > 0, norms, 1.0)
        factor, info = dpotrf(gram / (norms[:, None] * norms), lower=1)
    return info == p + 1 or (info == 0 and factor[p, p] ** 2 < 1e-20)


def _joined_columns(features, intercept, y):
    """``[1 features y]`` (without the ones unless ``intercept``) as one
    column-major array.

    The design's per-level sums read one column at a time (contiguous in
    this layout) and its ``[X y]ᵀ[X y]`` reads them together: built so
    here, the fixed design is the only copy of the rows (10M rows: a
    row-major ``[1 X]`` then a column-major ``[X y]`` were two fresh
    arrays of ~0.5 GB, each page of them a page fault on first touch).
    Block by block of rows: a block of the row-major features stays in
    cache while its columns are written out.
    """
    n, p = features.shape
    start = int(intercept)
    XY = np.empty((n, start + p + 1), order="F")
    if intercept:
        XY[:, 0] = 1.0
    for first in range(0, n, ROW_BLOCK):
        rows = slice(first, first + ROW_BLOCK)
        XY[rows, start:-1] = features[rows]
    XY[:, -1] = y
    return XY


def _gram_with_response(X, y):
    """``[X y]ᵀ[X y]`` without forming ``[X y]``.

    The joined copy is as large as X: for 10M rows and 6 columns, 560 MB
    whose first touch took 1.7-1.9 s on a fresh virtual machine (0.2 s
    when the pages are warm), against 0.17 s for the three products.
    """
    p = X.shape[1]
    gram = np.empty((p + 1, p + 1))
    gram[:p, :p] = X.T @ X
    gram[:p, p] = gram[p, :p] = X.T @ y
    gram[p, p] = y @ y
    return gram


def _rank_screen(X, y):
    """Mask of columns kept by R's rule (dqrdc2, tol 1e-7); and whether y is
    fitted exactly (:func:`_exactly`) when the screen tells, else None.

    A cheap screen on the Cholesky factor of the scaled ``[X y]ᵀ[X y]``
    (its leading block is XᵀX's): clearly full rank needs no QR of X, and
    the same factor answers :func:`_fitted_exactly` for unweighted rows.
    """
    p = X.shape[1]
    if p == 0:
        return np.ones(0, dtype=bool), None
    gram = _gram_with_response(X, y)
    norms = np.sqrt(gram.diagonal())
    if (norms > 0).all():
        scaled = gram / (norms[:, None] * norms)
        chol, info = dpotrf(scaled, lower=1)
        if (info == 0 or info == p + 1) and chol.diagonal()[:p].min() > 1e-4:
            return np.ones(p, dtype=bool), _exactly(gram, chol, info)
    return ~least_squares(X, y).aliased, None


def _variance_components(terms, lambdas, sigma=None):
    """lme4's ``as.data.frame(VarCorr(m), order = "cov.last")``.

    The covariance of a term is ``σ² λλᵀ``; a GLMM (``sigma=None``) has no
    residual scale: ``λλᵀ``, and no Residual row.
    """
    from skmixed.mixed.results import term_correlations

    scale = 1.0 if sigma is None else sigma
    rows = []
    for term, lam in zip(terms, lambdas, strict=True):
        cov = scale**2 * (lam @ lam.T)
        sd = np.sqrt(np.diagonal(cov))
        corr = term_correlations(term, cov, scale)
        names = term.names
        for a, name in enumerate(names):
            rows.append((term.group or term.factor, name, None, cov[a, a], sd[a]))
        rows_idx, cols_idx = lower_triangle_indices(len(names))
        for i, j in zip(rows_idx, cols_idx, strict=True):
            if i == j:
                continue
            rows.append(
                (term.group or term.factor, names[j], names[i], cov[i, j], corr[i, j])
            )
    if sigma is not None:
        rows.append(("Residual", None, None, sigma**2, sigma))
    return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])


__all__ = ["MixedLMRegressor"]
