"""Parametric bootstrap of a fitted mixed model (lme4's ``bootMer``).

Each replicate simulates a response from the fitted model,
``y* = Xβ̂ + Σ_t Z_t b*_t + ε*`` with ``b*_t ~ N(0, σ̂² λ_t λ_tᵀ)`` per level
and ``ε* ~ N(0, σ̂²)``, and refits the same model (REML or ML) starting from
θ̂. Only the response changes, so a refit re-uses the model's design:
``design.with_response`` recomputes the few cross-products that involve y
(one pass over the rows) and the criterion never touches the rows again.
"""

import sys
import time
import warnings

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state

from skmixed._stacklevel import user_stacklevel
from skmixed.mixed.criterion import ProfiledCriterion
from skmixed.mixed.optimize import minimize_theta
from skmixed.mixed.profile import parameter_values
from skmixed.mixed.rows import row_effects
from skmixed.mixed.small import batch_criterion

# Show progress for runs expected to last longer than this (seconds).
_PROGRESS_AFTER = 2.0
_PROGRESS_EVERY = 0.5


class _Progress:
    """A one-line text progress indicator on stderr (no dependency)."""

    def __init__(self, total, mode):
        self.total = total
        self.mode = mode
        self.start = time.perf_counter()
        self.last = -np.inf
        self.shown = False

    def _enabled(self, elapsed):
        if self.mode is True:
            return True
        if self.mode == "auto":
            return elapsed > _PROGRESS_AFTER and sys.stderr.isatty()
        return False

    def update(self, done):
        now = time.perf_counter()
        elapsed = now - self.start
        if now - self.last < _PROGRESS_EVERY or not self._enabled(elapsed):
            return
        self.last = now
        self.shown = True
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else float("nan")
        sys.stderr.write(
            f"\rbootstrap: {done}/{self.total} refits, {elapsed:.0f} s"
            f" (about {left:.0f} s left)   "
        )
        sys.stderr.flush()

    def close(self):
        if self.shown:
            elapsed = time.perf_counter() - self.start
            sys.stderr.write(
                f"\rbootstrap: {self.total}/{self.total} refits, {elapsed:.0f} s"
                + " " * 24
                + "\n"
            )
            sys.stderr.flush()


def _random_part(design, lambdas, sigma, rng):
    """Σ_t Z_t b*_t for one draw of the random effects."""
    out = np.zeros(design.n)
    for term, lam in zip(design.terms, lambdas, strict=True):
        b = sigma * rng.standard_normal((term.m, term.k)) @ lam.T
        out += row_effects(term.Z, b, term.codes)
    return out


def simulate_and_refit(model, params, n_boot, random_state=None, progress="auto"):
    """Parameter values of ``n_boot`` parametric-bootstrap refits.

    Parameters
    ----------
    model : MixedLMRegressor
        Fitted.
    params : list of Parameter
        What to record (see :func:`skmixed.mixed.profile.parameters`).
    n_boot : int
    random_state : int, RandomState instance or None
    progress : {"auto", True, False}
        A progress line on stderr: always, never, or (``"auto"``) for runs
        longer than two seconds in a terminal.

    Returns
    -------
    ndarray of shape (n_boot, len(params))
        NaN rows for refits that failed.
    """
    rng = check_random_state(random_state)
    criterion = model._criterion
    design = criterion.design
    if design.X is None:
        raise ValueError(
            "The parametric bootstrap simulates new responses for every row, "
            "which needs the rows in memory; the model was fitted from Dask "
            "partitions: use method='profile' or 'wald'."
        )
    theta = np.asarray(model.theta_, dtype=float)
    lambdas = criterion.lambdas(theta)
    sigma = float(model.sigma_)
    mean = design.X @ model.fixed_effects_.to_numpy()
    dof = design.n - design.p if criterion.reml else design.n
    method = getattr(model, "optimizer", "auto")
    out = np.full((n_boot, len(params)), np.nan)
    failed = 0
    bar = _Progress(n_boot, progress)
    # With prior weights the residual of row i has variance σ² / w_i.
    noise_sd = sigma if design.weights is None else sigma / np.sqrt(design.weights)
    for r in range(n_boot):
        y = mean + _random_part(design, lambdas, sigma, rng)
        y += noise_sd * rng.standard_normal(design.n)
        crit = ProfiledCriterion(design.with_response(y), reml=criterion.reml)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opt = minimize_theta(
                    crit,
                    theta,
                    crit.theta_lower,
                    method=method,
                    batch=batch_criterion(crit),
                )
                parts = crit.decompose(opt.x)
        except (np.linalg.LinAlgError, FloatingPointError, ValueError):
            failed += 1
            continue
        sig = np.sqrt(parts.pwrss / dof)
        out[r] = parameter_values(crit, params, opt.x, sig, parts.beta)
        bar.update(r + 1)
    bar.close()
    if failed:
        warnings.warn(
            f"{failed} of {n_boot} bootstrap refits failed and were left out.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return out


def percentile_interval(samples, level):
    """Percentile interval of bootstrap replicates, as ``boot.ci(type="perc")``.

    The order statistic of rank ``(R + 1)·α`` is used; between two ranks the
    value is interpolated on the normal-quantile scale (boot's
    ``norm.inter``).

    Parameters
    ----------
    samples : ndarray of shape (R,)
        Replicates (NaN ignored).
    level : float

    Returns
    -------
    (float, float)

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = percentile_interval(np.arange(1.0, 1000.0), 0.95)
    >>> float(lo), float(hi)
    (25.0, 975.0)
    """
    t = np.sort(np.asarray(samples, dtype=float)[np.isfinite(samples)])
    n = t.size
    if n == 0:
        return float("nan"), float("nan")
    alpha = np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    out = []
    for a in alpha:
        rank = (n + 1) * a
        k = int(np.floor(rank + 1e-10 * n))
        if abs(rank - round(rank)) < 1e-10 * n and 1 <= round(rank) <= n:
            out.append(float(t[int(round(rank)) - 1]))
        elif k == 0:
            out.append(float(t[0]))
        elif k >= n:
            out.append(float(t[-1]))
        else:
            z = stats.norm.ppf([a, k / (n + 1), (k + 1) / (n + 1)])
            w = (z[0] - z[1]) / (z[2] - z[1])
            out.append(float(t[k - 1] + w * (t[k] - t[k - 1])))
    return out[0], out[1]
