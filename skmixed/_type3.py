"""Type III hypotheses for the terms of a model formula, as lmerTest builds them.

A term's type III hypothesis tests the term "adjusted for every other term"
in the sense of SAS and lmerTest (Kuznetsova, Brockhoff and Christensen
2017): with treatment contrasts, ``VarietyMarvellous = VarietyVictory = 0``
is the test of ``Variety`` only when no other term contains ``Variety``.
In ``recipe * temperature`` the main effect of ``recipe`` is instead a
hypothesis about the recipe means averaged over the temperatures, and the
coefficients ``recipeB``, ``recipeC`` alone (the recipe effects at the
reference temperature) are the wrong test.

lmerTest's construction (``extract_contrasts_type3``), which this module
follows step by step:

1. Write the model again with every factor coded by all of its levels
   (``rdX``, rank deficient). Each of its columns is a linear combination of
   the model's own columns ``X``: ``rdX = X M``. The columns of ``L = Mᵀ``
   say, for each coefficient of ``X``, which combination of the
   over-parameterised effects it estimates.
2. Going from the highest-order terms down, replace the columns of a term
   contained in others (``recipe`` in ``recipe:temperature``; a numeric
   variable must appear in both) by their residuals after regressing them
   on the columns of the terms that contain it.
3. Read each term's hypothesis back in the coefficients of ``X``.

Values are rounded as R's ``zapsmall`` rounds them, so that the hypotheses
(and the F tests) agree with lmerTest's to rounding error.
"""

import numpy as np

__all__ = ["aliased_columns", "type3_contrasts"]

_ZERO_ROW = 1e-8


def zapsmall(values, digits=7):
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest."""
    values = np.asarray(values, dtype=float)
    largest = np.max(np.abs(values)) if values.size else 0.0
    places = digits
    if largest > 0:
        places = max(0, digits - int(np.ceil(np.log10(largest))))
    return np.round(values, places) + 0.0  # + 0.0: no negative zeros


def aliased_columns(X, tol=1e-7):
    """Columns that are linear combinations of earlier ones (R's NA coefficients).

    Parameters
    ----------
    X : ndarray of shape (n_samples, p)
    tol : float
        A column is aliased when its component orthogonal to the earlier
        columns is below ``tol`` times the largest such component.

    Returns
    -------
    ndarray of bool, shape (p,)
    """
    if X.shape[1] == 0:
        return np.zeros(0, dtype=bool)
    r = np.abs(np.diagonal(np.linalg.qr(X, mode="r")))
    return r <= tol * max(float(r.max()), np.finfo(float).tiny)


def type3_contrasts(X, rdX, term_columns, containing, degrees):
    """lmerTest's type III contrast matrix of every term.

    Parameters
    ----------
    X : ndarray of shape (n_samples, p)
        The model's full-rank fixed-effects design (intercept included).
    rdX : ndarray of shape (n_samples, p_rd)
        The same model with every factor coded by all its levels.
    term_columns : dict
        Term label -> indices of its columns in ``X``.
    containing : dict
        Term label -> labels of the terms that contain it.
    degrees : dict
        Term label -> number of variables in it (its order).

    Returns
    -------
    dict
        Term label -> contrast matrix of shape (q, p): the hypothesis
        ``L β = 0``.
    """
    p = X.shape[1]
    M = np.linalg.lstsq(X, rdX, rcond=None)[0]
    L = zapsmall(M.T)  # p_rd x p: rows are over-parameterised effects
    own_rows = _rows_of_own_columns(L)
    basic = L.copy()
    # Highest-order terms first; ties in formula order (R's stable order()).
    for label in sorted(term_columns, key=lambda t: -degrees[t]):
        others = [c for t in containing.get(label, ()) for c in term_columns[t]]
        if not others or not len(term_columns[label]):
            continue
        cols = list(term_columns[label])
        fit = np.linalg.lstsq(L[:, others], L[:, cols], rcond=None)[0]
        L[:, cols] = zapsmall(L[:, cols] - L[:, others] @ fit)
    out = {}
    for label, cols in term_columns.items():
        cols = list(cols)
        if own_rows is not None:
            # Treatment coding: X's columns are columns of rdX, and the
            # hypothesis is read off their rows (as lmerTest does).
            contrast = L[np.ix_(own_rows, cols)].T
        else:
            contrast = np.linalg.lstsq(basic, L[:, cols], rcond=None)[0].T
        keep = np.abs(contrast).sum(axis=1) > _ZERO_ROW
        out[label] = contrast[keep].reshape(-1, p)
    return out


def _rows_of_own_columns(L):
    """Row of ``L`` that is the unit vector of each column of X, or None.

    Under treatment contrasts every column of X is also a column of the
    over-parameterised design (``recipeB``, ``recipeB:temperature185``).
    """
    rows = []
    for j in range(L.shape[1]):
        unit = np.zeros(L.shape[1])
        unit[j] = 1.0
        match = np.flatnonzero(np.all(np.abs(L - unit) < 1e-10, axis=1))
        if match.size == 0:
            return None
        rows.append(int(match[0]))
    return rows
