"""``PooledRegressor`` and ``FixedEffectsRegressor`` fits from Dask collections.

Least squares by a tree of QR factorisations (TSQR): each partition gives
the triangular factor ``R`` of its rows of ``[design | y]``, and the factor
of two stacked factors is that of both sets of rows. The least-squares fit of
the final ``R`` (``skmixed._linalg.least_squares``, R's aliasing rule) is the
fit of all the rows: ``‖D b - y‖ = ‖R_D b - r_y‖``, and column norms are kept.

The within estimator absorbs the groups the same way: a partition factors
its rows centred on the partition's group means, and two partial results
merge by Chan's update -- the rows ``sqrt(n_a n_b / n) (mean_b - mean_a)``
of every group present in both are stacked under the two factors -- so no
demeaned copy of the data is ever made.
"""

from dataclasses import dataclass, replace

import numpy as np

from skmixed import _dask, _dask_input, _dask_labels, _dask_predict, _dask_rows
from skmixed._base import weights_name
from skmixed._inputs import (
    _FIT_HINT,
    no_feature_error,
    nonfinite_counts,
    raise_nonfinite,
    response_name,
    warn_dropped,
)
from skmixed._linalg import least_squares
from skmixed._lm import lm_statistics_from_sums
from skmixed._moments import merge_means
from skmixed.fixed import _dummy_design, intercept_dropped_error
from skmixed.pooled import check_some_column, groups_label, warn_aliased

_MISSING_OPTIONS = ("error", "drop")


def _r_factor(matrix):
    """Triangular factor of a QR decomposition (fewer rows: zero-padded)."""
    c = matrix.shape[1]
    r = np.linalg.qr(matrix, mode="r") if matrix.shape[0] else np.zeros((0, c))
    out = np.zeros((c, c))
    out[: r.shape[0]] = r[:c]
    return out


@dataclass
class Partial:
    """Sums of a chunk of rows for a least-squares fit."""

    R: np.ndarray  # triangular factor of sqrt(w) [design | y] (within: centred)
    moments: np.ndarray  # y: (weight, weighted mean, centred sum of squares)
    squares: np.ndarray  # per design column: weighted sum of squares (norms²)
    nonfinite_x: np.ndarray
    nonfinite_y: np.ndarray
    n_dropped: int
    n_fit: int  # rows in the fit (those of positive weight)
    n_rows: int  # every row kept (zero weights too: they get residuals)
    weights: dict  # counts of NaN, inf, negative, zero and positive weights
    first_negative: tuple | None = None
    weight_range: np.ndarray | None = None  # (min, max) of the weights
    log_weights: float = 0.0  # Σ log w over the fitted rows
    counts: np.ndarray | None = None  # within: weight (rows) per group
    means: np.ndarray | None = None  # within: per group (weighted) means
    # the constant y less which R, the moments (within: the means) were
    # formed, None if no intercept absorbs one: a partition's mean of y
    shift: float | None = None

    def shifted(self, shift):
        """The same sums of y less ``shift`` (rather than ``self.shift``).

        With the intercept as column 0 of the design, ``[D | y - c']`` is
        ``[D | y - c] - (c' - c) D[:, 0]``, and R's column 0 is zero below
        its first row: only ``R[0, -1]`` changes, the rows that carry the
        residual sum of squares keep every digit. Within, R holds no
        constant: only the group means of y change.
        """
        if self.shift is None or shift == self.shift:
            return self
        by = shift - self.shift
        R, means, moments = self.R, self.means, self.moments.copy()
        moments[1] -= by
        if means is None:
            R = R.copy()
            R[0, -1] -= by * R[0, 0]
        else:
            means = means.copy()
            means[self.counts > 0, -1] -= by
        return replace(self, R=R, means=means, moments=moments, shift=shift)

    def add(self, other):
        if self.shift is not None:
            # both less one partition's mean of y: y = 1e8 + ... stacked as
            # it is loses ~8 digits of the residuals in the QR, and the
            # difference of two means of 1e8 those of the total sum of squares
            shift = self.shift if self.moments[0] > 0 else other.shift
            self, other = self.shifted(shift), other.shifted(shift)
        extra = []
        counts = means = None
        if self.counts is not None:
            counts, means, delta, gain = merge_means(
                self.counts, self.means, other.counts, other.means
            )
            both = gain > 0  # the groups present in both
            extra = [np.sqrt(gain[both])[:, None] * delta[both]]
        R = _r_factor(np.vstack([self.R, other.R, *extra]))
        negatives = [f for f in (self.first_negative, other.first_negative) if f]
        ranges = [r for r in (self.weight_range, other.weight_range) if r is not None]
        return Partial(
            R,
            _merge_moments(self.moments, other.moments),
            self.squares + other.squares,
            self.nonfinite_x + other.nonfinite_x,
            self.nonfinite_y + other.nonfinite_y,
            self.n_dropped + other.n_dropped,
            self.n_fit + other.n_fit,
            self.n_rows + other.n_rows,
            {k: self.weights[k] + other.weights[k] for k in self.weights},
            min(negatives, key=_dask_rows.label_order) if negatives else None,
            np.array([min(r[0] for r in ranges), max(r[1] for r in ranges)])
            if ranges
            else None,
            self.log_weights + other.log_weights,
            counts,
            means,
            self.shift,
        )


def _merge_moments(a, b):
    """Chan's update of (count, mean, centred sum of squares)."""
    if a[0] == 0:
        return b
    if b[0] == 0:
        return a
    n, mean, delta, gain = merge_means(a[0], a[1], b[0], b[1])
    return np.array([n, mean, a[2] + b[2] + gain * delta**2])


def _add_partials(a, b):
    return a.add(b)


def _partition_rows(part, index, meta, features, group_columns, drop):
    _dask_rows._check_dtypes(part, meta, index)
    keep = _dask_rows._complete_rows(part, features, group_columns, drop)
    n_dropped = int((~keep).sum())
    if n_dropped:
        part = part[keep]
    F = part[features].to_numpy(dtype=np.float64, na_value=np.nan)
    F = F.reshape(len(part), len(features))
    y = part[_dask._Y].to_numpy(dtype=np.float64, na_value=np.nan)
    return part, F, y, n_dropped


def _y_moments(y, w):
    total = float(w.sum())
    mean = float(w @ y) / total if total > 0 else 0.0
    return np.array([total, mean, float(w @ (y - mean) ** 2)])


def lm_partition(part, index, meta, spec):
    """Partial least-squares sums of one partition.

    With precision weights the rows of weight 0 are left out (R's
    ``lm.wfit``) and the others scaled by ``sqrt(w)``; the within
    transformation centres on weighted group means.
    """
    features, group_columns, drop, build, within = spec
    first_negative = _dask_rows.first_negative_weight(part)
    part, F, y, n_dropped = _partition_rows(
        part, index, meta, features, group_columns, drop
    )
    n_rows = len(part)
    bad_x = nonfinite_counts(F)
    bad_y = nonfinite_counts(y[:, None])
    w = None
    if _dask._W in part.columns:
        w = part[_dask._W].to_numpy(dtype=np.float64, na_value=np.nan)
    counts_w = _dask_rows.weight_counts(w)
    weight_range = None if w is None or not len(w) else np.array([w.min(), w.max()])
    design = build(part, F)
    bad = bad_x.any() or bad_y.any() or counts_w["nan"] or counts_w["inf"]
    if bad or counts_w["negative"]:  # the fit will fail: no sums needed
        design, y, w, part = design[:0], y[:0], None if w is None else w[:0], part[:0]
    codes = None
    if within is not None:
        codes = within.coder.row_codes(part) if len(part) else np.zeros(0, np.int64)
    if w is not None:
        rows = w > 0
        design, y, w = design[rows], y[rows], w[rows]
        codes = None if codes is None else codes[rows]
    weights = np.ones(len(y)) if w is None else w
    project = None if within is None else within.project
    if project is not None:  # the slope columns close the design: the basis
        design, Z = design[:, : project.r], design[:, project.r :]
    shift = None
    if (within is not None and project is None) or build.intercept_first:
        shift = _y_moments(y, weights)[1]  # a constant the intercept absorbs
        y = y - shift
    elif project is not None:
        # less the constant y's group means are less (GroupMoments.shift),
        # the same in every partition: no shift to merge
        y = y - project.shift
    moments = _y_moments(y, weights)
    augmented = np.column_stack([design, y])
    squares = weights @ (design * design)
    counts = means = None
    if project is not None:
        # residuals on the groups' [1, z] from the sums of all the rows:
        # final, nothing left to merge but the factors (no shift: y's group
        # means are removed)
        augmented = project(codes, augmented, Z)
    elif within is not None:
        m = within.m
        counts = np.bincount(codes, weights=weights, minlength=m)
        sums = np.empty((m, augmented.shape[1]))
        for j in range(augmented.shape[1]):
            column = augmented[:, j] * weights
            sums[:, j] = np.bincount(codes, weights=column, minlength=m)
        means = sums / np.where(counts > 0, counts, 1.0)[:, None]
        augmented = augmented - means[codes]
    if w is not None:
        augmented = augmented * np.sqrt(w)[:, None]
    return Partial(
        _r_factor(augmented),
        moments,
        squares,
        bad_x,
        bad_y,
        n_dropped,
        len(y),
        n_rows,
        counts_w,
        first_negative,
        weight_range,
        0.0 if w is None else float(np.log(w).sum()),
        counts,
        means,
        shift,
    )


class _Intercept:
    """[1 | features] (or the features alone), row by row."""

    def __init__(self, fit_intercept):
        self.fit_intercept = fit_intercept
        self.intercept_first = bool(fit_intercept)

    def __call__(self, part, F):
        if not self.fit_intercept:
            return F
        return np.column_stack([np.ones(len(F)), F])


def _reduce(model, inp, features, build, group_columns=(), within=None):
    import dask

    missing = model.missing
    if missing not in _MISSING_OPTIONS:
        raise ValueError(f"missing must be one of {_MISSING_OPTIONS}; got {missing!r}.")
    drop = missing == "drop"
    spec = _dask.shared((features, list(group_columns), drop, build, within))
    meta = inp.frame._meta
    parts = [
        dask.delayed(lm_partition)(part, i, meta, spec)
        for i, part in enumerate(inp.frame.to_delayed())
    ]
    # the sums of y itself: the fit's intercept (the groups' means) get the
    # shift back, only R's intercept row changes (see Partial.shifted)
    total = _dask.tree_reduce(parts, _add_partials).compute().shifted(0.0)
    _dask_input.raise_nonfinite_features(inp, total.nonfinite_x, inp.names)
    raise_nonfinite(total.nonfinite_y, inp.y_names, "y", _FIT_HINT)
    _dask_rows.check_weights(total.weights, total.first_negative)
    _dask_rows.refuse_no_rows(total.n_rows, drop, inp.frame.npartitions)
    model.n_dropped_ = total.n_dropped
    if total.n_dropped:
        warn_dropped(total.n_dropped, total.n_rows)
    # what the summary needs: the rows (zero weights too), whether the
    # weights vary (R then heads the residuals "Weighted Residuals:")
    model._dask_rows = total.n_rows
    model._dask_weights_vary = (
        None if total.weight_range is None else bool(np.ptp(total.weight_range) > 0)
    )
    return total


def _sums(total, has_intercept):
    """(n, total sum of squares, Σ log w) of the fitted rows."""
    return total.n_fit, _tss(total.moments, has_intercept), total.log_weights


def _tss(moments, has_intercept):
    weight, mean, centred = moments
    return float(centred) if has_intercept else float(centred + weight * mean * mean)


def fit_pooled(model, X, y, groups, sample_weight=None):
    """``PooledRegressor.fit`` on Dask collections (TSQR)."""
    model._weights_name = weights_name(sample_weight)
    if model.cov_type not in ("nonrobust", "cluster"):
        raise ValueError(
            f"cov_type must be one of ('nonrobust', 'cluster'); got {model.cov_type!r}."
        )
    inp = _dask_input.fit_input(model, X, y, groups, sample_weight)
    fit_intercept = model.fit_intercept if inp.intercept is None else inp.intercept
    model._has_intercept = bool(fit_intercept)
    names = inp.names
    # (the rows are not counted for the message)
    check_some_column(len(names), fit_intercept, model.fixed_effects, "(n, 0)")
    build = _Intercept(fit_intercept)
    total = _reduce(model, inp, inp.features, build, inp.groups.values())
    fit = least_squares(total.R[:, :-1], total.R[:, -1])
    n, tss, log_weights = _sums(total, fit_intercept)
    statistics = lm_statistics_from_sums(
        n, tss, fit.rss, fit.rank, fit_intercept, log_weights
    )
    model._fit_labels = (response_name(y), groups_label(groups))
    scores = None
    if model.cov_type == "cluster":
        if not inp.groups:
            raise ValueError(
                "cov_type='cluster' needs the clusters: pass groups= or name a "
                "column of X with group=."
            )
        if total.weights["zero"]:
            raise ValueError(
                "cov_type='cluster' with zero weights: sandwich::vcovCL counts "
                "zero-weight rows in its sample size, so the covariance would "
                "depend on them. Drop the rows with sample_weight == 0 first."
            )
        scores = _cluster_scores(model, inp, build, fit)
    model._set_results(fit, names, statistics, None, None, scores, None)
    model._dask_input = inp
    model.fittedvalues_ = _dask_predict.fitted_values(model)
    model.residuals_ = _dask_predict.residuals(model)


def _scores_partition(part, index, meta, spec):
    features, group_columns, drop, build, coder, m, beta, kept = spec
    part, F, y, _ = _partition_rows(part, index, meta, features, group_columns, drop)
    design = build(part, F)[:, kept]
    residuals = y - design @ beta
    if _dask._W in part.columns:  # the scores w r x (sandwich's estfun.lm)
        residuals = part[_dask._W].to_numpy(dtype=np.float64) * residuals
    codes = coder.row_codes(part)
    out = np.empty((m, design.shape[1]))
    for j in range(design.shape[1]):
        out[:, j] = np.bincount(codes, weights=design[:, j] * residuals, minlength=m)
    return out


def _cluster_scores(model, inp, build, fit):
    """Per cluster sums of ``x_i e_i`` by another pass (cov_type='cluster')."""
    import dask

    (name,) = inp.groups
    coders, _ = _dask_labels._learn_factors(
        inp, {name: [name]}, inp.features, model.missing == "drop"
    )
    coder = coders[name]
    kept = ~fit.aliased
    spec = dask.delayed(
        (
            inp.features,
            list(inp.groups.values()),
            model.missing == "drop",
            build,
            coder,
            len(coder.levels),
            fit.coef[kept],
            kept,
        ),
        traverse=False,
    )
    meta = inp.frame._meta
    parts = [
        dask.delayed(_scores_partition)(part, i, meta, spec)
        for i, part in enumerate(inp.frame.to_delayed())
    ]
    return _dask.tree_reduce(parts, np.add).compute()


class _DummyDesign:
    """The dummy-variable design of FixedEffectsRegressor, row by row."""

    intercept_first = True  # column 0: the intercept

    def __init__(self, coder, ref, levels, slope_idx, names, label):
        self.coder, self.ref, self.levels = coder, ref, levels
        self.slope_idx, self.names, self.label = slope_idx, names, label

    def __call__(self, part, F):
        codes = self.coder.row_codes(part) if len(part) else np.zeros(0, np.int64)
        design, _, _ = _dummy_design(
            F, codes, self.ref, self.levels, self.slope_idx, self.names, self.label
        )
        return design


def _features_only(part, F):
    return F


class _Absorb:
    """The within method's groups: partitions centre on their group means."""

    project = None

    def __init__(self, coder, m):
        self.coder, self.m = coder, m


def fit_fixed(model, X, y, groups, sample_weight=None):
    """``FixedEffectsRegressor.fit`` on Dask collections (dummy or within)."""
    model._weights_name = weights_name(sample_weight)
    from skmixed.fixed import (
        _MAX_DUMMY_CELLS,
        _MAX_DUMMY_COLUMNS,
        _METHODS,
        _UNKNOWN,
        _fe_formula,
    )

    if model.method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {model.method!r}.")
    if model.handle_unknown not in _UNKNOWN:
        raise ValueError(
            f"handle_unknown must be one of {_UNKNOWN}; got {model.handle_unknown!r}."
        )
    response, default_label = response_name(y), groups_label(groups)
    inp = _dask_input.fit_input(model, X, y, groups, sample_weight)
    if inp.intercept is False:  # a formula's "0 + x" (as the in-memory fit)
        raise intercept_dropped_error(model.fixed_effects)
    names = inp.names
    slope_idx = model._slope_indices(names)
    model.response_name_ = response
    if not inp.groups:  # (GroupsMissingWarning issued): the pooled model
        _fit_fixed_pooled(model, inp, names, response)
        return
    (name,) = inp.groups
    drop = model.missing == "drop"
    coders, n = _dask_labels._learn_factors(inp, {name: [name]}, inp.features, drop)
    _dask_rows.refuse_no_rows(n, drop, inp.frame.npartitions)
    coder = coders[name]
    label = str(model.group) if model.group is not None else default_label
    levels = [str(level) for level in coder.levels]
    if len(levels) < 2:
        raise ValueError(
            f"Grouping factor {label!r} has a single level ({levels[0]!r}); "
            "fixed effects need at least 2 groups. Use PooledRegressor for "
            "one group."
        )
    ref = model._reference_index(levels)
    p, k = len(names), len(slope_idx)
    n_dummy = (len(levels) - 1) * (1 + k)
    method = model.method
    if method == "auto":
        big = n_dummy > _MAX_DUMMY_COLUMNS or n * (1 + p + n_dummy) > _MAX_DUMMY_CELLS
        method = "within" if big else "dummy"
    model.group_name_, model.levels_ = label, levels
    model.reference_, model.n_groups_ = levels[ref], len(levels)
    model.method_, model._slope_idx = method, slope_idx
    if slope_idx:
        _check_reference_slopes(model, inp, coder, ref, names, slope_idx, levels)
    groups_columns = list(inp.groups.values())
    if method == "dummy":
        build = _DummyDesign(coder, ref, levels, slope_idx, names, label)
        _, columns, order = _dummy_design(
            np.zeros((0, p)),
            np.zeros(0, np.int64),
            ref,
            levels,
            slope_idx,
            names,
            label,
        )
        total = _reduce(model, inp, inp.features, build, groups_columns)
        fit = least_squares(total.R[:, :-1], total.R[:, -1], order=order)
        sums = _sums(total, True)
        model._finish(None, None, fit, columns, has_group_rank=0, sums=sums)
        model._dummy_effects(fit, columns, names, ref)
    elif slope_idx:
        total = _fit_within_slopes(model, inp, coder, ref, names, label, sample_weight)
    else:
        within = _Absorb(coder, len(levels))
        total = _reduce(
            model, inp, inp.features, _features_only, groups_columns, within
        )
        if sample_weight is not None:
            from skmixed.fixed import _check_weighted_levels

            present = np.flatnonzero(total.counts > 0)
            _check_weighted_levels(present, len(levels), levels, label)
        norms = np.sqrt(total.squares)
        fit = least_squares(total.R[:, :-1], total.R[:, -1], norms=norms)
        warn_aliased(
            [c for c, a in zip(names, fit.aliased, strict=True) if a],
            "FixedEffectsRegressor",
        )
        beta = np.where(fit.aliased, 0.0, fit.coef)
        intercepts = total.means[:, -1] - total.means[:, :-1] @ beta
        sums = _sums(total, True)
        model._finish(None, None, fit, names, has_group_rank=len(levels), sums=sums)
        model._store_effects(
            intercepts, np.zeros((len(levels), 0)), fit.coef, names, ref=ref
        )
    model.formula_ = model._formula_of_fit(
        response, _fe_formula(response, names, label, slope_idx)
    )
    model.n_dropped_ = total.n_dropped
    model._dask_input = inp
    model.fittedvalues_ = _dask_predict.fitted_values(model)
    model.residuals_ = _dask_predict.residuals(model)


def _fit_within_slopes(model, inp, coder, ref, names, label, sample_weight):
    """The within method with group slopes: two passes (``_dask_within``)."""
    from skmixed._dask_within import Columns, Projection, group_moments

    slope_idx, levels = model._slope_idx, model.levels_
    rest = [j for j in range(len(names)) if j not in slope_idx]
    groups_columns = list(inp.groups.values())
    drop = model.missing == "drop"
    moments = group_moments(
        inp, inp.features, groups_columns, drop, coder, len(levels), slope_idx, rest
    )
    basis = Projection(coder, moments, len(slope_idx))
    build = Columns(rest + slope_idx)
    total = _reduce(model, inp, inp.features, build, groups_columns, basis)
    if sample_weight is not None:
        from skmixed.fixed import _check_weighted_levels

        present = np.flatnonzero(moments.counts > 0)
        _check_weighted_levels(present, len(levels), levels, label)
    fit = least_squares(total.R[:, :-1], total.R[:, -1], norms=np.sqrt(total.squares))
    rest_names = [names[j] for j in rest]
    aliased = [c for c, a in zip(rest_names, fit.aliased, strict=True) if a]
    for g, col in zip(*np.nonzero(~basis.identified), strict=True):
        aliased.append(f"{names[slope_idx[col]]}:{label}{levels[g]}")
    warn_aliased(aliased, "FixedEffectsRegressor")
    intercepts, slopes = basis.recover(np.where(fit.aliased, 0.0, fit.coef), ref)
    group_rank = len(levels) + int(basis.identified.sum())
    sums = _sums(total, True)
    model._finish(None, None, fit, rest_names, has_group_rank=group_rank, sums=sums)
    coef = np.full(len(names), np.nan)
    coef[rest] = fit.coef
    model._store_effects(intercepts, slopes, coef, names, ref=ref)
    return total


def _fit_fixed_pooled(model, inp, names, response):
    """FixedEffectsRegressor without groups, as in memory: lm(y ~ x)."""
    if not names:  # (the rows are not counted for the message)
        raise no_feature_error("(n, 0)", "y ~ g")
    total = _reduce(model, inp, inp.features, _Intercept(True))
    fit = least_squares(total.R[:, :-1], total.R[:, -1])
    columns = ["(Intercept)", *names]
    warn_aliased(
        [c for c, a in zip(columns, fit.aliased, strict=True) if a],
        "FixedEffectsRegressor",
    )
    model._finish(None, None, fit, columns, has_group_rank=0, sums=_sums(total, True))
    model._pooled_effects(fit, names, response)
    model._dask_input = inp
    model.fittedvalues_ = _dask_predict.fitted_values(model)
    model.residuals_ = _dask_predict.residuals(model)


def _reference_rows(part, coder, ref, features, group_columns, drop):
    keep = _dask_rows._complete_rows(part, features, group_columns, drop)
    part = part[keep]
    return part[coder.row_codes(part) == ref]


def _check_reference_slopes(model, inp, coder, ref, names, slope_idx, levels):
    """In-memory fit's check that the reference level's slopes are identified."""
    from skmixed.fixed import _check_reference_slopes as check

    columns = [inp.features[j] for j in slope_idx]
    frame = inp.frame.map_partitions(
        _reference_rows,
        coder,
        ref,
        inp.features,
        list(inp.groups.values()),
        model.missing == "drop",
        meta=inp.frame._meta,
    )
    Z = frame[columns].compute().to_numpy(dtype=np.float64)
    Zfull = np.zeros((len(Z), len(names)))
    Zfull[:, slope_idx] = Z
    check(Zfull[:, slope_idx], np.full(len(Z), ref), ref, names, slope_idx, levels)
