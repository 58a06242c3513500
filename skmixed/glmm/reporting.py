"""What a fitted GLMM reports: lme4's summary, confidence intervals,
Nakagawa's R² and the ICC.

:class:`GLMMReporting` gives the GLMM estimators ``summary()``,
``conf_int()``, ``r2_nakagawa()`` and ``icc()``; the functions below do the
work from a fitted model's attributes (the engine's results are read, never
changed).

Nakagawa's R² for a GLMM (Nakagawa, Johnson and Schielzeth 2017), as
performance 0.10 / insight 0.19 compute it, splits the latent-scale variance
into

- fixed: ``var(Xβ̂)`` (``n − 1`` denominator);
- random: per term, the mean over the rows of ``z_iᵀ Σ z_i`` (Johnson's
  extension to random slopes), summed over the terms; a term with one level
  per row (an observation-level random effect) counts as dispersion instead;
- residual: the distribution-specific variance plus that dispersion. For the
  binomial family it depends on the link only: π²/3 (logit), 1 (probit),
  π²/6 (cloglog). For the Poisson family (log link) it is the lognormal
  approximation ``log(1 + 1/μ)``, with μ = exp(β₀) from the *null model*:
  the intercept-only model with the same random effects, refitted. As in
  insight, μ < 6 gives a warning that the approximation is unreliable.
"""

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils.validation import check_is_fitted

from skmixed._stacklevel import user_stacklevel
from skmixed.mixed.optimize import is_singular
from skmixed.mixed.r2 import SINGULAR_TOL, icc_from_parts, r2_from_parts

_BINOMIAL_VARIANCE = {
    "logit": math.pi**2 / 3.0,
    "probit": 1.0,
    "cloglog": math.pi**2 / 6,
}

_VCOV_NOTES = {
    "hessian": (
        "Std. errors: finite-difference Hessian of -2 log L in (theta, beta) "
        "(lme4's default vcov)"
    ),
    "rx": "Std. errors: R_X of the final PIRLS step, conditional on theta "
    "(lme4's vcov(use.hessian = FALSE))",
    "rx_fallback": "Std. errors: R_X of the final PIRLS step (the Hessian is "
    "not positive definite; lme4 falls back the same way)",
}


def require_random(model):
    """The model's GLMM problem; a clear error for a fit without groups."""
    check_is_fitted(model)
    if getattr(model, "_problem", None) is None:
        raise ValueError(
            f"This {type(model).__name__} was fitted without grouping factors "
            "(see the GroupsMissingWarning at fit): it is a GLM with no random "
            "effects to report. Refit it with the grouping columns."
        )
    return model._problem


# -- the summary ---------------------------------------------------------------------
def random_effects_frame(model):
    """The summary's variance table: one row per component, no Residual row."""
    from skmixed.glmm.blocks import lambdas_from_theta

    require_random(model)
    from skmixed.mixed.results import term_variance_rows

    designs = model._designs
    lambdas = lambdas_from_theta(model.theta_, [d.k for d in designs])
    rows = term_variance_rows(designs, lambdas)
    for row in rows:
        row["_factor"] = designs[row["_term"]].factor
    return pd.DataFrame(rows)


def fixed_effects_table(model, vcov=None):
    """Estimate, std. error, Wald z and its two-sided p-value."""
    beta = model.fixed_effects_
    vcov = model.vcov_ if vcov is None else vcov
    se = np.sqrt(np.diagonal(vcov.to_numpy()))
    z = beta.to_numpy() / se
    return pd.DataFrame(
        {
            "estimate": beta.to_numpy(),
            "std_error": se,
            "z_value": z,
            "p_value": 2.0 * stats.norm.sf(np.abs(z)),
        },
        index=pd.Index(list(beta.index), dtype=object, name="term"),
    )


def vcov_note(model, method=None):
    """Which covariance of β the standard errors come from, in words."""
    method = model.vcov_method if method is None else method
    model.vcov(method)
    source = model._cache[f"_vcov_{method}"][1]
    if method == "hessian" and source == "rx":
        return _VCOV_NOTES["rx_fallback"]
    return _VCOV_NOTES[source]


def summary(model, correlation=None, vcov_method=None):
    """lme4's ``summary(glmer(...))`` of a fitted GLMM."""
    from skmixed.summary import GLMMSummary

    require_random(model)
    vcov = model.vcov(vcov_method)
    coefficients = fixed_effects_table(model, vcov)
    sd = np.sqrt(np.diagonal(vcov.to_numpy()))
    names = list(model.fixed_effects_.index)
    corr = pd.DataFrame(vcov.to_numpy() / np.outer(sd, sd), index=names, columns=names)
    criteria = {
        "AIC": model.aic_,
        "BIC": model.bic_,
        "logLik": model.loglik_,
        "deviance": -2.0 * model.loglik_,
        "df.resid": model.nobs_ - model.df_,
    }
    notes = []
    if not model.converged_:
        notes.append("Model failed to converge: see the ConvergenceWarning at fit.")
    from skmixed.mixed.results import formula

    return GLMMSummary(
        family=model.family_,
        link=model.link_,
        n_agq=int(model.nAGQ),
        formula=formula(model),
        criteria=criteria,
        scaled_residuals=model.residuals("pearson"),
        random_effects=random_effects_frame(model),
        nobs=model.nobs_,
        n_groups=model.n_groups_,
        coefficients=coefficients,
        correlation=corr,
        singular=bool(model.is_singular_),
        vcov_note=vcov_note(model, vcov_method),
        notes=notes,
        show_correlation=correlation,
        weights=getattr(model, "_weights_name", None),
        offset=getattr(model, "_offset_argument", None),
    )


# -- Nakagawa's R² and the ICC -------------------------------------------------------
def _term_variance(design, cov):
    """Mean over rows of z_iᵀ Σ z_i (Σ itself for an intercept-only term)."""
    if design.Z is None:
        return float(cov[0, 0])
    Z = design.Z
    return float(np.mean(np.einsum("ij,jk,ik->i", Z, cov, Z)))


def _null_model_intercept(model):
    """β₀ of the intercept-only model with the same random effects, refitted."""
    from skmixed.glmm.blocks import theta_start
    from skmixed.glmm.optimize import fit_two_stages
    from skmixed.glmm.pirls import GLMMProblem
    from skmixed.mixed.optimize import blas_single_thread

    problem = model._problem
    ones = np.ones((problem.n, 1))
    # with the model's offset, as insight's null_model keeps it
    null = GLMMProblem(
        ones, problem.y, problem.prior, problem.family, problem.system, problem.offset
    )
    with blas_single_thread():
        fit = fit_two_stages(
            null,
            theta_start(problem.ks),
            model._lower,
            np.zeros(1),
            n_agq=int(model.nAGQ),
            max_iter=model.max_iter,
        )
    return float(fit.beta[0])


def distribution_variance(model):
    """The distribution-specific (latent-scale residual) variance.

    Binomial: π²/3, 1 or π²/6 for the logit, probit and cloglog links.
    Poisson: ``log(1 + 1/μ)`` with ``μ = exp(β₀)`` of the refitted null
    model (insight's lognormal approximation), cached on the model.
    """
    if model.family_ == "binomial":
        return _BINOMIAL_VARIANCE[model.link_]
    cache = model._cache
    if "_null_intercept" not in cache:
        cache["_null_intercept"] = _null_model_intercept(model)
    return poisson_variance(cache["_null_intercept"])


def poisson_variance(intercept):
    """insight's lognormal approximation ``log(1 + 1/μ)``, μ = exp(intercept)."""
    mu = math.exp(intercept)
    if mu < 6:
        warnings.warn(
            f"mu of {mu:.1f} is too close to zero, estimate of random effect "
            "variances may be unreliable.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return math.log1p(1.0 / mu)


def variance_parts(model):
    """Fixed, random, dispersion and distribution variances (insight's names).

    Returns
    -------
    dict
        ``fixed``, ``random``, ``random_components`` (grouping factor ->
        variance of its terms), ``dispersion`` (observation-level terms),
        ``distribution`` and ``residual`` (= distribution + dispersion).
    """
    from skmixed.glmm.blocks import lambdas_from_theta

    problem = require_random(model)
    # X̃ β̃ = X β (the fitted columns); without the offset, as insight's
    # variance of the fixed effects (β times the model matrix)
    fixed_pred = problem.X @ model._beta_fit
    var_fixed = float(np.var(fixed_pred, ddof=1)) if problem.n > 1 else 0.0
    designs = model._designs
    lambdas = lambdas_from_theta(model.theta_, [d.k for d in designs])
    components, dispersion = {}, 0.0
    for d, lam in zip(designs, lambdas, strict=True):
        value = _term_variance(d, lam @ lam.T)
        if d.m == problem.n:
            dispersion += value
        else:
            components[d.factor] = components.get(d.factor, 0.0) + value
    distribution = distribution_variance(model)
    return {
        "fixed": var_fixed,
        "random": float(sum(components.values())),
        "random_components": components,
        "dispersion": dispersion,
        "distribution": distribution,
        "residual": distribution + dispersion,
    }


def _singular(model, tolerance):
    return is_singular(model.theta_, model._lower, tolerance)


def r2_nakagawa(model, tolerance=SINGULAR_TOL):
    """Marginal and conditional R² on the latent scale (performance's)."""
    return r2_from_parts(variance_parts(model), _singular(model, tolerance))


def icc(model, tolerance=SINGULAR_TOL):
    """Adjusted and conditional ICC on the latent scale (performance's)."""
    return icc_from_parts(variance_parts(model), _singular(model, tolerance))


# -- confidence intervals ------------------------------------------------------------
def wald(model, level=0.95, parm=None):
    """Wald intervals ``β̂ ± z se`` of the fixed effects (lme4's ``"Wald"``)."""
    _check_level(level)
    table = fixed_effects_table(model)
    z = stats.norm.ppf(0.5 + level / 2.0)
    half = z * table["std_error"].to_numpy()
    est = table["estimate"].to_numpy()
    out = pd.DataFrame(
        {"lower": est - half, "upper": est + half},
        index=pd.Index(list(table.index), dtype=object),
    )
    return _select_rows(out, parm)


def _check_level(level):
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level!r}.")


def _select_rows(table, parm):
    if parm is None or parm == "beta_":
        return table
    names = [parm] if isinstance(parm, str) else list(parm)
    unknown = [p for p in names if p not in table.index]
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {unknown}; the intervals are of {list(table.index)}."
        )
    return table.loc[names]


class GLMMReporting:
    """``summary`` and ``conf_int`` of a GLMM (and its variance split for
    Nakagawa's R² and the ICC)."""

    def summary(self, correlation=None, vcov_method=None):
        """lme4's ``summary(glmer(...))``: print it, or read its tables.

        Parameters
        ----------
        correlation : bool or None, default=None
            Print the correlation of the fixed effects (lme4's
            ``print(x, correlation=)``); None does as lme4 (shown for at most
            12 fixed effects).
        vcov_method : {"hessian", "rx"} or None, default=None
            The covariance of β behind the standard errors (see
            :meth:`vcov`); None uses the estimator's ``vcov_method``. The
            last line of the text says which was used.

        Returns
        -------
        skmixed.summary.GLMMSummary
            ``str()`` is lme4's text; ``.coefficients`` (``estimate,
            std_error, z_value, p_value``), ``.random_effects`` and
            ``.correlation`` are DataFrames.
        """
        return summary(self, correlation, vcov_method)

    def conf_int(self, level=0.95, method="wald", parm=None):
        """Confidence intervals of the parameters (lme4's ``confint``).

        Parameters
        ----------
        level : float, default=0.95
        method : {"wald", "profile"}, default="wald"
            ``"wald"``: ``β̂ ± z se`` for the fixed effects, with the
            standard errors of ``vcov_``. ``"profile"``: profile-likelihood
            intervals of every parameter on -2 log L (Laplace or AGQ), as
            lme4's ``confint(m, method = "profile")``; for models whose
            random-effects terms are all scalar, where θ is a standard
            deviation.
        parm : str or list of str, optional
            Parameter names (``"sd_(Intercept)|herd"``, fixed effects) or
            ``"beta_"`` / ``"theta_"``; all by default.

        Returns
        -------
        pandas.DataFrame
            Columns ``lower`` and ``upper``, one row per parameter.
        """
        check_is_fitted(self)
        if method == "wald":
            if parm == "theta_":
                raise ValueError(
                    "Wald intervals are for the fixed effects only (lme4 "
                    "gives NA for the variance parameters); use "
                    "method='profile'."
                )
            return wald(self, level, parm)
        if method == "profile":
            from skmixed.glmm.profile import profile_intervals

            return profile_intervals(self, level, parm)
        raise ValueError(f"method must be 'wald' or 'profile'; got {method!r}.")

    @staticmethod
    def _variance_split():
        """This module: Nakagawa's variance parts of a GLMM, for the
        ``r2_nakagawa`` and ``icc`` methods every mixed model shares."""
        import skmixed.glmm.reporting

        return skmixed.glmm.reporting
