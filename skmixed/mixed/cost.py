"""What a fit will cost, estimated from its block structures before optimising.

The memory of the large steps is checked where they are set up
(:func:`skmixed.mixed.schur.check_memory` raises ``MemoryError`` at once);
this module estimates the time. An evaluation of the profiled criterion
costs about

- the Schur update: one pass over the stored per-level products (and a
  second one for the gradient);
- factoring the later factors' block ``S_zz`` as its structure allows: for
  a dense block LAPACK's Cholesky (``q³/3`` flops) and, for the gradient,
  its inverse (``2q³/3``); for a sparse one the LU of its fill-reducing
  ordering (``2 Σ_j c_j²`` flops for column counts ``c_j``) and, for the
  gradient, one solve per column of its inverse;
- the first factor's small per-level blocks and the ``[X y]`` block
  (small; counted per level).

The rates below are this kind of machine's, one BLAS thread (measured on
the benchmarks' crossed data and on sparse crossings of 2,000-3,000 items:
dense Cholesky and inverse ~30 GFLOP/s, a stored product ~1.2 ns, SuperLU's
solves ~27 ns per row and right-hand side), so the estimate is the right
order of magnitude, not a promise: more BLAS threads make the dense steps
faster, a loaded machine slower.
"""

import logging
import math
import warnings
from dataclasses import dataclass

from sklearn.exceptions import EfficiencyWarning

from skmixed._stacklevel import user_stacklevel
from skmixed.mixed.schur import describe_factors

logger = logging.getLogger("skmixed")

# seconds per floating-point operation and per stored product (see above)
_DENSE_FLOP = 1.0 / 3e10
_SPARSE_FACTOR_FLOP = 1.0 / 1e9
_PRODUCT = 1.2e-9
# SuperLU: per column of the factorisation (ordering, symbolic steps), and
# per right-hand side of a solve, per row and per factor entry
_SPARSE_COLUMN = 1e-5
_SPARSE_SOLVE_ROW = 2.7e-8
_SPARSE_SOLVE_ENTRY = 1e-9
# per level of the first factor and per small dense block entry
_PER_LEVEL = 2e-9
_PER_ENTRY = 1e-9


@dataclass(frozen=True)
class FitCost:
    """A fit's estimated cost, known before the optimiser starts.

    Attributes
    ----------
    factors : str
        The grouping factors and their sizes, e.g.
        ``"user (50,000 levels x 1), item (5,000 levels x 1)"``.
    structure : str
        How the later factors' block is factored: ``"dense q x q"``,
        ``"sparse q x q"``, ``"block-diagonal"``, or ``"none"`` (one
        grouping factor, or a small model).
    seconds_per_evaluation : float
        One evaluation of the criterion (with its gradient where the
        optimiser uses it).
    evaluations : int
        Evaluations the optimiser typically needs for this many θ (for the
        small models' Newton path, θ points: each pass evaluates several at
        once, see :mod:`skmixed.mixed.small`).
    memory_bytes : float
        Memory of one evaluation's large arrays (the stored products and the
        later block's factor), beyond the data's cross-products.
    passes : int or None
        For the Newton path, the batched passes those points come in (one
        call of the criterion each); None for the other optimisers.
    """

    factors: str
    structure: str
    seconds_per_evaluation: float
    evaluations: int
    memory_bytes: float
    passes: int | None = None

    @property
    def seconds(self):
        """The optimiser's estimated time in all."""
        return self.seconds_per_evaluation * self.evaluations

    def __str__(self):
        if self.passes is None:
            work = f"{self.evaluations} evaluations"
        else:
            passes = (
                "1 Newton pass" if self.passes == 1 else f"{self.passes} Newton passes"
            )
            work = f"{passes} over {self.evaluations} θ points"
        return (
            f"about {format_seconds(self.seconds)} ({work} "
            f"of ~{format_seconds(self.seconds_per_evaluation)}; "
            f"later-factor block: {self.structure}; "
            f"{format_bytes(self.memory_bytes)} per evaluation); grouping "
            f"factors: {self.factors}"
        )


def format_seconds(seconds):
    """``"3 ms"``, ``"12 s"``, ``"4.2 min"``, ``"3.1 h"``, ``"2.0 days"``."""
    if seconds < 1e-3:
        return "< 1 ms"
    if seconds < 1.0:
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 120.0:
        return f"{seconds:.0f} s"
    if seconds < 7200.0:
        return f"{seconds / 60.0:.1f} min"
    if seconds < 2 * 86400.0:
        return f"{seconds / 3600.0:.1f} h"
    return f"{seconds / 86400.0:.1f} days"


def format_bytes(nbytes):
    """``"12 MB"``, ``"2.4 GB"``."""
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.0f} MB"


def typical_evaluations(n_theta, gradient):
    """Evaluations a fit with ``n_theta`` parameters typically needs.

    L-BFGS-B on the analytic gradient took 6-14 on the crossed benchmarks
    (2-3 θ), BOBYQA ~50 for sleepstudy's 3 θ; both grow with n_theta. Either
    way the optimum is polished by a few Newton steps.
    """
    return 10 + 3 * n_theta if gradient else 20 + 10 * n_theta


# The small models' Newton path (skmixed.mixed.small): from the moment start
# ~3 batched passes, the first of n_theta + 1 points (θ and its Hessian's
# shifted points), the others of n_theta + 3 (two shorter steps too). A
# two-column term whose levels all have the same cross-products (a balanced
# design) starts at its optimum: one pass (95% of 2,000 sleepstudy-sized
# data sets).
NEWTON_PASSES = 3


def typical_newton_points(n_theta, passes=NEWTON_PASSES):
    """θ points the Newton path typically evaluates in ``passes`` passes."""
    return n_theta + 1 + (passes - 1) * (n_theta + 3)


def typical_newton_passes(design):
    """The Newton path's typical passes on ``design`` (one term)."""
    D1 = design.D1
    if D1.shape[1] == 2 and (D1 == D1[0]).all():
        return 1
    return NEWTON_PASSES


def estimate_cost(criterion, gradient=None, newton=False):
    """The estimated cost of optimising ``criterion`` (a ProfiledCriterion).

    Cheap: it reads the sizes of the structures already chosen (the sparse
    factor's column counts from the trial factorisation that chose it).

    Parameters
    ----------
    criterion : ProfiledCriterion
    gradient : bool, optional
        Whether the optimiser evaluates the gradient at every point;
        ``criterion.gradient_pays`` when None.
    newton : bool, default=False
        Whether the small models' Newton path optimises (batched passes of
        values and gradients, :mod:`skmixed.mixed.small`): the estimate is
        then per θ point, for its typical passes.

    Returns
    -------
    FitCost
    """
    design = criterion.design
    if gradient is None:
        gradient = criterion.gradient_pays
    passes = 2 if gradient else 1
    m1, k1 = design.terms[0].m, design.terms[0].k
    r = design.r
    rest = criterion._rest
    # the first factor's per-level blocks and [X y], every evaluation
    seconds = _PER_LEVEL * m1 * (k1 + design.p + 1) ** 2
    memory = 0.0
    structure = "none"
    if criterion.strategy in ("outer", "dense"):
        # one factor (or a small model): the per-level outer products of
        # its cross-products, by one product or by BLAS over levels
        seconds += passes * _PER_ENTRY * m1 * len(criterion._pairs) * r * r
        seconds += _DENSE_FLOP * r**3
    elif rest is not None and rest.q:
        q = rest.q
        stored = rest.n_stored
        seconds += passes * _PRODUCT * stored
        memory += 16.0 * stored
        if rest.structure == "dense":
            structure = f"dense {q:,} x {q:,}"
            flops = q**3 / 3.0 + 2.0 * q * q * (design.p + 1)
            if gradient:
                flops += 2.0 * q**3 / 3.0
            seconds += _DENSE_FLOP * flops + _PER_ENTRY * q * q
            memory += (16.0 if gradient else 8.0) * q * q
        elif rest.structure == "sparse":
            structure = f"sparse {q:,} x {q:,}"
            nnz, flops = rest.sparse_factor_size
            seconds += _SPARSE_COLUMN * q + _SPARSE_FACTOR_FLOP * flops
            if gradient:
                # one solve per column of S_zz⁻¹ (on the pattern)
                seconds += q * (_SPARSE_SOLVE_ROW * q + _SPARSE_SOLVE_ENTRY * nnz)
            memory += 12.0 * nnz * 2
        else:
            structure = "block-diagonal"
            kt = design.terms[1].k
            seconds += _PER_LEVEL * (q // kt) * kt**3
    if newton:
        newton_passes = typical_newton_passes(design)
        points = typical_newton_points(criterion.n_theta, newton_passes)
        return FitCost(
            describe_factors(design),
            structure,
            seconds,
            points,
            memory,
            passes=newton_passes,
        )
    evaluations = typical_evaluations(criterion.n_theta, gradient)
    return FitCost(describe_factors(design), structure, seconds, evaluations, memory)


# Beyond this estimate a fit is announced with an EfficiencyWarning.
SLOW_FIT_SECONDS = 600.0


def announce(cost):
    """Log the estimate; warn (before optimising) when it is beyond minutes.

    A time estimate is uncertain by a factor of a few (BLAS threads, the
    machine's load, the number of evaluations), so a long fit is announced,
    not refused: ``MemoryError`` is kept for what cannot work at all. The
    warning comes at once, so a user can stop the fit (or turn it into an
    error with ``warnings.simplefilter("error", EfficiencyWarning)``).
    """
    logger.info("MixedLMRegressor: estimated optimiser time %s", cost)
    if cost.seconds > SLOW_FIT_SECONDS and math.isfinite(cost.seconds):
        warnings.warn(
            f"This model's fit is estimated to take {cost}. Fewer levels in "
            "the later grouping factors (or fewer crossings between them) "
            "make the later-factor block smaller.",
            EfficiencyWarning,
            stacklevel=user_stacklevel(),
        )
