"""Whole R model formulas: ``lmer``/``lm`` calls and ``from_formula``.

``"Reaction ~ Days + (Days | Subject)"`` is split into what the estimators
take as parameters: the response's name, the fixed part's right-hand side
(``fixed_effects="Days"``) and the random-effects terms
(``random_effects="(Days | Subject)"``). The estimators store those
parameters as given and read them at fit, so a model made from a formula
is an ordinary scikit-learn estimator: it clones, takes ``set_params`` and
goes into a grid search like any other.

:func:`lmer` and :func:`lm` are the R-style entry points: they split the
formula, fit on ``data`` and return the fitted estimator, whose
``summary()`` prints the formula as R does. :func:`glmer` does the same
for lme4's generalized models: its response may be ``cbind(s, f)`` or an
expression (``s/n``), and ``offset(expr)`` terms become the estimator's
``offset=`` (see :func:`split_glmer_formula`).
"""

import warnings
from dataclasses import dataclass

from skmixed._rsyntax import names_read, r_deparse, tokens
from skmixed._stacklevel import user_stacklevel

__all__ = [
    "ModelFormula",
    "GLMMFormula",
    "fixed_effects_from_formula",
    "glmer",
    "lm",
    "lmer",
    "mixed_from_formula",
    "pooled_from_formula",
    "split_formula",
    "split_glmer_formula",
    "with_offset_column",
]


@dataclass(frozen=True)
class ModelFormula:
    """An R model formula, split into the estimators' parameters.

    Attributes
    ----------
    text : str
        The formula with R's spacing (as lme4 and ``lm`` print it).
    response : str
        The response column.
    fixed : str
        Right-hand side of the fixed part (``"1"`` when only random terms
        are given, as R's intercept is implicit).
    random : str or None
        The random-effects terms joined by ``" + "`` (None without any).
    """

    text: str
    response: str
    fixed: str
    random: str | None


def split_formula(formula):
    """Split ``"y ~ fixed + (terms | g)"`` into response, fixed and random parts.

    Parameters
    ----------
    formula : str
        An R model formula, lm's or lme4's.

    Returns
    -------
    ModelFormula

    Examples
    --------
    >>> f = split_formula("Reaction ~ Days + (Days|Subject)")
    >>> f.text, f.response, f.fixed, f.random
    ('Reaction ~ Days + (Days | Subject)', 'Reaction', 'Days', '(Days | Subject)')
    >>> split_formula("yield ~ 0 + nitro + (1 | Block/Variety)").fixed
    '0 + nitro'
    >>> split_formula("y ~ (1 | g)").fixed
    '1'
    """
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(
            f"Expected an R model formula such as 'y ~ x + (1 | g)', with one "
            f"'~'; got {formula!r}."
        )
    lhs, rhs = (part.strip() for part in formula.split("~"))
    response = _response(lhs, formula)
    if not rhs:
        raise ValueError(f"The formula {formula!r} has no right-hand side.")
    fixed, random = [], []
    for sign, summand in _summands(rhs, formula):
        if _is_random_term(summand):
            if sign == "-":
                raise ValueError(
                    f"A random-effects term cannot be subtracted: {formula!r}."
                )
            random.append(r_deparse(summand))
        else:
            fixed.append((sign, r_deparse(summand)))
    fixed_text = "".join(
        (f" {sign} " if k else ("-" if sign == "-" else "")) + text
        for k, (sign, text) in enumerate(fixed)
    )
    return ModelFormula(
        text=r_deparse(formula),
        response=response,
        fixed=fixed_text or "1",
        random=" + ".join(random) if random else None,
    )


def _response(lhs, formula):
    found = tokens(lhs)
    if len(found) != 1 or found[0][0] not in ("name", "backtick"):
        raise ValueError(
            f"The response of {formula!r} must be one column name; got {lhs!r} "
            "(transform the column in the data first)."
        )
    return found[0][1].strip("`")


def _summands(rhs, formula):
    """The right-hand side split at ``+`` and ``-`` outside brackets."""
    out, sign, depth, start = [], "+", 0, 0
    text = rhs
    positions = []
    pos = 0
    for kind, tok in tokens(text):
        pos = text.index(tok, pos)
        positions.append((kind, tok, pos))
        pos += len(tok)
    for k, (kind, tok, pos) in enumerate(positions):
        if kind == "op" and tok in ("(", "[", "{"):
            depth += 1
        elif kind == "op" and tok in (")", "]", "}"):
            depth -= 1
        elif kind == "op" and tok in ("+", "-") and depth == 0:
            piece = text[start:pos].strip()
            if piece:
                out.append((sign, piece))
            elif k:
                raise ValueError(f"Cannot read the formula {formula!r}.")
            sign, start = tok, pos + 1
    piece = text[start:].strip()
    if not piece:
        raise ValueError(f"The formula {formula!r} ends with an operator.")
    out.append((sign, piece))
    return out


def _is_random_term(summand):
    """``(lhs | g)`` or ``(lhs || g)``: a bar inside one pair of brackets."""
    found = tokens(summand)
    if len(found) < 3 or found[0][1] != "(" or found[-1][1] != ")":
        return False
    depth = 0
    for k, (kind, tok) in enumerate(found):
        depth += tok == "(" if kind == "op" else 0
        depth -= tok == ")" if kind == "op" else 0
        if depth == 0 and k < len(found) - 1:
            return False  # "(a) + (b)" is not one bracketed term
    return any(kind == "op" and tok in ("|", "||") for kind, tok in found)


# -- glmer's formulas: cbind(s, f) and offset(...) ---------------------------------
@dataclass(frozen=True)
class GLMMFormula:
    """An lme4 ``glmer`` formula: the response and offsets taken apart.

    Attributes
    ----------
    text : str
        The formula with R's spacing, offsets and all.
    response : str
        The left-hand side as R prints it (``"y"``, ``"s/n"``,
        ``"cbind(s, n - s)"``).
    cbind : tuple of str or None
        The successes and failures expressions of a ``cbind(s, f)`` response.
    offsets : tuple of str
        The expressions of the ``offset(...)`` terms, in order.
    model : ModelFormula
        The formula without its offsets (its ``fixed`` and ``random`` parts
        are the estimator's parameters).
    """

    text: str
    response: str
    cbind: tuple | None
    offsets: tuple
    model: ModelFormula

    @property
    def offset(self):
        """The estimator's ``offset``: the offsets' sum (None without)."""
        return " + ".join(self.offsets) if self.offsets else None


def split_glmer_formula(formula):
    """Split a ``glmer`` formula: response, offsets, fixed and random parts.

    Parameters
    ----------
    formula : str

    Returns
    -------
    GLMMFormula

    Examples
    --------
    >>> f = split_glmer_formula(
    ...     "cbind(s, n-s) ~ x + (1|g) + offset(log(e))")
    >>> f.response, f.cbind, f.offset, f.model.fixed, f.model.random
    ('cbind(s, n - s)', ('s', 'n - s'), 'log(e)', 'x', '(1 | g)')
    """
    if not isinstance(formula, str) or formula.count("~") != 1:
        split_formula(formula)  # its error names the problem
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs:
        raise ValueError(f"The formula {formula!r} has no response (left of '~').")
    if not rhs:
        raise ValueError(f"The formula {formula!r} has no right-hand side.")
    rest, offsets = [], []
    for sign, summand in _summands(rhs, formula):
        inside = _call_argument(summand, "offset")
        if inside is None:
            rest.append((sign, summand))
        elif sign == "-":
            raise ValueError(f"An offset cannot be subtracted: {formula!r}.")
        else:
            offsets.append(r_deparse(inside))
    rest_text = "".join(
        (f" {sign} " if k else ("-" if sign == "-" else "")) + text
        for k, (sign, text) in enumerate(rest)
    )
    model = split_formula(f"y ~ {rest_text or '1'}")
    inside = _call_argument(lhs, "cbind")
    cbind = None
    if inside is not None:
        cbind = tuple(r_deparse(arg) for arg in _top_level_split(inside, ","))
        if len(cbind) != 2 or not all(cbind):
            raise ValueError(
                f"The response of {formula!r} must be cbind(successes, failures), "
                f"two expressions; got {r_deparse(lhs)!r}."
            )
    return GLMMFormula(
        text=r_deparse(formula),
        response=r_deparse(lhs),
        cbind=cbind,
        offsets=tuple(offsets),
        model=model,
    )


def _call_argument(text, function):
    """The text inside ``function(...)`` when ``text`` is that one call, else None."""
    found = tokens(text)
    if len(found) < 3 or found[0] != ("name", function) or found[1] != ("op", "("):
        return None
    if found[-1] != ("op", ")"):
        return None
    depth = 0
    for k, (kind, tok) in enumerate(found[1:], start=1):
        if kind == "op" and tok in ("(", "[", "{"):
            depth += 1
        elif kind == "op" and tok in (")", "]", "}"):
            depth -= 1
            if depth == 0 and k < len(found) - 1:
                return None  # "offset(a) * b": the call is not the whole term
    start = text.index("(") + 1
    return text[start : text.rindex(")")].strip()


def _top_level_split(text, separator):
    """``text`` split at ``separator`` outside brackets."""
    pieces, depth, current = [], 0, []
    for kind, tok in tokens(text):
        if kind == "op" and tok in ("(", "[", "{"):
            depth += 1
        elif kind == "op" and tok in (")", "]", "}"):
            depth -= 1
        if depth == 0 and kind == "op" and tok == separator:
            pieces.append(" ".join(current))
            current = []
        else:
            current.append(tok)
    pieces.append(" ".join(current))
    return [p.strip() for p in pieces]


def _plain_name(text):
    """Whether text is one plain R name (no backticks needed)."""
    try:
        found = tokens(text)
    except ValueError:
        return False
    return len(found) == 1 and found[0] == ("name", text)


def _is_column_name(expr):
    found = tokens(expr)
    return len(found) == 1 and found[0][0] in ("name", "backtick")


def _refuse_text_column(column, expr, what):
    """Numbers stored as text ("3") are not numbers: R's arithmetic refuses
    them, where pandas' conversion to float would read them."""
    import pandas as pd

    from skmixed._inputs import first_text

    if pd.api.types.is_numeric_dtype(column.dtype):  # bools included
        return
    example = first_text(column)
    if example is not None:
        raise ValueError(
            f"{what.capitalize()} {expr!r} is not numeric: text (dtype "
            f"{column.dtype}, e.g. {example!r}). Convert numbers stored as text "
            f"first: data[{expr.strip('`')!r}].astype(float)."
        )


def _is_logical_pair(names):
    """Whether columns are one logical's FALSE and TRUE (``0 + I(x > 0)``)."""
    return (
        len(names) == 2
        and names[0].endswith("FALSE")
        and names[1].endswith("TRUE")
        and names[0][: -len("FALSE")] == names[1][: -len("TRUE")]
    )


def evaluate_expression(expr, data, what):
    """An R expression over ``data``'s columns as a float array (R's arithmetic).

    ``what`` names the expression's role in error messages (``"the offset"``).
    """
    import numpy as np

    if _is_column_name(expr):
        name = expr.strip("`")
        if name not in data.columns:
            raise ValueError(
                f"{what.capitalize()} {expr!r} is not a column of data (columns: "
                f"{[str(c) for c in data.columns]})."
            )
        column = data[name]
        _refuse_text_column(column, expr, what)
        try:
            return column.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError(
                f"{what.capitalize()} {expr!r} is not numeric (dtype {column.dtype})."
            ) from None
    from skmixed._formula import FixedFormula, check_calls

    check_calls(expr, what.capitalize())
    used = names_read(expr)
    missing = [n for n in used if n not in data.columns]
    if missing:
        raise ValueError(
            f"{what.capitalize()} {expr!r} uses column(s) not in data: "
            f"{missing} (columns: {[str(c) for c in data.columns]})."
        )
    if not used:
        raise ValueError(
            f"{what.capitalize()} {expr!r} reads no column: a constant, not one "
            "value per row (R's model.frame refuses it too: variable lengths "
            "differ). A constant offset only shifts the intercept; to add it "
            "anyway, put it in a column of the data."
        )
    try:
        matrix, names = FixedFormula(f"0 + I({expr})").fit_transform(data)
    except ValueError as exc:
        raise ValueError(f"Cannot compute {what} {expr!r}: {exc}") from None
    values = np.asarray(matrix, dtype=np.float64)
    if _is_logical_pair(names):
        values = values[:, 1:]  # a logical (I()'s factor, as R's): TRUE as 1
    if values.ndim != 2 or values.shape[1] != 1:
        raise ValueError(
            f"{what.capitalize()} {expr!r} does not give one number per row."
        )
    return values[:, 0]


def offset_expression_columns(offset):
    """The columns an offset given as an R expression reads
    (``"log(exposure)"``: ``["exposure"]``), or None when ``offset`` is no
    expression: a column's label or position, or not R syntax."""
    if not isinstance(offset, str):
        return None
    try:
        if _is_column_name(offset):
            return None
    except ValueError:  # not R syntax: a plain label
        return None
    return names_read(offset)


def with_offset_column(X, offset):
    """``X`` with the column of an offset expression (``"log(exposure)"``) added.

    A GLMM's ``offset`` names a column of X; an R expression over X's
    columns, as lme4's ``offset(log(exposure))``, is computed from the rows
    it is given, at fit and at predict alike (a column of that name in X is
    used as it is); an X without column names cannot hold its inputs and is
    refused. Anything else is returned unchanged.
    """
    import pandas as pd

    if offset_expression_columns(offset) is None or (
        isinstance(X, pd.DataFrame) and offset in X.columns
    ):
        return X  # (a missing column: the input checks name it)
    if not hasattr(X, "columns"):  # (Dask frames are refused later)
        raise ValueError(
            f"The offset {offset!r} is an R expression of X's columns, so X "
            f"must be a pandas DataFrame holding them (got {type(X).__name__})."
        )
    if not isinstance(X, pd.DataFrame):
        return X
    values = evaluate_expression(offset, X, "the offset")
    return X.assign(**{offset: values})


# -- from_formula -----------------------------------------------------------------
def _check_params(cls, params, taken):
    clash = [name for name in taken if name in params]
    if clash:
        raise TypeError(
            f"{cls.__name__}.from_formula takes {clash} from the formula; do not "
            "pass them as well."
        )


def mixed_from_formula(cls, formula, params, glmer=False):
    """Mixed-model parameters from an lme4 formula (unfitted model).

    The response is the caller's (fit's ``y``): one column for lmer, as
    glmer takes it with ``glmer=True``; ``offset(...)`` terms give
    ``offset``, their sum when there are several.
    """
    if not glmer:
        split_formula(formula)  # lmer's response is one column: said here
    f = split_glmer_formula(formula)
    if f.model.random is None:
        hint = (
            "; glmer needs at least one."
            if glmer
            else ": for lm's formula use PooledRegressor.from_formula or skmixed.lm."
        )
        raise ValueError(
            f"{formula!r} has no random-effects term such as (1 | g){hint}"
        )
    taken = ("random_effects", "fixed_effects") + (("offset",) if f.offsets else ())
    _check_params(cls, params, taken)
    if f.offsets:
        params = {**params, "offset": f.offset}
    model = cls(random_effects=f.model.random, fixed_effects=f.model.fixed, **params)
    model._formula_text = f.text
    return model


def pooled_from_formula(cls, formula, params):
    """``PooledRegressor`` parameters from lm's formula (unfitted model)."""
    f = split_formula(formula)
    if f.random is not None:
        raise ValueError(
            f"{formula!r} has random-effects terms: use "
            "MixedLMRegressor.from_formula or skmixed.lmer."
        )
    _check_params(cls, params, ("fixed_effects",))
    model = cls(fixed_effects=f.fixed, **params)
    model._formula_text = f.text
    return model


def fixed_effects_from_formula(cls, formula, group, params):
    """``FixedEffectsRegressor`` parameters from ``y ~ x + g`` or ``y ~ x * g``.

    The grouping factor is ``group``, or else the formula's last term of a
    single variable; its interactions with other variables are group slopes
    (``x:g``); every other term is the fixed part.
    """
    f = split_formula(formula)
    if f.random is not None:
        raise ValueError(
            f"{formula!r} has random-effects terms: use "
            "MixedLMRegressor.from_formula or skmixed.lmer."
        )
    _check_params(cls, params, ("group", "group_slopes", "fixed_effects"))
    intercept, terms = _terms_of(f.fixed, formula)
    if not intercept:
        raise ValueError(
            f"{formula!r} drops the intercept; FixedEffectsRegressor codes the "
            "group with R's treatment contrasts, whose reference level is the "
            "(Intercept)."
        )
    if group is None:
        singles = [t[0] for t in terms if len(t) == 1]
        if not singles:
            raise ValueError(f"{formula!r} names no grouping factor (y ~ x + g).")
        group = singles[-1]
    if (group,) not in terms:
        raise ValueError(f"The grouping factor {group!r} is not a term of {formula!r}.")
    slopes, fixed = [], []
    for term in terms:
        if group not in term:
            fixed.append(":".join(term))
        elif len(term) == 2:
            slopes.append(term[0] if term[1] == group else term[1])
        elif len(term) > 2:
            raise ValueError(
                f"{formula!r}: FixedEffectsRegressor fits group intercepts and "
                f"slopes (x:{group}); the term {':'.join(term)} is beyond it."
            )
    missing = [s for s in slopes if (s,) not in terms]
    if missing:
        raise ValueError(
            f"{formula!r}: a group slope needs its main effect too (add {missing})."
        )
    model = cls(
        group=group,
        group_slopes=slopes or None,
        fixed_effects=" + ".join(fixed) if fixed else "1",
        **params,
    )
    model._formula_text = f.text
    return model


def _terms_of(rhs, formula):
    """(intercept, terms as tuples of R-spelled variables) of a right-hand side."""
    import formulaic

    from skmixed._rsyntax import to_python

    try:
        parsed = formulaic.Formula(to_python(rhs))
    except Exception as exc:  # formulaic's parse errors have many types
        raise ValueError(f"Cannot read the formula {formula!r}: {exc}") from None
    intercept = any(str(t) == "1" for t in parsed)
    terms = [
        tuple(r_deparse(factor.expr) for factor in t.factors)
        for t in parsed
        if str(t) != "1"
    ]
    return intercept, terms


def model_formula_text(model, response):
    """The formula a model with a formula fixed part prints (lme4's, lm's).

    The text it was made from by ``from_formula`` when its parameters still
    say the same thing, else the formula rebuilt from them.
    """
    from skmixed.mixed.terms import format_random_effects

    fixed = r_deparse(model.fixed_effects)
    random = getattr(model, "random_effects", None)
    random = format_random_effects(random) if isinstance(random, str) else None
    stored = getattr(model, "_formula_text", None)
    if stored is not None:
        f = split_glmer_formula(stored)
        said = (f.response, f.model.fixed, f.model.random, f.offset)
        if said == (response, fixed, random, getattr(model, "offset", None)):
            return f.text
    return f"{response} ~ {' + '.join([fixed] + ([random] if random else []))}"


def lm_formula_text(model, response):
    """What an lm-type model with a formula fixed part prints as its formula.

    Returns ``(text, made_from_formula)``: the text ``from_formula`` was
    given, when the parameters still say the same; else, for
    PooledRegressor, the formula rebuilt from them. None when the fixed part
    is not a formula (or for a FixedEffectsRegressor not made from one: it
    writes its own).
    """
    fixed = getattr(model, "fixed_effects", None)
    if not isinstance(fixed, str):
        return None
    stored = getattr(model, "_formula_text", None)
    if stored is not None and _same_lm_model(model, stored, response):
        return split_formula(stored).text, True
    if hasattr(model, "group_slopes"):
        return None
    return f"{response} ~ {r_deparse(fixed)}", False


def _same_lm_model(model, stored, response):
    """Whether the formula ``stored`` still gives the model's parameters."""
    kwargs = {"group": model.group} if hasattr(model, "group_slopes") else {}
    try:
        again = type(model).from_formula(stored, **kwargs)
    except (TypeError, ValueError):
        return False
    same = r_deparse(again.fixed_effects) == r_deparse(model.fixed_effects)
    if kwargs:
        slopes = model.group_slopes
        slopes = [slopes] if isinstance(slopes, str) else slopes
        same &= again.group == model.group and again.group_slopes == (
            list(slopes) if slopes else None
        )
    return same and split_formula(stored).response == response


# -- R-style entry points -----------------------------------------------------------
def lmer(formula, data, REML=True, weights=None, offset=None, **params):  # noqa: N803
    """Fit a linear mixed model from an lme4 formula, as ``lme4::lmer`` does.

    Parameters
    ----------
    formula : str
        lme4's formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``. The
        fixed part is an R formula (categorical columns get R's treatment
        contrasts; see :class:`~skmixed.MixedLMRegressor`'s
        ``fixed_effects``). ``offset(expr)`` terms are known parts of the
        response: the model is fitted to y minus their sum.
    data : pandas.DataFrame
        Holds the response and every column the formula uses.
    REML : bool, default=True
        Restricted maximum likelihood (lme4's default) or maximum likelihood.
    weights : str or array-like, default=None
        Prior (precision) weights, lme4's ``weights=``: a column of ``data``
        or one weight per row (the estimator's ``sample_weight``).
    offset : str, default=None
        lme4's ``offset=`` argument: a column of ``data`` or an expression
        of its columns (``"log(e)"``), added to the formula's
        ``offset(...)`` terms.
    **params
        Other parameters of :class:`~skmixed.MixedLMRegressor`
        (``optimizer``, ``missing``, ...).

    Returns
    -------
    MixedLMRegressor
        The fitted model. Its ``offset`` is the offset expression, computed
        again from the columns of the rows given to ``predict``.

    Examples
    --------
    >>> import skmixed
    >>> from skmixed.datasets import load_sleepstudy
    >>> m = skmixed.lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy())
    >>> round(m.reml_criterion_, 2)
    1743.63
    """
    from skmixed.mixed import MixedLMRegressor

    _check_data(data, dask=True)
    model = MixedLMRegressor.from_formula(formula, reml=REML, **params)
    argument = _set_offset(model, split_glmer_formula(formula).offsets, offset, data)
    _fit_on(model, formula, data, weights)
    model._offset_argument = argument
    return model


def lm(formula, data, weights=None, **params):
    """Fit a linear model from an R formula, as ``stats::lm`` does.

    Parameters
    ----------
    formula : str
        R's formula, e.g. ``"yield ~ nitro + Variety"`` or
        ``"Reaction ~ Days * Subject"``.
    data : pandas.DataFrame
        Holds the response and every column the formula uses.
    weights : str or array-like, default=None
        Precision weights, R's ``weights=``: a column of ``data`` or one
        weight per row (the estimator's ``sample_weight``).
    **params
        Other parameters of :class:`~skmixed.PooledRegressor` (``cov_type``,
        ``group``, ``missing``).

    Returns
    -------
    PooledRegressor
        The fitted model; ``summary()`` is R's ``summary.lm``.

    Examples
    --------
    >>> import skmixed
    >>> from skmixed.datasets import load_sleepstudy
    >>> m = skmixed.lm("Reaction ~ Days + Subject", load_sleepstudy())
    >>> m.params_.round(3).head(3).to_dict()
    {'(Intercept)': 295.031, 'Days': 10.467, 'Subject309': -126.901}
    """
    from skmixed.pooled import PooledRegressor

    model = PooledRegressor.from_formula(formula, **params)
    return _fit_on(model, formula, data, weights)


#: glmer's families here (a Gaussian response is lmer's model).
_GLMER_FAMILIES = ("binomial", "poisson")


def glmer(
    formula, data, family="binomial", weights=None, nAGQ=1, offset=None, **params
):  # noqa: N803 (R's name)
    """Fit a generalized linear mixed model from a formula, as ``lme4::glmer``.

    Parameters
    ----------
    formula : str
        lme4's formula, e.g. ``"cbind(incidence, size - incidence) ~ period
        + (1 | herd)"`` or ``"y ~ x + (1 | g) + offset(log(exposure))"``. The
        fixed part is an R formula, as for :func:`lmer` (R's treatment
        contrasts for factors, interactions, ``0 +``). The response, as
        glmer takes it: for ``"binomial"`` a 0/1 column, a categorical
        (R's factor) or bool (the first category that occurs is the failure
        and every other the success, as R's binomial family; True is the
        success; text is refused, as glmer refuses a character
        response: ``.astype("category")`` makes labels a factor), a proportion
        with the trials in ``weights``, or ``cbind(successes, failures)``
        (columns or expressions such as ``n - s``), fitted as the
        proportion ``s / (s + f)`` with ``s + f`` trials; counts for
        ``"poisson"``. ``offset(expr)`` terms are added to the linear
        predictor with coefficient 1.
    data : pandas.DataFrame
        Holds the response and every column the formula uses.
    family : {"binomial", "poisson"}, default="binomial"
        The response distribution (its link is ``link=``, e.g.
        ``link="probit"``).
    weights : str or array-like, default=None
        Prior weights (the estimator's ``sample_weight``): the numbers of
        trials of a binomial proportion. A column of ``data`` or one per row.
    nAGQ : int, default=1
        1 = Laplace; more: adaptive Gauss-Hermite quadrature (one scalar
        random-effects term).
    offset : str, default=None
        lme4's ``offset=`` argument: a column of ``data`` or an expression
        of its columns (``"log(exposure)"``), added to the formula's
        ``offset(...)`` terms.
    **params
        Other parameters of :class:`~skmixed.MixedGLMRegressor` (``link``,
        ``vcov_method``, ``missing``, ...).

    Returns
    -------
    MixedGLMRegressor
        The fitted model. Its ``offset`` is the offset expression, computed
        again from the columns of the rows given to ``predict``.

    Examples
    --------
    >>> import skmixed
    >>> from skmixed.datasets import load_cbpp
    >>> m = skmixed.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                   load_cbpp(), family="binomial")
    >>> round(m.loglik_, 2)
    -92.03
    >>> m.fixed_effects_.round(3).to_dict()
    {'(Intercept)': -1.399, 'period2': -0.992, 'period3': -1.129, 'period4': -1.58}
    """
    import pandas as pd

    from skmixed.glmm.estimator import MixedGLMRegressor

    if isinstance(family, str) and family.lower() not in _GLMER_FAMILIES:
        hint = (
            " (for a Gaussian response use skmixed.lmer)"
            if family.lower()
            in (
                "gaussian",
                "normal",
            )
            else ""
        )
        raise ValueError(
            f"family={family!r} is not supported by glmer; expected one of "
            f"{list(_GLMER_FAMILIES)}{hint}."
        )
    _check_data(data, glmer=True)
    f = split_glmer_formula(formula)
    model = MixedGLMRegressor.from_formula(formula, family=family, nAGQ=nAGQ, **params)
    argument = _set_offset(model, f.offsets, offset, data)
    weights = _weights_of(weights, data)
    family_name = family if isinstance(family, str) else getattr(family, "name", "")
    y, weights = _glmer_response(f, data, family_name.lower(), weights, formula)
    if family_name.lower() == "binomial" and isinstance(y.dtype, pd.CategoricalDtype):
        # a factor response: its first level among the rows the fit keeps
        # fails (R drops the levels na.omit leaves unused first)
        y = _binary_as_numbers(y, y.name, _glmer_rows_kept(model, data, y, weights))
    # the estimator refuses a constant response on the rows it keeps, as
    # glmer's checkResponse does; a cbind's is a (successes, failures) pair
    model._cbind_response = f.cbind is not None
    with warnings.catch_warnings():
        if f.cbind is not None:
            # cbind's counts were checked in R's words for them (see
            # _warn_fractional_counts); the proportion times its trials is
            # then the same rows again
            warnings.filterwarnings("ignore", message="non-integer #successes")
        model.fit(data, y, sample_weight=weights)
    if f.cbind is not None:
        # the trials are cbind's, not prior weights given: lme4's summary
        # prints no Weights: line for them
        model._weights_name = None
    # lme4 prints offset= as the summary's " Offset:" line (the formula's
    # offset(...) terms stay in its formula line)
    model._offset_argument = argument
    return model


def _set_offset(model, formula_offsets, offset, data):
    """The model's ``offset``: the formula's ``offset(...)`` terms plus
    lme4's ``offset=`` argument (a column of ``data`` or an expression),
    checked against ``data`` now. Returns the argument as R prints it in
    the summary's ``Offset:`` line (None without one)."""
    offsets = list(formula_offsets)
    if offset is not None:
        if not isinstance(offset, str):
            raise ValueError(
                "offset must name a column of data or be an expression of its "
                f"columns, e.g. 'log(exposure)'; got {type(offset).__name__}."
            )
        # a column whose name is no plain name ("log e") in backticks, as
        # the formula's offset(`log e`); otherwise an expression
        offsets.append(
            f"`{offset}`"
            if offset in data.columns and not _plain_name(offset)
            else r_deparse(offset)
        )
    if offsets:
        model.set_params(offset=" + ".join(offsets))
        # its errors now (on a Dask DataFrame: from its columns, unread)
        evaluate_expression(model.offset, getattr(data, "_meta", data), "the offset")
    return offsets[-1] if offset is not None else None


def _glmer_response(f, data, family, weights, formula):
    """glmer's response as the estimator's y (named as R prints it) and weights."""
    import numpy as np
    import pandas as pd

    index = data.index
    if f.cbind is not None:
        if family != "binomial":
            raise ValueError(
                f"{formula!r}: a cbind(successes, failures) response is binomial "
                f"(as in glmer); family {family!r} takes one response column "
                "(counts for 'poisson')."
            )
        if weights is not None:
            raise ValueError(
                f"{formula!r}: a cbind(successes, failures) response gives the "
                "numbers of trials; do not pass weights as well. (R's glmer "
                "multiplies the trials by them: the proportion s / (s + f) with "
                "weights = w * (s + f) has the same estimates, its "
                "log-likelihood counting w * (s + f) trials.)"
            )
        s_text, f_text = f.cbind
        s = evaluate_expression(s_text, data, "the successes")
        fail = evaluate_expression(f_text, data, "the failures")
        for name, values in ((s_text, s), (f_text, fail)):
            bad = np.flatnonzero(values < 0)
            if bad.size:
                raise ValueError(
                    f"{f.response}: {name} is negative in {bad.size} row(s) (first: "
                    f"row {index[bad[0]]!r}, {values[bad[0]]:g}); successes and "
                    "failures are counts."
                )
        _warn_fractional_counts(f.response, ((s_text, s), (f_text, fail)))
        trials = s + fail
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(trials > 0, s / np.where(trials > 0, trials, 1.0), 0.0)
        y = np.where(np.isnan(trials), np.nan, y)
        return pd.Series(y, index=index, name=f.response), trials
    if _is_column_name(f.response):
        name = f.response.strip("`")
        if name not in data.columns:
            raise ValueError(
                f"The response {name!r} of {formula!r} is not a column of data."
            )
        y = data[name]
        if family == "binomial" and not isinstance(y.dtype, pd.CategoricalDtype):
            y = _binary_as_numbers(y, name)
        return y.rename(f.response), weights
    values = evaluate_expression(f.response, data, "the response")
    return pd.Series(values, index=index, name=f.response), weights


def _warn_fractional_counts(response, counts):
    """R's binomial()$initialize for a two-column response: counts off a
    whole number by more than 0.001 warn "non-integer counts in a binomial
    glm!" (a proportion times its weights says "#successes" instead)."""
    import numpy as np

    parts = []
    for name, values in counts:
        fractional = np.abs(values - np.round(values)) > 1e-3
        if fractional.any():
            parts.append(f"{name} in {int(fractional.sum())} row(s)")
    if parts:
        warnings.warn(
            f"non-integer counts in a binomial glm! ({response}: not whole "
            f"numbers: {'; '.join(parts)})",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _glmer_rows_kept(model, data, y, weights):
    """The rows of ``data`` a fit of ``model`` keeps (None: every row): with
    missing='drop' the rows missing the response, a formula column, a
    group label, the offset or a weight are dropped, as R's na.omit."""
    import numpy as np
    import pandas as pd

    if getattr(model, "missing", "error") != "drop":
        return None
    labels = pd.Series(np.where(y.isna(), np.nan, 0.0), index=y.index, name=y.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said once, by the fit itself
        inputs = model._validate(
            data, labels, None, reset=True, stage="fit", sample_weight=weights
        )
    return inputs.kept


def _binary_as_numbers(y, name, kept=None):
    """A bool or factor response as 0/1 (R: the first level fails, others
    succeed); a factor's levels are those of the ``kept`` rows (all: None)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(y.dtype):
        return y.astype(np.float64)
    if pd.api.types.is_numeric_dtype(y.dtype):
        return y
    if isinstance(y.dtype, pd.CategoricalDtype):
        used = y if kept is None else y[np.asarray(kept)]
        levels = [c for c in y.cat.categories if (used == c).any()]
    else:
        _refuse_text_response(y, name)
        levels = sorted(y.dropna().unique().tolist())
    # R's binomial()$initialize: y != levels(y)[1], so a factor of any number
    # of levels fits (the first fails, every other succeeds); lme4 drops
    # unused levels first, hence the levels that occur.
    if len(levels) < 2:
        raise ValueError(
            f"The binomial response {name!r} has {len(levels)} level(s) "
            f"{levels[:5]}; a factor response needs at least two (the first is "
            "failure, every other success). lme4's glmer refuses it too "
            "(Response is constant)."
        )
    out = (y != levels[0]).astype(np.float64)
    return out.where(y.notna(), np.nan)


def _refuse_text_response(y, name):
    """R's glmer refuses a character response ("response must be numeric or
    factor"): which text is failure would otherwise be an accident of sort
    order. A categorical says it (its first category fails)."""
    from skmixed._inputs import first_text

    example = first_text(y)
    if example is None:
        return
    raise ValueError(
        f"The binomial response {name!r} is text (dtype {y.dtype}, e.g. "
        f"{example!r}); R's glmer refuses a character response too (\"response "
        'must be numeric or factor"). Give numbers (0/1 stored as text: '
        f"data[{name!r}].astype(float)), a bool, or labels as a categorical "
        f"(data[{name!r}].astype('category'): its first category is failure)."
    )


def _fit_on(model, formula, data, weights=None):
    _check_data(data, dask=True)
    response = split_formula(formula).response
    if response not in data.columns:
        raise ValueError(
            f"The response {response!r} of {formula!r} is not a column of data."
        )
    return model.fit(data, data[response], sample_weight=_weights_of(weights, data))


def _check_data(data, dask=False, glmer=False):
    """``data`` is a pandas DataFrame (or, with ``dask``, a Dask one)."""
    import pandas as pd

    from skmixed._dask import is_dask_collection

    if is_dask_collection(data) and hasattr(data, "columns"):
        if dask:
            return
        if glmer:
            raise NotImplementedError(
                "glmer does not fit from Dask collections yet (MixedGLMRegressor "
                "cannot use the one-pass sums of the linear models). Fit on data "
                "in memory, data.compute(), or use lmer for a Gaussian response."
            )
    if not isinstance(data, pd.DataFrame):
        # the library's name too: a polars frame is also "a DataFrame"
        kind = f"{type(data).__module__.partition('.')[0]}.{type(data).__name__}"
        convert = " (data.to_pandas())" if hasattr(data, "to_pandas") else ""
        raise ValueError(
            "data must be a pandas DataFrame holding the formula's columns; got "
            f"{kind}: convert it to pandas{convert}."
        )


def _weights_of(weights, data):
    """lme4's ``weights=``: a column of ``data`` (by name) or the values."""
    if isinstance(weights, str):
        if weights not in data.columns:
            raise ValueError(f"weights={weights!r} is not a column of data.")
        weights = data[weights]
    return weights
