"""A regression table in the style of sjPlot's ``tab_model``.

``report(m1, m2, ...)`` puts one or several fitted models side by side:
for each, the fixed effects with their confidence interval and p-value,
then (mixed models) the random-effects part -- σ², τ00 (random-intercept
variance per grouping factor), τ11 (random-slope variances), ρ01
(intercept-slope correlations), the ICC and the number of groups -- and
the number of observations and R² (Nakagawa's marginal / conditional for
mixed models, R² / adjusted R² for lm fits).

GLMMs (:class:`~skmixed.MixedGLMRegressor`,
:class:`~skmixed.MixedLogisticRegression`) are shown as ``tab_model`` shows
a glmer: for the logit link the fixed effects as odds ratios and for the
log link as incidence rate ratios (exp of the estimate and of its Wald
interval, with the z-test p-value), σ² the distribution-specific variance
(π²/3 for the logit link; see :mod:`skmixed.glmm.reporting`), and
Nakagawa's R² on the latent scale.

The result prints as text, converts to a DataFrame (``to_frame()``) and
shows as an HTML table in a notebook.
"""

import html
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.utils.validation import check_is_fitted

__all__ = ["ModelReport", "report"]

_DASH = "\u2013"
_DDF = ("satterthwaite", "kenward-roger", "residual")


def _is_glmm(model):
    return hasattr(model, "family_") and hasattr(model, "loglik_absolute_")


def _is_mixed(model):
    """A MixedLMRegressor (GLMMs are told apart by :func:`_is_glmm`)."""
    return (
        hasattr(model, "random_effects")
        and hasattr(model, "theta_")
        and not _is_glmm(model)
    )


#: sjPlot's column label and transformation of a GLMM's estimates, by link.
_GLMM_SCALES = {"logit": "Odds Ratios", "log": "Incidence Rate Ratios"}


def _glmm_label(model, exponentiate):
    exp = model.link_ in _GLMM_SCALES if exponentiate is None else exponentiate
    return (
        _GLMM_SCALES.get(model.link_, "exp(Estimates)") if exp else "Estimates"
    ), exp


def _glmm_fixed(model, level, exp):
    """Estimates and Wald intervals (z), exponentiated for OR / IRR."""
    from skmixed.glmm.reporting import fixed_effects_table

    table = fixed_effects_table(model)
    z = stats.norm.ppf(0.5 + level / 2.0)
    est = table["estimate"].to_numpy()
    half = z * table["std_error"].to_numpy()
    lower, upper = est - half, est + half
    if exp:
        est, lower, upper = np.exp(est), np.exp(lower), np.exp(upper)
    return pd.DataFrame(
        {
            "estimate": est,
            "ci_lower": lower,
            "ci_upper": upper,
            "p_value": table["p_value"].to_numpy(),
        },
        index=table.index,
    )


def _glmm_random_rows(model):
    """σ² (distribution-specific), τ, ρ, ICC, N, R² of a GLMM (tab_model's)."""
    from skmixed.glmm.reporting import random_effects_frame, variance_parts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = variance_parts(model)
    taus, rhos = [], []
    frame = random_effects_frame(model)
    for _, term in frame.groupby("_term", sort=True):
        variances = term["variance"].to_numpy()

        def correlation(a, i0, term=term):
            return term[f"corr_{i0 + 1}"].iloc[a] if a > i0 else np.nan

        t, r = _term_rows(
            term["_factor"].iloc[0], list(term["name"]), variances, correlation
        )
        taus += t
        rhos += r
    return [("σ²", parts["residual"], "variance")] + taus + rhos + _closing_rows(model)


def _fmt(x, digits):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    return f"{x:.{digits}f}"


def _fmt_p(p, digits):
    if p is None or math.isnan(p):
        return "NA"
    floor = 10.0**-digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def _mixed_fixed(model, level, ddf):
    from skmixed.mixed.results import fixed_effects_table

    if ddf == "residual":
        # sjPlot's default: t with the residual df n - npar of the lmer fit.
        design = model._criterion.design
        df = design.n - design.p - model._criterion.n_theta - 1
        table = fixed_effects_table(model, "satterthwaite").copy()
        table["df"] = float(df)
        table["p_value"] = 2 * stats.t.sf(np.abs(table["t_value"]), df)
    else:
        table = fixed_effects_table(model, ddf)
    q = stats.t.ppf(0.5 + level / 2.0, table["df"].to_numpy())
    half = q * table["std_error"].to_numpy()
    est = table["estimate"].to_numpy()
    return pd.DataFrame(
        {
            "estimate": est,
            "ci_lower": est - half,
            "ci_upper": est + half,
            "p_value": table["p_value"].to_numpy(),
        },
        index=table.index,
    )


def _lm_fixed(model, level):
    coefs = model.summary().coefficients
    ci = model.conf_int(level)
    return pd.DataFrame(
        {
            "estimate": coefs["estimate"].to_numpy(),
            "ci_lower": ci["lower"].to_numpy(),
            "ci_upper": ci["upper"].to_numpy(),
            "p_value": coefs["p_value"].to_numpy(),
        },
        index=pd.Index(coefs.index, name="term"),
    )


def _term_rows(group, names, variances, correlation):
    """tab_model's τ rows and ρ rows of one random-effects term.

    ``variances[a]`` is column a's variance; ``correlation(a, i0)`` the
    correlation of column a with the intercept's column i0.
    """
    taus = [
        (f"τ00 {group}", v, "variance")
        if name == "(Intercept)"
        else (f"τ11 {group}.{name}", v, "variance")
        for name, v in zip(names, variances, strict=True)
    ]
    rhos = []
    slopes = [n for n in names if n != "(Intercept)"]
    if "(Intercept)" in names:
        i0 = names.index("(Intercept)")
        for name in slopes:
            label = f"ρ01 {group}" if len(slopes) == 1 else f"ρ01 {group}.{name}"
            rhos.append((label, correlation(names.index(name), i0), "correlation"))
    return taus, rhos


def _closing_rows(model):
    """ICC, N per factor, observations and R², the rows every mixed model ends with."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        icc = model.icc()["adjusted"]
        r2 = model.r2_nakagawa()
    return [
        ("ICC", icc, "ratio"),
        *[(f"N {f}", n, "count") for f, n in model.n_groups_.items()],
        ("Observations", model.nobs_, "count"),
        ("Marginal R² / Conditional R²", (r2["marginal"], r2["conditional"]), "r2"),
    ]


def _random_rows(model):
    """(label, value, kind) rows of the random-effects part of a mixed model."""
    from skmixed.mixed.results import term_correlations

    criterion = model._criterion
    sigma2 = model.sigma_**2
    taus, rhos = [], []
    lambdas = criterion.lambdas(model.theta_)
    for term, lam in zip(criterion.design.terms, lambdas, strict=True):
        cov = sigma2 * (lam @ lam.T)

        corr = term_correlations(term, cov, math.sqrt(sigma2))

        def correlation(a, i0, corr=corr):
            return float(corr[a, i0])

        t, r = _term_rows(term.factor, list(term.names), np.diag(cov), correlation)
        taus += t
        rhos += r
    return [("σ²", sigma2, "variance")] + taus + rhos + _closing_rows(model)


def _lm_rows(model):
    return [
        ("Observations", model.nobs_, "count"),
        ("R² / R² adjusted", (model.rsquared_, model.rsquared_adj_), "r2"),
    ]


class ModelReport:
    """Side-by-side table of fitted models (see :func:`report`).

    Attributes
    ----------
    names : list of str
        Column label of each model.
    labels : list of str
        Heading of each model's estimates (``"Estimates"``, or for GLMMs
        ``"Odds Ratios"`` / ``"Incidence Rate Ratios"``).
    responses : list of str
    coefficients : pandas.DataFrame
        Long format: ``model, term, estimate, ci_lower, ci_upper, p_value``.
    statistics : pandas.DataFrame
        Rows = statistic (σ², τ00 ..., Observations, R²), columns = models;
        a pair of R² is split into two rows.
    """

    def __init__(
        self, names, responses, fixed, extra, digits, digits_p, level, labels=None
    ):
        self.names = names
        self.labels = list(labels) if labels else ["Estimates"] * len(names)
        self.responses = responses
        self._fixed = fixed
        self._extra = extra
        self.digits, self.digits_p, self.level = digits, digits_p, level
        frames = [
            f.assign(model=n).reset_index() for n, f in zip(names, fixed, strict=True)
        ]
        long = pd.concat(frames, ignore_index=True)
        long = long.rename(columns={long.columns[0]: "term"})
        self.coefficients = long[
            ["model", "term", "estimate", "ci_lower", "ci_upper", "p_value"]
        ]
        self.statistics = self._statistics_frame()

    def _statistics_frame(self):
        data = {}
        labels = []
        for name, rows in zip(self.names, self._extra, strict=True):
            for label, value, kind in rows:
                if kind == "r2":
                    parts = label.split(" / ")
                    for part, v in zip(parts, value, strict=True):
                        data.setdefault(part, {})[name] = v
                        if part not in labels:
                            labels.append(part)
                else:
                    data.setdefault(label, {})[name] = value
                    if label not in labels:
                        labels.append(label)
        return pd.DataFrame(
            [[data[lab].get(n, np.nan) for n in self.names] for lab in labels],
            index=pd.Index(labels, dtype=object),
            columns=pd.Index(self.names, dtype=object),
        )

    # -- cells -------------------------------------------------------------
    def _terms(self):
        terms = []
        for f in self._fixed:
            for t in f.index:
                if t not in terms:
                    terms.append(t)
        return terms

    def _stat_labels(self):
        """Random-effects rows, then counts and R², each kind in sjPlot's order."""
        labels = []
        for rows in self._extra:
            for label, _, _ in rows:
                if label not in labels:
                    labels.append(label)
        order = ("σ²", "τ00", "τ11", "ρ01", "ICC", "N ", "Observations")

        def rank(label):
            for k, prefix in enumerate(order):
                if label.startswith(prefix):
                    return k
            return len(order)

        labels.sort(key=rank)  # stable: first-seen order within a kind
        head = [lab for lab in labels if rank(lab) < order.index("N ")]
        return head, [lab for lab in labels if lab not in head]

    def _value_text(self, value, kind):
        d = self.digits
        if kind == "count":
            return str(int(value))
        if kind == "r2":
            return " / ".join(_fmt(v, 3) for v in value)
        return _fmt(float(value), d)

    def _cells(self):
        """(terms, fixed cells per model, stat labels, stat cells per model)."""
        terms = self._terms()
        fixed_cells = []
        for f in self._fixed:
            cells = {}
            for term, row in f.iterrows():
                ci = (
                    f"{_fmt(row.ci_lower, self.digits)} {_DASH} "
                    f"{_fmt(row.ci_upper, self.digits)}"
                )
                cells[term] = (
                    _fmt(row.estimate, self.digits),
                    ci,
                    _fmt_p(row.p_value, self.digits_p),
                )
            fixed_cells.append(cells)
        head, tail = self._stat_labels()
        stat_cells = []
        for rows in self._extra:
            stat_cells.append(
                {label: self._value_text(v, kind) for label, v, kind in rows}
            )
        return terms, fixed_cells, head, tail, stat_cells

    # -- outputs -----------------------------------------------------------
    def to_frame(self):
        """The table as printed: strings, columns (model, Estimates/CI/p).

        Returns
        -------
        pandas.DataFrame
        """
        terms, fixed_cells, head, tail, stat_cells = self._cells()
        columns = pd.MultiIndex.from_tuples(
            [
                (n, c)
                for n, label in zip(self.names, self.labels, strict=True)
                for c in (label, "CI", "p")
            ]
        )
        rows, index = [], []
        for term in terms:
            row = []
            for cells in fixed_cells:
                row += list(cells.get(term, ("", "", "")))
            rows.append(row)
            index.append(term)
        for label in head + tail:
            row = []
            for cells in stat_cells:
                row += [cells.get(label, ""), "", ""]
            rows.append(row)
            index.append(label)
        return pd.DataFrame(rows, index=pd.Index(index, dtype=object), columns=columns)

    def __str__(self):
        terms, fixed_cells, head, tail, stat_cells = self._cells()
        labels = ["Predictors", *terms, "Random Effects", *head, *tail]
        left = max(len(s) for s in labels)
        blocks = []  # per model: lines for header, subheader, terms, stats
        for m, name in enumerate(self.names):
            est = [fixed_cells[m].get(t, ("", "", ""))[0] for t in terms]
            ci = [fixed_cells[m].get(t, ("", "", ""))[1] for t in terms]
            pv = [fixed_cells[m].get(t, ("", "", ""))[2] for t in terms]
            label = self.labels[m]
            w_est = max(len(s) for s in [label, *est])
            w_ci = max(len(s) for s in ["CI", *ci])
            w_p = max(len(s) for s in ["p", *pv])
            stats_text = [stat_cells[m].get(lab, "") for lab in head + tail]
            width = w_est + w_ci + w_p + 4
            width = max(width, len(name), *(len(s) for s in stats_text))
            w_ci += width - (w_est + w_ci + w_p + 4)
            sub = f"{label:>{w_est}}  {'CI':^{w_ci}}  {'p':>{w_p}}"
            body = [
                f"{e:>{w_est}}  {c:^{w_ci}}  {p:>{w_p}}"
                for e, c, p in zip(est, ci, pv, strict=True)
            ]
            stat_lines = [s.rjust(w_est) for s in stats_text]
            blocks.append((name.center(width), sub, body, stat_lines, width))
        sep = "   "
        header = " " * left + sep + sep.join(b[0] for b in blocks)
        sub = "Predictors".ljust(left) + sep + sep.join(b[1] for b in blocks)
        rule = "-" * len(sub)
        lines = [header, sub, rule]
        for i, term in enumerate(terms):
            lines.append(
                term.ljust(left) + sep + sep.join(b[2][i] for b in blocks).rstrip()
            )
        if head or tail:
            lines.append(rule)
        if head:
            lines.append("Random Effects")
        for i, label in enumerate(head + tail):
            cells = sep.join(b[3][i].ljust(b[4]) for b in blocks)
            lines.append((label.ljust(left) + sep + cells).rstrip())
        lines.append(rule)
        return "\n".join(lines)

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        terms, fixed_cells, head, tail, stat_cells = self._cells()
        esc = html.escape
        cell = 'style="padding:0.2em 0.6em;text-align:{}"'
        out = ["<table style='border-collapse:collapse'>", "<thead><tr><th></th>"]
        for name in self.names:
            out.append(
                f"<th colspan='3' style='border-bottom:1px solid'>{esc(name)}</th>"
            )
        out.append("</tr><tr><th style='text-align:left'>Predictors</th>")
        for label in self.labels:
            out.append(f"<th>{esc(label)}</th><th>CI</th><th>p</th>")
        out.append("</tr></thead><tbody>")
        for term in terms:
            out.append(f"<tr><td {cell.format('left')}>{esc(term)}</td>")
            for cells in fixed_cells:
                e, c, p = cells.get(term, ("", "", ""))
                bold = " font-weight:bold" if p.startswith("<") else ""
                out.append(
                    f"<td {cell.format('right')}>{esc(e)}</td>"
                    f"<td {cell.format('center')}>{esc(c)}</td>"
                    f'<td style="padding:0.2em 0.6em;text-align:right;{bold}">'
                    f"{esc(p)}</td>"
                )
            out.append("</tr>")
        if head:
            span = 1 + 3 * len(self.names)
            out.append(
                f"<tr><td colspan='{span}' style='border-top:1px solid;"
                "font-weight:bold'>Random Effects</td></tr>"
            )
        for label in head + tail:
            out.append(f"<tr><td {cell.format('left')}>{esc(label)}</td>")
            for cells in stat_cells:
                out.append(
                    f"<td colspan='3' {cell.format('left')}>"
                    f"{esc(cells.get(label, ''))}</td>"
                )
            out.append("</tr>")
        out.append("</tbody></table>")
        return "".join(out)


def report(
    *models,
    names=None,
    level=0.95,
    ddf="satterthwaite",
    digits=2,
    digits_p=3,
    exponentiate=None,
):
    """A model table like sjPlot's ``tab_model``, for one or several models.

    Parameters
    ----------
    *models : fitted estimators
        ``MixedLMRegressor``, ``MixedGLMRegressor``,
        ``MixedLogisticRegression``, ``PooledRegressor`` or
        ``FixedEffectsRegressor``.
    names : list of str, optional
        Column labels (default: each model's response name, numbered when
        they repeat).
    level : float, default=0.95
        Level of the confidence intervals.
    ddf : {"satterthwaite", "kenward-roger", "residual"}, default="satterthwaite"
        Degrees of freedom of the mixed models' t-based intervals and
        p-values: lmerTest's methods, or sjPlot's default ``"residual"``
        (``n`` minus the number of parameters). lm fits use their residual
        df.
    digits : int, default=2
        Decimals of estimates, intervals and variance components.
    digits_p : int, default=3
        Decimals of p-values (smaller ones print as ``<0.001``).
    exponentiate : bool or None, default=None
        GLMMs: show exp of the estimates and intervals (odds ratios,
        incidence rate ratios). None does as sjPlot: for the logit and log
        links. GLMM intervals are Wald intervals with normal quantiles and
        the p-values Wald z tests, as lme4 and sjPlot compute them.

    Returns
    -------
    ModelReport
        Prints as text; ``.to_frame()``, ``.coefficients``,
        ``.statistics``; HTML in a notebook.

    Examples
    --------
    >>> import skmixed
    >>> from skmixed import MixedLMRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> m = MixedLMRegressor("(Days | Subject)").fit(df[["Days", "Subject"]],
    ...                                               df["Reaction"])
    >>> print(skmixed.report(m))  # doctest: +NORMALIZE_WHITESPACE
                                                Reaction
    Predictors                     Estimates        CI              p
    -----------------------------------------------------------------
    (Intercept)                       251.41  237.01 – 265.80  <0.001
    Days                               10.47   7.21 – 13.73    <0.001
    -----------------------------------------------------------------
    Random Effects
    σ²                                654.94
    τ00 Subject                       612.09
    τ11 Subject.Days                   35.07
    ρ01 Subject                         0.07
    ICC                                 0.72
    N Subject                             18
    Observations                         180
    Marginal R² / Conditional R²   0.279 / 0.799
    -----------------------------------------------------------------
    """
    if not models:
        raise ValueError("report needs at least one fitted model.")
    key = str(ddf).lower().replace("_", "-")
    key = {"kr": "kenward-roger"}.get(key, key)
    if key not in _DDF:
        raise ValueError(f"ddf must be one of {_DDF}; got {ddf!r}.")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1; got {level!r}.")
    fixed, extra, responses, labels = [], [], [], []
    for model in models:
        check_is_fitted(model)
        responses.append(str(getattr(model, "response_name_", None) or "y"))
        labels.append("Estimates")
        if _is_glmm(model):
            from skmixed.glmm.reporting import require_random

            require_random(model)
            labels[-1], exp = _glmm_label(model, exponentiate)
            fixed.append(_glmm_fixed(model, level, exp))
            extra.append(_glmm_random_rows(model))
            continue
        if _is_mixed(model) and getattr(model, "_criterion", None) is None:
            raise ValueError(
                f"report: this {type(model).__name__} was fitted without "
                "grouping factors (see the GroupsMissingWarning at fit), so it "
                "has no random effects to report. Refit it with the grouping "
                "columns, or report a PooledRegressor for the pooled model."
            )
        if _is_mixed(model):
            fixed.append(_mixed_fixed(model, level, key))
            extra.append(_random_rows(model))
        elif hasattr(model, "conf_int") and hasattr(model, "rsquared_"):
            fixed.append(_lm_fixed(model, level))
            extra.append(_lm_rows(model))
        else:
            raise TypeError(
                f"report takes fitted MixedLMRegressor, MixedGLMRegressor, "
                f"MixedLogisticRegression, PooledRegressor or "
                f"FixedEffectsRegressor models; got {type(model).__name__}."
            )
    if names is None:
        counts = {r: responses.count(r) for r in responses}
        names = [
            r if counts[r] == 1 else f"{r} ({i + 1})" for i, r in enumerate(responses)
        ]
    names = [str(n) for n in names]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError("names must give one distinct label per model.")
    return ModelReport(
        names, responses, fixed, extra, digits, digits_p, level, labels=labels
    )
