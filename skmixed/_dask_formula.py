"""A formula's state learned from a Dask collection, partition by partition:
the distinct values of its factors, the moments of scale(), center() and
poly(), so that the fitted formula equals the one fitted in memory.
"""

import functools
import math
import re
import warnings

import numpy as np
import pandas as pd

from skmixed._dask import _W, _Y, tree_reduce
from skmixed._dask_rows import _complete_rows, _unknown_categories
from skmixed._formula import (
    check_poly_data,
    mean_of_sum,
    two_float_sum,
)
from skmixed._moments import merge_means

# -- a formula's state, learned from every partition -------------------------------
# factor() of a numeric column: more distinct values than this are refused
# (a fixed-effect column per value; the pass would carry the whole column)
MAX_NUMERIC_LEVELS = 1000


def _distinct_values(part, columns, kept=None):
    part = part[_formula_rows(part, kept)] if kept is not None else part
    return {c: part[c].dropna().drop_duplicates() for c in columns}


def _merge_distinct_values(*parts, limit=None):
    """Union of the partitions' distinct values; with ``limit``, at most
    ``limit + 1`` of them (enough to tell that there are too many)."""
    merged = {}
    for c in parts[0]:
        values = pd.concat([p[c] for p in parts]).drop_duplicates()
        merged[c] = values if limit is None else values.iloc[: limit + 1]
    return merged


def _distinct_of(frame, columns, limit=None, kept=None):
    """The distinct non-missing values of ``columns``: one pass (over the
    rows missing='drop' keeps, with ``kept``: see :func:`_formula_rows`)."""
    import dask

    if not columns:
        return {}
    if kept is not None:
        needed = [*columns, *kept[0], *kept[1], *kept[2]]
        needed += [c for c in (_Y, _W) if c in frame.columns]
        frame = frame[list(dict.fromkeys(needed))]
    else:
        frame = frame[columns]
    parts = [
        dask.delayed(_distinct_values)(part, columns, kept)
        for part in frame.to_delayed()
    ]
    merge = functools.partial(_merge_distinct_values, limit=limit)
    return tree_reduce(parts, None, combine_many=merge).compute()


def _formula_rows(part, kept):
    """The rows of a partition whose values give a formula its levels with
    missing='drop': R's model.frame after na.omit, as in memory
    (``skmixed._inputs._rows_kept``): a response (y less the offset), a
    weight, every group label and random slope, and a value in every column
    the formula reads. ``kept``: (group labels, slope labels, formula
    columns)."""
    from skmixed._formula import _rows_used

    groups, slopes, used = kept
    return _rows_used(part, used, _complete_rows(part, slopes, groups, True))


def _categorical_columns(meta, used):
    """The columns a formula codes as factors whatever it says: text,
    categorical and logical ones."""
    return [
        c
        for c in used
        if not pd.api.types.is_numeric_dtype(meta[c].dtype)
        or pd.api.types.is_bool_dtype(meta[c].dtype)
    ]


#: A formula's ``scale(expr)``, ``center(expr)`` or ``poly(expr, ...)``
#: (formulaic's key of its state): the call and its arguments.
_STATEFUL_CALL = re.compile(r"^(scale|center|poly)\((.*)\)$")


def _learn_moments(rhs, frame, formula):
    """The state of the formula's ``scale(x)``, ``center(x)`` and
    ``poly(x, degree)``, learned from every row of ``frame`` (one more
    pass), set in place.

    R evaluates the formula on every row before na.omit: the centre is the
    mean of every value of x present and the scale the root of the centred
    sum of squares over n - 1 (skmixed._formula._r_scale); poly's basis
    (the three-term recurrence's alpha and norm2) is that of every row, and
    a missing x is refused. Each partition gives the count, mean and
    centred power sums of each argument (up to the second power, or 2
    degree for poly), joined pairwise around the joint mean (Chan et al.'s
    update, generalised to higher powers) without the cancellation of a
    sum of powers less n mean^k; poly's alpha and norm2 are polynomials in
    these moments (:func:`_poly_state`). ``poly(x, d, raw = TRUE)`` has no
    state. Other stateful transforms (a call with more arguments) are
    refused.
    """
    states = formula._spec.transform_state
    calls = {}
    for key, state in states.items():
        match = _STATEFUL_CALL.match(str(key))
        call, arguments = match.groups() if match else (None, "")
        if call == "poly" and not state:
            continue  # raw = TRUE: the powers of x, nothing learned
        if call == "poly":  # the degree is that of the basis fitted in memory
            calls[key] = (call, _top_level_arguments(arguments)[0])
            continue
        if call is None or len(_top_level_arguments(arguments)) != 1:
            raise NotImplementedError(
                f"The fixed_effects formula {rhs!r} uses {[str(k) for k in states]}, "
                "whose state (centre, scale, polynomial basis) is learned from "
                "every row: available from Dask collections for scale(x), "
                "center(x) and poly(x, degree), not for this one. Compute the "
                "column first (e.g. with map_partitions and the whole data's "
                "statistics)."
            )
        calls[key] = (call, arguments)
    if not calls:
        return
    import dask

    arguments = [
        (argument, _poly_degree(states[key]) if call == "poly" else None)
        for key, (call, argument) in calls.items()
    ]
    columns = [str(c) for c in formula.columns_used]  # read only these
    parts = [
        dask.delayed(_argument_moments)(part, arguments)
        for part in frame[columns].to_delayed()
    ]
    moments = tree_reduce(parts, _combine_moments).compute()
    refine = []
    for key, (call, _), (n, mean, sums, missing, distinct, total) in zip(
        calls, calls.values(), moments, strict=True
    ):
        if call == "poly":
            degree = _poly_degree(states[key])
            try:
                check_poly_data(degree, missing, len(distinct))
            except ValueError as exc:  # the in-memory fit's words
                raise ValueError(
                    f"Cannot evaluate the formula {rhs!r}: {exc}"
                ) from None
            # alpha_0 is the correctly rounded mean, as in memory: the same
            # last bit whatever the partitions (see _formula.poly_state)
            rounded = mean_of_sum(total, n)
            sums = _shifted_sums(sums, rounded - mean)
            state, loss = _poly_state(n, rounded, sums, degree)
            states[key].update(state)
            if loss > POLY_MOMENT_LOSS:
                refine.append((key, calls[key][1], rounded))
            continue
        states[key]["center"] = mean
        if call == "scale":
            states[key]["scale"] = np.sqrt(sums[2] / max(1.0, n - 1))
    if refine:
        _refine_poly(frame[columns], refine, states)


#: The relative error of poly's alpha and norm2 from the moments (the
#: rounding of the moments times the cancellation in the recurrence's sums
#: of them) above which another pass refines them (:func:`_refine_poly`).
#: Measured (3000 or 4000 rows, 6 unequal partitions, the coefficients of a
#: fit against the in-memory one): x normal, or 1e6 + N(0, 1), degree 2 to
#: 8: below 1e-12; x lognormal(0, 1.5): degree 3 1e-14, 5 6e-12, 6 4e-11,
#: 8 1e-7 without the pass.
POLY_MOMENT_LOSS = 1e-13


def _refine_poly(frame, refine, states):
    """One more pass for the ``poly`` calls whose state from the moments
    may have lost more than :data:`POLY_MOMENT_LOSS`: each partition
    evaluates the monic polynomials Q_j of that state on u = x - mean and
    gives their Gram matrix G = Q'Q and H = Q' diag(u) Q. The exact
    orthogonal polynomials are P = L^-1 Q, L the unit lower triangular
    factor of G = L D L' (near the identity, so well conditioned): norm2 is
    D and alpha_j = mean + (L^-1 H L^-T)_jj / D_j, as the in-memory sums
    give them."""
    import dask
    import scipy.linalg

    specs = [
        (argument, mean, states[key]["alpha"], states[key]["norms2"])
        for key, argument, mean in refine
    ]
    parts = [dask.delayed(_poly_grams)(part, specs) for part in frame.to_delayed()]
    grams = tree_reduce(parts, _add_grams).compute()
    for (key, _, mean), (gram, moved) in zip(refine, grams, strict=True):
        factor = np.linalg.cholesky(gram)
        unit = factor / np.diag(factor)
        inverse = scipy.linalg.solve_triangular(
            unit, np.eye(len(gram)), lower=True, unit_diagonal=True
        )
        norms = np.diag(factor) ** 2
        shifts = np.einsum("ji,ik,jk->j", inverse, moved, inverse) / norms
        states[key]["alpha"] = {
            j: np.float64(mean + shifts[j]) for j in range(len(gram) - 1)
        }
        states[key]["norms2"] = {j: np.float64(v) for j, v in enumerate(norms)}


def _poly_grams(part, specs):
    """Per (argument, mean, alpha, norms2): G = Q'Q and H = Q' diag(u) Q of
    the partition, Q the monic polynomials of that state (degrees 0 to
    the degree) on u = x - mean; see :func:`_refine_poly`."""
    from skmixed._formula import FixedFormula

    out = []
    for argument, mean, alpha, norms2 in specs:
        size = len(norms2)
        values = np.empty(0)
        if len(part):
            matrix, _ = FixedFormula(f"0 + I({argument})").fit_transform(part)
            values = np.asarray(matrix, dtype=np.float64)[:, 0]
        u = values - mean
        basis = np.empty((u.size, size))
        basis[:, 0] = 1.0
        for j in range(1, size):
            basis[:, j] = (u - (alpha[j - 1] - mean)) * basis[:, j - 1]
            if j >= 2:
                basis[:, j] -= norms2[j - 1] / norms2[j - 2] * basis[:, j - 2]
        out.append((basis.T @ basis, basis.T @ (u[:, None] * basis)))
    return out


def _add_grams(a, b):
    return [(ga + gb, ha + hb) for (ga, ha), (gb, hb) in zip(a, b, strict=True)]


def _top_level_arguments(text):
    """A call's argument text split at its top-level commas."""
    depth, pieces, start = 0, [], 0
    for i, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            pieces.append(text[start:i].strip())
            start = i + 1
    return [*pieces, text[start:].strip()]


def _poly_degree(state):
    """The degree of a fitted orthogonal poly(): its norms run from 0 to it."""
    return len(state["norms2"]) - 1


def _argument_moments(part, arguments):
    """Per (argument, poly degree or None): the count, mean and centred
    power sums (0 to 2, or to 2 degree) of its values present in the
    partition, the count of those missing, and for poly up to degree + 1
    of its distinct values (enough to tell R's "degree must be less than
    the number of unique points") and the sum of its finite values as two
    floats (:func:`skmixed._formula.two_float_sum`)."""
    from skmixed._formula import FixedFormula

    out = []
    for argument, degree in arguments:
        values = np.empty(0)
        if len(part):
            matrix, _ = FixedFormula(f"0 + I({argument})").fit_transform(part)
            values = np.asarray(matrix, dtype=np.float64)[:, 0]
        # R's poly() refuses a NaN or inf (counted); scale() skips a NaN
        missing = int((~np.isfinite(values)).sum())
        values = values[~np.isnan(values)]
        top = 2 if degree is None else 2 * degree
        mean = values.mean() if values.size else 0.0
        sums = _power_sums(values - mean, top)
        distinct = total = None
        if degree is not None:
            distinct = _first_distinct(values, degree + 1)
            total = two_float_sum(values[np.isfinite(values)])
        out.append((float(values.size), mean, sums, missing, distinct, total))
    return out


def _first_distinct(values, count):
    """Up to ``count`` distinct values of ``values``: sorted from a first
    stretch of rows that holds that many (most data: the first rows), not
    from a sort of every row."""
    size = 64
    while True:
        distinct = np.unique(values[:size])
        if distinct.size >= count or size >= values.size:
            return distinct[:count]
        size *= 16


def _power_sums(centred, top):
    """The sums of ``centred`` to the powers 0 to ``top``."""
    sums = np.empty(top + 1)
    power = np.ones_like(centred)
    for k in range(top + 1):
        sums[k] = power.sum()
        if k < top:
            power *= centred
    return sums


def _shifted_sums(sums, shift):
    """Power sums around a centre ``shift`` higher: sum (v - shift)^k from
    the sums of v^j, by the binomial expansion."""
    out = np.zeros_like(sums)
    for k in range(sums.size):
        for j in range(k + 1):
            out[k] += math.comb(k, j) * (-shift) ** (k - j) * sums[j]
    return out


def _combine_moments(a, b):
    """Two partitions' moments (:func:`_argument_moments`), joined around
    their joint mean. With powers 0 to 2 this is Chan et al.'s update of the
    centred sum of squares (the power-1 sums, 0 but for rounding, refine
    it)."""
    joined = []
    for (na, ma, sa, xa, da, ta), (nb, mb, sb, xb, db, tb) in zip(a, b, strict=True):
        n, mean, _, _ = merge_means(na, ma, nb, mb)
        distinct, total = da, ta
        if da is not None:  # up to degree + 1 values, as each partition's
            distinct = np.union1d(da, db)[: (sa.size - 1) // 2 + 1]
            total = two_float_sum([*ta, *tb])
        if not na or not nb:
            mean, sums = (ma, sa) if na else (mb, sb)
        else:
            sums = _shifted_sums(sa, mean - ma) + _shifted_sums(sb, mean - mb)
        joined.append((n, mean, sums, xa + xb, distinct, total))
    return joined


def _poly_state(n, mean, sums, degree):
    """formulaic's state of ``poly(x, degree)`` (R's alpha and norm2 of
    the three-term recurrence) from the count, mean and centred power sums
    (0 to 2 degree) of x.

    The monic orthogonal polynomials are built on v = (x - mean) / s, s the
    root mean square of x - mean, so that the moments of v are of order
    one: P_{j+1}(v) = (v - a_j) P_j(v) - b_j P_{j-1}(v), with
    norm_j = sum P_j(v)^2 and a_j = sum v P_j(v)^2 / norm_j, both sums of
    products of P_j's coefficients with the moments. On x, alpha_j =
    mean + s a_j and norm2_j = s^(2j) norm_j. Also returns the relative
    error these sums may have from the rounding of the moments (the sums
    of the absolute values of their terms, times the machine epsilon).
    """
    s = np.sqrt(sums[2] / n)
    moments = sums / (n * s ** np.arange(sums.size))
    # a bound of each moment's size (Cauchy-Schwarz for the odd ones, which
    # cancel), for the rounding the sums below may lose
    even = np.abs(moments[::2])
    size = np.empty_like(moments)
    size[::2] = even
    size[1::2] = np.sqrt(even[:-1] * even[1:])
    alpha, norms2 = {}, {}
    loss = 0.0
    before, current, norm_before = np.zeros(1), np.ones(1), 1.0
    for j in range(degree + 1):
        square = np.convolve(current, current)  # P_j(v)^2's coefficients
        norm = square @ moments[: square.size]
        norms2[j] = np.float64(n * s ** (2 * j) * norm)
        bound = np.abs(np.convolve(np.abs(current), np.abs(current)))
        loss = max(loss, bound @ size[: square.size] / norm)
        if j == degree:
            break
        a = square @ moments[1 : square.size + 1] / norm
        alpha[j] = np.float64(mean + s * a)
        following = np.concatenate([[0.0], current]) - a * np.append(current, 0.0)
        if j:
            following[: before.size] -= norm / norm_before * before
        before, current, norm_before = current, following, norm
    return {"alpha": alpha, "norms2": norms2}, loss * np.finfo(float).eps


def _fitted_on_values(rhs, meta, used, distinct):
    """The formula fitted on a small frame holding every distinct value of
    the columns in ``distinct`` (numbers in [1, 2) elsewhere): its state,
    the levels and so the columns, is that of a fit on all the rows."""
    from skmixed._formula import FixedFormula

    formula = FixedFormula(rhs)
    size = max([64] + [4 * len(v) for v in distinct.values()])
    rng = np.random.default_rng(0)
    columns = {}
    for c in used:
        if c in distinct:
            values = np.resize(distinct[c].to_numpy(), size)
            dtype = meta[c].dtype
            if _unknown_categories(dtype):
                dtype = distinct[c].dtype
            columns[c] = pd.Series(values).astype(dtype)
        else:  # in [1, 2): any function of a number is defined there
            columns[c] = rng.uniform(1.0, 2.0, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        formula.fit_transform(pd.DataFrame(columns))
    return formula


def _numeric_factors(formula, numeric):
    """{numeric column: the factor expression naming it}, e.g. factor(k)."""
    found = {}
    for expr, (kind, _) in formula._spec.encoder_state.items():
        if str(kind.value) != "categorical":
            continue
        for name in set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", str(expr))) & numeric:
            found.setdefault(name, str(expr))
    return found


def _check_numeric_levels(rhs, distinct, factors):
    for column, expr in factors.items():
        if len(distinct[column]) > MAX_NUMERIC_LEVELS:
            raise ValueError(
                f"The fixed_effects formula {rhs!r} codes the numeric column "
                f"{column!r} as a factor ({expr}), and it has more than "
                f"{MAX_NUMERIC_LEVELS} "
                "distinct values across the partitions: one fixed-effect column "
                "per value. Round or bin the column first, or make it a "
                "grouping factor (a random effect)."
            )


def _learn_formula(rhs, frame, group_columns, kept=None):
    """A FixedFormula whose state is that of a fit on all the rows.

    The state of R's treatment contrasts is the levels of every categorical
    column: one pass collects their distinct values, and the formula is
    fitted on a small frame holding each of them (numbers elsewhere), which
    gives the levels, and so the columns, of a fit on all the rows.
    ``factor()`` of a numeric column (seen in that fit) takes one more pass
    for that column's values; their levels are then R's (numeric order).
    A stateful transform (``scale``, ``center``, ``poly``) learns from
    every row: it is refused rather than fitted on the wrong state.
    ``kept`` (missing='drop'; group labels and slope columns): the levels
    are those of the rows the fit keeps (:func:`_formula_rows`). Returns
    the formula and whether it has factors (levels).
    """
    from skmixed._formula import FixedFormula

    meta = frame._meta
    used = list(FixedFormula(rhs).columns_used)  # (in X: see _formula_reads)
    categorical = _categorical_columns(meta, used)
    if kept is not None:
        kept = (*kept, used)
    distinct = _distinct_of(frame, categorical, kept=kept)
    formula = _fitted_on_values(rhs, meta, used, distinct)
    _learn_moments(rhs, frame, formula)
    factors = _numeric_factors(formula, set(used) - set(categorical))
    if factors:
        numbers = _distinct_of(
            frame, sorted(factors), limit=MAX_NUMERIC_LEVELS, kept=kept
        )
        _check_numeric_levels(rhs, numbers, factors)
        formula = _fitted_on_values(rhs, meta, used, {**distinct, **numbers})
    return formula, bool(categorical or factors)


def _formula_columns(part, formula, labels, kept=None):
    """The partition with the formula's design columns added.

    ``kept`` (missing='drop', see :func:`_learn_formula`): rows the fit
    drops get NaN (they may hold a level that only they had, no level of
    the fit); they are dropped with the rest.
    """
    rows = None
    if kept is not None and len(part):
        rows = _formula_rows(part, (*kept, list(formula.columns_used)))
    if not len(part):
        matrix = np.empty((0, len(labels)))
    elif rows is None or rows.all():
        matrix = formula.transform(part)
    else:
        matrix = np.full((len(part), len(labels)), np.nan)
        if rows.any():
            matrix[rows] = formula.transform(part[rows])
    design = pd.DataFrame(matrix, index=part.index, columns=labels)
    return pd.concat([part, design], axis=1)
