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
``summary()`` prints the formula as R does.
"""

from dataclasses import dataclass

from skmixed._rsyntax import r_deparse, tokens

__all__ = [
    "ModelFormula",
    "fixed_effects_from_formula",
    "lm",
    "lmer",
    "mixed_from_formula",
    "pooled_from_formula",
    "split_formula",
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


# -- from_formula -----------------------------------------------------------------
def _check_params(cls, params, taken):
    clash = [name for name in taken if name in params]
    if clash:
        raise TypeError(
            f"{cls.__name__}.from_formula takes {clash} from the formula; do not "
            "pass them as well."
        )


def mixed_from_formula(cls, formula, params):
    """``MixedLMRegressor`` parameters from an lme4 formula (unfitted model)."""
    f = split_formula(formula)
    if f.random is None:
        raise ValueError(
            f"{formula!r} has no random-effects term such as (1 | g): for lm's "
            "formula use PooledRegressor.from_formula or skmixed.lm."
        )
    _check_params(cls, params, ("random_effects", "fixed_effects"))
    model = cls(random_effects=f.random, fixed_effects=f.fixed, **params)
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
        f = split_formula(stored)
        if (f.response, f.fixed, f.random) == (response, fixed, random):
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
def lmer(formula, data, REML=True, weights=None, **params):  # noqa: N803 (R's name)
    """Fit a linear mixed model from an lme4 formula, as ``lme4::lmer`` does.

    Parameters
    ----------
    formula : str
        lme4's formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``. The
        fixed part is an R formula (categorical columns get R's treatment
        contrasts; see :class:`~skmixed.MixedLMRegressor`'s
        ``fixed_effects``).
    data : pandas.DataFrame
        Holds the response and every column the formula uses.
    REML : bool, default=True
        Restricted maximum likelihood (lme4's default) or maximum likelihood.
    weights : str or array-like, default=None
        Prior (precision) weights, lme4's ``weights=``: a column of ``data``
        or one weight per row (the estimator's ``sample_weight``).
    **params
        Other parameters of :class:`~skmixed.MixedLMRegressor`
        (``optimizer``, ``missing``, ...).

    Returns
    -------
    MixedLMRegressor
        The fitted model.

    Examples
    --------
    >>> import skmixed
    >>> from skmixed.datasets import load_sleepstudy
    >>> m = skmixed.lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy())
    >>> round(m.reml_criterion_, 2)
    1743.63
    """
    from skmixed.mixed import MixedLMRegressor

    model = MixedLMRegressor.from_formula(formula, reml=REML, **params)
    return _fit_on(model, formula, data, weights)


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


def _fit_on(model, formula, data, weights=None):
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise ValueError(
            f"data must be a pandas DataFrame holding the formula's columns; got "
            f"{type(data).__name__}."
        )
    response = split_formula(formula).response
    if response not in data.columns:
        raise ValueError(
            f"The response {response!r} of {formula!r} is not a column of data."
        )
    if isinstance(weights, str):
        if weights not in data.columns:
            raise ValueError(f"weights={weights!r} is not a column of data.")
        weights = data[weights]
    return model.fit(data, data[response], sample_weight=weights)
