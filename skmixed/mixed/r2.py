"""Nakagawa's R² and the intraclass correlation, as performance computes them.

Nakagawa and Schielzeth (2013) split the variance of a linear mixed model
into three parts:

- fixed: the variance of the fixed-effects predictions ``Xβ̂`` (with the
  ``n − 1`` denominator, as R's ``var``);
- random: for each random-effects term with covariance Σ, the mean over the
  rows of ``z_iᵀ Σ z_i``, where ``z_i`` holds the term's columns for row i
  (1 for an intercept, the slope variable for a slope) -- Johnson's (2014)
  extension to random slopes; Σ itself for an intercept-only term;
- residual: σ².

Marginal R² = fixed / total, conditional R² = (fixed + random) / total; the
adjusted ICC is random / (random + residual) and the conditional ICC
random / total. On a singular fit the random variance cannot be trusted:
performance then warns, returns NaN for the conditional R² and both ICCs,
and a marginal R² that leaves the random part out; so do we.

One deliberate difference from performance (0.10): uncorrelated terms,
``(x || g)``, which lme4 splits into ``(1 | g)`` and ``(0 + x | g)``.
performance counts only the intercept's variance in the random part and
leaves the slope's variance out, although the model estimated it; we count
every term's variance as Johnson's extension defines it, exactly as
performance itself does for the correlated ``(x | g)``. On sleepstudy,
``(Days || Subject)`` gives marginal / conditional R² 0.283 / 0.797 here and
0.415 / 0.702 in performance (whose marginal R² is inflated because its
total variance lacks the slope's 1022). Every other model gives
performance's numbers.
"""

import warnings

import numpy as np

from skmixed._stacklevel import user_stacklevel
from skmixed.mixed.optimize import is_singular

#: performance's tolerance for a variance component "equal to zero".
SINGULAR_TOL = 1e-5

_SINGULAR_WARNING = (
    "Can't compute random effect variances: some variance components equal "
    "zero (the fit is singular). Respecify the random-effects structure, or "
    "lower `tolerance` to compute them anyway."
)


def variance_parts(model):
    """Fixed, random (per factor) and residual variance of a fitted model.

    Parameters
    ----------
    model : MixedLMRegressor
        Fitted.

    Returns
    -------
    dict
        ``fixed``, ``random`` (total), ``random_components`` (factor ->
        variance, summed over the factor's terms) and ``residual``.
    """
    criterion = model._criterion
    if criterion is None:
        raise ValueError(
            "The model was fitted without grouping factors: it has no random "
            "effects, so no Nakagawa R² or ICC."
        )
    design = criterion.design
    beta = model.fixed_effects_.to_numpy()
    grams = None
    if design.X is None and getattr(model, "_dask_weighted", False):
        # fitted from Dask partitions with weights: the sums are weighted
        # (XᵀWX), the variances are over the rows; one pass for them
        from skmixed._dask_predict import unweighted_variances

        var_fixed, grams = unweighted_variances(model)
    elif design.X is None:  # fitted from Dask partitions: from the sums
        fixed = model.fixed_effects_.index != "(Intercept)"
        var_fixed = _fixed_variance_from_sums(design, beta, fixed)
        if var_fixed is None:  # the sums lost its digits: over the rows
            from skmixed._dask_predict import unweighted_variances

            var_fixed, _ = unweighted_variances(model)
    else:
        fixed_pred = design.X @ beta
        var_fixed = float(np.var(fixed_pred, ddof=1)) if design.n > 1 else 0.0
    sigma2 = model.sigma_**2
    components = {}
    lambdas = criterion.lambdas(model.theta_)
    for t, (term, lam) in enumerate(zip(design.terms, lambdas, strict=True)):
        cov = sigma2 * (lam @ lam.T)
        if term.names == ["(Intercept)"]:
            value = float(cov[0, 0])
        elif term.Z is None:  # mean of z_i' cov z_i = trace(cov ZᵀZ) / n
            gram = _term_gram(design, t) if grams is None else grams[t]
            value = float(np.sum(cov * gram) / design.n)
        else:
            Z = term.Z
            value = float(np.mean(np.einsum("ij,jk,ik->i", Z, cov, Z)))
        components[term.factor] = components.get(term.factor, 0.0) + value
    return {
        "fixed": var_fixed,
        "random": float(sum(components.values())),
        "random_components": components,
        "residual": float(sigma2),
    }


#: Largest ratio of ``Σ (Xβ)²`` to ``Σ (Xβ - mean)²`` for which the sums
#: give the variance to ~1e-12 (the difference loses the ratio's digits).
_MAX_CANCELLATION = 1e4


def _fixed_variance_from_sums(design, beta, fixed):
    """Sample variance of the fixed-effect predictions from ``XᵀX``, or
    None where the sums cannot give it to ~1e-12.

    ``fixed`` marks the columns other than the intercept, which adds
    nothing to the variance: with it, ``Σ (Xβ)² - n mean²`` would cancel
    the square of a response far from 0 (y = 1e6 + ...: 7 digits lost).
    A feature far from 0 relative to its spread still cancels; past
    :data:`_MAX_CANCELLATION` the caller takes the variance over the rows.
    """
    n, q, p = design.n, design.q_rest, design.p
    if n < 2 or not fixed.any():
        return 0.0
    gram = design.B[q : q + p, q : q + p][np.ix_(fixed, fixed)]
    b = beta[fixed]
    squares = float(b @ gram @ b)
    mean = float(design.x_means[fixed] @ b)
    centred = squares - n * mean * mean
    if centred * _MAX_CANCELLATION < squares:
        return None
    return centred / (n - 1)


def _term_gram(design, t):
    """``ZᵀZ`` of term t summed over its levels (k x k)."""
    if t == 0:
        return design.D1.sum(axis=0)
    term, offset = design.terms[t], design.offsets[t - 1]
    size = term.m * term.k
    block = design.B[offset : offset + size, offset : offset + size]
    blocks = block.reshape(term.m, term.k, term.m, term.k)
    levels = np.arange(term.m)
    return blocks[levels, :, levels, :].sum(axis=0)


def _singular(model, tolerance):
    return is_singular(model.theta_, model._criterion.theta_lower, tolerance)


def r2_nakagawa(model, tolerance=SINGULAR_TOL):
    """Marginal and conditional R² (Nakagawa and Schielzeth; Johnson).

    Parameters
    ----------
    model : MixedLMRegressor
        Fitted.
    tolerance : float, default=1e-5
        A relative covariance factor's diagonal element below this makes
        the fit singular (performance's ``tolerance``).

    Returns
    -------
    dict
        ``marginal`` and ``conditional``.
    """
    return r2_from_parts(variance_parts(model), _singular(model, tolerance))


def r2_from_parts(parts, singular):
    """Marginal and conditional R² from the variance parts (LMM and GLMM).

    ``singular`` leaves the random part out, with performance's warning.
    """
    vf, vr, ve = parts["fixed"], parts["random"], parts["residual"]
    if singular:
        warnings.warn(
            _SINGULAR_WARNING + " Returned R2 does not account for random effects.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return {"marginal": vf / (vf + ve), "conditional": float("nan")}
    total = vf + vr + ve
    return {"marginal": vf / total, "conditional": (vf + vr) / total}


def icc(model, tolerance=SINGULAR_TOL):
    """Adjusted and conditional intraclass correlation (performance::icc).

    Parameters
    ----------
    model : MixedLMRegressor
        Fitted.
    tolerance : float, default=1e-5
        See :func:`r2_nakagawa`.

    Returns
    -------
    dict
        ``adjusted`` (random / (random + residual)) and ``conditional``
        (random / (fixed + random + residual)).
    """
    return icc_from_parts(variance_parts(model), _singular(model, tolerance))


def icc_from_parts(parts, singular):
    """Adjusted and conditional ICC from the variance parts (LMM and GLMM)."""
    vf, vr, ve = parts["fixed"], parts["random"], parts["residual"]
    if singular:
        warnings.warn(_SINGULAR_WARNING, UserWarning, stacklevel=user_stacklevel())
        return {"adjusted": float("nan"), "conditional": float("nan")}
    return {"adjusted": vr / (vr + ve), "conditional": vr / (vf + vr + ve)}
