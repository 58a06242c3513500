"""Numerical derivatives by central differences with Richardson extrapolation.

lmerTest differentiates the deviance numerically (with numDeriv); so do we,
but never with a one-sided step: each derivative is a central difference
evaluated at a sequence of halving steps, and Richardson extrapolation
cancels the h², h⁴, ... terms of its error. With four steps starting at a
tenth of the coordinate the result is accurate to about eight significant
digits for the smooth criteria we differentiate, which is far below the
1e-3 agreement we need with lmerTest's own (also extrapolated) values.
"""

import numpy as np

# First step, relative to |x_i|; coordinates near zero use an absolute step.
_REL_STEP = 0.1
_ABS_STEP = 1e-4
_NEAR_ZERO = 1e-5
_N_STEPS = 4


def _initial_steps(x, rel_step, abs_step):
    x = np.asarray(x, dtype=float)
    return np.where(np.abs(x) < _NEAR_ZERO, abs_step, rel_step * np.abs(x))


def _extrapolate(estimates):
    """Richardson table for a sequence computed at steps h, h/2, h/4, ...

    Each estimate has an error series in even powers of h, so combining two
    neighbours as (4^m D(h/2) - D(h)) / (4^m - 1) removes the h^(2m) term.
    """
    table = [np.asarray(e, dtype=float) for e in estimates]
    for m in range(1, len(table)):
        factor = 4.0**m
        table = [
            (factor * table[k + 1] - table[k]) / (factor - 1.0)
            for k in range(len(table) - 1)
        ]
    return table[0]


def jacobian(func, x, rel_step=1e-4, abs_step=_ABS_STEP, n_steps=_N_STEPS):
    """Jacobian of a vector- or array-valued function.

    Parameters
    ----------
    func : callable
        ``func(x)`` returns an array (any shape).
    x : array-like of shape (m,)
        Point of evaluation.
    rel_step, abs_step : float
        First step, relative to ``|x_i|`` (absolute for ``x_i`` near 0).
    n_steps : int
        Number of halving steps combined by Richardson extrapolation.

    Returns
    -------
    ndarray of shape (m,) + func(x).shape
        ``out[i]`` is the derivative with respect to ``x[i]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmixed.mixed._numderiv import jacobian
    >>> jac = jacobian(lambda v: np.array([v[0] ** 2, np.sin(v[1])]), [3.0, 0.0])
    >>> np.round(jac, 8)
    array([[6., 0.],
           [0., 1.]])
    """
    x = np.asarray(x, dtype=float)
    steps = _initial_steps(x, rel_step, abs_step)
    out = []
    for i in range(x.size):
        estimates = []
        h = steps[i]
        for _ in range(n_steps):
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            estimates.append(
                (np.asarray(func(up), float) - np.asarray(func(down), float)) / (2 * h)
            )
            h /= 2.0
        out.append(_extrapolate(estimates))
    return np.array(out)


def hessian(func, x, rel_step=_REL_STEP, abs_step=_ABS_STEP, n_steps=_N_STEPS):
    """Hessian of a scalar function.

    Parameters
    ----------
    func : callable
        ``func(x)`` returns a float.
    x : array-like of shape (m,)
        Point of evaluation.
    rel_step, abs_step : float
        First step, relative to ``|x_i|`` (absolute for ``x_i`` near 0).
    n_steps : int
        Number of halving steps combined by Richardson extrapolation.

    Returns
    -------
    ndarray of shape (m, m)
        Symmetric matrix of second derivatives.

    Examples
    --------
    >>> import numpy as np
    >>> from skmixed.mixed._numderiv import hessian
    >>> h = hessian(lambda v: v[0] ** 2 * v[1] + np.exp(v[1]), [1.0, 2.0])
    >>> bool(np.allclose(h, [[4.0, 2.0], [2.0, np.exp(2.0)]], rtol=1e-8))
    True
    """
    x = np.asarray(x, dtype=float)
    m = x.size
    steps = _initial_steps(x, rel_step, abs_step)
    f0 = float(func(x))

    def shifted(deltas):
        point = x.copy()
        for i, d in deltas:
            point[i] += d
        return float(func(point))

    out = np.empty((m, m))
    for i in range(m):
        for j in range(i + 1):
            estimates = []
            hi, hj = steps[i], steps[j]
            for _ in range(n_steps):
                if i == j:
                    value = (
                        shifted([(i, hi)]) - 2.0 * f0 + shifted([(i, -hi)])
                    ) / hi**2
                else:
                    value = (
                        shifted([(i, hi), (j, hj)])
                        - shifted([(i, hi), (j, -hj)])
                        - shifted([(i, -hi), (j, hj)])
                        + shifted([(i, -hi), (j, -hj)])
                    ) / (4.0 * hi * hj)
                estimates.append(value)
                hi, hj = hi / 2.0, hj / 2.0
            out[i, j] = out[j, i] = _extrapolate(estimates)
    return out
