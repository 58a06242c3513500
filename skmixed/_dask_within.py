"""The within method with group slopes from Dask collections.

Each group's effects are its intercept and the slopes of the columns ``z``
in ``group_slopes``; the other columns and y are residualised on the
group's ``[1, z]`` (Frisch-Waugh-Lovell, group by group), as the in-memory
``_GroupBasis`` does. What that takes are per-group sums: the weight, the
(weighted) means of ``[z | x | y]`` and the centred cross-products of ``z``
with them. A first pass forms them partition by partition (centred on the
partition's group means) and merges them by Chan's update; a second pass
residualises every row with them and factors the residuals by TSQR
(``skmixed._dask_lm``), so no demeaned copy of the data is ever made. The
group intercepts and slopes come from the same sums.
"""

from dataclasses import dataclass

import numpy as np

from skmixed import _dask
from skmixed._linalg import group_sums
from skmixed._moments import merge_means


@dataclass
class GroupMoments:
    """Per group: weight, means of ``[z | v]``, ``Σ w zc [z | v]c'``, ``Σ w z²``.

    y's means are those of y less ``shift``, a partition's mean of y (the
    second pass takes it from y too, and the intercepts get it back): means
    of y = 1e8 + ... itself would keep 8 digits fewer, and so would the
    group slopes and residuals from them. The in-memory fit takes
    ``intercept_shift`` from y for the same reason.
    """

    counts: np.ndarray  # (m,)
    means: np.ndarray  # (m, k + c)
    cross: np.ndarray  # (m, k, k + c)
    squares: np.ndarray  # (m, k)
    shift: float

    def add(self, other):
        counts, means, delta, gain = merge_means(
            self.counts, self.means, other.counts, other.means
        )
        # other's means of y are less its own shift: moved to self's by the
        # difference of two means of y (a number of y's spread, not of y),
        # which moves the joint means of y by other's share of it. A self
        # without rows takes other's shift (its own, 0, is no mean of y).
        shift = self.shift if self.counts.any() else other.shift
        if shift != other.shift:
            by = shift - other.shift
            delta[:, -1] -= by
            share = np.divide(
                other.counts, counts, out=np.zeros(len(counts)), where=counts > 0
            )
            share *= by  # (in place: no other array of m rows is touched)
            means[:, -1] -= share
        k = self.cross.shape[1]
        extra = gain[:, None, None] * delta[:, :k, None] * delta[:, None, :]
        cross = self.cross + other.cross + extra
        squares = self.squares + other.squares
        return GroupMoments(counts, means, cross, squares, shift)


def _add(a, b):
    return a.add(b)


def moments_partition(part, index, meta, spec):
    """One partition's ``GroupMoments`` of its rows of positive weight.

    Rows a fit refuses (NaN, inf, negative weights) are left out here: the
    second pass reports them.
    """
    from skmixed._dask_lm import _partition_rows

    features, group_columns, drop, coder, m, slope_idx, rest = spec
    part, F, y, _ = _partition_rows(part, index, meta, features, group_columns, drop)
    w = np.ones(len(y))
    if _dask._W in part.columns:
        w = part[_dask._W].to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.column_stack([F[:, slope_idx], F[:, rest], y])
    keep = np.isfinite(values).all(axis=1) & np.isfinite(w) & (w > 0)
    codes = coder.row_codes(part) if len(part) else np.zeros(0, np.int64)
    values, w, codes = values[keep], w[keep], codes[keep]
    shift = float(w @ values[:, -1]) / w.sum() if len(w) else 0.0
    values[:, -1] -= shift
    k = len(slope_idx)
    counts = np.bincount(codes, weights=w, minlength=m)
    sums = group_sums(codes, m, values * w[:, None])
    means = sums / np.where(counts > 0, counts, 1.0)[:, None]
    centred = values - means[codes]
    cross = np.empty((m, k, values.shape[1]))
    for a in range(k):
        cross[:, a, :] = group_sums(codes, m, (w * centred[:, a])[:, None] * centred)
    Z = values[:, :k]
    squares = group_sums(codes, m, Z * Z * w[:, None])
    return GroupMoments(counts, means, cross, squares, shift)


def group_moments(inp, features, group_columns, drop, coder, m, slope_idx, rest):
    """The first pass: ``GroupMoments`` of all the rows."""
    import dask

    spec = _dask.shared((features, group_columns, drop, coder, m, slope_idx, rest))
    meta = inp.frame._meta
    parts = [
        dask.delayed(moments_partition)(part, i, meta, spec)
        for i, part in enumerate(inp.frame.to_delayed())
    ]
    return _dask.tree_reduce(parts, _add).compute()


class Projection:
    """The residuals of ``[x | y]`` on each group's ``[1, z]``, row by row.

    Not identified slope columns of a group are left out of its basis, as
    in memory (``skmixed.fixed._GroupBasis``).
    """

    def __init__(self, coder, moments, k):
        from skmixed.fixed import _identified

        self.coder, self.m, self.k = coder, len(moments.counts), k
        self.shift = moments.shift  # y's means are less it: so is y
        self.r = moments.means.shape[1] - k - 1  # the other features
        self.zbar, self.vbar = moments.means[:, :k], moments.means[:, k:]
        self.full_gram = moments.cross[:, :, :k]
        self.identified = _identified(self.full_gram, np.sqrt(moments.squares))
        ok = self.identified[:, :, None] & self.identified[:, None, :]
        eye = np.broadcast_to(np.eye(k), self.full_gram.shape)
        self.gram = np.where(ok, self.full_gram, eye)
        self.vcross = moments.cross[:, :, k:]
        self.coef = self._solve(self.vcross)

    def _solve(self, cross):
        """Per-group regression coefficients on the centred identified z."""
        cross = cross.copy()
        cross[~self.identified] = 0.0
        return np.linalg.solve(self.gram, cross)

    def __call__(self, codes, values, Z):
        centred = values - self.vbar[codes]
        Zc = Z - self.zbar[codes]
        for a in range(self.k):
            centred -= Zc[:, [a]] * self.coef[codes, a, :]
        return centred

    @property
    def project(self):
        return self

    def recover(self, beta, ref):
        """Group intercepts and slopes of y minus the other features.

        A slope not identified in a group is the reference level's slope,
        as in memory (``_GroupBasis.recover``).
        """
        mean = self.vbar[:, -1] - self.vbar[:, :-1] @ beta
        cross = self.vcross[:, :, -1] - self.vcross[:, :, :-1] @ beta
        ref_slopes = self._fit_groups(mean, cross)[1][ref]
        fixed = np.where(self.identified, 0.0, ref_slopes[None, :])
        mean = mean - np.einsum("ij,ij->i", self.zbar, fixed)
        cross = cross - np.einsum("gab,gb->ga", self.full_gram, fixed)
        intercepts, slopes = self._fit_groups(mean, cross)
        slopes = np.where(self.identified, slopes, ref_slopes[None, :])
        return intercepts + self.shift, slopes

    def _fit_groups(self, mean, cross):
        slopes = self._solve(cross[:, :, None])[:, :, 0]
        return mean - np.einsum("ij,ij->i", self.zbar, slopes), slopes


class Columns:
    """The other features, then the slope columns (the basis), row by row."""

    intercept_first = False

    def __init__(self, order):
        self.order = order

    def __call__(self, part, F):
        return F[:, self.order]
