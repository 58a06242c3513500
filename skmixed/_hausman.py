"""Hausman's test: fixed or random group effects?

A random-intercept model is efficient when the group effects are
uncorrelated with the features, and inconsistent when they are not; the
fixed-effects (within) model is consistent either way. Hausman (1978)
compares the two estimates of the slopes:

    H = (b_FE − b_RE)ᵀ (V_FE − V_RE)⁻¹ (b_FE − b_RE)  ~  χ²(k)

under the null that both are consistent. A large H (small p-value) says
the random-effects slopes are biased: prefer the fixed-effects model.
In finite samples ``V_FE − V_RE`` need not be positive definite; the
statistic then uses its generalised inverse (on its positive part, with
``k`` its rank), and the result carries a note, as Stata's ``hausman``
does.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils.validation import check_is_fitted

from skmixed._base import fitted_weights

__all__ = ["HausmanResult", "hausman"]

# Relative size below which an eigenvalue of V_FE - V_RE counts as zero.
_RANK_TOL = 1e-8


@dataclass
class HausmanResult:
    """Result of :func:`hausman`.

    Attributes
    ----------
    statistic : float
        The χ² statistic.
    df : int
        Its degrees of freedom (the rank of ``V_FE − V_RE``).
    p_value : float
    coefficients : pandas.DataFrame
        Per slope: ``fixed``, ``random``, ``difference`` and ``std_error``
        (square root of the diagonal of ``V_FE − V_RE``, NaN where negative).
    notes : list of str
    """

    statistic: float
    df: int
    p_value: float
    coefficients: pd.DataFrame
    notes: list = field(default_factory=list)

    def __str__(self):
        from skmixed._format import format_number, format_pval

        lines = [
            "",
            "\tHausman Test",
            "",
            f"data:  {', '.join(self.coefficients.index)}",
            f"chisq = {format_number(self.statistic, 5)}, df = {self.df}, "
            f"p-value = {format_pval([self.p_value], digits=4)[0]}",
            "alternative hypothesis: one model is inconsistent",
        ]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines + [""])

    def __repr__(self):
        return str(self)


def _slopes(fixed_model, mixed_model):
    """Names of the slopes the two models share (no intercept, no dummies)."""
    fe = list(fixed_model.params_.index)
    re = [n for n in mixed_model.fixed_effects_.index if n != "(Intercept)"]
    names = [n for n in re if n in fe]
    if not names:
        raise ValueError(
            f"The models share no slopes to compare (fixed effects: {fe}; "
            f"mixed model: {re})."
        )
    return names


def hausman(fixed_model, mixed_model):
    """Hausman test comparing fixed-effects and random-intercept slopes.

    Parameters
    ----------
    fixed_model : FixedEffectsRegressor
        Fitted with one intercept per group (and no group slopes).
    mixed_model : MixedLMRegressor
        Fitted to the same data with a random intercept for the same groups.

    Returns
    -------
    HausmanResult
        ``statistic``, ``df``, ``p_value``, the compared ``coefficients``
        and ``notes``; ``str()`` prints it as R's ``htest``.

    Examples
    --------
    >>> import numpy as np
    >>> import skmixed
    >>> from skmixed import FixedEffectsRegressor, MixedLMRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> df = df[df["Days"] <= df["Subject"].cat.codes % 4 + 6]  # unbalanced
    >>> X, y = df[["Days", "Subject"]], df["Reaction"]
    >>> fe = FixedEffectsRegressor(group="Subject").fit(X, y)
    >>> re = MixedLMRegressor("(1 | Subject)").fit(X, y)
    >>> result = skmixed.hausman(fe, re)
    >>> result.df, round(result.statistic, 3), round(result.p_value, 3)
    (1, 0.273, 0.602)
    """
    check_is_fitted(fixed_model)
    check_is_fitted(mixed_model)
    if not hasattr(fixed_model, "params_") or not hasattr(mixed_model, "theta_"):
        raise TypeError(
            "hausman(fixed_model, mixed_model) takes a fitted "
            "FixedEffectsRegressor and a fitted MixedLMRegressor."
        )
    notes = []
    if getattr(fixed_model, "group_slopes", None):
        notes.append("the fixed-effects model has group slopes.")
    criterion = getattr(mixed_model, "_criterion", None)
    if criterion is None:
        raise ValueError("The mixed model was fitted without random effects.")
    if any(t.k > 1 or t.Z is not None for t in criterion.design.terms):
        notes.append(
            "the mixed model has random slopes; the classical test compares "
            "a random-intercept model."
        )
    if fixed_model.nobs_ != mixed_model.nobs_:
        raise ValueError(
            f"The models were fitted to different numbers of rows "
            f"({fixed_model.nobs_} and {mixed_model.nobs_})."
        )
    _check_same_weights(fixed_model, mixed_model)
    names = _slopes(fixed_model, mixed_model)
    b_fe = fixed_model.params_[names].to_numpy(dtype=float)
    b_re = mixed_model.fixed_effects_[names].to_numpy(dtype=float)
    v_fe = fixed_model.vcov_.loc[names, names].to_numpy(dtype=float)
    v_re = mixed_model.vcov_.loc[names, names].to_numpy(dtype=float)
    if not np.all(np.isfinite(b_fe)):
        raise ValueError("A shared slope is aliased in the fixed-effects model.")
    diff = b_fe - b_re
    v_diff = v_fe - v_re
    eigval, eigvec = np.linalg.eigh((v_diff + v_diff.T) / 2.0)
    scale = max(np.max(np.abs(eigval)), np.finfo(float).tiny)
    keep = eigval > _RANK_TOL * scale
    if not keep.all():
        notes.append(
            "V_FE - V_RE is not positive definite; the statistic uses its "
            "generalised inverse on the positive part "
            f"(df = rank = {int(keep.sum())})."
        )
    projected = eigvec[:, keep].T @ diff
    statistic = float(np.sum(projected**2 / eigval[keep]))
    df = int(keep.sum())
    p_value = float(stats.chi2.sf(statistic, df)) if df else float("nan")
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.where(np.diag(v_diff) >= 0, np.diag(v_diff), np.nan))
    table = pd.DataFrame(
        {"fixed": b_fe, "random": b_re, "difference": diff, "std_error": se},
        index=pd.Index(names, dtype=object),
    )
    return HausmanResult(statistic, df, p_value, table, notes)


def _check_same_weights(fixed_model, mixed_model):
    """Both models must be fitted with the same sample_weight (or none)."""
    w_fe, w_re = fitted_weights(fixed_model), fitted_weights(mixed_model)
    if w_fe is None and w_re is None:
        return
    if w_fe is None or w_re is None or not np.array_equal(w_fe, w_re):
        raise ValueError(
            "The models were fitted with different sample_weight (one weighted, "
            "or other weights): the test compares two estimators of the same "
            "weighted model. Fit both with the same sample_weight."
        )
