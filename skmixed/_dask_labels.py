"""Grouping labels on Dask: the levels of every grouping factor (pass 1),
labels packed into 64-bit keys, hashed into buckets and united across
partitions, and the coders that put the levels in R's order.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skmixed._dask import tree_reduce
from skmixed._dask_rows import _check_dtypes, _complete_rows
from skmixed._groups import _is_number, as_factor, missing_groups_error


# -- pass 1: the levels of every grouping factor ---------------------------------
def _levels_of_partition(part, index, meta, factor_columns, features, drop):
    """Distinct labels (combinations, for interactions) of one partition."""
    _check_dtypes(part, meta, index)
    group_columns = sorted({c for cols in factor_columns.values() for c in cols})
    keep = _complete_rows(part, features, group_columns, drop)
    part = part[keep] if not keep.all() else part
    missing = {c: int(pd.isna(part[c]).sum()) for c in group_columns}
    distinct = {}
    for factor, cols in factor_columns.items():
        arrow = _arrow_strings(part[cols[0]]) if len(cols) == 1 else None
        if arrow is not None:  # Arrow's hash table: several times pandas' speed
            distinct[factor] = _ArrowDistinct(cols[0], part[cols[0]].dtype, arrow)
            continue
        sub = part[list(cols)].dropna()
        distinct[factor] = sub.drop_duplicates()
    return {"missing": missing, "distinct": distinct, "n": len(part)}


def _arrow_strings(column):
    """The pyarrow array behind an Arrow-backed string column, else None."""
    array = getattr(column, "array", None)
    if type(array).__name__ != "ArrowStringArray" or not hasattr(array, "_pa_array"):
        return None
    return array._pa_array


class _ArrowDistinct:
    """The distinct labels of an Arrow-backed string column."""

    def __init__(self, column, dtype, values, distinct=False):
        import pyarrow.compute as pc

        self.column, self.dtype = column, dtype
        self.values = values if distinct else pc.unique(pc.drop_null(values))
        #: After sorted_levels: each value's position in the sorted levels.
        self.rank = None

    def merge(self, others):
        """The distinct labels of this and the other partitions' labels."""
        import pyarrow as pa
        import pyarrow.compute as pc

        merged = _ArrowDistinct.__new__(_ArrowDistinct)
        merged.column, merged.dtype = self.column, self.dtype
        chunks = [self.values] + [o.values.cast(self.values.type) for o in others]
        merged.values = pc.unique(pa.chunked_array(chunks))
        return merged

    def frame(self):
        series = pd.Series(self.values.to_pylist(), dtype=self.dtype)
        return series.to_frame(self.column)

    def sorted_levels(self):
        """The labels in R's level order (an Arrow array), or None.

        Arrow sorts strings by their UTF-8 bytes, which is the code-point
        order ``as_factor`` uses; labels that are all numbers are ordered by
        value there, so those (rare: checked until the first label that is no
        number) take the general path.
        """
        import pyarrow.compute as pc

        order = pc.sort_indices(self.values).to_numpy()
        levels = self.values.take(order)
        for start in range(0, len(levels), 1024):
            labels = levels.slice(start, 1024).to_pylist()
            if not all(_is_number(label) for label in labels):
                self.rank = np.empty(len(order), dtype=np.int64)
                self.rank[order] = np.arange(len(order))
                return levels
        return None


def _merge_distinct(parts):
    if all(isinstance(d, _ArrowDistinct) for d in parts):
        return parts[0].merge(parts[1:])
    frames = [d.frame() if isinstance(d, _ArrowDistinct) else d for d in parts]
    return pd.concat(frames).drop_duplicates()


def _merge_levels(*parts):
    """The distinct labels and counts of several partitions together.

    All at once: one hash pass over the labels of ``len(parts)`` partitions
    rather than one per pair.
    """
    first = parts[0]
    distinct = {
        f: _merge_distinct([p["distinct"][f] for p in parts]) for f in first["distinct"]
    }
    missing = {c: sum(p["missing"][c] for p in parts) for c in first["missing"]}
    return {"missing": missing, "distinct": distinct, "n": sum(p["n"] for p in parts)}


def raise_missing_groups(name, count):
    raise missing_groups_error(name, count)


class FactorCoder:
    """Global level codes of a grouping factor for the rows of any partition.

    Built on the client from every partition's distinct labels, so that the
    levels (and their R order) are those of an in-memory fit of all rows.
    """

    def __init__(self, name, columns, distinct, component_coders=None):
        self.name, self.columns = name, list(columns)
        self.arrow_values = None
        if isinstance(distinct, _ArrowDistinct):
            levels = distinct.sorted_levels()
            if levels is not None:  # the labels in R's order, without Python
                self.arrow_values, self.categorical = levels, False
                self.codes = np.arange(len(levels), dtype=np.int64)
                self.levels = levels.to_numpy(zero_copy_only=False)
                self.distinct_codes = distinct.rank
                return
            distinct = distinct.frame()
        if len(self.columns) == 1:
            values = distinct[self.columns[0]]
            factor = as_factor(values.reset_index(drop=True), name)
            if _arrow_strings(values) is not None:
                self.arrow_values = _arrow_strings(values.reset_index(drop=True))
            self.categorical = isinstance(values.dtype, pd.CategoricalDtype)
            if self.categorical:
                # category position -> global code (-1: unused)
                self.categories = values.cat.categories
                position = np.full(len(self.categories), -1, dtype=np.int64)
                position[values.cat.codes.to_numpy()] = factor.codes
                self.position = position
            else:
                self.index = pd.Index(values.to_numpy())
                self.codes = np.asarray(factor.codes, dtype=np.int64)
        else:
            parts = [
                component_coders[c].factor_of(distinct[[c]], c) for c in self.columns
            ]
            from skmixed.mixed.estimator import _interaction

            factor = _interaction(parts, name)
            self.components = [component_coders[c] for c in self.columns]
            self.sizes = [len(c.levels) for c in self.components]
            keys = self._keys([np.asarray(p.codes) for p in parts])
            # distinct combinations of labels may be one of levels (object 1
            # and "1" are one level): one key each
            keys, first = np.unique(keys, return_index=True)
            self.index = pd.Index(keys)
            self.codes = np.asarray(factor.codes, dtype=np.int64)[first]
        self.levels = np.asarray(factor.categories, dtype=object)
        #: The global code of each row of ``distinct``, in its order.
        self.distinct_codes = np.asarray(factor.codes, dtype=np.int64)

    def _keys(self, component_codes):
        key = np.zeros(len(component_codes[0]), dtype=np.int64)
        for codes, size in zip(component_codes, self.sizes, strict=True):
            key = key * size + codes
        return key

    def factor_of(self, frame, column):
        """The rows' codes as a categorical with the global levels."""
        return pd.Categorical.from_codes(
            self.row_codes(frame, column), categories=self.levels
        )

    def _category_codes(self, values):
        """Global codes of a categorical column's rows (-1: unseen, missing).

        A partition's category codes index its own categories, which may be
        the levels' categories in another order (unordered categoricals of
        one set of categories compare equal) or another set: those are
        mapped by label.
        """
        categories = values.cat.categories
        position = self.position
        if not categories.equals(self.categories):
            where = self.categories.get_indexer(categories)
            position = np.where(where >= 0, position[where], -1)
        # a missing label (code -1) takes the appended -1
        return np.append(position, -1)[values.cat.codes.to_numpy()]

    def row_codes(self, frame, column=None):
        """Global codes of the rows of ``frame`` (-1 for an unseen label)."""
        if len(self.columns) > 1:
            parts = [
                c.row_codes(frame, col)
                for c, col in zip(self.components, self.columns, strict=True)
            ]
            found = self.index.get_indexer(self._keys(parts))
            return np.where(found >= 0, self.codes[found], -1)
        values = frame[column if column is not None else self.columns[0]]
        if self.categorical:
            return self._category_codes(values)
        if self.arrow_values is None and getattr(self, "label_keys", None) is not None:
            self.arrow_values = key_labels(self.label_keys, "bytes")
        arrow = _arrow_strings(values) if self.arrow_values is not None else None
        if arrow is not None:
            import pyarrow.compute as pc

            value_set = self.arrow_values.cast(arrow.type)
            found = pc.index_in(arrow, value_set=value_set)
            found = found.fill_null(-1).to_numpy(zero_copy_only=False)
            return np.where(found >= 0, self.codes[found], -1)
        local, uniques = pd.factorize(values.to_numpy())
        found = self.index.get_indexer(uniques)
        mapping = np.where(found >= 0, self.codes[found], -1)
        return mapping[local]


def _learn_factors(inp, factor_components, features, drop):
    """Pass 1: every factor's global levels, as FactorCoders (by factor name)."""
    import dask

    factor_columns = {
        f: [inp.groups[c] for c in comps] for f, comps in factor_components.items()
    }
    needed = sorted({c for cols in factor_columns.values() for c in cols})
    source = inp.frame if drop else inp.frame[needed]
    meta = source._meta
    parts = source.to_delayed()
    level_parts = [
        dask.delayed(_levels_of_partition)(
            part, i, meta, factor_columns, features if drop else [], drop
        )
        for i, part in enumerate(parts)
    ]
    levels = tree_reduce(level_parts, None, combine_many=_merge_levels).compute()
    for name, label in inp.groups.items():
        count = levels["missing"].get(label, 0)
        if count:
            raise_missing_groups(name, count)
    coders = {}
    for factor, cols in factor_columns.items():
        if len(cols) == 1:
            coders[cols[0]] = FactorCoder(factor, cols, levels["distinct"][factor])
    out = {}
    for factor, cols in factor_columns.items():
        if len(cols) == 1:
            out[factor] = coders[cols[0]]
            continue
        for c in cols:
            if c not in coders:
                distinct = levels["distinct"][factor][[c]].drop_duplicates()
                coders[c] = FactorCoder(c, [c], distinct)
        out[factor] = FactorCoder(
            factor, cols, levels["distinct"][factor], component_coders=coders
        )
    return out, levels["n"]


# -- one pass: each partition codes its own labels, merged by label ---------------
#: Labels of at most this many UTF-8 bytes are packed into one 64-bit key.
_PACKED_BYTES = 7


_SIGN = np.uint64(1 << 63)


#: The kinds of LabelKeys whose keys are integer labels (ordered by value).
_INTEGER_KINDS = ("int", "uint")


@dataclass
class LabelKeys:
    """A partition's group labels as 64-bit keys whose order is R's.

    Hashing and merging integers costs a fraction of hashing strings, and a
    key array travels between processes as one buffer. ``kind`` is
    ``"int"`` (signed integer labels: the value, sign bit flipped, so that
    unsigned order is numeric order), ``"uint"`` (uint64 labels: the value
    itself) or ``"bytes"`` (strings of at most 7 UTF-8 bytes: the bytes
    big-endian in the top 7 bytes, the length in the lowest, so that
    unsigned order is byte order, R's C-locale order).
    """

    keys: np.ndarray  # uint64, one per row
    present: np.ndarray | None  # bool per row (None: no missing label)
    kind: str
    #: Keys per bucket (:func:`bucket_order`) when the keys are grouped by
    #: bucket, in bucket order; None otherwise.
    bucket_counts: np.ndarray | None = None

    def __len__(self):
        return len(self.keys)


def label_keys(column):
    """The :class:`LabelKeys` of a partition's label column, or None.

    Integer columns (any width, signed or not, nullable too) and
    Arrow-backed strings of at most 7 bytes have keys;
    other labels (categoricals, floats, objects, longer strings) take the
    general path of :func:`local_codes`.
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        # uint64 values beyond int64's range keep their order as they are
        unsigned = np.dtype(getattr(dtype, "numpy_dtype", dtype)) == np.uint64
        values_type = np.uint64 if unsigned else np.int64
        present = None
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            mask = np.asarray(pd.isna(column), dtype=bool)
            present = ~mask if mask.any() else None
            values = column.to_numpy(dtype=values_type, na_value=0)
        else:
            values = column.to_numpy()
        values = values.astype(values_type, copy=False)
        if unsigned:
            return LabelKeys(values, present, "uint")
        return LabelKeys(values.view(np.uint64) ^ _SIGN, present, "int")
    arrow = _arrow_strings(column)
    if arrow is None:
        return None
    import pyarrow as pa

    chunks = arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]
    packed = [_packed_bytes(chunk) for chunk in chunks]
    if any(p is None for p in packed):
        return None
    if len(packed) == 1:
        keys = packed[0][0]
    else:
        keys = np.concatenate([k for k, _ in packed] or [np.zeros(0, np.uint64)])
    present = None
    if arrow.null_count:  # (a chunk without nulls has no mask of its own)
        present = np.concatenate(
            [np.ones(len(k), bool) if p is None else p for k, p in packed]
        )
    return LabelKeys(keys, present, "bytes")


#: The bits of a big-endian word that hold a label of 0..8 bytes.
_LENGTH_MASKS = np.array(
    [0] + [(2**64 - 1) ^ (2 ** (8 * (8 - n)) - 1) for n in range(1, 9)],
    dtype=np.uint64,
)


def _packed_bytes(chunk):
    """(keys, present) of one Arrow string chunk, None if a label is too long."""
    import pyarrow as pa

    n = len(chunk)
    wide = pa.types.is_large_string(chunk.type) or pa.types.is_large_unicode(chunk.type)
    offset_type = np.int64 if wide else np.int32
    _, offsets, data = chunk.buffers()[:3]
    offsets = np.frombuffer(
        offsets,
        dtype=offset_type,
        count=n + 1,
        offset=chunk.offset * np.dtype(offset_type).itemsize,
    )
    length = np.diff(offsets)
    if n and length.max() > _PACKED_BYTES:
        return None
    present = None
    if chunk.null_count:
        present = ~chunk.is_null().to_numpy(zero_copy_only=False)
        length = np.where(present, length, 0)
    raw = (
        np.frombuffer(data, dtype=np.uint8)
        if data is not None
        else np.zeros(0, np.uint8)
    )
    # this chunk's own bytes: the chunks of a column (slices of one array)
    # share its whole data buffer, which a copy of each would read again
    first = int(offsets[0])
    raw = raw[first : int(offsets[-1])]
    # eight bytes from every label's start (zero padding past the end),
    # read as one big-endian word (an unaligned view: one gather); the bytes
    # past its length masked off
    padded = np.empty(len(raw) + 8, dtype=np.uint8)
    padded[: len(raw)] = raw
    padded[len(raw) :] = 0
    words = np.ndarray((len(raw) + 1,), dtype=">u8", buffer=padded, strides=(1,))
    starts = offsets[:-1] - first if first else offsets[:-1]  # within raw + 1
    word = words[starts].astype(np.uint64)
    word &= _LENGTH_MASKS[length]
    word |= length.astype(np.uint64)
    return word, present


def key_labels(keys, kind):
    """The labels of keys: an Arrow string array (bytes), int64 values (int)
    or uint64 values (uint)."""
    keys = np.asarray(keys, dtype=np.uint64)
    if kind == "int":
        return (keys ^ _SIGN).view(np.int64)
    if kind == "uint":
        return keys
    import pyarrow as pa

    length = (keys & np.uint64(0xFF)).astype(np.int64)
    rows = (keys & ~np.uint64(0xFF)).astype(">u8").view(np.uint8).reshape(-1, 8)
    data = rows[np.arange(8) < length[:, None]]  # row by row: the labels' bytes
    offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_string(), len(keys), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def code_keys(keys):
    """Codes of keys by their distinct values (Arrow's hash table).

    Returns ``(codes, distinct)``: ``distinct[codes[i]] == keys[i]``, the
    distinct keys in order of first appearance (so the keys of the first of
    several concatenated arrays keep their places).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(pa.array(np.asarray(keys, np.uint64).view(np.int64)))
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False).view(np.uint64)
    return codes, distinct


#: Distinct keys spanning at most this many values per key are put in
#: order by counting (see key_order).
_DENSE_SPAN = 4


def key_order(keys):
    """The order that sorts distinct uint64 ``keys`` (``keys[order]`` ascends).

    Integer labels (user ids) are mostly dense: keys spanning at most
    ``_DENSE_SPAN`` values apiece are ordered by marking each one's offset
    in a table of the span and reading the marks in order (linear: 500k
    keys in ~6 ms, where a comparison sort takes ~40); others are sorted.
    """
    n = len(keys)
    if not n:
        return np.zeros(0, dtype=np.intp)
    low = keys.min()
    span = int(keys.max() - low) + 1
    if span > _DENSE_SPAN * n:
        return np.argsort(keys)
    offsets = (keys - low).astype(np.intp)
    seen = np.zeros(span, dtype=bool)
    seen[offsets] = True
    index_type = np.int32 if n < 2**31 else np.intp
    index_of = np.empty(span, dtype=index_type)
    index_of[offsets] = np.arange(n, dtype=index_type)
    return index_of[np.flatnonzero(seen)].astype(np.intp, copy=False)


def local_codes(column):
    """A partition's codes of its own distinct labels, and those labels.

    Returns ``(codes, labels)``: ``codes`` (int64, -1 for a missing label)
    index ``labels``, the distinct labels in order of appearance -- an Arrow
    array for an Arrow-backed string column (Arrow's hash table: several
    times pandas' speed), else a pandas Series of the column's dtype.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = _arrow_strings(column)
    if arrow is not None:
        if isinstance(arrow, pa.ChunkedArray):
            arrow = arrow.combine_chunks() if arrow.num_chunks != 1 else arrow.chunk(0)
        encoded = pc.dictionary_encode(arrow)
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return codes.astype(np.int64, copy=False), encoded.dictionary
    codes, _ = pd.factorize(column, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    first = pd.Series(codes)
    first = first[~first.duplicated() & (first >= 0)]  # a row of each label
    rows = first.index.to_numpy()[np.argsort(first.to_numpy())]
    return codes, column.iloc[rows].reset_index(drop=True)


#: Buckets keys are grouped into before they are hashed (see bucket_order).
N_BUCKETS = 256


#: The odd multiplier of the keys' bucket hash (splitmix64's first). Not the
#: Fibonacci one (2**64 / golden ratio): Arrow hashes an integer as that
#: product byte-swapped and starts probing at its low bits -- our bucket
#: byte, the same for every key of a bucket, so a bucket's keys crowd a
#: few slots of its hash table (a third more time coding integer keys).
_BUCKET_MULTIPLIER = np.uint64(0xBF58476D1CE4E5B9)


def bucket_order(keys):
    """The stable order that groups keys by bucket, and the keys per bucket.

    A key's bucket is the top byte of a multiplicative hash of it,
    spreading any labels evenly. A million levels are ~100 MB of sums and a hash table
    far beyond the CPU's caches, where every row costs a cache miss or
    two; a bucket's ~4,000 levels fit in cache. Rows grouped by bucket
    (numpy's radix sort of one byte) are hashed bucket by bucket
    (:func:`code_buckets`) and summed in that order: the hash's and the
    sums' random accesses stay within one bucket's few hundred kB.
    """
    buckets = ((keys * _BUCKET_MULTIPLIER) >> np.uint64(56)).astype(np.uint8)
    order = np.argsort(buckets, kind="stable")
    return order, np.bincount(buckets, minlength=N_BUCKETS)


def code_buckets(sources):
    """Codes of several key arrays grouped by bucket, by one hash per bucket.

    ``sources`` are :class:`LabelKeys` of one kind with ``bucket_counts``.
    Returns ``(union, codes)``: the distinct keys as bucketed LabelKeys
    (bucket by bucket, each bucket's keys in order of first appearance
    across the sources: the first source's distinct keys keep their order)
    and the row of ``union`` of every key of the sources, one source after
    the other (one array, int32 unless the keys are too many for it).
    """
    bounds = [np.concatenate([[0], np.cumsum(s.bucket_counts)]) for s in sources]
    # int32 codes (Arrow's own): writing them is half the memory traffic of
    # int64 (and no cast of every piece: 6 -> 2.5 ms a partition of 1M rows)
    total = sum(len(s) for s in sources)
    flat = np.empty(total, dtype=np.int32 if total < 2**31 else np.int64)
    starts = np.cumsum([0] + [len(s) for s in sources])
    codes = [flat[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]
    distinct, counts, offset = [], np.zeros(N_BUCKETS, dtype=np.int64), 0
    # one buffer for every bucket's keys (see dask_fit._bucket_block_sums:
    # fresh arrays cost page faults in Dask's workers)
    sizes = sum(np.diff(b) for b in bounds)
    buffer = np.empty(int(sizes.max(initial=0)), dtype=np.uint64)
    for j in range(N_BUCKETS):
        if not sizes[j]:
            continue
        pieces = [s.keys[b[j] : b[j + 1]] for s, b in zip(sources, bounds, strict=True)]
        local, keys = code_keys(np.concatenate(pieces, out=buffer[: sizes[j]]))
        start = 0
        for out, b, piece in zip(codes, bounds, pieces, strict=True):
            stop = start + len(piece)
            np.add(local[start:stop], offset, out=out[b[j] : b[j + 1]])
            start = stop
        distinct.append(keys)
        counts[j] = len(keys)
        offset += len(keys)
    keys = np.concatenate(distinct) if distinct else np.zeros(0, dtype=np.uint64)
    return LabelKeys(keys, None, sources[0].kind, counts), flat


def union_labels(labels):
    """The distinct labels of several partitions' labels, and where each went.

    ``labels`` are the partitions' distinct labels: all :class:`LabelKeys`
    of one kind (their ``keys``), or Arrow arrays / pandas Series (keys of
    partitions whose labels had none are turned back into labels first).
    Returns ``(union, positions)``: ``positions[i][j]`` is the row of
    ``union`` holding ``labels[i][j]`` (every ``labels[i]`` is distinct, so
    each ``positions[i]`` is one-to-one: sums can be added by fancy index).
    """

    sizes = np.cumsum([0] + [len(x) for x in labels])
    kinds = {x.kind for x in labels if isinstance(x, LabelKeys)}
    keyed = len(kinds) == 1 and all(isinstance(x, LabelKeys) for x in labels)
    if keyed and all(x.bucket_counts is not None for x in labels):
        union, codes = code_buckets(labels)
    elif keyed:
        codes, union = code_keys(np.concatenate([x.keys for x in labels]))
        union = LabelKeys(union, None, kinds.pop())
    else:
        codes, union = _union_of_labels([_labels_of(x) for x in labels])
    positions = [codes[a:b] for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return union, positions


def _labels_of(labels):
    """Distinct labels as they are, or those of LabelKeys (Arrow or pandas)."""
    if not isinstance(labels, LabelKeys):
        return labels
    values = key_labels(labels.keys, labels.kind)
    return pd.Series(values) if labels.kind in _INTEGER_KINDS else values


def _union_of_labels(labels):
    import pyarrow as pa
    import pyarrow.compute as pc

    if all(isinstance(x, pa.Array) for x in labels):  # one dtype everywhere
        kind = labels[0].type
        encoded = pc.dictionary_encode(
            pa.chunked_array([x.cast(kind) for x in labels], type=kind)
        ).combine_chunks()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        return codes, encoded.dictionary
    # Arrow labels beside a Series: categoricals with other categories in
    # each partition (read_parquet's) are strings once a batch unites them
    labels = [x.to_pandas() if isinstance(x, pa.Array) else x for x in labels]
    return local_codes(pd.concat(labels, ignore_index=True))


def coder_of_labels(name, column, labels, dtype):
    """The FactorCoder (R's level order) of merged labels, and their codes.

    ``coder.distinct_codes[j]`` is the global level of ``labels[j]``.
    """
    import pyarrow as pa

    if isinstance(labels, LabelKeys):
        coder = _coder_of_keys(name, column, labels, dtype)
        if coder is not None:
            return coder
        labels = _labels_of(labels)
        if isinstance(labels, pd.Series):
            labels = labels.astype(dtype)
    if isinstance(labels, pa.Array):
        labels = _ArrowDistinct(column, dtype, labels, distinct=True)
    else:
        labels = labels.to_frame(column)
    return FactorCoder(name, [column], labels)


#: The bits of a key that hold bytes with the top bit set (not ASCII).
_NOT_ASCII = np.uint64(0x8080808080808000)


def _ascii_levels(keys):
    """The labels of bytes keys as a fixed-width numpy string array, or None.

    Made from the keys' bytes without a Python string per label (1M
    levels: ~15 ms, where Arrow's strings to numpy objects take ~60), for
    ASCII labels that do not end with a NUL (numpy's fixed-width strings
    drop trailing NULs); None for others. The levels read as the same
    strings (``str(level)``, ``level == "g12"``) as Python's.
    """
    from skmixed.mixed.first_term import chunks

    if keys.size and (np.bitwise_or.reduce(keys) & _NOT_ASCII):
        return None
    low_byte = np.uint64(0xFF)
    width = 1
    for block in chunks(len(keys)):
        width = max(width, int((keys[block] & low_byte).max()))
    # block by block of keys, every temporary in cache (for a million
    # levels, whole-array ones were ~60 MB of fresh pages)
    points = np.empty((len(keys), width), dtype=np.uint32)
    for block in chunks(len(keys)):
        part = keys[block]
        length = (part & low_byte).astype(np.int64)
        filled = length > 0
        # a label's last byte: at 8 * (8 - length) bits from the bottom
        shift = (8 * (8 - length[filled])).astype(np.uint64)
        if np.any((part[filled] >> shift) & low_byte == 0):
            return None
        raw = (part & ~low_byte).astype(">u8").view(np.uint8).reshape(-1, 8)
        # past a label's length its bytes are 0: numpy reads them as its end
        points[block] = raw[:, :width]
    return points.view(f"<U{width}").reshape(-1)


def _decimal_levels(values):
    """Integers as a fixed-width numpy string array of their decimals.

    Arrow writes the decimals (``str`` of each value) into one buffer,
    padded with NULs to the longest, which numpy reads as fixed-width
    strings: no Python string per level (1M levels: ~25 ms, where Arrow's
    strings to numpy objects take ~75, and the index of
    ``random_effects_`` is made from it a third quicker).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(values):
        return np.zeros(0, dtype="<U1")
    strings = pc.cast(pa.array(values), pa.string())
    width = max(pc.max(pc.binary_length(strings)).as_py() or 0, 1)
    padded = pc.utf8_rpad(strings, width=width, padding="\0")
    n = len(padded)
    _, offsets, data = padded.buffers()[:3]
    first = int(np.frombuffer(offsets, dtype=np.int32, count=1)[0])
    raw = np.frombuffer(data, dtype=np.uint8, count=n * width, offset=first)
    points = raw.reshape(n, width).astype(np.uint32)
    return points.view(f"<U{width}").reshape(n)


def _coder_of_keys(name, column, labels, dtype):
    """The FactorCoder of distinct keys, ordered by sorting the keys.

    Key order is R's level order for integers (numeric) and for strings
    (byte order) -- unless every string is a number, which R orders by
    value: None then (the general path).
    """

    keys = labels.keys
    coder = FactorCoder.__new__(FactorCoder)
    coder.name, coder.columns = name, [column]
    coder.categorical = False
    coder.codes = np.arange(len(keys), dtype=np.int64)
    if np.all(keys[1:] > keys[:-1]):  # sorted already (merged in key ranges)
        order = coder.codes  # (one array of a million places, not three)
    else:
        order = np.argsort(keys)
        keys = keys[order]
    if labels.kind == "bytes":
        for start in range(0, len(keys), 1024):
            chunk = key_labels(keys[start : start + 1024], "bytes").to_pylist()
            if not all(_is_number(label) for label in chunk):
                break
        else:
            return None
        coder.levels = _ascii_levels(keys)
        if coder.levels is None:
            coder.levels = key_labels(keys, "bytes").to_numpy(zero_copy_only=False)
        # the labels as Arrow strings, made when rows are coded (never by
        # the fit, whose partitions code their own labels)
        coder.arrow_values, coder.label_keys = None, keys
    else:
        values = key_labels(keys, labels.kind)
        as_float = values.astype(np.float64)
        if np.any(as_float[1:] == as_float[:-1]):
            return None  # R orders by value as floats: ties beyond 2**53
        coder.levels = _decimal_levels(values)
        coder.arrow_values = None
        coder.index = pd.Index(values)
    if order is coder.codes:  # sorted already: the codes are every place's own
        coder.distinct_codes = coder.codes
    else:
        coder.distinct_codes = np.empty(len(order), dtype=np.int64)
        coder.distinct_codes[order] = coder.codes
    return coder
