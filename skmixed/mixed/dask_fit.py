"""``MixedLMRegressor.fit`` on Dask collections: the design from partitions.

One pass maps :func:`accumulate_partition` over the partitions and
tree-reduces the :class:`~skmixed.mixed.design.CrossProducts` with a
:class:`RowSummary` (what the checks of an in-memory fit read from the rows:
NaN counts, the range of y, column moments). With one grouping factor,
batches of partitions (:func:`accumulate_batch`) key their sums by their
own labels (:class:`LabelledSums`, merged by label); with several, a first
pass learns the levels
(``skmixed._dask``) and the partitions code their rows with them. The
client then drops aliased fixed-effect columns from the sums, builds the
:class:`~skmixed.mixed.design.Design` and hands it to the estimator's
optimiser, exactly as an in-memory fit does.
"""

import time
from dataclasses import dataclass, replace

import numpy as np

from skmixed import _dask
from skmixed._inputs import _FIT_HINT
from skmixed.mixed.design import (
    _NO_LATER_TERMS,
    CrossProducts,
    TermDesign,
    accumulate,
    design_from_cross_products,
)

_MISSING_OPTIONS = ("error", "drop")
#: Partial sums merged per task when partitions bring their own labels.
LABEL_SPLIT = 8


@dataclass
class TermSpec:
    """What a partition needs to build one term's columns."""

    factor: str
    names: list
    slopes: list  # feature indices of the slope columns
    intercept: bool
    m: int | None  # None: the partition's own levels
    column: str | None = None  # the grouping column (own levels only)


@dataclass
class RowSummary:
    """Row-wise facts an in-memory fit checks, as sums over partitions."""

    n_dropped: int
    y_range: np.ndarray  # (min, max)
    nonfinite_x: np.ndarray  # (p, 2): NaN, inf rows per feature
    nonfinite_y: np.ndarray  # (1, 2)
    x_sums: np.ndarray  # (p_all, 2): sum and sum of squares per X column
    weights: dict  # counts of NaN, inf, negative, zero, positive weights
    first_negative: tuple | None = None  # (index label, value)

    def add(self, other):
        negatives = [f for f in (self.first_negative, other.first_negative) if f]
        return RowSummary(
            self.n_dropped + other.n_dropped,
            np.array(
                [
                    min(self.y_range[0], other.y_range[0]),
                    max(self.y_range[1], other.y_range[1]),
                ]
            ),
            self.nonfinite_x + other.nonfinite_x,
            self.nonfinite_y + other.nonfinite_y,
            self.x_sums + other.x_sums,
            {k: self.weights[k] + other.weights[k] for k in self.weights},
            min(negatives, key=_dask.label_order) if negatives else None,
        )


def _moments(values):
    return np.stack([values.sum(axis=0), (values * values).sum(axis=0)], axis=1)


def accumulate_partition(part, index, meta, spec, rows_only=False):
    """Cross-products and row summary of one partition.

    With ``coders`` (a dict of FactorCoders) the rows are coded with the
    global levels. With ``coders=None`` (one grouping factor) the partition
    codes its rows by its own distinct labels and returns a
    :class:`LabelledSums`, merged with other partitions' by label (or, with
    ``rows_only``, its :class:`_PartitionRows`, for a batch to code them
    together with its other partitions').
    """
    features, coders, terms, fit_intercept, drop, kept, centring = spec[:7]
    _dask._check_dtypes(part, meta, index)
    first_negative = _dask.first_negative_weight(part)
    if coders is None:
        group_columns = [terms[0].column]
    else:
        group_columns = sorted({c for coder in coders.values() for c in coder.columns})
    keep = _dask._complete_rows(part, features, group_columns, drop)
    n_dropped = int((~keep).sum())
    missing = 0
    if coders is None:  # the kept rows' own labels; a missing one is counted
        labels = _own_labels(part[terms[0].column], keep)
        missing = int((~labels.present).sum())
        if missing:
            keep[np.flatnonzero(keep)[~labels.present]] = False
    if not keep.all():
        part = part[keep]
    # [1 features y], column-major, filled column by column from the frame:
    # one copy of the rows (accumulate reads it as is)
    start = int(fit_intercept)
    XY = np.empty((len(part), start + len(features) + 1), order="F")
    if fit_intercept:
        XY[:, 0] = 1.0
    for j, column in enumerate(features + [_dask._Y]):
        XY[:, start + j] = part[column].to_numpy(dtype=np.float64, na_value=np.nan)
    X, F, y = XY[:, :-1], XY[:, start:-1], XY[:, -1]
    bad_x, bad_y = _dask._nonfinite_counts(F), _dask._nonfinite_counts(y[:, None])
    w = None
    if _dask._W in part.columns:
        w = part[_dask._W].to_numpy(dtype=np.float64, na_value=np.nan)
    weight_counts = _dask.weight_counts(w)
    bad_weights = sum(weight_counts[k] for k in ("nan", "inf", "negative", "zero"))
    bad = bad_x.any() or bad_y.any() or bad_weights  # then the fit fails
    if coders is None:
        checks = (n_dropped, bad_x, bad_y, weight_counts, first_negative)
        rows = _PartitionRows(labels, XY, w, bad, missing, checks)
        return rows if rows_only else labelled_sums([rows], spec)
    designs = []
    for term in terms:
        codes, levels = coders[term.factor].row_codes(part), range(term.m)
        designs.append(
            TermDesign(codes, levels, _term_z(term, F), term.names, term.factor)
        )
    sums = summary = None
    if centring is not None:
        # the in-memory fit's centred columns, computed from the rows alike
        Xc, designs_c = centring.design_inputs(X[:, kept], designs)
        sums = accumulate(Xc, y, designs_c, w)
    else:
        if not bad:
            first_in_x = _columns_in_x(terms[0], fit_intercept)
            sums = accumulate(X, y, designs, w, first_in_x, xy=XY)
        summary = _row_summary(
            X,
            y,
            sums.Bxx if sums is not None else None,
            w,
            n_dropped,
            bad_x,
            bad_y,
            weight_counts,
            first_negative,
        )
    return sums, summary


def _term_z(term, F):
    """A term's columns (None: the intercept alone)."""
    if not term.slopes:
        return None
    Z = np.empty((F.shape[0], len(term.names)))
    start = int(term.intercept)
    if term.intercept:
        Z[:, 0] = 1.0
    Z[:, start:] = F[:, term.slopes]
    return Z


def _row_summary(X, y, Bxx, w, n_dropped, bad_x, bad_y, weight_counts, first_negative):
    if Bxx is not None and w is None:
        # the squares are XᵀX's diagonal: no second product of the rows
        x_sums = np.stack([X.sum(axis=0), np.diagonal(Bxx)[: X.shape[1]]], 1)
    else:
        x_sums = _moments(X)
    return RowSummary(
        n_dropped,
        np.array([y.min(), y.max()]) if len(y) else np.array([np.inf, -np.inf]),
        bad_x,
        bad_y,
        x_sums,
        weight_counts,
        first_negative,
    )


@dataclass
class _OwnLabels:
    """The labels of a partition's kept rows, before they are coded.

    ``keys`` (:class:`~skmixed._dask.LabelKeys` of the rows with a label)
    when the labels have 64-bit keys, else ``codes`` of those rows into
    ``labels``, the partition's distinct labels (Arrow array or Series).
    """

    present: np.ndarray  # bool per kept row: has a label
    keys: object = None
    codes: np.ndarray | None = None
    labels: object = None


def _own_labels(column, keep):
    """The :class:`_OwnLabels` of the kept rows.

    The labels of rows dropped by ``missing='drop'`` make no level, as in
    memory.
    """
    if not keep.all():
        column = column[keep]
    keyed = _dask.label_keys(column)
    if keyed is None:
        codes, labels = _dask.local_codes(column)
        present = codes >= 0
        return _OwnLabels(present, codes=codes[present], labels=labels)
    if keyed.present is None:
        return _OwnLabels(np.ones(len(keyed.keys), dtype=bool), keys=keyed)
    keys = _dask.LabelKeys(keyed.keys[keyed.present], None, keyed.kind)
    return _OwnLabels(keyed.present, keys=keys)


@dataclass
class _PartitionRows:
    """What a partition brings to its sums: labels, ``[1 X y]``, checks."""

    labels: _OwnLabels
    XY: np.ndarray
    w: np.ndarray | None
    bad: bool  # NaN/inf or bad weights: the fit fails, no sums
    missing: int  # rows with a missing label
    checks: tuple  # n_dropped, bad_x, bad_y, weight_counts, first_negative

    @property
    def nbytes(self):
        keys = self.labels.keys
        return self.XY.nbytes + (keys.keys.nbytes if keys is not None else 0)


def labelled_sums(parts, spec):
    """The :class:`LabelledSums` of several partitions' rows.

    When every partition's labels have keys of one kind, their rows are
    coded together by one hash of all the keys and summed straight into
    one array per level: no merge by label. Otherwise each partition is
    coded by its own labels and the results are merged.
    """
    keyed = [p.labels.keys for p in parts if p.labels.keys is not None]
    kinds = {k.kind for k in keyed}
    if len(keyed) < len(parts) or len(kinds) > 1:
        return merge_labelled(*[_sums_by_own_labels(p, spec) for p in parts])
    codes, distinct = _dask.code_keys(np.concatenate([k.keys for k in keyed]))
    ends = np.cumsum([len(k.keys) for k in keyed])
    codes = np.split(codes, ends[:-1])
    labels = _dask.LabelKeys(distinct, None, kinds.pop() if kinds else "bytes")
    return _labelled(spec, labels, list(zip(codes, parts, strict=True)))


def _sums_by_own_labels(part, spec):
    own = part.labels
    if own.keys is not None:
        codes, distinct = _dask.code_keys(own.keys.keys)
        labels = _dask.LabelKeys(distinct, None, own.keys.kind)
    else:
        codes, labels = own.codes, own.labels
    return _labelled(spec, labels, [(codes, part)])


@dataclass
class PairLayout:
    """The per-level sums a partition ships, and where ``CX`` and ``D1`` read them.

    Row ``i`` of a partition's sums is, per level, the sum over its rows of
    ``M[:, a] * M[:, b]`` for ``(a, b) = pairs[i]``, ``M`` being ``[X y]``
    (column ``-1``: a column of ones that X lacks). A product that appears
    twice (``x1 * 1`` in ``Z1ᵀX`` and in ``Z1ᵀZ1``, ``x1 * x1`` ...) is
    summed and shipped once.
    """

    pairs: list
    cx: np.ndarray  # (k, p + 1): row of Z1ᵀ[X y]'s element (j, c)
    d1: np.ndarray  # (k, k): row of Z1ᵀZ1's element (a, b)
    full: bool = False  # rows are CX then D1 as they are (the centred pass)


def pair_layout(z_columns, width):
    """The layout of a term whose column j is column ``z_columns[j]`` of [X y]."""
    k = len(z_columns)
    index, pairs = {}, []

    def row(a, b):
        key = (min(a, b), max(a, b))
        if key not in index:
            index[key] = len(pairs)
            pairs.append(key)
        return index[key]

    cx = np.array([[row(z, c) for c in range(width)] for z in z_columns])
    d1 = np.array([[row(a, b) for b in z_columns] for a in z_columns])
    return PairLayout(pairs, cx.reshape(k, width), d1.reshape(k, k))


def full_layout(k, width):
    """The layout of CX and D1 shipped element by element (the centred pass)."""
    n_cx = k * width
    cx = np.arange(n_cx).reshape(k, width)
    d1 = n_cx + np.arange(k * k).reshape(k, k)
    return PairLayout([None] * (n_cx + k * k), cx, d1, full=True)


def _level_sums(codes, m, M, pairs, ones_column):
    """Per level, the sums of ``M[:, a] * M[:, b]`` for each pair: (len(pairs), m).

    ``ones_column`` is the column of ``M`` that is all ones (or -1, the
    virtual column of ones; None: none of them are ones, the rows are
    weighted): a product with it needs no multiplication, and the count
    of rows no weights.
    """
    out = np.empty((len(pairs), m))
    buffer = np.empty(M.shape[0])
    for i, (a, b) in enumerate(pairs):
        if a == ones_column and b == ones_column:
            weights = None
        elif a == ones_column or b == ones_column:
            weights = M[:, b if a == ones_column else a]
        else:
            weights = np.multiply(M[:, a], M[:, b], out=buffer)
        out[i] = np.bincount(codes, weights=weights, minlength=m)
    return out


def _labelled(spec, labels, coded):
    """The :class:`LabelledSums` of partitions whose rows are coded by
    ``labels``: ``coded`` is a list of (codes, :class:`_PartitionRows`)."""
    out = None
    for codes, part in coded:
        sums = _one_partition(spec, len(labels), codes, part)
        if out is None:
            out = sums
        else:
            out.add_in_place(sums)
    out.labels = labels
    return out


class PartitionGraphs:
    """Some partitions' own task graphs, carried into a task as data.

    A batch task computes its partitions itself (:func:`accumulate_batch`),
    one after the other: their rows are read where they are summed, and
    the batch's labels are hashed together.
    """

    def __init__(self, items, max_bytes):
        self.items = items  # (partition index, graph, key)
        self.max_bytes = max_bytes  # rows held before they are coded


def accumulate_batch(batch, meta, spec):
    """The :class:`LabelledSums` of a batch of partitions, read here.

    The rows of the partitions read so far are held until they are coded
    together; past ``batch.max_bytes`` of them, they are coded and summed, and
    the next ones start anew (the sums merged by label at the end), so
    that memory stays bounded whatever the partitions' size.
    """
    from dask.local import get_sync

    done, rows, held = [], [], 0
    for index, graph, key in batch.items:
        part = get_sync(graph, key)
        rows.append(accumulate_partition(part, index, meta, spec, rows_only=True))
        del part
        held += rows[-1].nbytes
        if held > batch.max_bytes:
            done.append(labelled_sums(rows, spec))
            rows, held = [], 0
    if rows:
        done.append(labelled_sums(rows, spec))
    return done[0] if len(done) == 1 else merge_labelled(*done)


def _one_partition(spec, m, codes, part):
    """One partition's LabelledSums (without labels) at codes into m levels."""
    features, _, terms, fit_intercept, _, kept, centring, layout = spec[:8]
    term = terms[0]
    XY, w = part.XY, part.w
    X, F, y = XY[:, :-1], XY[:, int(fit_intercept) : -1], XY[:, -1]
    if centring is not None:
        # the in-memory fit's centred columns, computed from the rows alike
        design = TermDesign(codes, range(m), _term_z(term, F), term.names, term.factor)
        Xc, (design_c,) = centring.design_inputs(X[:, kept], [design])
        sums = accumulate(Xc, y, [design_c], w)
        per_level = np.concatenate(
            [a.reshape(m, a.shape[1] * a.shape[2]).T for a in (sums.CX, sums.D1)]
        )
        totals = (sums.n, sums.Bxx, sums.sum_log_weights)
        return LabelledSums(None, per_level, totals, None, part.missing, len(y))
    per_level = totals = None
    if not part.bad:
        # M: [1 X y], with a column of ones appended when the term's
        # intercept is not X's (pairs name it -1), the rows weighted by √w
        M, ones_column, sum_log_weights = XY, (0 if fit_intercept else None), 0.0
        virtual = any(-1 in pair for pair in layout.pairs)
        if virtual:
            M = np.asfortranarray(np.column_stack([XY, np.ones(len(y))]))
            ones_column = M.shape[1] - 1
        if w is not None:
            M = np.asfortranarray(M * np.sqrt(w)[:, None])
            ones_column = None  # a weighted row's ones are √w
            sum_log_weights = float(np.log(w).sum())
        pairs = [
            tuple(M.shape[1] - 1 if c == -1 else c for c in pair)
            for pair in layout.pairs
        ]
        per_level = _level_sums(codes, m, M, pairs, ones_column)
        XYw = M[:, : XY.shape[1]]
        totals = (len(y), XYw.T @ XYw, sum_log_weights)
    Bxx = totals[1] if totals is not None else None
    summary = _row_summary(X, y, Bxx, w, *part.checks)
    return LabelledSums(None, per_level, totals, summary, part.missing, len(y))


@dataclass
class LabelledSums:
    """Sums of some partitions whose levels are their own distinct labels.

    Column ``j`` of ``per_level`` holds level ``j``'s sums (laid out by a
    :class:`PairLayout`) for the group labelled ``labels[j]``; merging
    partitions unites their labels and adds each level's sums where its
    label went (:func:`merge_labelled`).
    """

    labels: object  # LabelKeys, Arrow array or pandas Series of distinct labels
    per_level: np.ndarray | None  # (sums, levels); None if some rows are bad
    totals: tuple | None  # (n, [X y]ᵀ[X y], Σ log w)
    summary: RowSummary | None  # None for the centred pass
    missing: int  # rows with a missing group label
    n_rows: int  # rows kept (those with a missing label left out)

    def add_in_place(self, other):
        """Add the sums of other rows at the same level codes."""
        if self.per_level is None or other.per_level is None:
            self.per_level = self.totals = None
        else:
            self.per_level += other.per_level
            self.totals = tuple(
                a + b for a, b in zip(self.totals, other.totals, strict=True)
            )
        if self.summary is not None:
            self.summary = self.summary.add(other.summary)
        self.missing += other.missing
        self.n_rows += other.n_rows


def merge_labelled(*parts):
    """Several partitions' :class:`LabelledSums` as one (labels united)."""
    union, positions = _dask.union_labels([p.labels for p in parts])
    per_level = totals = None
    if all(p.per_level is not None for p in parts):
        per_level = np.zeros((parts[0].per_level.shape[0], len(union)))
        for part, where in zip(parts, positions, strict=True):
            if len(where) and where[0] == 0 and where[-1] == len(where) - 1:
                # the first partition's labels keep their places in the
                # union (one-to-one, in order): contiguous, not a scatter
                per_level[:, : len(where)] += part.per_level
                continue
            for r in range(per_level.shape[0]):  # ufunc.at: one pass, not three
                np.add.at(per_level[r], where, part.per_level[r])
        totals = (
            sum(p.totals[0] for p in parts),
            sum(p.totals[1] for p in parts),
            sum(p.totals[2] for p in parts),
        )
    summary = None
    if parts[0].summary is not None:
        summary = parts[0].summary
        for part in parts[1:]:
            summary = summary.add(part.summary)
    return LabelledSums(
        union,
        per_level,
        totals,
        summary,
        sum(p.missing for p in parts),
        sum(p.n_rows for p in parts),
    )


def _in_level_order(merged, coder, layout):
    """The merged sums as CrossProducts, level ``coder.distinct_codes[j]``
    holding label j's sums."""
    if merged.per_level is None:
        return None
    m, width = merged.per_level.shape[1], layout.cx.shape[1]
    order = np.empty(m, dtype=np.int64)
    order[coder.distinct_codes] = np.arange(m)

    def per_level(index):  # (m, *index.shape): level order[i]'s sums in row i
        return _level_major(merged.per_level, index.ravel(), order).reshape(
            m, *index.shape
        )

    n, Bxx, sum_log_weights = merged.totals
    return CrossProducts(
        n,
        per_level(layout.d1),
        per_level(layout.cx),
        [],
        _NO_LATER_TERMS,
        np.empty((0, width)),
        Bxx,
        sum_log_weights,
    )


def _level_major(sums, rows, order, chunk=8192):
    """``sums[rows][:, order].T`` as a C-contiguous array.

    Transposed a chunk of levels at a time (a whole transposed copy reads
    the sums with a stride of m elements, a cache miss per element; a
    chunk stays in cache), then the levels gathered as whole rows.
    """
    m = sums.shape[1]
    out = np.empty((m, len(rows)))
    for start in range(0, m, chunk):
        out[start : start + chunk] = sums[rows, start : start + chunk].T
    return out[order]


#: Partitions read by one task (at most), and the bytes of rows it holds
#: before coding them (8 partitions of 1M rows and 6 numeric columns).
BATCH = 8
BATCH_BYTES = 512 * 2**20


def _labelled_tasks(frame, meta, task):
    """Delayed LabelledSums of the partitions, in batches where possible.

    A batch task reads its partitions itself (their graphs are its data)
    and codes their rows with one hash of their labels, so that the sums of
    ``BATCH`` partitions need no merge by label. Batches are at least twice
    as many as the threads that run them, for balance.
    """
    import dask

    graphs = _dask.partition_graphs(frame)
    if graphs is None or len(graphs) < 2:
        return [
            dask.delayed(accumulate_partition)(part, i, meta, task)
            for i, part in enumerate(frame.to_delayed())
        ]
    n = len(graphs)
    n_batches = min(n, max(2 * _dask.parallelism(), -(-n // BATCH)))
    batches = np.array_split(np.arange(n), n_batches)
    return [
        dask.delayed(accumulate_batch)(
            PartitionGraphs([graphs[i] for i in batch], BATCH_BYTES), meta, task
        )
        for batch in batches
    ]


def _check_weights(summary):
    """The in-memory fit's checks of sample_weight, from the summed counts."""
    _dask.check_weights(summary.weights, summary.first_negative)
    counts = summary.weights
    if counts["zero"]:
        raise ValueError(
            f"sample_weight has {counts['zero']} zero weight(s): a row of weight 0 "
            "has infinite residual variance, and lme4's criterion is then "
            "infinite. Drop the rows with sample_weight == 0 (they carry no "
            "information)."
        )


def _add(a, b):
    sums = b[0] if a[0] is None else (a[0] if b[0] is None else a[0].add(b[0]))
    return sums, None if a[1] is None else a[1].add(b[1])


def _full_rank_from_gram(gram, tol=1e-7):
    """R's rule for aliased columns (dqrdc2, tol 1e-7) on ``XᵀX``.

    A column is aliased when its residual norm after the columns kept
    before it -- the last diagonal element of the Cholesky factor of their
    Gram matrix -- is below ``tol`` times its own norm.
    """
    p = gram.shape[0]
    norms = np.sqrt(np.maximum(np.diagonal(gram), 0.0))
    kept = []
    for j in range(p):
        trial = kept + [j]
        try:
            factor = np.linalg.cholesky(gram[np.ix_(trial, trial)])
            residual = factor[-1, -1]
        except np.linalg.LinAlgError:
            residual = 0.0
        if residual >= tol * (norms[j] if norms[j] > 0 else 1.0):
            kept.append(j)
    mask = np.zeros(p, dtype=bool)
    mask[kept] = True
    return mask


def _select_columns(sums, q_rest, kept):
    """The cross-products without the dropped fixed-effect columns."""
    columns = np.r_[np.flatnonzero(kept), len(kept)]  # kept X columns and y
    sums.CX = np.ascontiguousarray(sums.CX[:, :, columns])
    sums.Bzx = np.ascontiguousarray(sums.Bzx[:, columns])
    sums.Bxx = np.ascontiguousarray(sums.Bxx[np.ix_(columns, columns)])
    return sums


def fit(model, X, y, groups, sample_weight=None):
    """Fit ``model`` (a MixedLMRegressor) on Dask collections."""
    import dask

    from skmixed.mixed.estimator import _lme4_order, _warn_rank_deficient

    missing = model.missing
    if missing not in _MISSING_OPTIONS:
        raise ValueError(f"missing must be one of {_MISSING_OPTIONS}; got {missing!r}.")
    drop = missing == "drop"
    inp = _dask.dask_input(
        model, X, y, groups, reset=True, stage="fit", sample_weight=sample_weight
    )
    fit_intercept = model.fit_intercept if inp.intercept is None else inp.intercept
    model._has_intercept = bool(fit_intercept)
    if not inp.groups:
        raise ValueError(
            "A fit from Dask collections needs the grouping factors: keep the "
            "grouping column(s) in X or pass groups=."
        )
    terms = model._terms()
    names = inp.names
    for term in terms:
        absent = [s for s in term.slopes if s not in names]
        if absent:
            raise ValueError(
                f"Random slope column(s) {absent} in {term} are not numeric "
                f"feature columns of X (features: {names})."
            )
    # where the time goes (levels pass, sums pass, the client), for benchmarks
    clock = [time.perf_counter()]
    meta = inp.frame._meta
    own_levels = len(terms) == 1 and len(terms[0].components) == 1
    if own_levels:
        # One grouping factor: one pass, every partition coding its rows by
        # its own labels; the levels and their R order come with the sums.
        term = terms[0]
        group = term.components[0]
        spec = TermSpec(
            term.factor,
            list(term.names),
            [names.index(s) for s in term.slopes],
            term.intercept,
            None,
            inp.groups[group],
        )
        width = int(fit_intercept) + len(inp.features) + 1  # [1 X y]

        def reduce(kept=None, centring=None):
            if centring is None:
                z_columns = _columns_in_x(spec, fit_intercept, ones=-1)
                layout = pair_layout(z_columns, width)
            else:
                layout = full_layout(len(spec.names), int(kept.sum()) + 1)
            task = (
                inp.features,
                None,
                [spec],
                fit_intercept,
                drop,
                kept,
                centring,
                layout,
            )
            parts = _labelled_tasks(inp.frame, meta, task)
            merged = _dask.tree_reduce(
                parts, None, combine_many=merge_labelled, split_every=LABEL_SPLIT
            ).compute()
            if merged.missing:
                _dask.raise_missing_groups(group, merged.missing)
            coder = _dask.coder_of_labels(
                term.factor, spec.column, merged.labels, meta[spec.column].dtype
            )
            sums = _in_level_order(merged, coder, layout)
            return coder, merged.n_rows, sums, merged.summary

        coder, n, sums, summary = reduce()
        coders = {term.factor: coder}
        clock.append(clock[-1])  # no levels pass
    else:
        components = {t.factor: list(t.components) for t in terms}
        coders, n = _dask._learn_factors(inp, components, inp.features, drop)
        clock.append(time.perf_counter())
    placeholders = [
        TermDesign(None, coders[t.factor].levels, None, t.names, t.factor)
        for t in terms
    ]
    model._check_levels(placeholders, n)
    ordered = _lme4_order(list(placeholders))
    term_of = {id(d): t for d, t in zip(placeholders, terms, strict=True)}
    specs = [
        TermSpec(
            d.factor,
            list(d.names),
            [names.index(s) for s in term_of[id(d)].slopes],
            term_of[id(d)].intercept,
            d.m,
        )
        for d in ordered
    ]

    if not own_levels:
        # One graph key for the levels (a million labels are tens of MB): each
        # worker fetches it once, and keeps one hash table of the labels.
        def reduce(kept=None, centring=None):
            spec = _dask.shared(
                (inp.features, coders, specs, fit_intercept, drop, kept, centring)
            )
            parts = [
                dask.delayed(accumulate_partition)(part, i, meta, spec)
                for i, part in enumerate(inp.frame.to_delayed())
            ]
            sums, summary = _dask.tree_reduce(parts, _add).compute()
            return coders, n, sums, summary

        _, _, sums, summary = reduce()
    clock.append(time.perf_counter())
    _dask.raise_nonfinite(summary.nonfinite_x, names, "X", _FIT_HINT)
    _dask.raise_nonfinite(summary.nonfinite_y, None, "y", _FIT_HINT)
    _check_weights(summary)
    model.n_dropped_ = summary.n_dropped
    if summary.n_dropped:
        _dask._warn_dropped(summary.n_dropped, sums.n)
    x_names = (["(Intercept)"] if fit_intercept else []) + list(names)
    q_rest = sum(d.m * d.k for d in ordered[1:])
    p_all = len(x_names)
    gram = sums.Bxx[:p_all, :p_all]
    kept = _full_rank_from_gram(gram)
    if not kept.all():
        _warn_rank_deficient([nm for nm, k in zip(x_names, kept, strict=True) if not k])
        sums = _select_columns(sums, q_rest, kept)
    x_names = [nm for nm, k in zip(x_names, kept, strict=True) if k]
    model._x_names, model._kept = x_names, kept
    n = sums.n
    if n <= len(x_names):
        raise ValueError(
            f"n_samples={n} observations leave no residual degrees of "
            f"freedom with {len(x_names)} fixed effect(s)."
        )
    low, high = summary.y_range
    if low == high:
        raise ValueError(
            f"y is constant (every value is {float(low)!r}): the "
            "residual and random-effect variances are 0 and not estimable. "
            "A mixed model needs a response that varies."
        )
    for d, term in zip(ordered, specs, strict=True):
        sums_z = _term_sums(term, summary.x_sums, n, fit_intercept)
        d.moments = _mean_sd(sums_z, n)
    x_moments = _mean_sd(summary.x_sums[kept], n)
    design = design_from_cross_products(sums, ordered)
    design.x_means = x_moments[:, 0]
    model._dask_input = inp
    model._dask_weighted = sample_weight is not None

    def centred_design(centring):
        _, _, centred_sums, _ = reduce(kept, centring)
        terms = [
            _centred_term(d, A)
            for d, A in zip(ordered, centring.transforms, strict=True)
        ]
        return design_from_cross_products(centred_sums, terms)

    model._fit_design(design, x_moments, centred_design)
    clock.append(time.perf_counter())
    model._dask_seconds = dict(
        zip(("levels", "sums", "client"), np.diff(clock).round(2).tolist(), strict=True)
    )


def _centred_term(term, A):
    """The placeholder of a term whose columns are ``Z A`` (their moments)."""
    if A is None:
        return term
    scale = np.diagonal(A)
    mean = term.moments[:, 0] * scale + A[0]
    mean[0] = term.moments[0, 0]  # the column of ones stays
    sd = term.moments[:, 1] * scale
    return replace(term, moments=np.stack([mean, sd], axis=1))


def _columns_in_x(term, fit_intercept, ones=None):
    """The X column of each of the term's columns.

    A term's intercept without one in X has none: the whole answer is then
    None, unless ``ones`` gives the number standing for a column of ones.
    """
    if term.intercept and not fit_intercept:
        if ones is None:
            return None
        return [ones] + [j + int(fit_intercept) for j in term.slopes]
    return ([0] if term.intercept else []) + [
        j + int(fit_intercept) for j in term.slopes
    ]


def _term_sums(term, x_sums, n, fit_intercept):
    """A term's column sums and sums of squares: those of its X columns."""
    rows = [np.array([n, n], dtype=np.float64)] if term.intercept else []
    rows += [x_sums[j + int(fit_intercept)] for j in term.slopes]
    return np.array(rows)


def _mean_sd(sums, n):
    """(mean, population sd) per column from its sum and sum of squares."""
    mean = sums[:, 0] / n
    var = np.maximum(sums[:, 1] / n - mean * mean, 0.0)
    return np.stack([mean, np.sqrt(var)], axis=1)
