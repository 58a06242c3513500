"""R formula text: printed the way R deparses it, evaluated the way Python can.

A formula is read as a stream of tokens (names, numbers, strings, operators,
brackets). :func:`r_deparse` prints them with R's spacing (``x + 1``,
``x * 2``, ``x/2``, ``x^2``, ``a:b``, ``(1 | Block/Variety)``), which is how
lme4 and ``lm`` echo a formula and how R names a transformed column
(``I(x^2)``, ``log(x + 1)``). :func:`to_python` rewrites the R spellings that
formulaic would otherwise evaluate as Python (``^`` inside a call is a
power, not XOR; ``factor(g)`` is formulaic's ``C(g)``).
"""

import re

__all__ = ["CONSTANTS", "names_read", "r_deparse", "to_python", "tokens"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<backtick>`[^`]*`)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
  | (?P<name>[A-Za-z_.][A-Za-z0-9_.]*)
  | (?P<op>\*\*|\|\||&&|==|!=|<=|>=|%[^%]*%|[-+*/^:|~=<>!&,()\[\]{}])
    """,
    re.VERBOSE,
)

# A syntactic R name (R deparses it without backticks) and R's reserved words.
_SYNTACTIC = re.compile(r"^(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*$")
_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break"}
_RESERVED |= {"TRUE", "FALSE", "NULL", "Inf", "NaN", "NA", "in"}
# Dotted names formulaic reads as attribute access: numpy's and its contrasts.
_NAMESPACES = ("np.", "contr.")

# R's deparse puts spaces around these binary operators...
_SPACED = {"+", "-", "*", "|", "||", "~", "==", "!=", "<=", ">=", "<", ">", "&"}
_SPACED |= {"&&", "=", "%in%"}
# ...and none around these.
_TIGHT = {"/", ":", "^", "%%", "%/%"}
_OPENING = {"(", "[", "{", ","}


def tokens(text):
    """Split formula text into ``(kind, text)`` tokens (spaces dropped).

    Raises
    ------
    ValueError
        A character that belongs to no token.
    """
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(
                f"Cannot read the formula {text!r} at position {pos} "
                f"({text[pos : pos + 10]!r})."
            )
        kind = match.lastgroup
        if kind != "space":
            out.append((kind, match.group()))
        pos = match.end()
    return out


def _is_unary(previous):
    """Whether a ``+``/``-`` after ``previous`` is a sign, not an operator."""
    if previous is None:
        return True
    kind, text = previous
    return kind == "op" and text not in (")", "]", "}")


def r_deparse(text):
    """Formula or expression text with R's spacing and spellings.

    Python's ``**`` becomes ``^`` and strings take double quotes, as R
    prints them.

    Examples
    --------
    >>> r_deparse("Reaction~Days+(Days|Subject)")
    'Reaction ~ Days + (Days | Subject)'
    >>> r_deparse("I(x ** 2) + log(x+1) + x/2")
    'I(x^2) + log(x + 1) + x/2'
    >>> r_deparse("C(V, contr.treatment(base='b'))")
    'C(V, contr.treatment(base = "b"))'
    >>> r_deparse("yield ~ 0 + nitro + (1|Block/Variety)")
    'yield ~ 0 + nitro + (1 | Block/Variety)'
    """
    out, previous = [], None
    for kind, tok in tokens(text):
        if kind == "op" and tok == "**":
            tok = "^"
        if kind == "string" and tok.startswith("'"):
            tok = '"' + tok[1:-1].replace('"', '\\"') + '"'
        if kind == "backtick" and _is_syntactic(tok[1:-1]):
            tok = tok[1:-1]  # R writes `exp.time` as exp.time
        if kind == "op" and tok in ("+", "-", "!") and _is_unary(previous):
            out.append(tok)
        elif kind == "op" and (tok in _SPACED or tok.startswith("%")):
            spaced = tok in _SPACED or tok not in _TIGHT
            out.append(f" {tok} " if spaced else tok)
        elif kind == "op" and tok == ",":
            out.append(", ")
        else:
            out.append(tok)
        previous = (kind, tok)
    return "".join(out).strip()


def to_python(text):
    """R spellings in a formula's right-hand side, rewritten for formulaic.

    Inside a function call (``I(x^2)``, ``log(x^2)``), ``^`` is a power and
    becomes ``**``; outside, it is the formula's own interaction power
    (``(a + b)^2``) and stays. ``factor(g)`` becomes ``C(g)``, formulaic's
    categorical encoding.

    Examples
    --------
    >>> to_python("(a + b)^2 + I(x^2) + factor(g)")
    '(a + b)^2 + I(x ** 2) + C(g)'
    >>> to_python("log(exp.time) + C(f, contr.sum)")
    'log(`exp.time`) + C(f, contr.sum)'
    """
    pieces, calls, previous = [], [], None
    found = tokens(text)
    for k, (kind, tok) in enumerate(found):
        if kind == "op" and tok == "(":
            calls.append(previous is not None and previous[0] in ("name", "backtick"))
        elif kind == "op" and tok == ")" and calls:
            calls.pop()
        if kind == "op" and tok == "^" and any(calls):
            tok = "**"
        if kind == "name" and tok == "factor":
            tok = "C"
        if _is_dotted_name(kind, tok, found[k + 1 : k + 2]):
            # R's exp.time is one name; formulaic would read exp's attribute
            kind, tok = "backtick", f"`{tok}`"
        pieces.append((kind, tok))
        previous = (kind, tok)
    return _join(pieces)


def _join(pieces):
    """Tokens back to text, spaced enough to be read again."""
    out = []
    for kind, tok in pieces:
        if kind == "op" and tok in ("(", ")", "[", "]", ","):
            out.append(tok if tok != "," else ", ")
        elif kind == "op":
            out.append(tok if tok in _TIGHT else f" {tok} ")
        else:
            out.append(tok)
    text = "".join(out)
    return re.sub(r" {2,}", " ", text).strip()


def _is_syntactic(name):
    """Whether R writes ``name`` without backticks."""
    return bool(_SYNTACTIC.match(name)) and name not in _RESERVED


def _is_dotted_name(kind, tok, after):
    """A name with a dot that formulaic would read as attribute access."""
    return (
        kind == "name"
        and "." in tok
        and tok != "."
        and not tok.startswith(_NAMESPACES)
        and after != [("op", "(")]
    )


#: Names that are R's (or Python's) constants, not columns (also read by
#: the formula's list of columns, skmixed._formula).
CONSTANTS = frozenset({"pi", "TRUE", "FALSE", "T", "F", "True", "False", "None", "np"})


def names_read(text):
    """The column names an expression reads, in order (repeats kept).

    Not a function called (``log(``), an argument's keyword (``base =``),
    a constant (``pi``, ``TRUE``) or numpy's and formulaic's dotted names
    (``np.pi``, ``contr.sum``); R's dotted names (``exp.time``) and
    backticked names are columns.

    Examples
    --------
    >>> names_read("log(exp.time, base = 2) + ifelse(x > pi, 1, 0)")
    ['exp.time', 'x']
    """
    found = tokens(text) + [(None, None)]
    return [
        tok.strip("`")
        for (kind, tok), following in zip(found[:-1], found[1:], strict=True)
        if kind == "backtick"
        or (
            kind == "name"
            and following not in (("op", "("), ("op", "="))
            and tok not in CONSTANTS
            and not tok.startswith(_NAMESPACES)
        )
    ]
