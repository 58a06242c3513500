"""R-style summaries: ``str()`` is the text R prints, tables are DataFrames.

A summary is a list of *blocks*: lines of text, a :class:`StringTable`
(cells already formatted) or a :class:`CoefTable` (numbers formatted by R's
``printCoefmat`` rules). :class:`Summary` renders the blocks as text (``str``,
``repr``) or HTML (``_repr_html_``, for notebooks); subclasses only say what
the blocks are. :class:`LMSummary` is R's ``summary.lm``;
:class:`MixedLMSummary` is lmerTest's ``summary(lmer(...))``;
:class:`GLMMSummary` is lme4's ``summary(glmer(...))``.
"""

import html

import numpy as np
import pandas as pd

from skmixed._format import (
    SIGNIF_LEGEND,
    coef_table_strings,
    format_c,
    format_number,
    format_pval,
    format_real,
    matrix_lines,
    named_vector_lines,
    r_round,
    r_signif,
    zapsmall,
)

__all__ = [
    "CoefTable",
    "GLMMSummary",
    "LMSummary",
    "MixedLMSummary",
    "StringTable",
    "Summary",
]


class StringTable:
    """A table of preformatted cells, printed as R prints a character matrix.

    Parameters
    ----------
    cells : list of list of str
    row_names, col_names : list of str
    right : bool, default=True
        Right-align cells (R's ``print(..., right=TRUE)``).
    """

    def __init__(self, cells, row_names, col_names, right=True):
        self.cells = cells
        self.row_names = [str(r) for r in row_names]
        self.col_names = [str(c) for c in col_names]
        self.right = right

    def lines(self):
        """The table as lines of text."""
        return matrix_lines(
            self.cells, self.row_names, self.col_names, right=self.right
        )

    def html(self):
        """The table as an HTML ``<table>``."""
        align = "right" if self.right else "left"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.col_names)
        rows = []
        for name, row in zip(self.row_names, self.cells, strict=True):
            cells = "".join(
                f'<td style="text-align:{align};font-family:monospace">'
                f"{html.escape(c.strip())}</td>"
                for c in row
            )
            rows.append(
                f"<tr><th style='text-align:left'>{html.escape(name)}</th>{cells}</tr>"
            )
        return (
            f"<table><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


class CoefTable:
    """A coefficient table formatted as R's ``printCoefmat`` formats it.

    Parameters
    ----------
    values : pandas.DataFrame
        Numbers, index = terms, columns as R labels them (``"Estimate"``,
        ``"Std. Error"``, [``"df"``,] ``"t value"``, ``"Pr(>|t|)"``); the
        p-value, if any, last. NaN prints as ``NA`` (an aliased coefficient).
    cs_ind, tst_ind : tuple of int
        Columns of estimates and standard errors / of test statistics.
    has_pvalue : bool, default=True
    digits : int, default=4
    stars : bool, default=True
    """

    def __init__(
        self, values, cs_ind=(0, 1), tst_ind=(2,), has_pvalue=True, digits=4, stars=True
    ):
        self.values = values
        self.cs_ind, self.tst_ind = cs_ind, tst_ind
        self.has_pvalue, self.digits, self.stars = has_pvalue, digits, stars

    def strings(self):
        """``(StringTable, show_legend)`` with R's formatting applied."""
        cells, legend = coef_table_strings(
            self.values.to_numpy(dtype=float),
            digits=self.digits,
            cs_ind=self.cs_ind,
            tst_ind=self.tst_ind,
            has_pvalue=self.has_pvalue,
            stars=self.stars,
        )
        columns = list(self.values.columns) + ([""] if legend else [])
        return StringTable(cells, list(self.values.index), columns), legend

    def lines(self):
        """The table (and the stars legend) as lines of text."""
        table, legend = self.strings()
        return table.lines() + (["---", SIGNIF_LEGEND] if legend else [])

    def html(self):
        """The table (and the stars legend) as HTML."""
        table, legend = self.strings()
        note = f"<p><small>{html.escape(SIGNIF_LEGEND)}</small></p>" if legend else ""
        return table.html() + note


class Summary:
    """Base class of the summaries: text for ``str``, HTML for notebooks.

    Subclasses implement :meth:`blocks`, returning a list whose items are a
    ``str`` (one or more lines of text), a :class:`StringTable` or a
    :class:`CoefTable`. ``.coefficients`` is the main table as a DataFrame.
    """

    #: The main table (numbers), set by subclasses.
    coefficients = None

    def blocks(self):
        """The content, in printing order."""
        raise NotImplementedError

    def __str__(self):
        lines = []
        for block in self.blocks():
            lines.extend(block.lines() if hasattr(block, "lines") else [block])
        return "\n".join(lines)

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        parts, text = [], []

        def flush():
            if text:
                body = html.escape("\n".join(text)).strip("\n")
                if body:
                    parts.append(f"<pre>{body}</pre>")
                text.clear()

        for block in self.blocks():
            if hasattr(block, "html"):
                flush()
                parts.append(block.html())
            else:
                text.append(block)
        flush()
        return "<div>" + "".join(parts) + "</div>"


class ResidualQuantiles:
    """Min, 1Q, Median, 3Q and Max of residuals that are not in memory.

    A fit from Dask partitions computes them exactly by passes over the rows
    (``skmixed._dask_predict.quantiles``); the summaries print them in place of the
    quantiles of the residuals themselves.
    """

    def __init__(self, values):
        self.values = np.asarray(values, dtype=float)


def _five_quantiles(residuals):
    """Type 7 quantiles (R's and numpy's default) at 0, 1/4, 1/2, 3/4, 1."""
    if isinstance(residuals, ResidualQuantiles):
        return residuals.values
    return np.quantile(np.asarray(residuals, dtype=float), [0, 0.25, 0.5, 0.75, 1])


def quantile_lines(residuals, digits=4):
    """Min, 1Q, Median, 3Q, Max of residuals, printed as R prints them.

    The residuals section of ``summary.lm`` and the "Scaled residuals" of
    lme4's summary (both zap the quantiles to ``digits + 1`` digits, then
    print them with ``digits``).

    Examples
    --------
    >>> for line in quantile_lines([-2.0, -0.5, 0.1, 0.4, 3.0]):
    ...     print(line)
       Min     1Q Median     3Q    Max
      -2.0   -0.5    0.1    0.4    3.0
    """
    q = _five_quantiles(residuals)
    names = ["Min", "1Q", "Median", "3Q", "Max"]  # type 7 quantiles, as R
    return named_vector_lines(zapsmall(q, digits + 1), names, digits)


def _quantile_block(residuals, df_resid, digits):
    """R's residuals section: quantiles, or every residual when few df."""
    if df_resid > 5:
        return quantile_lines(residuals, digits)
    residuals = np.asarray(residuals, dtype=float)
    if df_resid > 0:
        names = [str(i + 1) for i in range(residuals.size)]
        return named_vector_lines(residuals, names, digits)
    return [f"ALL {residuals.size} residuals are 0: no residual degrees of freedom!"]


class LMSummary(Summary):
    """R's ``summary.lm`` for :class:`~skmixed.PooledRegressor` and
    :class:`~skmixed.FixedEffectsRegressor`.

    ``str(summary)`` is R's layout; ``summary.coefficients`` is a DataFrame
    with columns ``estimate, std_error, t_value, p_value`` (NaN rows for
    aliased coefficients, as R prints ``NA``).

    Parameters
    ----------
    call : list of str
        Lines under ``Call:``.
    coefficients : pandas.DataFrame
        Columns ``estimate, std_error, t_value, p_value``.
    residuals : ndarray or ResidualQuantiles
    df_resid : int
    sigma, rsquared, rsquared_adj : float
    fstatistic : tuple of (float, int, int) or None
        Value, numerator and denominator df; None when the model has only an
        intercept (R then prints no R-squared and no F line).
    notes : list of str, default=()
        Lines printed under the coefficient table (absorbed groups, the kind
        of standard errors).
    n_dropped : int, default=0
        Rows dropped for missing values.
    digits : int, default=4
    weighted : bool, default=False
        The residuals are a weighted fit's ``sqrt(w) * r`` (R then heads them
        "Weighted Residuals:", when the weights are not all equal).

    Examples
    --------
    >>> from skmixed import PooledRegressor
    >>> from skmixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> s = PooledRegressor().fit(df[["Days"]], df["Reaction"]).summary()
    >>> print(s)  # doctest: +NORMALIZE_WHITESPACE
    <BLANKLINE>
    Call:
    PooledRegressor()
    lm(formula = Reaction ~ Days)
    <BLANKLINE>
    Residuals:
         Min       1Q   Median       3Q      Max
    -110.848  -27.483    1.546   26.142  139.953
    <BLANKLINE>
    Coefficients:
                Estimate Std. Error t value Pr(>|t|)
    (Intercept)  251.405      6.610  38.033  < 2e-16 ***
    Days          10.467      1.238   8.454 9.89e-15 ***
    ---
    Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1
    <BLANKLINE>
    Residual standard error: 47.71 on 178 degrees of freedom
    Multiple R-squared:  0.2865,	Adjusted R-squared:  0.2825
    F-statistic: 71.46 on 1 and 178 DF,  p-value: 9.894e-15
    <BLANKLINE>
    >>> s.coefficients.round(3)
                 estimate  std_error  t_value  p_value
    (Intercept)   251.405      6.610   38.033      0.0
    Days           10.467      1.238    8.454      0.0
    """

    def __init__(
        self,
        call,
        coefficients,
        residuals,
        df_resid,
        sigma,
        rsquared,
        rsquared_adj,
        fstatistic,
        notes=(),
        n_dropped=0,
        digits=4,
        weighted=False,
    ):
        self.call = list(call)
        self.coefficients = coefficients
        self.residuals = residuals
        self.weighted = weighted
        self.df_resid = df_resid
        self.sigma = sigma
        self.rsquared, self.rsquared_adj = rsquared, rsquared_adj
        self.fstatistic = fstatistic
        self.notes = list(notes)
        self.n_dropped = n_dropped
        self.digits = digits

    def coef_table(self):
        """The coefficient table as R labels its columns."""
        table = self.coefficients.copy()
        table.columns = ["Estimate", "Std. Error", "t value", "Pr(>|t|)"]
        return CoefTable(table, digits=self.digits)

    def blocks(self):
        """Blocks in ``print.summary.lm`` order."""
        d = self.digits
        residuals = "Weighted Residuals:" if self.weighted else "Residuals:"
        out = ["", "Call:", *self.call, "", residuals]
        out += _quantile_block(self.residuals, self.df_resid, d)
        n_aliased = int(self.coefficients["estimate"].isna().sum())
        if len(self.coefficients) == 0:
            out += ["", "No Coefficients"]
        else:
            head = "Coefficients:"
            if n_aliased:
                head = (
                    f"Coefficients: ({n_aliased} not defined because of singularities)"
                )
            out += ["", head, self.coef_table()]
        out += self.notes
        out += [
            "",
            f"Residual standard error: {format_number(r_signif(self.sigma, d))} on "
            f"{self.df_resid} degrees of freedom",
        ]
        if self.n_dropped:
            out.append(f"  ({self.n_dropped} observations deleted due to missingness)")
        if self.fstatistic is not None:
            value, num_df, den_df = self.fstatistic
            p_value = self.f_pvalue
            out += [
                f"Multiple R-squared:  {format_c(self.rsquared, d)},\t"
                f"Adjusted R-squared:  {format_c(self.rsquared_adj, d)} ",
                f"F-statistic: {format_c(value, d)} on {format_number(num_df)} and "
                f"{format_number(den_df)} DF,  p-value: "
                f"{format_pval([p_value], digits=d)[0]}",
            ]
        out.append("")
        return out

    @property
    def f_pvalue(self):
        """P-value of the F statistic (NaN when there is none)."""
        from scipy import stats

        if self.fstatistic is None:
            return float("nan")
        value, num_df, den_df = self.fstatistic
        return float(stats.f.sf(value, num_df, den_df))


def coefficient_frame(estimate, std_error, statistic, p_value, index):
    """The ``.coefficients`` DataFrame: estimate, std_error, t_value, p_value."""
    return pd.DataFrame(
        {
            "estimate": estimate,
            "std_error": std_error,
            "t_value": statistic,
            "p_value": p_value,
        },
        index=pd.Index(index, dtype=object),
    )


# -- mixed models ----------------------------------------------------------------
def r_abbreviate(name, minlength):
    """R's ``abbreviate(name, minlength)`` (the default "left.kept" method).

    Characters are dropped from the right until ``minlength`` are left: first
    lower-case vowels that end a word, then other lower-case vowels, then
    lower-case letters that end a word, then other lower-case letters, then
    anything; the first character of each word is always kept.

    Examples
    --------
    >>> r_abbreviate("(Intercept)", 6)
    '(Intr)'
    >>> r_abbreviate("Days", 6)
    'Days'
    """
    chars = list(str(name).strip())
    if len(chars) <= minlength:
        return "".join(chars)

    def n_letters():
        return sum(1 for c in chars if not c.isspace())

    def word_start(i):
        return chars[i - 1].isspace()

    def word_end(i):
        return not chars[i - 1].isspace() and (
            i + 1 == len(chars) or chars[i + 1].isspace()
        )

    rules = (
        lambda i: chars[i] in "aeiou" and word_end(i),
        lambda i: chars[i] in "aeiou" and not word_start(i),
        lambda i: chars[i].islower() and word_end(i),
        lambda i: chars[i].islower() and not word_start(i),
        lambda i: not word_start(i) and not chars[i].isspace(),
    )
    for drop in rules:
        for i in range(len(chars) - 1, 0, -1):
            if i < len(chars) and drop(i):
                del chars[i]
            if n_letters() <= minlength:
                return "".join(chars).replace(" ", "")
    return "".join(chars).replace(" ", "")


def variance_table_strings(random_effects, digits=4):
    """lme4's ``formatVC``: the random-effects table as printed.

    Parameters
    ----------
    random_effects : pandas.DataFrame
        One row per component (``group``, ``name``, ``variance``,
        ``std_dev`` and correlation columns ``corr_1, corr_2, ...`` with the
        earlier components of the same term), the residual last.
    digits : int, default=4

    Returns
    -------
    StringTable
    """
    variances = format_real(random_effects["variance"], digits)
    sds = format_real(random_effects["std_dev"], digits)
    corr_cols = [c for c in random_effects.columns if c.startswith("corr_")]
    cells, previous = [], None
    blocks = _corr_blocks(random_effects, corr_cols, max(2, digits - 2))
    for i, row in enumerate(random_effects.itertuples(index=False)):
        group = row.group if row.group != previous or row.group == "Residual" else ""
        if row.group == "Residual":
            name = ""
        else:
            name = row.name
        previous = row.group
        cells.append([group, name, variances[i], sds[i]] + blocks[i])
    columns = ["Groups", "Name", "Variance", "Std.Dev."]
    if corr_cols:
        columns += ["Corr"] + [""] * (len(corr_cols) - 1)
    return StringTable(cells, [""] * len(cells), columns, right=False)


def _corr_blocks(frame, corr_cols, dig):
    """Correlation cells: per term, R's format(round(cor, dig), nsmall=dig)."""
    n = len(frame)
    out = [[""] * len(corr_cols) for _ in range(n)]
    if not corr_cols:
        return out
    term_id = frame["_term"].to_numpy() if "_term" in frame else np.arange(n)
    for term in dict.fromkeys(term_id):
        rows = np.flatnonzero(term_id == term)
        k = len(rows)
        if k < 2:
            continue
        # The whole k x k matrix (1 on the diagonal) is formatted together.
        full = np.eye(k)
        for a in range(1, k):
            for b in range(a):
                full[a, b] = full[b, a] = frame[corr_cols[b]].iloc[rows[a]]
        # an undefined correlation is R's 0/0, printed NaN (not NA)
        values = [r_round(v, dig) for v in full.ravel()]
        texts = format_real(values, 7, na_string="NaN", nsmall=dig)
        texts = np.array(texts).reshape(k, k)
        for a in range(1, k):
            for b in range(a):
                out[rows[a]][b] = texts[a, b]
    return out


class MixedLMSummary(Summary):
    """lmerTest's ``summary(lmer(...))`` for :class:`~skmixed.MixedLMRegressor`.

    ``str(summary)`` is lmerTest's layout; the tables are DataFrames:
    ``.coefficients`` (``estimate, std_error, df, t_value, p_value``),
    ``.random_effects`` (``group, name, variance, std_dev`` and the
    correlations ``corr_1, corr_2, ...`` with the earlier components of the
    same term, the residual last) and ``.correlation`` (of the fixed
    effects).

    Parameters
    ----------
    reml : bool
    ddf : str
        "Satterthwaite" or "Kenward-Roger".
    formula : str
    criteria : dict
        ``REML`` (REML fits), or ``AIC, BIC, logLik, deviance, df.resid``.
    scaled_residuals : ndarray or ResidualQuantiles
        The scaled residuals, or only their quantiles (a Dask fit).
    random_effects : pandas.DataFrame
    nobs : int
    n_groups : dict
    coefficients : pandas.DataFrame
    correlation : pandas.DataFrame
    singular : bool
    notes : list of str, default=()
        Lines printed at the end (warnings of the fit).
    digits : int, default=4
    show_correlation : bool or None, default=None
        Print the correlation of the fixed effects: None does as lme4 (shown
        for at most :attr:`max_correlation` coefficients, otherwise a note
        says why not).
    weights : str, default=None
        Name of the prior weights, printed as lme4's ``Weights:`` line.
    offset : str, default=None
        lme4's ``offset=`` argument, printed as its `` Offset:`` line (an
        ``offset(...)`` term is in the formula instead).
    """

    #: lme4 prints the correlation of the fixed effects up to this many.
    max_correlation = 12

    def __init__(
        self,
        *,
        reml,
        ddf,
        formula,
        criteria,
        scaled_residuals,
        random_effects,
        nobs,
        n_groups,
        coefficients,
        correlation,
        singular,
        notes=(),
        digits=4,
        show_correlation=None,
        weights=None,
        offset=None,
    ):
        self.reml, self.ddf, self.formula = reml, ddf, formula
        self.show_correlation = show_correlation
        self.weights, self.offset = weights, offset
        self.criteria = dict(criteria)
        if not isinstance(scaled_residuals, ResidualQuantiles):
            scaled_residuals = np.asarray(scaled_residuals, dtype=float)
        self.scaled_residuals = scaled_residuals
        self._variance_frame = random_effects
        self.nobs, self.n_groups = nobs, dict(n_groups)
        self.coefficients = coefficients
        self.correlation = correlation
        self.singular = singular
        self.notes = list(notes)
        self.digits = digits

    @property
    def random_effects(self):
        """The variance table: ``group, name, variance, std_dev, corr_1, ...``."""
        frame = self._variance_frame
        return frame.drop(columns=[c for c in frame.columns if c.startswith("_")])

    def _criteria_lines(self):
        if self.reml:
            value = format_number(r_round(self.criteria["REML"], 1))
            return [f"REML criterion at convergence: {value}"]
        names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        texts = format_real([r_round(self.criteria[k], 1) for k in names[:4]])
        texts = [t.strip() for t in texts] + [format_number(self.criteria["df.resid"])]
        texts = [t.rjust(max(len(s) for s in texts)) for t in texts]
        width = max(len(s) for s in texts + names)
        return [
            "".join(n.rjust(width) + " " for n in names),
            "".join(t.rjust(width) + " " for t in texts),
        ]

    def coef_table(self):
        """The fixed-effects table as lmerTest labels its columns."""
        table = self.coefficients.copy()
        table.columns = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
        # printCoefmat rounds the df with the estimates (cs.ind = 1:3).
        return CoefTable(table, cs_ind=(0, 1, 2), tst_ind=(3,), digits=self.digits)

    def _correlation_block(self):
        p = len(self.coefficients)
        show = self.show_correlation
        if p < 2 or show is False:
            return []
        if show is None and p > self.max_correlation:
            # lme4's note, with our calls in place of print(x, correlation=TRUE).
            return [
                "",
                "Correlation matrix not shown by default, as p = "
                f"{p} > {self.max_correlation}.",
                "Use print(m.summary(correlation=True))  or",
                "    m.vcov_        if you need it",
            ]
        names = list(self.coefficients.index)
        values = [r_round(v, 3) for v in self.correlation.to_numpy().ravel()]
        texts = np.array(format_real(values, 7, nsmall=3)).reshape(p, p)
        cells = [
            [texts[i, j] if j < i else "" for j in range(p - 1)] for i in range(1, p)
        ]
        rows = [r_abbreviate(n, 11) for n in names[1:]]
        cols = [r_abbreviate(n, 6) for n in names[:-1]]
        return [
            "",
            "Correlation of Fixed Effects:",
            StringTable(cells, rows, cols, right=False),
        ]

    def _header_lines(self):
        """The title, formula and weights lines."""
        fit = "REML" if self.reml else "maximum likelihood "
        return [
            f"Linear mixed model fit by {fit}. t-tests use {self.ddf}'s method "
            "['lmerModLmerTest']",
            f"Formula: {self.formula}",
            *self._call_lines(),
        ]

    def _call_lines(self):
        """lme4's ``Weights:`` and `` Offset:`` lines, for a fit given them."""
        return [
            *([f"Weights: {self.weights}"] if self.weights else []),
            *([f" Offset: {self.offset}"] if self.offset else []),
        ]

    def blocks(self):
        """Blocks in the order of lme4's ``print.summary.merMod``."""
        d = self.digits
        q = _five_quantiles(self.scaled_residuals)
        groups = "; ".join(f"{k}, {v}" for k, v in self.n_groups.items())
        out = [
            *self._header_lines(),
            "",
            *self._criteria_lines(),
            "",
            "Scaled residuals: ",
            *named_vector_lines(
                zapsmall(q, d + 1), ["Min", "1Q", "Median", "3Q", "Max"], d
            ),
            "",
            "Random effects:",
            variance_table_strings(self._variance_frame, d),
            f"Number of obs: {self.nobs}, groups:  {groups}",
        ]
        if len(self.coefficients):
            out += ["", "Fixed effects:", self.coef_table()]
            out += self._correlation_block()
        else:  # y ~ 0 + (1 | g), or an offset only: lme4's words
            out += ["No fixed effect coefficients"]
        if self.singular:
            out += ["boundary (singular) fit: see help('isSingular')", ""]
        out += self.notes
        return out


class GLMMSummary(MixedLMSummary):
    """lme4's ``summary(glmer(...))`` for the GLMM estimators.

    ``str(summary)`` is lme4's layout (printed at a width that does not wrap
    the title); the tables are DataFrames: ``.coefficients`` (``estimate,
    std_error, z_value, p_value``), ``.random_effects`` (as
    :class:`MixedLMSummary`'s, without the Residual row: binomial and Poisson
    models have no residual scale) and ``.correlation``.

    Parameters
    ----------
    family, link : str
        E.g. ``"binomial"`` and ``"logit"``.
    n_agq : int
        1 for the Laplace approximation, else the number of adaptive
        Gauss-Hermite nodes.
    formula : str
    criteria : dict
        ``AIC, BIC, logLik, deviance, df.resid`` as lme4 prints them
        (``deviance`` is -2 log L, not lme4's ``deviance()``).
    scaled_residuals : ndarray
        Pearson residuals.
    random_effects : pandas.DataFrame
    nobs : int
    n_groups : dict
    coefficients : pandas.DataFrame
    correlation : pandas.DataFrame
    singular : bool
    vcov_note : str
        Where the standard errors come from (printed last; lme4 does not say).
    notes : list of str, default=()
    digits : int, default=4
    show_correlation : bool or None, default=None
    weights : str, default=None
        Name of the prior weights given at fit, printed as lme4's
        ``Weights:`` line (None: no line, as for the trials of
        ``cbind(s, f)``, which lme4 does not print either).
    offset : str, default=None
        glmer's ``offset=`` argument, printed as its `` Offset:`` line.
    """

    def __init__(
        self,
        *,
        family,
        link,
        n_agq,
        formula,
        criteria,
        scaled_residuals,
        random_effects,
        nobs,
        n_groups,
        coefficients,
        correlation,
        singular,
        vcov_note,
        notes=(),
        digits=4,
        show_correlation=None,
        weights=None,
        offset=None,
    ):
        super().__init__(
            weights=weights,
            offset=offset,
            reml=False,
            ddf="",
            formula=formula,
            criteria=criteria,
            scaled_residuals=scaled_residuals,
            random_effects=random_effects,
            nobs=nobs,
            n_groups=n_groups,
            coefficients=coefficients,
            correlation=correlation,
            singular=singular,
            notes=notes,
            digits=digits,
            show_correlation=show_correlation,
        )
        self.family, self.link, self.n_agq = family, link, int(n_agq)
        self.vcov_note = vcov_note

    @property
    def method_title(self):
        """lme4's ``methTitle`` for a glmer fit."""
        if self.n_agq == 1:
            approximation = "Laplace Approximation"
        else:
            approximation = f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.n_agq}"
        return (
            f"Generalized linear mixed model fit by maximum likelihood "
            f"({approximation})"
        )

    def coef_table(self):
        """The fixed-effects table with lme4's z-test column labels."""
        table = self.coefficients.copy()
        table.columns = ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]
        return CoefTable(table, digits=self.digits)

    def _header_lines(self):
        return [
            f"{self.method_title} ['glmerMod']",
            f" Family: {self.family}  ( {self.link} )",
            f"Formula: {self.formula}",
            *self._call_lines(),
        ]

    def blocks(self):
        """lme4's blocks, then which vcov gave the standard errors."""
        note = [self.vcov_note] if len(self.coefficients) else []
        return [*super().blocks(), *note]
