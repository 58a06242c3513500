"""The lanes' sums of a one-factor Dask fit, merged range by range of buckets.

A one-factor fit ends its pass with one :class:`LabelledSums` per lane (a
chain of batches on one worker thread, see ``dask_fit._labelled_tasks``),
each holding the sums of nearly every level: ~110 MB for a million levels.
Shipped whole to one worker that merges them alone, then to the client that
puts them in R's level order (a sort of every key, a gather of every row),
they cost more than a lane's last batch. A lane's levels are grouped by
the bucket of their keys (:func:`skmixed._dask_labels.bucket_order`), so the
buckets are cut into as many ranges as there are lanes, and every lane,
where it is:

1. sends every other lane the rows of that lane's range of buckets
   (:func:`bucket_range_rows`: one slice of its sums, nothing to sort);
2. merges the rows of its own range, bucket by bucket, into a table in key
   order (:func:`merge_bucket_range`).

Each range comes out in key order, which is R's level order for integer
and short-string labels (:func:`skmixed._dask_labels.coder_of_labels` checks the
exceptions); the client interleaves the ranges' keys, sorted runs, into
one order (:func:`join_ranges`). Where a lane's labels are not bucketed
keys (long strings, categoricals, ...) or its rows were bad (no sums), the
lanes are merged as before, on one worker
(:func:`~skmixed.mixed.dask_fit.merge_labelled`), and range 0 carries the
result.
"""

import numpy as np

from skmixed import _dask_labels
from skmixed._malloc import reusing_freed_memory
from skmixed.mixed.dask_fit import (
    LabelledSums,
    _add_product,
    added_counts,
    merge_labelled,
)
from skmixed.mixed.first_term import chunks

#: Ranges at most (each lane sends a task to every other: their square).
MAX_RANGES = 16


def merged_in_ranges(parts):
    """Delayed merged sums of ``parts`` (delayed LabelledSums, one per lane),
    one per range of buckets (see the module's docstring)."""
    import dask

    delayed = dask.delayed
    split = delayed(_splittable)(*[delayed(_bucketed_kind)(p) for p in parts])
    n = len(parts)
    return [
        # the task needs lane r's sums (most of its input bytes): Dask runs
        # it where they are
        delayed(merge_bucket_range)(
            parts[r],
            split,
            r,
            n,
            *[
                delayed(bucket_range_rows)(part, split, r, n)
                for lane, part in enumerate(parts)
                if lane != r
            ],
        )
        for r in range(n)
    ]


def _bucketed_kind(sums):
    """The kind of sums' keys when they are bucketed keys with sums, else None."""
    labels = sums.labels
    if (
        isinstance(labels, _dask_labels.LabelKeys)
        and labels.bucket_counts is not None
        and sums.per_level is not None
    ):
        return labels.kind
    return None


def _splittable(*kinds):
    """Whether every lane holds bucketed keys of one kind."""
    return None not in kinds and len(set(kinds)) == 1


def _buckets_of_range(r, n_ranges):
    return r * _dask_labels.N_BUCKETS // n_ranges, (
        r + 1
    ) * _dask_labels.N_BUCKETS // n_ranges


def _rows_in_range(sums, r, n_ranges):
    """The levels of ``sums`` in range r of buckets (views), with the lane's
    counts and totals in range 0 only (so that they are added once)."""
    low, high = _buckets_of_range(r, n_ranges)
    labels = sums.labels
    offsets = np.concatenate([[0], np.cumsum(labels.bucket_counts)])
    first, stop = int(offsets[low]), int(offsets[high])
    counts = np.zeros_like(labels.bucket_counts)
    counts[low:high] = labels.bucket_counts[low:high]
    keys = _dask_labels.LabelKeys(labels.keys[first:stop], None, labels.kind, counts)
    rows = sums.per_level[first:stop]
    if r == 0:
        return LabelledSums(
            keys, rows, sums.totals, sums.summary, sums.missing, sums.n_rows
        )
    return LabelledSums(keys, rows, None, None, 0, 0)


def bucket_range_rows(sums, split, r, n_ranges):
    """What lane ``sums`` sends the lane that merges range r.

    Not split: the whole lane to range 0 (merged there as before).
    """
    if not split:
        return sums if r == 0 else None
    return _rows_in_range(sums, r, n_ranges)


@reusing_freed_memory()
def merge_bucket_range(own, split, r, n_ranges, *others):
    """The merged sums of range r, in key order: ``own`` (lane r's) rows in
    the range and ``others`` (the other lanes' rows in it).

    Not split: range 0 merges the lanes whole, the others are None.
    """
    if not split:
        if r:
            return None
        return merge_labelled(own, *others) if others else own
    parts = [_rows_in_range(own, r, n_ranges), *others]
    # one hash per bucket and the rows added bucket by bucket (a bucket's
    # keys and sums stay in cache: adding them where their key goes in key
    # order, a random place, took twice as long), then put in key order
    union, codes = _dask_labels.code_buckets([p.labels for p in parts])
    m = len(union)
    per_level = _led_by(union, parts[0])
    start = len(parts[0].labels)
    for part in parts[1:]:
        n = len(part.labels)
        if n:  # each part's keys are distinct: one entry per row
            _add_product(
                m,
                np.arange(n + 1, dtype=codes.dtype),
                codes[start : start + n],
                np.ones(n),
                np.ascontiguousarray(part.per_level),
                per_level,
            )
        start += n
    order = _dask_labels.key_order(union.keys)  # (linear for dense integer labels)
    per_level = np.take(per_level, order, axis=0)
    labels = _dask_labels.LabelKeys(union.keys[order], None, union.kind)
    # the lanes' counts come with their rows of range 0 only (added once)
    counted = [p for p in parts if p.totals is not None]
    if not counted:
        return LabelledSums(labels, per_level, None, None, 0, 0)
    return LabelledSums(labels, per_level, *added_counts(counted))


def _led_by(union, first):
    """A table of ``union``'s levels holding ``first``'s sums, 0 elsewhere.

    The first source's keys lead every bucket of the union
    (:func:`skmixed._dask_labels.code_buckets`): its rows are copied bucket by
    bucket, a contiguous block each, rather than added one by one.
    """
    per_level = np.empty((len(union), first.per_level.shape[1]))
    ends = np.cumsum(union.bucket_counts)
    source = np.concatenate([[0], np.cumsum(first.labels.bucket_counts)])
    for j in np.flatnonzero(union.bucket_counts):
        start, stop = ends[j] - union.bucket_counts[j], ends[j]
        led = start + source[j + 1] - source[j]
        per_level[start:led] = first.per_level[source[j] : source[j + 1]]
        per_level[led:stop] = 0.0
    return per_level


def join_ranges(ranges):
    """The merged ranges (computed) as one LabelledSums, levels in key order
    (or range 0's, merged as before, when the lanes were not split).

    Each range's keys are in order, and the ranges' keys interleave: a
    stable sort merges the runs, and every range's rows are written to
    their places in one table, entry-major (a row of the table per entry
    of a level's sums, along the levels: ``per_level`` is its transpose),
    the layout the client's fit reads (:class:`FirstTermLevels`), which
    then needs no transposing copy of its own.
    """
    if any(r is None for r in ranges[1:]):
        return ranges[0]
    first = ranges[0]
    if len(ranges) == 1:
        return first
    keys = np.concatenate([r.labels.keys for r in ranges])
    order = np.argsort(keys, kind="stable")  # (merges sorted runs)
    places = np.empty(len(keys), dtype=np.intp)
    places[order] = np.arange(len(keys))
    table = np.empty((first.per_level.shape[1], len(keys)))
    start = 0
    for part in ranges:
        stop = start + len(part.labels)
        _scatter_transposed(part.per_level, places[start:stop], table)
        start = stop
    return LabelledSums(
        _dask_labels.LabelKeys(keys[order], None, first.labels.kind),
        table.T,
        first.totals,
        first.summary,
        first.missing,
        first.n_rows,
    )


def _scatter_transposed(rows, places, table):
    """``table[:, places] = rows.T``, by cache-sized blocks of rows."""
    for block in chunks(len(rows)):
        table[:, places[block]] = rows[block].T
