"""The penalised residual sum of squares from the rows, for a response far
from 0 that no fixed intercept absorbs.

The profiled criterion's ``r²(θ)`` is, from the cross-products, ``yᵀWy``
less a quadratic form (the last pivot of the factor of
``[Z X y]ᵀW[Z X y]``). With no fixed intercept (``fit_intercept=False``,
``0 +``) and ``y = 1e8 + N(0, 1)``, the random intercepts take y's offset
(θ ~ 1e8) and ``yᵀWy`` is ~1e16 times ``r²``: the difference keeps no
digit (REML 6356.84 for lme4's 4051.522, σ 9.61 for 0.997), and at 1e4
it keeps ~8.

lme4 forms ``r² = |W^½ (y − Xβ − ZΛu)|² + |u|²`` from the rows. β and u
solved from the cross-products are accurate to about the rounding of y
(their errors move ``r²`` only to second order: ``r²`` is the minimum over
β and u), and the residuals are then differences of numbers of y's size,
each exact to y's rounding: ``r²`` keeps its digits. :class:`RowsCriterion`
evaluates the criterion that way. Its analytic gradient would lose the same
digits, so the fit optimises it without one (BOBYQA). A pass over the rows
per evaluation: only the fits that need it (:func:`needs_rows`) take it.
"""

import math

import numpy as np

#: y's middle beyond this many times its range (in absolute value): the
#: threshold at which a model with an intercept takes y's middle out
#: (:func:`skmixed.mixed.centring.response_shift`); at 10 times the
#: cross-product ``r²`` already loses ≥ 2.5 digits to ``yᵀy``
FAR_FROM_ZERO = 10.0


def needs_rows(x_names, y_range):
    """Whether ``r²`` must come from the rows: y far from 0 relative to its
    range ``(min, max)``, in a model whose column 0 is not the intercept
    (one with an intercept takes the offset out of y instead)."""
    if x_names[:1] == ["(Intercept)"]:
        return False
    low, high = (float(v) for v in y_range)
    middle = 0.5 * (low + high)
    return math.isfinite(middle) and 0.0 < FAR_FROM_ZERO * (high - low) < abs(middle)


def row_effects(Z, b, codes):
    """Per row, ``Z_i · b[level_i]`` (Z None: a random intercept)."""
    if Z is None:
        return b[codes, 0]
    return np.einsum("ij,ij->i", Z, b[codes])


class RowsCriterion:
    """A :class:`~skmixed.mixed.criterion.ProfiledCriterion` whose ``r²``
    comes from the rows (an in-memory design: ``design.X``, ``design.y``
    and each term's codes and Z).

    The same interface: evaluating and :meth:`decompose` give the
    criterion with ``r²`` from the residuals; everything else (θ's layout,
    λ, the log-determinants) is the wrapped criterion's. No analytic
    gradient or Hessian (``gradient_pays`` and ``has_hessian`` False).
    """

    gradient_pays = False
    has_hessian = False

    def __init__(self, criterion):
        if criterion.design.X is None:
            raise ValueError("the rows are not in memory (a fit from sums)")
        self.criterion = criterion
        # β and u from a factor whose y pivot lost every digit: still good
        criterion.response_pivot_may_fail = True
        self.design = criterion.design
        self.reml = criterion.reml

    def __getattr__(self, name):
        # θ's layout, λ, profiled(), strategy ...: the wrapped criterion's
        # (not while unpickling, before "criterion" is set)
        if name.startswith("__") or name == "criterion":
            raise AttributeError(name)
        return getattr(self.criterion, name)

    def pwrss(self, dec):
        """``|W^½ r|² + |u|²`` with ``r = y − Xβ − Σ Z b`` from the rows."""
        design = self.design
        parts = [design.X @ dec.beta] + [
            row_effects(term.Z, b, term.codes)
            for term, b in zip(design.terms, dec.b, strict=True)
        ]
        # the largest first: y − (the part that holds y's offset) is then
        # exact (Sterbenz), and the smaller parts are taken from small numbers
        parts.sort(key=lambda part: -float(np.max(np.abs(part), initial=0.0)))
        residual = design.y - parts[0]
        for part in parts[1:]:
            residual -= part
        weighted = residual * residual
        if design.weights is not None:
            weighted *= design.weights
        penalty = sum(float(np.vdot(u, u)) for u in dec.u)
        return float(weighted.sum()) + penalty

    def decompose(self, theta):
        """The wrapped criterion's decomposition at θ, ``r²`` from the rows."""
        dec = self.criterion.decompose(theta)
        dec.pwrss = self.pwrss(dec)
        return dec

    def __call__(self, theta):
        """The criterion at θ (``inf`` where the factorisation fails)."""
        try:
            dec = self.decompose(theta)
        except np.linalg.LinAlgError:
            return math.inf
        if not dec.pwrss > 0.0:
            return math.inf
        value = float(self.criterion.profiled(dec.logdet_L, dec.logdet_RX, dec.pwrss))
        return value if math.isfinite(value) else math.inf

    def value_and_gradient(self, theta):
        """Not available: the analytic gradient loses ``r²``'s digits."""
        raise NotImplementedError(
            "no analytic gradient when r² comes from the rows: optimise without one"
        )


class SinhTheta:
    """The criterion as a function of t with ``θ = sinh(t)`` elementwise.

    A random intercept that absorbs y's offset has θ ~ offset / σ (1e8 at
    an offset of 1e8, from lme4's start of 1): BOBYQA's steps of fixed size
    took ~1,500 evaluations to reach 1e4 and stopped short of 1e6. In t its
    steps are relative for ``|θ| ≫ 1`` and absolute near 0 (sinh t ≈ t):
    0 and the bounds stay where they were, 1 is ``t = 0.88``.

    Parameters
    ----------
    scaled : estimator._StandardisedTheta
        The criterion in θ̃ (what the optimiser saw before).
    """

    batch = None
    gradient = False

    def __init__(self, scaled):
        self.scaled = scaled
        self.criterion = scaled.criterion
        self.identity = scaled.identity
        self.n_theta = scaled.n_theta
        self.theta_lower = scaled.theta_lower  # 0 and -inf: sinh's fixed points
        self.theta_start = self.coordinates(scaled.theta_start)

    @staticmethod
    def coordinates(theta_tilde):
        """t of a θ̃ (asinh)."""
        return np.arcsinh(np.asarray(theta_tilde, dtype=np.float64))

    def lambdas(self, t):
        """Per term, Λ̃ at θ̃ = sinh(t)."""
        return self.scaled.lambdas(np.sinh(t))

    def to_theta(self, t):
        """θ on the data's scale from t."""
        return self.scaled.to_theta(np.sinh(t))

    def __call__(self, t):
        return self.scaled(np.sinh(t))


def minimize_in_asinh(criterion, starts, method="auto"):
    """θ minimising ``criterion`` (a :class:`RowsCriterion`), from the best
    of ``starts``, by the optimiser in t with θ = sinh(t) (see
    :class:`SinhTheta`): the ML refits of a REML fit (anova, profiles)."""
    from skmixed.mixed.optimize import minimize_theta

    def in_t(t):
        return criterion(np.sinh(t))

    lower = criterion.theta_lower
    best = None
    for start in starts:
        opt = minimize_theta(in_t, np.arcsinh(start), lower, method=method)
        if best is None or opt.fun < best.fun:
            best = opt
    return np.sinh(best.x)
