"""What ``MixedLMRegressor``'s inference methods compute, from a fitted model.

The estimator's ``summary``, ``anova``, ``contest``, ``conf_int``,
``r2_nakagawa`` and ``icc`` are thin wrappers around these functions. The
derivatives behind Satterthwaite's df (and the Kenward-Roger adjustment)
are computed on first use and cached on the model until it is refitted.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from skmixed._rsyntax import r_deparse
from skmixed.mixed import kenward_roger
from skmixed.mixed.inference import (
    Satterthwaite,
    check_ddf,
    coefficient_table,
    contrast_label,
    term_table,
    type3_table,
    warn_messages,
)
from skmixed.mixed.kenward_roger import KenwardRoger
from skmixed.mixed.terms import format_random_effects

_DDF_LABELS = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}


def _require_random(model):
    if getattr(model, "_criterion", None) is None:
        raise ValueError(
            "The model was fitted without grouping factors (see the "
            "GroupsMissingWarning at fit): it has no random effects to test "
            "with. Refit with the grouping columns, or use PooledRegressor."
        )
    return model._criterion


def _cache(model):
    """Per-fit cache: reset whenever the model's criterion or θ changes."""
    criterion = _require_random(model)
    token = (id(criterion), np.asarray(model.theta_).tobytes(), float(model.sigma_))
    cache = model.__dict__.get("_inference_cache")
    if cache is None or cache[0] != token:
        cache = (token, {})
        model.__dict__["_inference_cache"] = cache
    return cache[1]


def tester(model, ddf="satterthwaite"):
    """The Satterthwaite or Kenward-Roger machinery of a fitted model."""
    key = check_ddf(ddf)
    cache = _cache(model)
    if key not in cache:
        # Many small factorisations: threaded BLAS only adds contention.
        with threadpool_limits(limits=1, user_api="blas"):
            cache[key] = _satterthwaite(model) if key == "satterthwaite" else _kr(model)
    return cache[key]


class _FixedEffectsMap:
    """A tester of the centred fit, asked about the user's β = M β̃.

    A model fitted through centred slope columns (see the estimator's
    ``_Centring``) keeps ``_criterion`` on the data's own scale, where the
    derivatives Satterthwaite and Kenward-Roger need lose their digits
    (Days + 1e4 gave df 161 for 17). The tests are run on the centred fit
    instead, which is the same model: ``L β = (L M) β̃`` exactly.
    """

    def __init__(self, inner, M):
        self.inner, self.M = inner, M

    def t_test(self, contrast):
        return self.inner.t_test(np.asarray(contrast, dtype=float) @ self.M)

    def f_test(self, L):
        return self.inner.f_test(np.asarray(L, dtype=float) @ self.M)


def _fit_view(model):
    """(criterion, θ, β) on which the tests are computed; M maps β back."""
    centred = getattr(model, "_centred", None)
    if centred is None:
        return model._criterion, model.theta_, model.fixed_effects_.to_numpy(), None
    return centred.criterion, centred.theta, centred.beta, centred.M


def _satterthwaite(model):
    criterion, theta, beta, M = _fit_view(model)
    design = criterion.design
    result = Satterthwaite.compute(
        criterion, theta, model.sigma_, criterion.reml, design.n, design.p
    )
    if M is not None:
        # the centred fit's β̃ with y's shift given back (see _CentredFit)
        result = replace(result, beta=np.asarray(beta, dtype=float))
    warn_messages(result.messages)
    return result if M is None else _FixedEffectsMap(result, M)


def _kr(model):
    criterion, theta, beta, M = _fit_view(model)
    if not criterion.reml:
        raise ValueError(
            "Kenward-Roger's method is only available for REML fits (as in "
            "lmerTest); refit with reml=True or use ddf='satterthwaite'."
        )
    design = criterion.design
    if design.X is None:
        raise ValueError(
            "Kenward-Roger's method needs the rows in memory; the model was "
            "fitted from Dask partitions: use ddf='satterthwaite'."
        )
    if design.weights is not None:
        # pbkrtest builds the marginal covariance with residual part σ²I:
        # with prior weights its numbers are not valid (lme4 users get them
        # silently); refuse rather than give an unweighted adjustment.
        raise ValueError(
            "Kenward-Roger's method is not available for a fit with "
            "sample_weight: pbkrtest (which defines it for lmer) ignores prior "
            "weights, so there is no reference to match. Use "
            "ddf='satterthwaite', which accounts for the weights (as lmerTest)."
        )
    n_params = sum(t.k * (t.k + 1) // 2 for t in design.terms) + 1
    kenward_roger.check_size(design.n, n_params)
    sigma2 = model.sigma_**2
    terms = [
        (term.codes, term.columns(), sigma2 * (lam @ lam.T))
        for term, lam in zip(design.terms, criterion.lambdas(theta), strict=True)
    ]
    result = KenwardRoger.compute(design.X, beta, model.sigma_, terms)
    return result if M is None else _FixedEffectsMap(result, M)


def fixed_effects_table(model, ddf="satterthwaite"):
    """Estimate, std. error, df, t and p of every fixed effect."""
    return coefficient_table(tester(model, ddf), list(model.fixed_effects_.index))


def fixed_formula(model):
    """The fitted FixedFormula of a formula fixed part, else None."""
    return getattr(model, "fixed_formula_", None)


def anova_type3(model, ddf="satterthwaite"):
    """lmerTest's type III F table: one row per term (per column without a formula)."""
    names = list(model.fixed_effects_.index)
    formula = fixed_formula(model)
    if formula is None:
        table = type3_table(tester(model, ddf), names)
    else:
        table = term_table(tester(model, ddf), formula.type3_hypotheses(names))
    table.attrs["heading"] = (
        f"Type III Analysis of Variance Table with {_DDF_LABELS[check_ddf(ddf)]}'s "
        "method"
    )
    return table


def contest(model, L, ddf="satterthwaite"):
    """F test (one row) of the hypothesis ``L β = 0``.

    ``L`` is a vector (one contrast), a matrix with one row per contrast, a
    dict ``{fixed-effect name: coefficient}`` for one contrast, or the label
    of a formula term (``"Variety"``: its type III hypothesis). The row is
    labelled with the hypothesis (``VarietyMarvellous - VarietyVictory``, the
    term's label, or the contrasts joined by ``"; "``).
    """
    names = list(model.fixed_effects_.index)
    label = None
    if isinstance(L, str):
        formula = fixed_formula(model)
        terms = formula.type3_hypotheses(names) if formula is not None else {}
        if L not in terms:
            known = list(terms) or names
            raise ValueError(
                f"Unknown term {L!r}: contest takes a formula term ({known}), a "
                "contrast vector or matrix, or a dict of fixed-effect names."
            )
        L, label = terms[L], L
    if isinstance(L, dict):
        unknown = [k for k in L if k not in names]
        if unknown:
            raise ValueError(f"Unknown fixed effect(s) {unknown}; have {names}.")
        L = [float(L.get(n, 0.0)) for n in names]
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[1] != len(names):
        raise ValueError(
            f"L must have {len(names)} columns (one per fixed effect: {names}); "
            f"got shape {L.shape}."
        )
    if label is None:
        label = "; ".join(contrast_label(row, names) for row in L)
    row = tester(model, ddf).f_test(L)
    return pd.DataFrame([row], index=pd.Index([label], name="hypothesis"))


def formula(model):
    """lme4-style formula, e.g. ``Reaction ~ Days + (Days | Subject)``.

    With a formula fixed part, the formula the model was made from (as
    lme4 prints it) when its parameters still say the same, else the
    formula rebuilt from the parameters, with the offset column last as
    lme4 prints an offset term: ``+ offset(log_exposure)``.
    """
    response = getattr(model, "response_name_", None) or "y"
    text = _formula_without_offset(model, response)
    offset = model._input_layout.offset_column
    stored = getattr(model, "_formula_text", None)
    if offset is None or (stored is not None and text == r_deparse(stored)):
        return text  # lme4's formula as given holds its offset(...) terms
    return f"{text} + offset({offset})"


def _formula_without_offset(model, response):
    if isinstance(getattr(model, "fixed_effects", None), str):
        from skmixed._model_formula import model_formula_text

        return model_formula_text(model, response)
    names = list(model.fixed_effects_.index)
    fixed = [n for n in names if n != "(Intercept)"]
    if "(Intercept)" not in names:
        fixed = ["0"] + fixed
    rhs = " + ".join(fixed) if fixed else "1"
    return f"{response} ~ {rhs} + {format_random_effects(model._fitted_spec())}"


#: An effect smaller than this fraction of the residual SD is zero to
#: rounding: the criterion depends on θ², so θ ~ 1e-21 and θ = 0 (lme4's
#: boundary) give the same value to the last digit.
_ZERO_EFFECT = 1e-10


def column_rms(term):
    """Root mean square of each of a term's Z columns (1 for the intercept)."""
    if term.Z is not None:
        return np.sqrt(np.einsum("ij,ij->j", term.Z, term.Z) / term.Z.shape[0])
    if term.moments is not None:  # rows not in memory (Dask)
        return np.hypot(term.moments[:, 0], term.moments[:, 1])
    return np.ones(term.k)


def term_correlations(term, cov, scale=1.0):
    """The correlations of a term's covariance ``cov``, NaN where undefined.

    Undefined, as lme4's NaN, where a standard deviation is zero; also where
    it is zero to rounding: an effect whose size on the response (its SD
    times the RMS of its column, so that the rule does not depend on the
    column's units) is below ``_ZERO_EFFECT * scale`` (``scale``: σ, 1 for a
    GLMM). The ratio of rounding-level numbers is noise: a covariance
    estimated as zero was printed with correlation 1.00.
    """
    sd = np.sqrt(np.diagonal(cov))
    zero = (sd == 0.0) | (sd * column_rms(term) <= _ZERO_EFFECT * scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[zero, :] = np.nan
    corr[:, zero] = np.nan
    return corr


def term_variance_rows(terms, lambdas, scale=1.0):
    """Per component of each term: group, name, variance, SD, correlations.

    The covariance of a term is ``scale · λλᵀ`` (σ² for the LMM, 1 for a
    GLMM); ``corr_b`` is the correlation with the term's earlier component
    ``b`` (NaN elsewhere, and where an SD is 0). Shared by the LMM and GLMM
    summaries.
    """
    k_max = max(t.k for t in terms)
    rows = []
    for index, (term, lam) in enumerate(zip(terms, lambdas, strict=True)):
        cov = scale * (lam @ lam.T)
        sd = np.sqrt(np.diagonal(cov))
        corr = term_correlations(term, cov, np.sqrt(scale))
        for a, name in enumerate(term.names):
            row = {
                "group": term.group or term.factor,
                "name": name,
                "variance": cov[a, a],
                "std_dev": sd[a],
                "_term": index,
            }
            for b in range(k_max - 1):
                value = np.nan
                if b < a:
                    value = corr[a, b]
                row[f"corr_{b + 1}"] = value
            rows.append(row)
    return rows


def random_effects_frame(model):
    """The variance table of the summary (per term component, residual last)."""
    criterion = _require_random(model)
    sigma2 = model.sigma_**2
    terms = criterion.design.terms
    k_max = max(t.k for t in terms)
    rows = term_variance_rows(terms, criterion.lambdas(model.theta_), sigma2)
    residual = {"group": "Residual", "name": "", "variance": sigma2}
    residual.update({"std_dev": model.sigma_, "_term": len(terms)})
    residual.update({f"corr_{b + 1}": np.nan for b in range(k_max - 1)})
    rows.append(residual)
    return pd.DataFrame(rows)


def summary(model, ddf="satterthwaite", show_correlation=None):
    """lmerTest's summary of a fitted model."""
    from skmixed.summary import MixedLMSummary

    key = check_ddf(ddf)
    coefficients = fixed_effects_table(model, key)
    # As lme4, the correlation of the (unadjusted) fixed-effects estimates.
    vcov = model.vcov_.to_numpy()
    sd = np.sqrt(np.diagonal(vcov))
    names = list(model.fixed_effects_.index)
    correlation = pd.DataFrame(vcov / np.outer(sd, sd), index=names, columns=names)
    design = model._criterion.design
    # without fixed effects the REML criterion is the deviance, and lme4
    # reports such a fit as ML (y ~ 0 + (1 | g): isREML() is FALSE)
    reml = bool(model.reml) and len(names) > 0
    if reml:
        criteria = {"REML": model.reml_criterion_}
    else:
        criteria = {
            "AIC": model.aic_,
            "BIC": model.bic_,
            "logLik": model.loglik_,
            "deviance": -2.0 * model.loglik_,
            "df.resid": design.n - design.p - model._criterion.n_theta - 1,
        }
    frame = random_effects_frame(model)
    # lme4's scaled residuals are the Pearson ones: sqrt(w) (y - fitted) / σ.
    weighted = design.weights is not None
    if design.X is None:  # fitted from Dask partitions: a pass over the rows
        from skmixed import _dask_predict

        weighted = model._dask_weighted
        scaled = _dask_predict.summary_residuals(
            _dask_predict.scaled_residuals(model), model.nobs_
        )
    else:
        scaled = model.residuals_ / model.sigma_
        if weighted:
            scaled = np.sqrt(design.weights) * scaled
    return MixedLMSummary(
        weights=(getattr(model, "_weights_name", None) or "sample_weight")
        if weighted
        else None,
        offset=getattr(model, "_offset_argument", None),
        reml=reml,
        ddf=_DDF_LABELS[key],
        formula=formula(model),
        criteria=criteria,
        scaled_residuals=scaled,
        random_effects=frame,
        nobs=model.nobs_,
        n_groups=model.n_groups_,
        coefficients=coefficients,
        correlation=correlation,
        singular=bool(model.is_singular_),
        show_correlation=show_correlation,
    )
