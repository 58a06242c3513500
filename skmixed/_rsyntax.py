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

__all__ = [
    "CONSTANTS",
    "LOGICAL_CALLS",
    "LOGICAL_TERM_CALL",
    "NOT_TERM_CALL",
    "PAREN_CALL",
    "expand_dot",
    "names_read",
    "r_deparse",
    "r_join",
    "to_python",
    "tokens",
]

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
    for kind, tok in _logical_as_operators(tokens(text)):
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
    categorical encoding. Inside a call R's elementwise ``&``, ``|`` and
    ``!`` become calls (see :data:`LOGICAL_CALLS`), grouped by R's
    precedence; ``&&`` and ``||`` are refused.

    Examples
    --------
    >>> to_python("(a + b)^2 + I(x^2) + factor(g)")
    '(a + b)^2 + I(x ** 2) + C(g)'
    >>> to_python("log(exp.time) + C(f, contr.sum)")
    'log(`exp.time`) + C(f, contr.sum)'
    >>> to_python("ifelse(!x > 0 & z < 1, 1, 0)")
    'ifelse(_r_and_(_r_not_(x > 0), z < 1), 1, 0)'
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
    return r_join(_logical_as_calls(_not_terms(pieces, text), text))


def _not_terms(found, text):
    """A formula's ``!b`` / ``(!b)`` terms as :data:`NOT_TERM_CALL` calls.

    R's ``!`` binds looser than ``+``, ``*`` and ``:``: in ``y ~ !b + x``
    it negates ``b + x`` (one term, ``!b + x``), so a ``!`` outside a call
    is taken only where R's reading is one operand: at the end of the
    formula (``x + !b``, ``x * !b``) or of a bracket (``(!b) + x``). Any
    other is refused, with the bracketed form to write.
    """
    out, i = [], 0
    while i < len(found):
        if found[i] == ("op", "!"):
            if not _one_operand(found[i + 1 :]):
                raise ValueError(_not_term_message(found, i, text))
            out += _not_term_call(found[i + 1 :])
            break
        bracket = found[i] == ("op", "(") and not (
            i and found[i - 1][0] in ("name", "backtick")
        )
        if bracket:
            end = _closing(found, i)
            inner = _not_terms(found[i + 1 : end], text)
            if inner[:1] == [("name", NOT_TERM_CALL)] and _one_operand(inner):
                out += inner  # (!b) is R's term !b
            else:
                out += [found[i]] + inner + [found[end]]
            i = end + 1
            continue
        if found[i][0] in ("name", "backtick") and found[i + 1 : i + 2] == [
            ("op", "(")
        ]:
            end = _closing(found, i + 1)  # a call: its ! are R expressions
            out += found[i : end + 1]
            i = end + 1
            continue
        out.append(found[i])
        i += 1
    return out


def _one_operand(found):
    """Whether tokens are one operand: a name, a number, a call, a
    bracketed group or a negated one (what R's unary ``!`` applies to)."""
    if not found:
        return False
    if found[:1] == [("op", "!")]:
        return _one_operand(found[1:])
    if len(found) == 1:
        return found[0][0] in ("name", "backtick", "number")
    if found[:1] == [("op", "(")]:
        return _closing(found, 0) == len(found) - 1
    call = found[0][0] in ("name", "backtick") and found[1:2] == [("op", "(")]
    return call and _closing(found, 1) == len(found) - 1


def _not_term_call(operand):
    if operand[:1] == [("op", "(")]:
        operand = [("name", PAREN_CALL)] + operand  # R keeps !(x > 0)'s brackets
    return [("name", NOT_TERM_CALL), ("op", "(")] + operand + [("op", ")")]


def _not_term_message(found, i, text):
    rest = r_deparse(r_join(found[i + 1 :]))
    if not rest:
        return f"Cannot read the formula {text!r}: a ! with nothing to negate."
    return (
        f"Cannot read the formula {text!r}: R's ! binds looser than +, * and :, "
        f"so R reads !{rest} as !({rest}), one term. Put the negation in "
        "brackets, (!b), or write I(!b) for a term of its own."
    )


# R's elementwise logical operators, as calls of functions formulaic is given
# (skmixed._formula's namespace): Python's & and | bind tighter than its
# comparisons (x > 0 & z < 1 would be x > (0 & z) < 1) and its ``not`` is
# no elementwise negation. No R name starts with "_": r_deparse prints
# these calls back as R's operators.
LOGICAL_CALLS = {"|": "_r_or_", "&": "_r_and_", "!": "_r_not_"}
#: R's ``!b`` as a term of the formula (``y ~ x + !b``): a logical that
#: R's model.matrix codes as a factor (column ``!bTRUE``).
NOT_TERM_CALL = "_r_not_term_"
#: A logical column as a term of its own (``y ~ x + b``): the factor
#: (FALSE, TRUE) R's model.matrix codes it as; printed as the bare name.
LOGICAL_TERM_CALL = "_r_lgl_"
_OPERATOR_OF = {call: op for op, call in LOGICAL_CALLS.items()}
_OPERATOR_OF[NOT_TERM_CALL] = "!"
#: Brackets around an operand of those (``!(x > 0)``), which formulaic would
#: drop from the column's name and R keeps: an identity call.
PAREN_CALL = "_r_paren_"


def _logical_as_calls(found, text, inside=False):
    """Tokens with ``&``, ``|`` and ``!`` inside calls as helper calls.

    Outside every call a ``|`` is the random-effects bar and stays; inside
    one (``inside``), a bracketed group is an R expression too.
    """
    out, i = [], 0
    while i < len(found):
        kind, tok = found[i]
        call = kind in ("name", "backtick") and found[i + 1 : i + 2] == [("op", "(")]
        group = inside and (kind, tok) == ("op", "(")
        if not (call or group):
            out.append(found[i])
            i += 1
            continue
        start = i + 2 if call else i + 1
        end = _closing(found, start - 1)
        out += found[i:start]
        for k, argument in enumerate(_split_top(found[start:end], ",")):
            if k:
                out.append(("op", ","))
            out += _logical_expression(argument, text)
        out.append(("op", ")"))
        i = end + 1
    return out


def _logical_expression(found, text):
    """One R expression: ``|`` binds loosest, then ``&``, then ``!`` (all
    below the comparisons, which stay Python's)."""
    for op in ("||", "&&"):
        if ("op", op) in found:
            raise ValueError(
                f"{text!r} uses {op!r}, which in R compares one value (the first "
                f"row's; an error from R 4.3), not each row. Use {op[0]!r} for "
                "an elementwise condition, as in ifelse(x > 0 & z < 1, 1, 0)."
            )
    for op in ("|", "&"):
        parts = _split_top(found, op)
        if len(parts) > 1:
            # left to right, as R groups a & b & c
            joined = _operand(parts[0], text)
            for part in parts[1:]:
                right = _operand(part, text)
                joined = _helper_call(LOGICAL_CALLS[op], joined, right)
            return joined
    if found[:1] == [("op", "!")] and len(found) > 1:
        return _helper_call(LOGICAL_CALLS["!"], _operand(found[1:], text))
    return _logical_as_calls(found, text, inside=True)


def _operand(found, text):
    """An operand of a logical operator, its own brackets kept as a call."""
    bracketed = found[:1] == [("op", "(")] and _closing(found, 0) == len(found) - 1
    if bracketed:
        return _helper_call(PAREN_CALL, _logical_expression(found[1:-1], text))
    return _logical_expression(found, text)


def _helper_call(name, *arguments):
    out = [("name", name), ("op", "(")]
    for k, argument in enumerate(arguments):
        out += [("op", ",")] * (k > 0) + argument
    return out + [("op", ")")]


def _closing(found, opening):
    """The index of the bracket closing the one at ``opening``."""
    depth = 0
    for k in range(opening, len(found)):
        if found[k] in (("op", "("), ("op", "["), ("op", "{")):
            depth += 1
        elif found[k] in (("op", ")"), ("op", "]"), ("op", "}")):
            depth -= 1
            if depth == 0:
                return k
    raise ValueError(f"Unbalanced brackets in {r_join(found)!r}.")


def _split_top(found, separator):
    """Tokens split at ``separator`` outside brackets."""
    parts, depth = [[]], 0
    for token in found:
        if token[0] == "op" and token[1] in ("(", "[", "{"):
            depth += 1
        elif token[0] == "op" and token[1] in (")", "]", "}"):
            depth -= 1
        if depth == 0 and token == ("op", separator):
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _logical_as_operators(found):
    """The inverse of :func:`_logical_as_calls`, for R's printing."""
    out, i = [], 0
    while i < len(found):
        kind, tok = found[i]
        wrappers = (PAREN_CALL, LOGICAL_TERM_CALL)
        if not (kind == "name" and (tok in _OPERATOR_OF or tok in wrappers)):
            out.append(found[i])
            i += 1
            continue
        end = _closing(found, i + 1)
        arguments = [
            _logical_as_operators(a) for a in _split_top(found[i + 2 : end], ",")
        ]
        if tok == LOGICAL_TERM_CALL:
            out += arguments[0]
            i = end + 1
            continue
        if tok == PAREN_CALL:
            out += [("op", "(")] + arguments[0] + [("op", ")")]
            i = end + 1
            continue
        op = ("op", _OPERATOR_OF[tok])
        if len(arguments) == 1:
            out += [op] + arguments[0]
        else:
            out += arguments[0] + [op] + arguments[1]
        i = end + 1
    return out


def r_join(pieces):
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


def expand_dot(text, columns):
    """R's ``.`` in a formula: every column of the data, in their order.

    ``columns`` are the data's columns less the response's (R's
    ``y ~ .`` reads every column but y). Each ``.`` becomes their sum in
    brackets, so that the formula's algebra applies to it as R's does:
    ``. - z``, ``.^2``, ``. * f``, ``0 + .``. A name R would write in
    backticks keeps them. Text without a ``.`` comes back unchanged.

    Examples
    --------
    >>> expand_dot(". - z", ["Days", "z", "my col"])
    '(Days + z + `my col`) - z'
    """
    found = tokens(text)
    if ("name", ".") not in found:
        return text
    names = [c if _is_syntactic(c) else f"`{c}`" for c in columns]
    if not names:
        raise ValueError(
            f"The formula {text!r} uses '.', every column of the data but the "
            "response, and there is no such column."
        )
    whole = "(" + " + ".join(names) + ")"
    return r_join(
        ("name", whole) if (kind, tok) == ("name", ".") else (kind, tok)
        for kind, tok in found
    )


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
