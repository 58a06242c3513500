"""The fixed part of a model as an R formula, through formulaic.

``FixedFormula("nitro + Variety")`` turns the columns of a DataFrame into
the fixed-effects design that R's ``model.matrix`` builds for the same
right-hand side: numeric columns as they are, categorical columns coded by
R's treatment contrasts (the first level is the reference and gets no
column), interactions as products, and the names R gives the columns
(``VarietyMarvellous``, ``nitro:VarietyVictory``, ``I(x^2)``,
``poly(x, 2)1``). The intercept column is left to the estimator, which
names it ``(Intercept)``.

What is learned at fit and reused at predict: the levels of every
categorical column, and the state of stateful transforms (the centre and
scale of ``scale(x)``, the basis of ``poly(x, 2)``). A level unseen at fit
is an error that names the column and the level.

Categorical columns
    A pandas categorical keeps its category order (R's factor levels), so
    ``df["V"].cat.reorder_categories([...])`` chooses the reference level,
    as ``relevel`` does in R. String, object and boolean columns become
    factors whose levels are sorted as R sorts them (numerically when every
    label is a number). Integer columns stay numeric, as in R; write
    ``factor(g)`` (or formulaic's ``C(g)``) to treat one as categorical.
    formulaic's contrasts choose a reference inside the formula:
    ``C(Variety, contr.treatment(base="Victory"))`` (columns named
    ``C(Variety, contr.treatment(base = "Victory"))Golden Rain``, as R would
    name them); other codings (``contr.sum``, ``contr.helmert``) keep
    formulaic's level labels (``C(V, contr.sum)S.a``).

R syntax
    ``^`` inside a function is a power (``I(x^2)``, as in R; formulaic
    alone would read it as Python's XOR); ``(a + b)^2`` is the interaction
    power. ``0 + x`` and ``x - 1`` drop the intercept. R's dotted names
    (``exp.time``) are columns; R's ``log(x, base = 2)``, ``log1p``,
    ``expm1``, ``ifelse``, ``pi``, ``TRUE``/``FALSE`` are evaluated as in R,
    and so are ``&``, ``|`` and ``!`` inside a call
    (``ifelse(x > 0 & z < 1, 1, 0)``; ``&&``/``||`` are refused); a logical
    ``I(x > 0)`` is a factor, as R codes a logical (column
    ``I(x > 0)TRUE``), and so is the term ``!b`` (``x + !b``, ``(!b) + x``:
    column ``!bTRUE``; ``!b + x``, which R reads as ``!(b + x)``, is
    refused). A call
    of a function not available is an error naming it, and a term that
    reads no column (``I(2)``) is refused, as R's ``model.frame``
    refuses it.

Known difference from R
    An interaction whose margins are absent *and* an intercept
    (``y ~ a:b``) is coded by formulaic in a full-rank way; R codes every
    cell and reports one coefficient as NA. The fitted values are the same,
    the coefficients are parameterised differently.

Missing values
    As R's ``model.frame``, the formula is evaluated on every row and the
    rows with a missing value (or an infinite one) in a column it uses get
    NaN in the design, for the estimator's ``missing=`` rule to report or
    drop. So ``scale(x)`` (and ``center(x)``) learn from every value of x
    present, rows missing y or another variable included, as R's scale()
    does with ``na.rm``; ``poly(x, 2)`` refuses a missing x at fit, as R's
    poly() does (``raw = TRUE`` takes it). A factor's levels, of a column
    or of ``factor(k)``, are those of the rows the fit keeps (with
    ``missing="drop"`` also without the rows missing y, a weight, a group
    label, a random slope or the offset), as R drops the levels na.omit
    leaves unused; a factor left with one level is refused, as R refuses it.
"""

import builtins
import contextvars
import difflib
import fractions
import functools
import math
import re
import warnings

import numpy as np
import pandas as pd

from skmixed._groups import _float_label, _r_level_order
from skmixed._rsyntax import (
    CONSTANTS,
    LOGICAL_CALLS,
    LOGICAL_TERM_CALL,
    NOT_TERM_CALL,
    PAREN_CALL,
    names_read,
    r_deparse,
    r_join,
    to_python,
    tokens,
)
from skmixed._type3 import aliased_columns, type3_contrasts

__all__ = ["FixedFormula", "check_calls", "resolve_intercept"]

_INTERCEPT = "(Intercept)"


def _r_log(x, base=None):
    """R's ``log(x, base = exp(1))``."""
    return np.log(x) if base is None else np.log(x) / np.log(base)


def _r_logical(values):
    """Values as R's logical vector: a logical column reaches a formula as
    the factor (FALSE, TRUE) it is in R's model.matrix, whose labels are
    text ("FALSE" is no False); numbers and bool arrays as they are."""
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.CategoricalDtype) and set(map(str, dtype.categories)) <= {
        "FALSE",
        "TRUE",
    }:
        return np.asarray(values.astype(str)) == "TRUE"
    return np.asarray(values)


def _r_ifelse(test, yes, no):
    """R's ``ifelse(test, yes, no)`` (rows with a missing value are left out
    before a formula is evaluated, so the test is never NA here)."""
    return np.where(_r_logical(test).astype(bool), yes, no)


def _r_and(left, right):
    return np.logical_and(_r_logical(left), _r_logical(right))


def _r_or(left, right):
    return np.logical_or(_r_logical(left), _r_logical(right))


def _r_not(values):
    return np.logical_not(_r_logical(values))


def _r_not_term(values):
    """R's ``!b`` as a term of the formula: a logical, coded as the factor
    (FALSE, TRUE) R's model.matrix makes of it (column ``!bTRUE``)."""
    return _r_as_is(_r_not(values))


def _r_as_is(values):
    """R's ``I(...)``: the values as they are, except that a logical result
    is a factor (levels FALSE, TRUE), as R's model.matrix codes a logical:
    ``I(x > 0)`` gives the column ``I(x > 0)TRUE``."""
    array = np.asarray(values)
    if array.dtype != bool:
        return values
    factor = pd.Categorical(array, categories=[False, True])
    return pd.Series(factor, index=getattr(values, "index", None))


def _r_factor(data, contrasts=None, *, levels=None, **options):
    """R's ``factor(x)`` (formulaic's ``C``): a double's levels are its
    as.character labels (1e+05, 0.3), so two doubles R spells alike (0.1 * 3
    and 0.3) are one level, ordered as numbers, as R's factor() has them.

    At fit its levels are those of the rows the fit keeps
    (:data:`_FIT_ROWS`): R evaluates factor(k) on every row, then drops
    the levels na.omit leaves unused (``drop.unused.levels``)."""
    from formulaic.transforms import C

    values = getattr(data, "__wrapped__", data)
    index = getattr(values, "index", None)
    used = _FIT_ROWS.get()
    if used is not None and (levels is not None or len(used) != len(values)):
        used = None
    if np.asarray(values).dtype.kind == "f":
        labels = [_float_label(v) for v in np.asarray(values, dtype=float).tolist()]
        seen = labels if used is None else np.asarray(labels, dtype=object)[used]
        order = _r_level_order(set(seen) - {"nan"})
        if used is not None:  # a level of dropped rows only: missing there
            levels_kept = set(order)
            labels = [v if v in levels_kept else None for v in labels]
        data = pd.Series(pd.Categorical(labels, categories=order), index=index)
        if levels is not None:
            levels = [_label_string(v) for v in levels]
    elif used is not None:
        factor = pd.Categorical(values)
        seen = set(factor[used].dropna())
        unused = [c for c in factor.categories if c not in seen]
        data = pd.Series(factor.remove_categories(unused), index=index)
    return C(data, contrasts, levels=levels, **options)


def _r_scale(data, center=True, scale=True, ddof=1, _state=None):
    """R's ``scale(x)``: centre and scale learned from every value of x
    present (R's colMeans and sd with na.rm), rows missing another
    variable included, as R's model.frame evaluates scale(x) on every row
    before na.omit; the scale is the root mean square of the centred
    values, ``sqrt(sum(v^2) / (n - 1))``, as R's."""
    values = np.asarray(data, dtype=np.float64)
    state = {} if _state is None else _state
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # no value present
        if "center" not in state:
            state["center"] = (
                (np.nanmean(values, axis=0) if center else None)
                if isinstance(center, bool)
                else np.asarray(center, dtype=np.float64)
            )
        if state["center"] is not None:
            values = values - state["center"]
        if "scale" not in state:
            present = np.sum(~np.isnan(values), axis=0)
            state["scale"] = (
                (
                    np.sqrt(
                        np.nansum(values**2, axis=0) / np.maximum(1, present - ddof)
                    )
                    if scale
                    else None
                )
                if isinstance(scale, bool)
                else np.asarray(scale, dtype=np.float64)
            )
    if state["scale"] is not None:
        values = values / state["scale"]
    return values


def _r_center(data, _state=None):
    """formulaic's ``center(x)``: R's ``scale(x, scale = FALSE)``."""
    return _r_scale(data, scale=False, _state=_state)


def _r_poly(x, degree=1, raw=False, _state=None):
    """R's ``poly(x, degree)``: the orthogonal basis of every row of data,
    so a missing x is refused at fit, as R refuses it ("missing values are
    not allowed in 'poly'"); ``raw = TRUE`` gives the powers, whose
    columns R names 1, 2, ..."""
    from formulaic.materializers.types import FactorValues
    from formulaic.transforms import poly

    values = np.asarray(x, dtype=np.float64)
    if raw:
        powers = range(1, int(degree) + 1)
        basis = np.column_stack([values**k for k in powers])
        return FactorValues(basis, column_names=tuple(str(k) for k in powers))
    state = {} if _state is None else _state
    if "alpha" not in state:
        finite = np.isfinite(values)
        check_poly_data(int(degree), int((~finite).sum()), np.unique(values).size)
        mean = mean_of_sum(two_float_sum(values), values.size)
        state.update(poly_state(values, int(degree), mean))
    return poly(values, degree=degree, _state=state)


def poly_state(values, degree, mean):
    """formulaic's state of ``poly(x, degree)`` (R's alpha and norm2 of the
    three-term recurrence) on every value of x, built as R builds it: on
    u = x - mean, alpha_j = mean + sum(u P_j^2) / norm2_j. formulaic's own
    sum(x P_j^2) / norm2_j loses the last bits of alpha for an x far from 0
    relative to its spread (1e6 + N(0, 1)), and those move a coefficient
    by 1e-9 relative; ``mean`` is the correctly rounded mean
    (:func:`mean_of_sum`), as R's mean(x), so that a fit from Dask, whose
    partitions give the same mean, gives the same alpha."""
    u = values - mean
    alpha, norms2 = {}, {}
    before, current = np.zeros_like(u), np.ones_like(u)
    for j in range(degree + 1):
        norms2[j] = np.sum(current**2)
        if j == degree:
            break
        shift = np.sum(u * current**2) / norms2[j]
        alpha[j] = mean + shift
        following = (u - shift) * current
        if j:
            following -= norms2[j] / norms2[j - 1] * before
        before, current = current, following
    return {"alpha": alpha, "norms2": norms2}


def two_float_sum(values):
    """The sum of finite ``values`` as two floats (their sum and what its
    rounding left out), to about n 2**-106 of the sum of their absolute
    values whatever their order, so that any split of the rows gives the
    same correctly rounded mean. Pairs are added level by level
    (vectorised), each addition's rounding error kept exactly (Knuth's
    two-sum) and those errors added up: 20 times faster than math.fsum."""
    level = np.asarray(values, dtype=np.float64).ravel()
    errors = []
    while level.size > 1:
        odd = level[-1:] if level.size % 2 else level[:0]
        left, right = level[0 : level.size - odd.size : 2], level[1::2]
        total = left + right
        back = total - left
        errors.append(np.sum((left - (total - back)) + (right - back)))
        level = np.concatenate([total, odd])
    high = float(level[0]) if level.size else 0.0
    low = math.fsum(errors)
    total = high + low
    return total, low - (total - high)


def mean_of_sum(pair, n):
    """The correctly rounded ``(pair[0] + pair[1]) / n``: R's mean(x), to
    the last bit, from a :func:`two_float_sum`."""
    if not n:
        return np.float64(0.0)
    exact = (fractions.Fraction(pair[0]) + fractions.Fraction(pair[1])) / int(n)
    return np.float64(float(exact))


class PolyDataError(ValueError):
    """Data R's poly() refuses (:func:`check_poly_data`)."""


def check_poly_data(degree, missing, distinct):
    """R's refusals of the data an orthogonal ``poly(x, degree)`` is fitted
    on: a value of x missing (NaN or inf; ``missing`` of them) or fewer
    distinct values than ``degree + 1`` (``distinct``, counted when none is
    missing, as R's checks run in that order)."""
    if missing:
        raise PolyDataError(
            f"poly() of a variable missing (NaN or inf) in {missing} row(s): its "
            "orthogonal basis is computed from every row of the data, so R "
            "refuses it (missing values are not allowed in 'poly'), even on "
            "rows missing='drop' would drop. Drop those rows first, or use "
            "poly(x, degree, raw = TRUE)."
        )
    if degree >= distinct:
        raise PolyDataError(
            f"poly() of degree {degree} of a variable with {distinct} "
            "distinct value(s) in the data: R refuses it ('degree' must be "
            "less than number of unique points). Lower the degree."
        )


# R's functions and constants that formulaic's default namespace lacks or
# spells differently (its log takes no base).
_CONTEXT = {
    "I": _r_as_is,
    "C": _r_factor,
    "sqrt": np.sqrt,
    "log": _r_log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "ifelse": _r_ifelse,
    # R's elementwise &, | and ! (skmixed._rsyntax.to_python's calls)
    LOGICAL_CALLS["&"]: _r_and,
    LOGICAL_CALLS["|"]: _r_or,
    LOGICAL_CALLS["!"]: _r_not,
    NOT_TERM_CALL: _r_not_term,
    LOGICAL_TERM_CALL: lambda values: _r_as_is(np.asarray(values, dtype=bool)),
    PAREN_CALL: lambda value: value,
    "pi": np.pi,
    "TRUE": True,
    "FALSE": False,
}
#: At fit, the rows the model keeps (a bool array over the rows formulaic
#: evaluates), read by :func:`_r_factor` for its levels; None otherwise.
_FIT_ROWS = contextvars.ContextVar("skmixed_formula_fit_rows", default=None)


def _data_mismatch_warning():
    """formulaic's warning for a level not seen at fit."""
    from formulaic.errors import DataMismatchWarning

    return DataMismatchWarning


@functools.cache
def _r_context():
    """:data:`_CONTEXT` with R's stateful transforms (``scale``, ``center``,
    ``poly``), made stateful by formulaic when a formula is first fitted."""
    from formulaic.utils.stateful_transforms import stateful_transform

    return {
        **_CONTEXT,
        "scale": stateful_transform(_r_scale),
        "center": stateful_transform(_r_center),
        "poly": stateful_transform(_r_poly),
    }


# The R functions a formula may call, named in the error for any other.
R_FUNCTIONS = ("log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "abs")
R_FUNCTIONS += ("ifelse", "I", "factor", "scale", "poly")


def _formulaic():
    """formulaic, imported when a formula is first used (it loads slowly)."""
    import formulaic

    return formulaic


class FixedFormula:
    """An R formula's right-hand side, evaluated on a DataFrame as R would.

    Parameters
    ----------
    rhs : str
        The right-hand side of an R model formula for the fixed part:
        ``"nitro + Variety"``, ``"age * Sex"``, ``"0 + x"``,
        ``"scale(x) + I(x^2)"``, ``"1"`` (intercept only).

    Attributes
    ----------
    rhs : str
        The formula as given.
    has_intercept : bool
        Whether the formula keeps the intercept (``"0 + x"``, ``"x - 1"``:
        False).
    columns_used : list of str
        The data columns the formula refers to, in order of appearance.
    names : list of str
        R's names of the design columns (after :meth:`fit_transform`).
    terms : dict
        R's term label (``"Variety"``, ``"age:Sex"``) -> indices of its
        columns in the design (after :meth:`fit_transform`).

    Examples
    --------
    >>> import pandas as pd
    >>> from skmixed._formula import FixedFormula
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0],
    ...                    "g": ["b", "a", "c", "a"]})
    >>> ff = FixedFormula("x * g")
    >>> matrix, names = ff.fit_transform(df)
    >>> names
    ['x', 'gb', 'gc', 'x:gb', 'x:gc']
    >>> ff.terms
    {'x': [0], 'g': [1, 2], 'x:g': [3, 4]}
    >>> ff.transform(pd.DataFrame({"x": [5.0], "g": ["c"]})).tolist()
    [[5.0, 0.0, 1.0, 0.0, 5.0]]
    """

    def __init__(self, rhs):
        self.rhs = rhs
        self._python_rhs = _checked_rhs(rhs)
        formulaic = _formulaic()
        try:
            parsed = formulaic.Formula(self._python_rhs, _ordering="none")
        except Exception as exc:  # formulaic's parse errors have many types
            raise ValueError(f"Cannot read the formula {rhs!r}: {exc}") from None
        written_terms = list(parsed)
        _check_constant_terms(rhs, written_terms)
        self.has_intercept = any(str(t) == "1" for t in written_terms)
        self.columns_used = _columns_in_order(self._python_rhs, parsed)
        # R orders the variables of an interaction by their first appearance
        # in the formula (``recipe + temp:recipe`` has the term recipe:temp).
        self._variable_rank = {}
        for term in written_terms:
            for factor in term.factors:
                self._variable_rank.setdefault(factor.expr, len(self._variable_rank))
        self._uses_factor = any(
            kind == "name" and tok == "factor" for kind, tok in tokens(rhs)
        )

    def _fit_rhs(self):
        """The formula formulaic fits: logical columns as factor terms."""
        logical = {n for n, (kind, _) in self._kinds.items() if kind == "logical"}
        if not logical:
            return self._python_rhs
        return _logical_terms(self._python_rhs, logical)

    def _refuse_one_level_factors(self):
        """R's contrasts() needs two levels: a factor of one level in the
        fixed part, a column or ``factor(g)`` / ``C(g)`` of a one-valued
        column, is an error in lm and lmer ("contrasts can be applied only
        to factors with 2 or more levels"), not an aliased coefficient.
        A logical column always has its two levels (FALSE, TRUE), as in R."""
        for expr, (kind, state) in self._spec.encoder_state.items():
            if str(kind.value) != "categorical":
                continue
            if expr in self._kinds:
                levels = self._kinds[expr][1]
                if self._kinds[expr][0] != "categorical":
                    continue
            else:
                levels = [_label_string(c) for c in state.get("categories", [])]
            if len(levels) < 2:
                self._raise_one_level(self._r_expr(expr), levels)

    def _raise_one_level(self, name, levels=None):
        found = "one level" if levels is None else f"{len(levels)} level(s) {levels}"
        raise ValueError(
            f"The factor {name!r} in the formula {self.rhs!r} has {found} "
            "among the rows used; contrasts "
            "need 2 or more (R: contrasts can be applied only to factors "
            "with 2 or more levels). Drop the term or give rows of another "
            "level."
        )

    def _refuse_one_level_among(self, design):
        """The one-level rule on the rows the model uses (``design``'s),
        for ``factor(g)`` / ``C(g)``, whose levels formulaic learned from
        rows the model may drop: a main-effect term of one such factor whose
        columns take one pattern on every row codes one level."""
        if not design.shape[0]:
            return
        encoder = self._spec.encoder_state
        for label, columns in self.terms.items():
            variables = self._term_variables[label]
            expr = next(iter(variables)) if len(variables) == 1 else None
            if expr is None or expr in self._kinds or expr not in encoder:
                continue  # a data column's levels are the used rows' already
            kind, state = encoder[expr]
            if str(kind.value) != "categorical" or _is_logical(state):
                continue
            if np.unique(design[:, columns], axis=0).shape[0] == 1:
                self._raise_one_level(label)

    # -- fit / transform ------------------------------------------------------
    def fit_transform(self, frame, rows=None):
        """Learn the formula's state from ``frame`` and return the design.

        Parameters
        ----------
        frame : pandas.DataFrame
            Holds every column the formula uses (others are ignored).
        rows : ndarray of bool, default=None
            The rows the model keeps for what the formula does not see (a
            response, weight or group label present): a factor's levels are
            those of the rows used, as R's model.frame drops the levels left
            without a row by na.omit. None: every row.

        Returns
        -------
        matrix : ndarray of shape (n_samples, n_columns)
            float64 design without the intercept column; NaN rows where a
            used column is missing.
        names : list of str
            R's column names.
        """
        self._kinds = {}
        # Every row is evaluated, as R's model.frame evaluates each variable
        # on all of data before na.omit: scale(x) and poly(x) learn from the
        # rows missing y or another variable too; factor(k)'s levels are
        # those of the rows kept (_FIT_ROWS), R's drop.unused.levels.
        data, complete = self._prepare(frame, fitting=True, rows=rows, every_row=True)
        kept = complete if rows is None else complete & np.asarray(rows, bool)
        formulaic = _formulaic()
        token = _FIT_ROWS.set(None if kept.all() else kept)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                matrix = formulaic.model_matrix(
                    self._fit_rhs(),
                    data,
                    context=_r_context(),
                    na_action="ignore",
                    # sparse, then dense: many times faster than formulaic's
                    # dense output for categorical columns (1M rows, a
                    # 50-level factor: 0.4 s against 5 s)
                    output="sparse",
                )
        except Exception as exc:
            why = str(exc)
            if isinstance(exc.__cause__, PolyDataError):  # R's own refusal
                why = str(exc.__cause__)
            if "object has no attribute 'shape'" in why:  # max(x): one number
                why = (
                    "a term gives one number, not one value per row (R's "
                    "model.frame refuses it too: variable lengths differ)"
                )
            raise ValueError(
                f"Cannot evaluate the formula {self.rhs!r}: {why}"
            ) from exc
        finally:
            _FIT_ROWS.reset(token)
        self._spec = matrix.model_spec
        self._refuse_one_level_factors()
        self._layout()
        full = self._place(matrix, complete)
        if rows is not None:
            self._refuse_one_level_among(full[kept])
        if not kept.all():  # lmerTest's type III: the model's rows
            data = data.loc[kept].reset_index(drop=True)
        self._type3 = self._type3_contrasts(data, full[kept])
        return full, list(self.names)

    def transform(self, frame):
        """The design for new data, with the state learned at fit.

        Parameters
        ----------
        frame : pandas.DataFrame

        Returns
        -------
        ndarray of shape (n_samples, n_columns)

        Raises
        ------
        ValueError
            A used column is absent, changed kind, or holds a level of a
            categorical column not seen at fit.
        """
        if not hasattr(self, "_spec"):
            raise ValueError("FixedFormula.transform called before fit_transform.")
        data, complete = self._prepare(frame, fitting=False)
        self._refuse_new_levels(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # a level the check above missed must not pass as the reference
            warnings.simplefilter("error", _data_mismatch_warning())
            matrix = self._spec.get_model_matrix(data, context=_r_context())
        return self._place(matrix, complete)

    def _refuse_new_levels(self, data):
        """A level of ``factor(k)`` not seen at fit is an error, as R's
        predict says "factor factor(k) has new level 3"; formulaic only
        warns and codes the row as the reference level.

        The values of each such factor are compared with the levels
        formulaic learned at fit (its encoder state), not read from the
        text of formulaic's warning, which a new formulaic may word
        differently. A column named in the formula is checked (with its
        own message) by :meth:`_code_column`."""
        from formulaic.utils.stateful_transforms import stateful_eval

        spec, context = self._spec, None
        for expr, (kind, state) in spec.encoder_state.items():
            if str(kind.value) != "categorical" or expr in self._kinds:
                continue
            if context is None:
                context = spec.get_materializer(data, _r_context()).layered_context
            values = stateful_eval(
                expr, context, {expr: None}, spec.transform_state, spec
            )
            values = pd.Series(getattr(values, "__wrapped__", values)).dropna()
            fitted = set(state["categories"])
            unseen = [str(v) for v in pd.unique(values) if v not in fitted]
            if not unseen:
                continue
            factor, listed = self._r_expr(expr), ", ".join(unseen[:5])
            listed += " ..." if len(unseen) > 5 else ""
            raise ValueError(
                f"The formula {self.rhs!r} codes {factor} as a factor, and "
                f"these rows have level(s) not seen at fit: {listed}. A new "
                "level has no coefficient; R's predict refuses it too (factor "
                f"{factor} has new level{'s' if len(unseen) > 1 else ''} "
                f"{listed})."
            )

    def missing_values(self, frame):
        """Where the columns the formula reads hold missing values, in words.

        A row with a missing value gets NaN in every design column, so the
        design cannot say which data column was missing; this does.

        Parameters
        ----------
        frame : pandas.DataFrame
            Data with every column the formula uses (after fit or transform).

        Returns
        -------
        list of str
            ``"column 'x': NaN in 2 row(s)"``, ``"... inf in 1 row(s)"`` or,
            for a categorical column, ``"... missing in 1 row(s)"``.
        """
        return self.missing_words(self.missing_counts(frame))

    def missing_counts(self, frame):
        """Rows with NaN, inf and a missing label, per column the formula
        reads (in ``columns_used`` order): an array of shape (n, 3) that
        adds up over the parts of the data (a Dask fit's partitions)."""
        counts = np.zeros((len(self.columns_used), 3), dtype=np.int64)
        for j, name in enumerate(self.columns_used):
            column = frame[name]
            if self._kinds[name][0] == "numeric":
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
                counts[j, :2] = np.isnan(values).sum(), np.isinf(values).sum()
            else:
                counts[j, 2] = column.isna().sum()
        return counts

    def missing_words(self, counts):
        """:meth:`missing_values` of :meth:`missing_counts`."""
        parts = []
        for name, row in zip(self.columns_used, counts, strict=True):
            kinds = " and ".join(
                f"{kind} in {int(n)} row(s)"
                for kind, n in zip(("NaN", "inf", "missing"), row, strict=True)
                if n
            )
            if kinds:
                parts.append(f"column {name!r}: {kinds}")
        return parts

    # -- type III hypotheses ---------------------------------------------------
    def type3_hypotheses(self, fixed_names):
        """lmerTest's type III hypothesis of every term, on given coefficients.

        Parameters
        ----------
        fixed_names : list of str
            The estimator's fixed-effect names, ``"(Intercept)"`` included
            when fitted (columns it dropped as aliased are absent).

        Returns
        -------
        dict
            Term label -> contrast matrix of shape (q, len(fixed_names)),
            in formula order; a term left with no estimable contrast is
            absent.
        """
        own = ([_INTERCEPT] if self.has_intercept else []) + list(self.names)
        position = {name: j for j, name in enumerate(own)}
        take = [position[name] for name in fixed_names]
        out = {}
        for label, contrast in self._type3.items():
            sub = contrast[:, take]
            sub = sub[np.abs(sub).sum(axis=1) > 1e-8]
            if sub.shape[0]:
                out[label] = sub
        return out

    # -- helpers ---------------------------------------------------------------
    def _prepare(self, frame, fitting, rows=None, every_row=False):
        """The used columns, coded for formulaic, and the complete rows.

        At fit, a categorical column's levels are those of the rows used:
        ``rows`` and no missing value in any column the formula reads.
        ``every_row``: the data keep the incomplete rows too."""
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(
                f"A formula for the fixed effects ({self.rhs!r}) needs X as a "
                f"pandas DataFrame with the named columns; got "
                f"{type(frame).__name__}."
            )
        missing = [c for c in self.columns_used if c not in frame.columns]
        if missing:
            raise ValueError(_missing_column_message(missing, frame.columns, self.rhs))
        columns, complete = {}, np.ones(frame.shape[0], dtype=bool)
        used = _rows_used(frame, self.columns_used, rows) if fitting else None
        for name in self.columns_used:
            values, present = self._code_column(frame[name], name, fitting, used)
            columns[name] = values
            complete &= present
        data = pd.DataFrame(columns, index=pd.RangeIndex(frame.shape[0]))
        if not every_row and not complete.all():
            data = data.loc[complete].reset_index(drop=True)
        return data, complete

    def _code_column(self, column, name, fitting, used=None):
        """One column as formulaic should see it, and its non-missing rows
        (at fit, its levels are those of the ``used`` rows)."""
        if isinstance(column, pd.DataFrame):
            raise ValueError(f"X has several columns named {name!r}.")
        if fitting:
            self._kinds[name] = _column_kind(
                column if used is None or used.all() else column[used], name
            )
        kind, categories = self._kinds[name]
        if kind == "logical":
            return _logical_values(column, name)
        if kind == "numeric":
            if not _is_numeric(column):
                raise ValueError(
                    f"Column {name!r} was numeric at fit; got dtype {column.dtype}."
                )
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            return values, np.isfinite(values)
        factor, unseen = _coded(column, categories)
        if unseen and not fitting:
            raise ValueError(
                f"Column {name!r} has level(s) not seen at fit: "
                f"{unseen[:5]}{' ...' if len(unseen) > 5 else ''}. The fixed "
                f"effects of {name!r} know only its fitted levels "
                f"{[str(c) for c in categories][:10]}; a new level has no "
                "coefficient."
            )
        return factor, np.asarray(factor.codes) >= 0

    def _layout(self):
        """R's names, column order and terms, from formulaic's structure."""
        encoder = self._spec.encoder_state
        names, terms, columns, first = [], {}, [], 0
        self._term_variables, self._numeric_variables = {}, {}
        for entry in self._spec.structure:
            indices = list(range(first, first + len(entry.columns)))
            first += len(entry.columns)
            if str(entry.term) == "1":
                continue  # the intercept: the estimator adds its own
            exprs = [f.expr for f in entry.term.factors]
            r_order = sorted(range(len(exprs)), key=lambda i: self._rank(exprs[i]))
            pieces, keys = self._column_pieces(entry.columns, exprs, encoder)
            if pieces is None:
                # Names formulaic wrote in a form we do not parse: keep them.
                labelled = [
                    (i, _plain_name(c))
                    for i, c in zip(indices, entry.columns, strict=True)
                ]
            else:
                # R's column order: the first variable varies fastest.
                ranked = sorted(
                    range(len(indices)),
                    key=lambda c: tuple(keys[c][i] for i in reversed(r_order)),
                )
                labelled = [
                    (indices[c], ":".join(pieces[c][i] for i in r_order))
                    for c in ranked
                ]
            label = ":".join(self._r_expr(exprs[i]) for i in r_order)
            terms[label] = list(range(len(names), len(names) + len(labelled)))
            names += [name for _, name in labelled]
            columns += [index for index, _ in labelled]
            self._term_variables[label] = set(exprs)
            self._numeric_variables[label] = {
                e for e in exprs if _factor_kind(encoder, e) != "categorical"
            }
        self._columns = columns
        self.names = names
        self.terms = terms

    def _rank(self, expr):
        wrapped = re.fullmatch(re.escape(LOGICAL_TERM_CALL) + r"\((.*)\)", expr)
        if wrapped:  # a logical column as a factor term: ranked as written
            expr = wrapped.group(1)
        return self._variable_rank.get(expr, len(self._variable_rank))

    def _column_pieces(self, columns, exprs, encoder):
        """Per column, each factor's R piece and the index of its level."""
        pattern = re.compile(
            "^" + ":".join(re.escape(e) + r"(?:\[(.*?)\])?" for e in exprs) + "$"
        )
        pieces, keys, seen = [], [], [dict() for _ in exprs]
        for column in columns:
            match = pattern.match(column)
            if match is None:
                return None, None
            row, key = [], []
            for i, suffix in enumerate(match.groups()):
                piece = self._r_expr(exprs[i])
                if suffix is not None:
                    piece += _r_suffix(suffix, encoder.get(exprs[i]))
                row.append(piece)
                key.append(seen[i].setdefault(suffix, len(seen[i])))
            pieces.append(row)
            keys.append(key)
        return pieces, keys

    def _r_expr(self, expr):
        """A factor's expression as R prints it in names and labels."""
        try:
            text = r_deparse(expr)
        except ValueError:
            return expr
        if self._uses_factor and text.startswith("C(") and "," not in text:
            text = "factor(" + text[2:]
        return text

    def _place(self, matrix, complete):
        """formulaic's columns in R's order, intercept dropped, NaN rows back."""
        if hasattr(matrix, "tocsc"):
            # reorder the sparse columns, then one dense C-order copy
            ordered = _dense(matrix.tocsc()[:, self._columns])
        else:
            ordered = _dense(matrix)
            ordered = ordered.reshape(ordered.shape[0], -1)[:, self._columns]
        if complete.all():
            return np.ascontiguousarray(ordered)
        if ordered.shape[0] == complete.shape[0]:  # every row was evaluated
            full = np.ascontiguousarray(ordered)
            full[~complete] = np.nan
            return full
        full = np.full((complete.shape[0], ordered.shape[1]), np.nan)
        full[complete] = ordered
        return full

    def _type3_contrasts(self, data, design):
        """Each term's type III hypothesis over [intercept] + the columns."""
        p = len(self.names) + int(self.has_intercept)
        offset = int(self.has_intercept)
        contained = {
            label: [
                other
                for other in self.terms
                if self._term_variables[label] < self._term_variables[other]
                and self._numeric_variables[label] == self._numeric_variables[other]
            ]
            for label in self.terms
        }
        out = {}
        if not any(contained.values()) or design.shape[0] == 0:
            for label, cols in self.terms.items():
                out[label] = np.eye(p)[[offset + c for c in cols]]
            return out
        X = np.empty((design.shape[0], p))
        if self.has_intercept:
            X[:, 0] = 1.0
        X[:, offset:] = design
        rd_matrix = self._full_dummy_design(data)
        aliased = aliased_columns(X)
        kept = np.flatnonzero(~aliased)
        position = {int(j): k for k, j in enumerate(kept)}
        term_columns = {
            label: [position[offset + c] for c in cols if offset + c in position]
            for label, cols in self.terms.items()
        }
        degrees = {label: len(v) for label, v in self._term_variables.items()}
        hypotheses = type3_contrasts(
            X[:, kept], rd_matrix, term_columns, contained, degrees
        )
        for label, contrast in hypotheses.items():
            full = np.zeros((contrast.shape[0], p))
            full[:, kept] = contrast
            out[label] = full
        return out

    def _full_dummy_design(self, data):
        """The model with every factor coded by all its levels (lmerTest's rdX)."""
        formulaic = _formulaic()
        spec = formulaic.ModelSpec(
            formula=self._spec.formula,
            ensure_full_rank=False,
            na_action="ignore",
            output="sparse",
            transform_state=self._spec.transform_state,
            encoder_state=self._spec.encoder_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return _dense(spec.get_model_matrix(data, context=_r_context()))


def resolve_intercept(formula, fit_intercept, estimator):
    """Whether the model has an intercept, given a formula and ``fit_intercept``.

    The formula decides, as in R: ``"0 + x"`` fits no intercept whatever
    ``fit_intercept`` says. ``fit_intercept=False`` with a formula that
    keeps the intercept contradicts it and is an error (write ``"0 + ..."``).

    Parameters
    ----------
    formula : FixedFormula
    fit_intercept : bool
    estimator : str
        The estimator's name, for the message.

    Returns
    -------
    bool
    """
    if not fit_intercept and formula.has_intercept:
        raise ValueError(
            f"{estimator}: fit_intercept=False, but the fixed_effects formula "
            f"{formula.rhs!r} keeps the intercept. With a formula, the formula "
            f"decides: write '0 + {formula.rhs}' to drop the intercept, and "
            "leave fit_intercept at its default."
        )
    return formula.has_intercept


# -- small helpers ---------------------------------------------------------------
def check_calls(text, what):
    """Refuse a call of a function formulas cannot evaluate, naming it.

    ``what`` says whose text it is (``"The offset"``, ``"The fixed_effects
    formula"``). R's functions a formula evaluates are :data:`R_FUNCTIONS`
    (with formulaic's transforms, numpy's ``np.`` functions and Python's
    builtins); any other would otherwise be looked up as a column.
    """
    from formulaic.transforms import TRANSFORMS

    found = tokens(text) + [(None, None)]
    for (kind, tok), following in zip(found[:-1], found[1:], strict=True):
        if kind != "name" or following != ("op", "("):
            continue
        head = tok.split(".")[0]
        if (
            tok in _CONTEXT
            or tok in ("factor", "offset")  # factor: C; offset: explained later
            or head in TRANSFORMS
            or hasattr(builtins, tok)
        ):
            continue
        raise ValueError(
            f"{what} {text!r} calls {tok}(), which is not available here: "
            "formulas are evaluated by formulaic, with R's "
            f"{', '.join(R_FUNCTIONS)}, formulaic's transforms (C, bs, "
            "center, ...) and numpy's as np.name(). Compute the column in "
            f"the data first (data.assign(...)) and use its name."
        )


def _check_constant_terms(rhs, terms):
    """A term that reads no column (``I(2)``) is one number, not a column.

    R's model.frame refuses it ("variable lengths differ"); formulaic fails
    inside with "'int' object has no attribute 'shape'".
    """
    for term in terms:
        if str(term) in ("0", "1"):
            continue
        if all(not names_read(factor.expr) for factor in term.factors):
            raise ValueError(
                f"The fixed_effects formula {rhs!r} has the term "
                f"{r_deparse(str(term))!r}, which reads no column: a "
                "constant, not one value per row (R's model.frame refuses it "
                "too: variable lengths differ). The intercept is '1'."
            )


def _checked_rhs(rhs):
    """The formula text for formulaic, after checks that name the problem."""
    if not isinstance(rhs, str) or not rhs.strip():
        raise ValueError(
            f"fixed_effects must be a non-empty formula string; got {rhs!r}."
        )
    if "~" in rhs:
        raise ValueError(
            f"fixed_effects takes the right-hand side of a formula only; got "
            f"{rhs!r}. For a whole formula use from_formula(), skmixed.lmer() "
            "or skmixed.lm()."
        )
    # a '|' inside a call is R's 'or' (to_python makes it a call); any other
    # is a random-effects bar
    python = to_python(rhs)
    if "|" in python:
        raise ValueError(
            f"fixed_effects {rhs!r} holds a random-effects term (a '|'); "
            "those go in random_effects, e.g. random_effects='(1 | g)'."
        )
    if re.search(r"\boffset\s*\(", rhs):
        raise ValueError(_OFFSET_TERM.format(rhs=rhs))
    check_calls(rhs, "The fixed_effects formula")
    return python


def _columns_in_order(text, parsed):
    """Data columns the formula refers to, in order of appearance.

    Every plain name that is neither called (``log(``), nor an argument's
    keyword (``base=``), nor dotted (``contr.sum``, ``np.pi``; R's dotted
    names come backticked from ``to_python``) is a column; formulaic's own
    list is added (it misses the arguments of stateful transforms such as
    ``scale(x)``), without the functions it would look up there.
    """
    found = list(tokens(text)) + [(None, None)]
    ordered, called = [], set(_CONTEXT)
    for (kind, tok), (_, after) in zip(found[:-1], found[1:], strict=True):
        name = tok.strip("`") if kind == "backtick" else tok
        plain = kind == "backtick" or (kind == "name" and "." not in tok)
        if after == "(":
            called.add(name)
        if not plain or after in ("(", "=") or name in CONSTANTS:
            continue
        if name not in ordered:
            ordered.append(name)
    extra = sorted(set(parsed.required_variables) - set(ordered) - called)
    return ordered + extra


# lme4's offset(...) term: not a column, and no fixed effect
_OFFSET_TERM = (
    "The fixed_effects formula {rhs!r} has an offset(...) term, which "
    "this formula does not take. Give it as the estimator's offset= "
    "(offset='log(exposure)'), or pass the whole lme4 formula to "
    "from_formula, skmixed.lmer or skmixed.glmer, which read "
    "offset(...) terms."
)


def _missing_column_message(missing, columns, rhs):
    columns = [str(c) for c in columns]
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    return (
        f"The fixed_effects formula {rhs!r} uses column(s) not in X: "
        f"{', '.join(parts)}. X has columns {columns[:20]}."
    )


def _is_numeric(column):
    return pd.api.types.is_numeric_dtype(column.dtype) and not (
        pd.api.types.is_bool_dtype(column.dtype)
    )


def _column_kind(column, name):
    """("numeric", None) or ("categorical", levels) for a data column."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return "categorical", _used_categories(column)
    if pd.api.types.is_bool_dtype(column.dtype):
        return "logical", ["FALSE", "TRUE"]
    if _is_numeric(column):
        return "numeric", None
    if pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(
        column.dtype
    ):
        present = column[column.notna()]
        if len(present) and all(type(v) in (bool, np.bool_) for v in present):
            return "logical", ["FALSE", "TRUE"]  # True/False with None
        labels = {_label_string(v) for v in present.unique()}
        return "categorical", _r_level_order(labels)
    raise ValueError(
        f"Column {name!r} has dtype {column.dtype}, which a formula can use "
        "neither as a number nor as a factor."
    )


def _is_logical(state):
    """Whether formulaic's categorical state is a logical's (FALSE, TRUE),
    which R codes with both levels even when one value occurs."""
    categories = list(state.get("categories", []))
    return all(isinstance(c, bool | np.bool_) for c in categories)


def _rows_used(frame, names, rows):
    """The rows a fit uses: ``rows`` (all if None) with a value in every
    column the formula reads (finite numbers), as R's na.omit keeps them."""
    used = np.ones(frame.shape[0], dtype=bool) if rows is None else np.array(rows)
    for name in names:
        column = frame[name]
        if isinstance(column, pd.DataFrame):
            continue  # reported by _code_column
        if _is_numeric(column):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            used &= np.isfinite(values)
        else:
            used &= column.notna().to_numpy()
    return used


def _logical_values(column, name):
    """A logical column as booleans (R's TRUE/FALSE in an expression:
    ``b * 2``, ``b == TRUE``, ``!b``), and its non-missing rows; as a term
    of its own the formula codes it as a factor (see :func:`_logical_terms`).
    """
    present = column.notna().to_numpy()
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=bool, na_value=False), present
    labels = column[present].map(_label_string)
    wrong = sorted(set(labels) - {"FALSE", "TRUE"})
    if wrong:
        raise ValueError(
            f"Column {name!r} was logical (True/False) at fit; got dtype "
            f"{column.dtype} with values such as {wrong[:3]}."
        )
    values = np.zeros(column.shape[0], dtype=bool)
    values[present] = (labels == "TRUE").to_numpy()
    return values, present


def _logical_terms(python_rhs, names):
    """The formula with each logical column used as a term of its own
    (outside any call: ``b``, ``x:b``, ``(b + x)^2``) wrapped in
    :data:`LOGICAL_TERM_CALL`, a factor (FALSE, TRUE) as R's model.matrix
    codes a logical (column ``bTRUE``); inside a call it stays a logical."""
    found = tokens(python_rhs)
    out, calls = [], []
    for k, (kind, tok) in enumerate(found):
        after = found[k + 1 : k + 2]
        if (kind, tok) == ("op", "("):
            calls.append(bool(out) and out[-1][0] in ("name", "backtick"))
        elif (kind, tok) == ("op", ")") and calls:
            calls.pop()
        column = tok.strip("`") if kind in ("name", "backtick") else None
        if column in names and after != [("op", "(")] and not any(calls):
            out += [("name", LOGICAL_TERM_CALL), ("op", "("), (kind, tok)]
            out.append(("op", ")"))
        else:
            out.append((kind, tok))
    return r_join(out)


def _used_categories(column):
    """A categorical's categories that label some row, in their order.

    R's model.frame drops a factor's unused levels (``drop.unused.levels``
    in lm and lmer), and a subset of a pandas categorical keeps every
    category of the whole: a declared category without rows would be an
    all-zero column, an aliased coefficient R does not have.
    """
    codes = column.cat.codes.to_numpy()
    categories = column.cat.categories
    used = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0
    return [c for c, u in zip(categories, used, strict=True) if u]


def _coded(column, categories):
    """The column as a categorical with the fitted categories, and unseen labels.

    Labels are coded once per distinct value (not per row): a million rows
    of a categorical cost its codes, not a million string conversions.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        uniques = list(column.cat.categories)
    else:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        uniques = list(uniques)
    if all(isinstance(c, str) for c in categories):
        uniques = [_label_string(v) for v in uniques]
    position = pd.Index(categories).get_indexer(pd.Index(uniques, dtype=object))
    new_codes = np.where(codes >= 0, position[codes] if len(position) else -1, -1)
    used = np.zeros(len(uniques), dtype=bool)
    used[codes[codes >= 0]] = True
    unseen = sorted({str(uniques[i]) for i in np.flatnonzero(used & (position < 0))})
    factor = pd.Categorical.from_codes(new_codes, categories=categories)
    return factor, unseen


def _label_string(value):
    """A label as R's factor() would spell it (1.0 -> "1", 1e5 -> "1e+05",
    True -> "TRUE")."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating):
        return _float_label(float(value))  # 1e+05, 0.3: as.character's
    return str(value)


def _dense(matrix):
    """formulaic's (sparse) model matrix as a float64 array."""
    if hasattr(matrix, "toarray"):
        return np.asarray(matrix.toarray(), dtype=np.float64)
    return np.asarray(matrix, dtype=np.float64)


def _plain_name(column):
    """formulaic's ``x[T.a]`` / ``x[a]`` written R's way, ``xa``."""
    return re.sub(r"\[(?:T\.)?([^\]]*)\]", r"\1", column)


def _factor_kind(encoder, expr):
    state = encoder.get(expr)
    if state is None:
        return "numerical"
    return getattr(state[0], "value", str(state[0]))


def _r_suffix(suffix, state):
    """formulaic's level label as R writes it after the variable name."""
    if state is None or getattr(state[0], "value", "") != "categorical":
        return suffix  # a multi-column numeric factor: poly(x, 2)1
    # R spells a level as as.character() does: 2 for the number 2.0
    spelled = {str(c): _label_string(c) for c in state[1].get("categories", [])}
    if suffix.startswith("T.") and suffix[2:] in spelled:
        return spelled[suffix[2:]]
    return spelled.get(suffix, suffix)
