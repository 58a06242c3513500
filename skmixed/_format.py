"""Numbers formatted the way R prints them, for every summary.

R users read summaries by eye against what R showed them, so the digits, the
switch between fixed and scientific notation, the p-value floor ``< 2e-16``
and the significance stars follow R's own rules:

- :func:`format_real` is R's ``format(x, digits=)`` for a numeric vector: the
  fewest significant digits (at most ``digits``) that show every element, one
  common number of decimals, fixed notation unless scientific is narrower.
- :func:`format_pval` is R's ``format.pval``.
- :func:`coef_table_strings` is R's ``printCoefmat``: estimates and standard
  errors rounded together, test statistics to ``digits - 1`` decimals,
  p-values with :func:`format_pval`, stars.
- :func:`matrix_lines` prints a table of strings as ``print.default`` does
  (row names left-aligned, columns right-aligned, one space apart).
- :func:`named_vector_lines` prints a named vector (residual quantiles).
"""

import math

import numpy as np

#: R's ``.Machine$double.eps``: p-values below it print as ``< 2e-16``.
DOUBLE_EPS = float(np.finfo(np.float64).eps)

#: The legend printed under a table with stars, as R prints it.
SIGNIF_LEGEND = "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"

_STAR_CUTS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.0, " "))
_LINE_WIDTH = 80  # R's default getOption("width")
# Largest power of ten R's formatReal handles with its table (KP_MAX).
_KP_MAX = 22


def r_round(x, digits):
    """R's ``round(x, digits)`` (half-way cases decided by the exact binary value).

    ``digits`` may be fractional, as in ``zapsmall``: R rounds it to the
    nearest integer first.

    Examples
    --------
    >>> r_round(2.675, 2)  # 2.675 is stored as 2.67499999...
    2.67
    >>> r_round(1234.5678, -2)
    1200.0
    """
    digits = int(math.floor(digits + 0.5))
    x = float(x)
    if not math.isfinite(x):
        return x
    return float(round(x, digits))


def r_signif(x, digits):
    """R's ``signif(x, digits)``: round to ``digits`` significant digits.

    Examples
    --------
    >>> r_signif(47.714719743778545, 4)
    47.71
    """
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return x
    digits = max(1, int(digits))
    return float(f"{x:.{digits - 1}e}")


def _sci(x, digits):
    """R's ``scientific()``: sign, exponent, significant digits, widening.

    Returns ``(neg, kpower, nsig, rounding_widens)`` for a finite ``x`` shown
    with at most ``digits`` significant digits.
    """
    if x == 0:
        return 0, 0, 1, False
    neg = 1 if x < 0 else 0
    r = abs(x)
    mantissa, exponent = f"{r:.{digits - 1}e}".split("e")
    kpower = int(exponent)
    nsig = max(1, len(mantissa.replace(".", "").rstrip("0")))
    # Rounding can carry into a new leading digit in scientific notation
    # (9996 -> 1.00e+04 with 3 digits) while fixed notation keeps the width.
    rgt = min(max(digits - kpower, 0), _KP_MAX)
    fuzz = 0.5 / 10.0**rgt
    widens = 0 < kpower <= _KP_MAX and r < 10.0**kpower - fuzz
    return neg, kpower, nsig, widens


def _real_layout(values, digits):
    """Common layout of finite values: (fixed, decimals, width, sci_digits)."""
    neg = 0
    rgt = mxsl = mxns = -(10**9)
    mxe, mne = -(10**9), 10**9
    for x in values:
        neg_i, kpower, nsig, widens = _sci(x, digits)
        left = kpower + 1 - (1 if widens else 0)
        sleft = neg_i + (1 if left <= 0 else left)
        right = nsig - left
        neg = max(neg, neg_i)
        rgt, mxsl, mxns = max(rgt, right), max(mxsl, sleft), max(mxns, nsig)
        mxe, mne = max(mxe, kpower), min(mne, kpower)
    rgt = max(rgt, 0)
    width_fixed = mxsl + rgt + (1 if rgt else 0)
    exp_digits = 2 if (mxe >= 100 or mne <= -99) else 1
    sci_decimals = mxns - 1
    width_sci = neg + (1 if sci_decimals > 0 else 0) + sci_decimals + 4 + exp_digits
    if width_fixed <= width_sci:
        return True, rgt, width_fixed, sci_decimals
    return False, rgt, width_sci, sci_decimals


def _nonfinite_string(x, na_string):
    if math.isnan(x):
        return na_string
    return "Inf" if x > 0 else "-Inf"


def format_real(values, digits=7, na_string="NA", nsmall=0):
    """R's ``format(x, digits=digits)`` for a numeric vector.

    Parameters
    ----------
    values : array-like of float
    digits : int, default=7
        At most this many significant digits; enough that every element
        shows them (R's ``digits``).
    na_string : str, default="NA"
        Shown for NaN (R's NA).
    nsmall : int, default=0
        Minimum number of decimals in fixed notation.

    Returns
    -------
    list of str
        Right-justified to a common width.

    Examples
    --------
    >>> format_real([251.405, 10.467, 6.61, 1.238], digits=4)
    ['251.405', ' 10.467', '  6.610', '  1.238']
    >>> format_real([2.35e-16, 4.51e-10], digits=3)
    ['2.35e-16', '4.51e-10']
    >>> format_real([-0.0, 0.25], digits=3, nsmall=3)
    ['0.000', '0.250']
    """
    # R prints a negative zero (round(-1e-4, 3)) as 0, never -0.
    values = [float(v) + 0.0 for v in np.asarray(values, dtype=float).ravel()]
    finite = [v for v in values if math.isfinite(v)]
    out = []
    if finite:
        fixed, decimals, _, sci_decimals = _real_layout(finite, digits)
        decimals = max(decimals, nsmall) if fixed else decimals
    for v in values:
        if not math.isfinite(v):
            out.append(_nonfinite_string(v, na_string))
        elif fixed:
            out.append(f"{v:.{decimals}f}")
        else:
            out.append(f"{v:.{sci_decimals}e}")
    width = max((len(s) for s in out), default=0)
    return [s.rjust(width) for s in out]


def format_number(x, digits=7):
    """One number as R's ``format(x, digits)`` / ``cat(x)`` shows it.

    Examples
    --------
    >>> format_number(178)
    '178'
    >>> format_number(47.71)
    '47.71'
    """
    return format_real([x], digits)[0].strip()


def format_c(x, digits):
    """R's ``formatC(x, digits=digits)`` for a double (C's ``%.<digits>g``).

    Examples
    --------
    >>> format_c(0.2864713951077099, 4)
    '0.2865'
    """
    x = float(x)
    if not math.isfinite(x):
        return _nonfinite_string(x, "NA")
    return f"{x:.{digits}g}"


def format_pval(pvalues, digits=3, eps=DOUBLE_EPS, na_string="NA"):
    """R's ``format.pval``: p-values, with ``< eps`` for the tiny ones.

    Parameters
    ----------
    pvalues : array-like of float
    digits : int, default=3
    eps : float, default=2.220446e-16
        Smaller p-values print as ``"< 2e-16"`` (or ``"<2e-16"``).
    na_string : str, default="NA"

    Returns
    -------
    list of str
        P-values of similar size share a layout: those from 1e-4 up in fixed
        notation, smaller ones in scientific notation.

    Examples
    --------
    >>> format_pval([2.16e-87, 9.89e-15])
    ['< 2e-16', '9.89e-15']
    >>> format_pval([1.8e-36], digits=4)
    ['< 2.2e-16']
    """
    pv = np.asarray(pvalues, dtype=float).ravel()
    out = [na_string] * pv.size
    present = np.flatnonzero(~np.isnan(pv))
    tiny = [i for i in present if pv[i] < eps]
    rest = [i for i in present if pv[i] >= eps]
    if rest:
        expo = {i: math.floor(math.log10(pv[i])) if pv[i] > 0 else -50 for i in rest}
        fixp = [i for i in rest if expo[i] >= -3 or (expo[i] == -4 and digits > 1)]
        scip = [i for i in rest if i not in set(fixp)]
        for group in (fixp, scip):
            for i, text in zip(group, format_real(pv[group], digits), strict=True):
                out[i] = text
    if tiny:
        small_digits = max(1, digits - 2)
        if rest:
            nc = max(len(out[i]) for i in rest)
            if small_digits > 1 and small_digits + 6 > nc:
                small_digits = max(1, nc - 7)
            sep = "" if (small_digits == 1 and nc <= 6) else " "
        else:
            sep = "" if small_digits == 1 else " "
        text = "<" + sep + format_real([eps], small_digits)[0]
        for i in tiny:
            out[i] = text
    return out


def signif_stars(pvalues):
    """R's significance codes for p-values (``""`` for a missing one).

    Examples
    --------
    >>> signif_stars([0.0001, 0.004, 0.03, 0.07, 0.5])
    ['***', '**', '*', '.', ' ']
    """
    stars = []
    for p in np.asarray(pvalues, dtype=float).ravel():
        if math.isnan(p):
            stars.append("")
            continue
        stars.append(next(code for cut, code in _STAR_CUTS if p <= cut))
    return stars


def zapsmall(values, digits):
    """R's ``zapsmall``: round so that values tiny next to the largest vanish."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    largest = float(np.max(np.abs(finite))) if finite.size else 0.0
    places = max(0.0, digits - math.log10(largest)) if largest > 0 else digits
    return np.array([r_round(v, places) for v in values])


def coef_table_strings(
    values,
    *,
    digits=4,
    cs_ind=(0, 1),
    tst_ind=(2,),
    has_pvalue=True,
    stars=True,
    na_string="NA",
):
    """Cells of R's ``printCoefmat`` for a coefficient table.

    Parameters
    ----------
    values : ndarray of shape (n_terms, n_columns)
        The numbers; the p-value, if any, is the last column. NaN prints as
        ``na_string`` (an aliased coefficient).
    digits : int, default=4
        R's ``digits`` (``summary.lm`` and lmerTest print with 4).
    cs_ind : tuple of int, default=(0, 1)
        Columns of estimates and standard errors, rounded together.
    tst_ind : tuple of int, default=(2,)
        Columns of test statistics, rounded to ``digits - 1`` decimals.
        Columns in neither group (such as a df column) are formatted alone.
    has_pvalue : bool, default=True
    stars : bool, default=True
        Add the significance codes column when a p-value is below 0.1.

    Returns
    -------
    cells : list of list of str
        One row per term; with stars, one more column of codes.
    show_legend : bool
        Whether the stars column was added (print :data:`SIGNIF_LEGEND`).

    Examples
    --------
    >>> import numpy as np
    >>> cells, legend = coef_table_strings(np.array(
    ...     [[251.405104848, 6.610154044, 38.033168844, 2.157e-87],
    ...      [10.467285960, 1.238193613, 8.453694000, 9.894e-15]]))
    >>> [cell.strip() for cell in cells[1]]
    ['10.467', '1.238', '8.454', '9.89e-15', '***']
    """
    xm = np.array(values, dtype=float, ndmin=2)
    n_rows, n_cols = xm.shape
    cells = [[""] * n_cols for _ in range(n_rows)]
    dig_tst = max(1, min(5, digits - 1))
    cs_ind, tst_ind = list(cs_ind), list(tst_ind)
    p_col = n_cols - 1 if has_pvalue else None

    def put(rows_cols, texts):
        for (i, j), text in zip(rows_cols, texts, strict=True):
            cells[i][j] = text

    if cs_ind:
        block = xm[:, cs_ind]
        magnitudes = np.abs(block[np.isfinite(block) & (block != 0)])
        if np.isfinite(block).any():
            smallest = float(magnitudes.min()) if magnitudes.size else 1.0
            decimals = max(1, digits - 1 - math.floor(math.log10(smallest)))
            where = [(i, j) for j in cs_ind for i in range(n_rows)]
            rounded = [r_round(xm[i, j], decimals) for i, j in where]
            put(where, format_real(rounded, digits, na_string))
    if tst_ind:
        where = [(i, j) for j in tst_ind for i in range(n_rows)]
        rounded = [r_round(xm[i, j], dig_tst) for i, j in where]
        put(where, format_real(rounded, digits, na_string))
    for j in range(n_cols):
        if j not in cs_ind and j not in tst_ind and j != p_col:
            put([(i, j) for i in range(n_rows)], format_real(xm[:, j], digits))
    _unzero(xm, cells, cs_ind, tst_ind, p_col, digits)
    for i, j in zip(*np.nonzero(np.isnan(xm)), strict=True):
        cells[i][j] = na_string
    show_legend = False
    if has_pvalue:
        pv = xm[:, p_col]
        ok = np.flatnonzero(~np.isnan(pv))
        if ok.size:
            put([(i, p_col) for i in ok], format_pval(pv[ok], dig_tst))
            show_legend = stars and bool((pv[ok] < 0.1).any())
        if show_legend:
            codes = signif_stars(pv)
            width = max(len(c) for c in codes)
            for row, code in zip(cells, codes, strict=True):
                row.append(code.ljust(width))
    return cells, show_legend


def _unzero(xm, cells, cs_ind, tst_ind, p_col, digits):
    """Re-show nonzero numbers that rounding printed as zero (R does too)."""
    where = [
        (i, j)
        for j in range(xm.shape[1])
        if j not in tst_ind and j != p_col
        for i in range(xm.shape[0])
        if not np.isnan(xm[i, j])
    ]
    fix = []
    for i, j in where:
        try:
            shown_zero = float(cells[i][j]) == 0
        except ValueError:
            continue
        if (xm[i, j] == 0) != shown_zero:
            fix.append((i, j))
    if fix:
        texts = format_real([xm[i, j] for i, j in fix], max(1, digits - 1))
        for (i, j), text in zip(fix, texts, strict=True):
            cells[i][j] = text


def matrix_lines(cells, row_names, col_names, *, right=True):
    """Lines of a string table as R's ``print.default`` shows a matrix.

    Parameters
    ----------
    cells : list of list of str
    row_names : list of str
        Left-aligned in the first column.
    col_names : list of str
    right : bool, default=True
        Right-align the cells (and headers); otherwise left-align.

    Returns
    -------
    list of str

    Examples
    --------
    >>> matrix_lines([["1.0", "***"]], ["(Intercept)"], ["Estimate", ""])
    ['            Estimate    ', '(Intercept)      1.0 ***']
    """
    row_width = max((len(r) for r in row_names), default=0)
    widths = [
        max([len(name)] + [len(row[j]) for row in cells])
        for j, name in enumerate(col_names)
    ]

    def justify(text, width):
        return text.rjust(width) if right else text.ljust(width)

    header = " " * row_width + "".join(
        " " + justify(name, w) for name, w in zip(col_names, widths, strict=True)
    )
    lines = [header]
    for name, row in zip(row_names, cells, strict=True):
        body = "".join(
            " " + justify(text, w) for text, w in zip(row, widths, strict=True)
        )
        lines.append(name.ljust(row_width) + body)
    return lines


def named_vector_lines(values, names, digits=7):
    """Lines of a named numeric vector as R prints it (names above values).

    Examples
    --------
    >>> named_vector_lines([-110.848, 1.546, 139.953], ["Min", "Median", "Max"], 4)
    ['     Min   Median      Max ', '-110.848    1.546  139.953 ']
    """
    texts = [t.strip() for t in format_real(values, digits)]
    width = max([len(t) for t in texts] + [len(str(n)) for n in names])
    per_line = max(1, _LINE_WIDTH // (width + 1))
    lines = []
    for start in range(0, len(texts), per_line):
        chunk = slice(start, start + per_line)
        lines.append("".join(str(n).rjust(width) + " " for n in names[chunk]))
        lines.append("".join(t.rjust(width) + " " for t in texts[chunk]))
    return lines
