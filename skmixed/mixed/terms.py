"""Parse lme4's random-effects syntax into terms.

A spec is one or more bar terms joined by ``+``::

    "(1 | Subject)"                      random intercept
    "(Days | Subject)"                   correlated intercept and slope
    "(0 + Days | Subject)"               slope only (also "-1 + Days", "Days - 1")
    "(Days || Subject)"                  uncorrelated (one term per column)
    "(1 | School) + (1 | Subject:School)"  several factors, an interaction
    "(1 | batch/cask)"                   nesting: (1 | batch) + (1 | cask:batch)

The expansion and the factor names are lme4's, so that variance-component
tables and conditional modes carry the names an lme4 user knows
(``cask:batch``, ``c:(b:a)`` for ``a/b/c``).
"""

import re
from dataclasses import dataclass
from functools import lru_cache

_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*|`[^`]+`")


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(names | factor)``.

    Attributes
    ----------
    factor : str
        lme4's name of the grouping factor (``"Subject"``, ``"Subject:School"``,
        ``"cask:batch"``).
    components : tuple of str
        Grouping columns whose labels, joined by ``":"`` in this order, form
        the factor's levels.
    intercept : bool
        Whether the term has a random intercept.
    slopes : tuple of str
        Feature columns with random slopes.

    Examples
    --------
    >>> from skmixed.mixed.terms import parse_random_effects
    >>> term, = parse_random_effects("(Days | Subject)")
    >>> term.factor, term.names
    ('Subject', ['(Intercept)', 'Days'])
    """

    factor: str
    components: tuple
    intercept: bool
    slopes: tuple

    @property
    def names(self):
        """Column names of the term: ``"(Intercept)"`` first, then slopes."""
        return (["(Intercept)"] if self.intercept else []) + list(self.slopes)

    @property
    def n_columns(self):
        """Number of random effects per level of the factor."""
        return len(self.names)

    def __str__(self):
        lhs = " + ".join(self.names).replace("(Intercept)", "1")
        if not self.intercept:
            lhs = "0 + " + lhs
        return f"({lhs} | {self.factor})"


_BACKTICK_HINT = (
    " (a column whose name is not a plain name, such as 'Days^2' or "
    "'log dose', is written in backticks: `Days^2`)"
)


def _fail(spec, start, stop, message):
    """ValueError quoting the spec with the offending part underlined."""
    caret = " " * start + "^" * max(1, stop - start)
    raise ValueError(
        f"Invalid random-effects spec: {message}\n  {spec}\n  {caret}\n"
        "Expected lme4 syntax such as '(1 | g)', '(x | g)', '(0 + x | g)', "
        "'(x || g)', '(1 | a) + (1 | b)', '(1 | a:b)' or '(1 | a/b)'."
    )


def _split_top_level(spec):
    """Bar terms ``(...)`` joined by ``+``: list of (inner text, offset)."""
    pieces, depth, i, expect_term = [], 0, 0, True
    start = None
    while i < len(spec):
        ch = spec[i]
        if ch.isspace():
            i += 1
            continue
        if depth == 0:
            if expect_term and ch == "(":
                depth, start = 1, i
            elif not expect_term and ch == "+":
                expect_term = True
            else:
                what = "a '(' opening a term" if expect_term else "'+' between terms"
                stop = i + 1
                while stop < len(spec) and spec[stop] not in "+()":
                    stop += 1
                _fail(spec, i, stop, f"expected {what}, found {spec[i:stop]!r}")
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                pieces.append((spec[start + 1 : i], start + 1))
                expect_term = False
        i += 1
    if depth != 0:
        _fail(spec, start, len(spec), "unbalanced parentheses")
    if expect_term:
        where = len(spec.rstrip())
        what = "a term after '+'" if pieces else "at least one term"
        _fail(spec, where, where + 1, f"expected {what}")
    return pieces


def _strip_name(token):
    return token[1:-1] if token.startswith("`") else token


def _parse_lhs(spec, text, offset):
    """The left of the bar: (intercept, slope names)."""
    tokens = [
        (m.group(), offset + m.start(), offset + m.end())
        for m in re.finditer(r"`[^`]+`|[+-]|[^\s+\-`]+", text)
    ]
    if not tokens:
        _fail(spec, offset, offset + len(text) + 1, "nothing left of the bar")
    intercept, slopes, sign, expect_operand = True, [], "+", True
    for token, start, stop in tokens:
        if token in "+-":
            if not expect_operand:
                sign, expect_operand = token, True
                continue
            if token == "-" and sign == "+" and start == tokens[0][1]:
                sign = "-"  # a leading "-1"
                continue
            _fail(spec, start, stop, f"unexpected {token!r}")
        if not expect_operand:
            _fail(spec, start, stop, f"missing '+' before {token!r}")
        expect_operand = False
        if token in ("0", "1"):
            if sign == "-" and token == "0":
                _fail(spec, start, stop, "'- 0' is not meaningful")
            intercept = token == "1" and sign == "+"
        elif sign == "-":
            _fail(spec, start, stop, "only the intercept can be removed with '-'")
        elif not _NAME.fullmatch(token):
            _fail(spec, start, stop, f"{token!r} is not a column name{_BACKTICK_HINT}")
        elif _strip_name(token) in slopes:
            _fail(spec, start, stop, f"slope {_strip_name(token)!r} given twice")
        else:
            slopes.append(_strip_name(token))
        sign = "+"
    if expect_operand:
        _fail(spec, tokens[-1][1], tokens[-1][2], "a term is missing after this")
    if not slopes and not intercept:
        _fail(spec, offset, offset + len(text), "the term has no columns")
    return intercept, slopes


def _parse_factor_expr(spec, text, offset):
    """``a:b`` -> ("a", "b"); each name checked."""
    parts, position = [], 0
    for raw in text.split(":"):
        stripped = raw.strip()
        start = offset + position + (len(raw) - len(raw.lstrip()))
        if not stripped or not _NAME.fullmatch(stripped):
            _fail(
                spec,
                start,
                start + max(1, len(stripped)),
                f"{stripped!r} is not a grouping column name{_BACKTICK_HINT}"
                if stripped
                else "a grouping column name is missing",
            )
        parts.append(_strip_name(stripped))
        position += len(raw) + 1
    return tuple(parts)


def _parse_rhs(spec, text, offset):
    """The right of the bar: list of (factor name, components), nesting expanded."""
    pieces, position = [], 0
    for raw in text.split("/"):
        pieces.append(_parse_factor_expr(spec, raw, offset + position))
        position += len(raw) + 1
    # a/b/c -> a, b:a, c:(b:a) with labels joined inner to outer, as lme4 does.
    factors = []
    name, components = None, ()
    for piece in pieces:
        piece_name = ":".join(piece)
        if name is None:
            name, components = piece_name, piece
        else:
            outer = f"({name})" if ":" in name else name
            name, components = f"{piece_name}:{outer}", piece + components
        factors.append((name, components))
    return factors


def _parse_term(spec, inner, offset):
    match = re.search(r"\|\|?", inner)
    if match is None:
        _fail(spec, offset, offset + len(inner), "a random-effects term needs a '|'")
    if "|" in inner[match.end() :]:
        extra = inner.index("|", match.end())
        _fail(spec, offset + extra, offset + extra + 1, "more than one bar in a term")
    double = match.group() == "||"
    lhs, rhs = inner[: match.start()], inner[match.end() :]
    intercept, slopes = _parse_lhs(spec, lhs, offset)
    if not rhs.strip():
        _fail(spec, offset + match.end(), offset + len(inner) + 1, "no grouping factor")
    terms = []
    for factor, components in _parse_rhs(spec, rhs, offset + match.end()):
        if double:
            # lme4: (x || g) is (1 | g) + (0 + x | g), one term per column.
            if intercept:
                terms.append(RandomTerm(factor, components, True, ()))
            terms.extend(RandomTerm(factor, components, False, (s,)) for s in slopes)
        else:
            terms.append(RandomTerm(factor, components, intercept, tuple(slopes)))
    return terms


def parse_random_effects(spec):
    """Parse an lme4 random-effects spec into a list of terms.

    Parameters
    ----------
    spec : str
        Bar terms joined by ``+``, e.g. ``"(Days | Subject)"`` or
        ``"(1 | School/Subject)"``.

    Returns
    -------
    list of RandomTerm
        In the order written, with ``||`` and ``/`` expanded as lme4 does.

    Raises
    ------
    ValueError
        When the spec is not valid; the message points at the offending part.

    Examples
    --------
    >>> from skmixed.mixed.terms import parse_random_effects
    >>> [str(t) for t in parse_random_effects("(Days || Subject)")]
    ['(1 | Subject)', '(0 + Days | Subject)']
    >>> [t.factor for t in parse_random_effects("(1 | batch/cask)")]
    ['batch', 'cask:batch']
    """
    if not isinstance(spec, str):
        raise ValueError(
            f"random_effects must be a string such as '(1 | g)'; got {spec!r}."
        )
    return list(_parse(spec))


@lru_cache(maxsize=64)
def _parse(spec):
    """The terms of a spec, as a tuple (cached: an estimator reads its spec
    several times per fit and predict; the terms are immutable)."""
    terms = []
    for inner, offset in _split_top_level(spec):
        terms.extend(_parse_term(spec, inner, offset))
    return tuple(terms)


def grouping_columns(terms):
    """The grouping columns the terms need, each once, in first-use order."""
    names = []
    for term in terms:
        for component in term.components:
            if component not in names:
                names.append(component)
    return names


def slope_columns(terms):
    """The feature columns with random slopes, each once, in first-use order."""
    names = []
    for term in terms:
        for slope in term.slopes:
            if slope not in names:
                names.append(slope)
    return names


def format_random_effects(spec):
    """The spec spaced as lme4 prints it in a formula.

    R deparses ``(1|Block/Variety)`` as ``(1 | Block/Variety)``: spaces around
    the bar and around ``+``/``-`` on its left, none inside the grouping
    expression. The terms are kept as written (``/`` and ``||`` unexpanded).

    Parameters
    ----------
    spec : str
        A valid random-effects spec.

    Returns
    -------
    str

    Examples
    --------
    >>> from skmixed.mixed.terms import format_random_effects
    >>> format_random_effects("(1|Block/Variety)")
    '(1 | Block/Variety)'
    >>> format_random_effects("(1+Days||Subject) + (0+Days|School : Subject)")
    '(1 + Days || Subject) + (0 + Days | School:Subject)'
    """
    parse_random_effects(spec)  # only valid specs are formatted
    pieces = []
    for inner, _ in _split_top_level(spec):
        bar = re.search(r"\|\|?", inner)
        lhs, rhs = inner[: bar.start()], inner[bar.end() :]
        tokens = re.findall(r"`[^`]+`|[+-]|[^\s+\-`]+", lhs)
        left = " ".join(tokens)
        right = "".join(re.findall(r"`[^`]+`|[^\s`]+", rhs))
        pieces.append(f"({left} {bar.group()} {right})")
    return " + ".join(pieces)
