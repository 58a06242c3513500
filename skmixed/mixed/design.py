"""The one pass over the data: cross-products of ``[Z X y]`` per level.

Every evaluation of the profiled criterion needs only the cross-products
``ZᵀZ, ZᵀX, Zᵀy, XᵀX, Xᵀy, yᵀy``; they are computed here once per fit, so
the optimiser's cost depends on the number of levels, not on ``n``.

The random-effects terms are kept in the order given (the estimator sorts
them as lme4 does, largest grouping factor first). The first term's block of
``ZᵀZ`` is block-diagonal (every row belongs to one level) and is stored as
one ``k1 x k1`` block per level. The later terms' columns followed by ``X``
and ``y`` are the "rest" columns: per level of the first term, their
cross-products with its ``k1`` columns are ``CX`` (dense, for X and y) and a
list of non-zero blocks per later term (a level meets few levels of a nested
or crossed factor). The rest columns' own cross-products are ``Bzz`` (the
later terms among themselves: sparse, since a level meets few levels of
another factor), ``Bzx`` (later terms against ``[X y]``) and ``Bxx``. No
array of size ``q x q`` is built here, whatever the number of levels.

Per-level sums use one ``np.add.reduceat`` when the rows of every level are
contiguous (data sorted by group), ``np.bincount`` otherwise.

The pass has two halves: :func:`accumulate` turns a chunk of rows, coded
with the global levels, into its :class:`CrossProducts`, and
:func:`reduce_cross_products` adds those of several chunks. An in-memory fit
accumulates all its rows at once (:func:`build_design`); a Dask fit maps
``accumulate`` over partitions and tree-reduces (``skmixed._dask``).
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

# Dense storage of the first factor's cross-products with the rest columns is
# m1 * r * k1 doubles; beyond this many the model needs a sparse method.
_MAX_DENSE = 150_000_000


#: Up to this many elements, the (n, c) product of a Z column with the rest
#: columns is formed at once (small data: fewer numpy calls).
_SMALL_PRODUCT = 100_000

#: ``Bzz`` of a design with one grouping factor (0 x 0).
_NO_LATER_TERMS = sparse.csr_matrix((0, 0))


@dataclass
class TermDesign:
    """The random-effects columns of one term.

    Parameters
    ----------
    codes : ndarray of shape (n_samples,)
        Level index of every row, in ``0 .. len(levels) - 1``.
    levels : ndarray of shape (n_levels,)
        Level labels (strings).
    Z : ndarray of shape (n_samples, k) or None
        The term's columns (``None`` for an intercept-only term: a column of
        ones, kept implicit to save a pass over the data).
    names : list of str
        Column names, e.g. ``["(Intercept)", "Days"]``.
    factor : str, default=""
        lme4's name of the grouping factor.
    group : str, default=""
        Name in the variance-components table (``"Subject.1"`` for the second
        term of ``(Days || Subject)``); the factor name when empty.
    moments : ndarray of shape (k, 2), optional
        Mean and standard deviation of each column over all rows, for a term
        whose rows are not in memory (``codes`` and ``Z`` are then None).
    """

    codes: np.ndarray
    levels: np.ndarray
    Z: np.ndarray | None
    names: list
    factor: str = ""
    group: str = ""
    moments: np.ndarray | None = None
    _runs: object = field(default=None, repr=False, compare=False)
    #: Columns multiplied by sqrt(w) (weighted fits): none is ones any more.
    _scaled: bool = field(default=False, repr=False, compare=False)

    @property
    def k(self):
        """Number of columns."""
        return len(self.names)

    @property
    def m(self):
        """Number of levels."""
        return len(self.levels)

    def columns(self):
        """Z as an (n, k) array (materialising the implicit ones)."""
        if self.Z is None:
            return np.ones((len(self.codes), 1))
        return self.Z

    def is_ones(self, j):
        """Whether column j is the intercept (a column of ones)."""
        if self.Z is None:
            return True
        return self.names[j] == "(Intercept)" and not self._scaled

    def scaled_rows(self, root):
        """The term with every row multiplied by ``root`` (sqrt of the weights)."""
        return TermDesign(
            self.codes,
            self.levels,
            self.columns() * root[:, None],
            self.names,
            self.factor,
            self.group,
            _runs=self._runs,
            _scaled=True,
        )

    def group_sums(self, W):
        """Per level, the sums of the rows of W (n, c): array (m, c).

        Rows grouped in contiguous runs (data sorted by group, the usual
        layout of longitudinal data) are summed by one ``np.add.reduceat``;
        otherwise one ``np.bincount`` per column.
        """
        if self._runs is None:
            self._runs = _contiguous_runs(self.codes, self.m)
        if self._runs is not False:
            starts, order = self._runs
            out = np.empty((self.m, W.shape[1]))
            out[order] = np.add.reduceat(W, starts, axis=0)
            return out
        out = np.empty((self.m, W.shape[1]))
        for c in range(W.shape[1]):
            out[:, c] = np.bincount(self.codes, weights=W[:, c], minlength=self.m)
        return out


@dataclass
class Design:
    """Cross-products of ``[Z X y]`` for the profiled criterion.

    Attributes
    ----------
    n, p : int
        Number of observations and of fixed-effect columns.
    terms : list of TermDesign
    D1 : ndarray of shape (m1, k1, k1)
        Per level of the first term, ``Z1ᵀZ1``.
    CX : ndarray of shape (m1, k1, p + 1)
        Per level of the first term, ``Z1ᵀ [X y]``.
    blocks : list of SparseBlocks
        Per later term, the non-zero blocks of ``Z1ᵀ Zt`` (a level of the
        first term meets few levels of a nested or crossed factor).
    Bzz : scipy.sparse.csr_matrix of shape (q_rest, q_rest)
        ``[Z2..ZT]ᵀ [Z2..ZT]`` (symmetric, both triangles stored).
    Bzx : ndarray of shape (q_rest, p + 1)
        ``[Z2..ZT]ᵀ [X y]``.
    Bxx : ndarray of shape (p + 1, p + 1)
        ``[X y]ᵀ [X y]``.
    offsets : list of int
        Column offset of each later term in the rest columns (level-major:
        column ``offset + level * k + j``); ``q_rest`` columns in all.
    x_means : ndarray of shape (p,) or None
        Column means of X, for a design without its rows (X and y None).
    y_range : tuple of float or None
        y's (min, max), for a design without its rows.
    """

    n: int
    p: int
    terms: list
    X: np.ndarray
    y: np.ndarray
    D1: np.ndarray
    CX: np.ndarray
    blocks: list
    Bzz: object
    Bzx: np.ndarray
    Bxx: np.ndarray
    offsets: list = field(default_factory=list)
    q_rest: int = 0
    x_means: np.ndarray | None = None
    y_range: tuple | None = None
    _dense_C: np.ndarray | None = field(default=None, repr=False)
    #: Precision weights (R's prior weights) or None. X, y and the terms are
    #: the data's own; the cross-products are those of W^½ [Z X y].
    weights: np.ndarray | None = None
    #: ``Σ log w_i``, the weights' constant in the Gaussian likelihood.
    sum_log_weights: float = 0.0

    @property
    def C(self):
        """Per level of the first term, ``Z1ᵀ [Z2..ZT X y]``: (m1, k1, r), dense."""
        if self._dense_C is None and not self.q_rest:
            self._dense_C = self.CX  # one grouping factor: C is Z1ᵀ[X y]
        if self._dense_C is None:
            m1, k1 = self.D1.shape[:2]
            if m1 * k1 * self.r > _MAX_DENSE:
                raise MemoryError(
                    f"The grouping factors are too large for the dense method: "
                    f"{m1} levels in the first factor and {self.q_rest} random "
                    "effects in the later ones."
                )
            C = np.zeros((m1, k1, self.r))
            C[:, :, self.q_rest :] = self.CX
            for blk, term, offset in zip(
                self.blocks, self.terms[1:], self.offsets, strict=True
            ):
                columns = offset + blk.cols[:, None] * term.k + np.arange(term.k)
                C[
                    blk.rows[:, None, None], np.arange(k1)[:, None], columns[:, None, :]
                ] = blk.values
            self._dense_C = C
        return self._dense_C

    @property
    def r(self):
        """Number of rest columns: later terms' columns, X, and y."""
        return self.q_rest + self.p + 1

    @property
    def B(self):
        """``[Z2..ZT X y]ᵀ [Z2..ZT X y]`` as one dense (r, r) array (small models)."""
        q, r = self.q_rest, self.r
        if not q:
            return self.Bxx  # one grouping factor: read-only, as every caller
        if r * r > _MAX_DENSE:
            raise MemoryError(
                f"The later grouping factors have {q} random effects: their "
                f"dense cross-product block would need {r * r * 8 / 1e9:.1f} GB."
            )
        B = np.empty((r, r))
        B[:q, :q] = self.Bzz.toarray() if q else 0.0
        B[:q, q:] = self.Bzx
        B[q:, :q] = self.Bzx.T
        B[q:, q:] = self.Bxx
        return B

    @property
    def q(self):
        """Total number of random effects."""
        return sum(t.m * t.k for t in self.terms)

    def with_response(self, y):
        """The same design with another response (only the y parts change).

        Parameters
        ----------
        y : ndarray of shape (n_samples,)

        Returns
        -------
        Design
        """
        y = np.ascontiguousarray(y, dtype=np.float64)
        first, rest = self.terms[0], self.terms[1:]
        CX = self.CX.copy()
        Bzx, Bxx = self.Bzx.copy(), self.Bxx.copy()
        q = self.q_rest
        # Zᵀ W y and Xᵀ W y: the unweighted columns against w * y.
        wy = y if self.weights is None else self.weights * y
        CX[:, :, -1] = _per_level(first, wy[:, None])[:, :, 0]
        by = _rest_cross(rest, self.offsets, q, self.X, wy[:, None])[:, 0]
        Bzx[:, -1] = by[:q]
        Bxx[:-1, -1] = by[q:]
        Bxx[-1, :-1] = by[q:]
        Bxx[-1, -1] = y @ wy
        return Design(
            self.n,
            self.p,
            self.terms,
            self.X,
            y,
            self.D1,
            CX,
            self.blocks,
            self.Bzz,
            Bzx,
            Bxx,
            self.offsets,
            self.q_rest,
            weights=self.weights,
            sum_log_weights=self.sum_log_weights,
        )


@dataclass
class SparseBlocks:
    """Non-zero ``k1 x kt`` blocks of ``Z1ᵀ Zt``, sorted by the later level.

    Attributes
    ----------
    rows : ndarray of shape (nnz,)
        Level of the first term.
    cols : ndarray of shape (nnz,)
        Level of the later term (non-decreasing).
    values : ndarray of shape (nnz, k1, kt)
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray


def _sparse_cross(first, term):
    """``Z1ᵀ Zt`` as the list of its non-zero level blocks."""
    index = term.codes.astype(np.int64) * first.m + first.codes
    size = first.m * term.m
    if size <= 16 * len(index) and size < 2**31:
        # mark the pairs present in a table of every possible pair (5 bytes
        # each): ~6x faster than hashing them (1e5 rows, 2e3 x 5e2 levels)
        seen = np.zeros(size, dtype=bool)
        seen[index] = True
        present = np.flatnonzero(seen)
        position = np.empty(size, dtype=np.int32)
        position[present] = np.arange(len(present), dtype=np.int32)
        inverse = position[index]
    else:
        # many possible pairs (nested factors: 1e5 classes x 1e4 schools):
        # hash the pairs present rather than count or sort all of them
        codes, uniques = pd.factorize(index, sort=False)
        order = np.argsort(uniques)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        present, inverse = uniques[order], rank[codes]
    nnz = len(present)
    values = np.empty((nnz, first.k, term.k))
    for a in range(first.k):
        for b in range(term.k):
            w = _weights(first.Z, a, None if term.Z is None else term.Z[:, b])
            values[:, a, b] = _bincount(inverse, w, nnz)
    return SparseBlocks(present % first.m, present // first.m, values)


def _weights(Z, j, extra=None):
    """Column j of Z (None = ones) times an optional weight vector."""
    if Z is None:
        return extra
    w = Z[:, j]
    return w if extra is None else w * extra


def _bincount(index, weights, length):
    if weights is None:
        return np.bincount(index, minlength=length).astype(np.float64)
    return np.bincount(index, weights=weights, minlength=length)


def _contiguous_runs(codes, m):
    """(run starts, level of each run) if every level is one run, else False."""
    if len(codes) == 0:
        return False
    change = np.empty(len(codes), dtype=bool)
    change[0] = True
    np.not_equal(codes[1:], codes[:-1], out=change[1:])
    # counted before they are listed: rows in no order change level at
    # almost every row, and their list would be an array as long as the rows
    # (10M rows: 80 MB, ~0.2-0.5 s of fresh pages for a "no")
    if np.count_nonzero(change) != m:
        return False
    starts = np.flatnonzero(change)
    # as many runs as levels: one run each only if no level is missing (a
    # chunk of the rows may lack some levels and split another in two)
    levels = codes[starts]
    seen = np.zeros(m, dtype=bool)
    seen[levels] = True
    if not seen.all():
        return False
    return starts, levels


def _per_level(term, M):
    """Per level of ``term``, ``Zᵀ M`` over its rows: array (m, k, M.shape[1])."""
    out = np.empty((term.m, term.k, M.shape[1]))
    for j in range(term.k):
        if term.is_ones(j):
            out[:, j, :] = term.group_sums(M)
            continue
        if M.size <= _SMALL_PRODUCT:
            out[:, j, :] = term.group_sums(M * term.Z[:, j, None])
            continue
        # One column of M at a time: an (n, c) product would be the fit's
        # largest temporary (56 MB of 197 MB at n = 1e6, p = 6). One buffer
        # serves every column (fresh memory costs page faults each time).
        W = np.empty((M.shape[0], 1))
        for c in range(M.shape[1]):
            np.multiply(M[:, c], term.Z[:, j], out=W[:, 0])
            out[:, j, c] = term.group_sums(W)[:, 0]
    return out


def _block_diagonal(term):
    """``ZᵀZ`` of one term: per level a k x k block, array (m, k, k)."""
    k, Z = term.k, term.Z
    pairs = [(a, b) for a in range(k) for b in range(a + 1)]
    W = np.empty((len(term.codes), len(pairs)))
    for i, (a, b) in enumerate(pairs):
        if term.is_ones(a) and term.is_ones(b):
            W[:, i] = 1.0
        elif term.is_ones(a) or term.is_ones(b):
            W[:, i] = Z[:, b if term.is_ones(a) else a]
        else:
            np.multiply(Z[:, a], Z[:, b], out=W[:, i])
    sums = term.group_sums(W)
    out = np.empty((term.m, k, k))
    for i, (a, b) in enumerate(pairs):
        out[:, a, b] = out[:, b, a] = sums[:, i]
    return out


def _sparse_later(rest, offsets, q_rest):
    """``[Z2..ZT]ᵀ [Z2..ZT]`` as a sparse symmetric (q_rest, q_rest) matrix.

    Each term's own block is block-diagonal (one ``k x k`` block per level);
    two terms meet only where their levels share rows.
    """
    rows, cols, vals = [], [], []

    def add(r0, c0, row_levels, col_levels, values):
        ka, kb = values.shape[1:]
        rr = r0 + row_levels[:, None, None] * ka + np.arange(ka)[None, :, None]
        cc = c0 + col_levels[:, None, None] * kb + np.arange(kb)[None, None, :]
        rr, cc = np.broadcast_arrays(rr, cc)
        rows.append(rr.ravel())
        cols.append(cc.ravel())
        vals.append(values.ravel())

    for i, (ti, oi) in enumerate(zip(rest, offsets, strict=True)):
        levels = np.arange(ti.m)
        add(oi, oi, levels, levels, _block_diagonal(ti))
        for tj, oj in zip(rest[:i], offsets[:i], strict=True):
            cross = _sparse_cross(tj, ti)  # rows: levels of tj, cols: of ti
            add(oj, oi, cross.rows, cross.cols, cross.values)
            add(oi, oj, cross.cols, cross.rows, cross.values.transpose(0, 2, 1))
    if not rows:
        if not q_rest:
            # one grouping factor: nothing in it is read or changed in place,
            # so one empty matrix serves every design (scipy's constructor
            # costs as much as a small fit's whole design pass)
            return _NO_LATER_TERMS
        return sparse.csr_matrix((q_rest, q_rest))
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(q_rest, q_rest),
    )


def _rest_cross(rest, offsets, q_rest, X, M):
    """``[Z2..ZT X]ᵀ M`` for a dense (n, c) M: array (q_rest + p, c)."""
    out = np.empty((q_rest + X.shape[1], M.shape[1]))
    for term, offset in zip(rest, offsets, strict=True):
        block = _per_level(term, M)  # (m, k, c)
        out[offset : offset + term.m * term.k] = block.reshape(term.m * term.k, -1)
    out[q_rest:] = X.T @ M
    return out


@dataclass
class CrossProducts:
    """The additive half of a :class:`Design`: sums over rows, per level.

    A chunk of rows (a Dask partition, a Parquet file) gives its own
    cross-products when its level codes are the global ones; the
    cross-products of all the rows are their sum (:meth:`add`). The
    attributes are those of :class:`Design` with the same names.
    """

    n: int
    D1: np.ndarray
    CX: np.ndarray
    blocks: list
    Bzz: object
    Bzx: np.ndarray
    Bxx: np.ndarray
    #: ``Σ log w_i`` of the chunk's prior weights (0 without weights).
    sum_log_weights: float = 0.0

    def add(self, other):
        """The cross-products of both chunks of rows together."""
        blocks = [
            _merge_blocks(a, b, self.D1.shape[0])
            for a, b in zip(self.blocks, other.blocks, strict=True)
        ]
        return CrossProducts(
            self.n + other.n,
            self.D1 + other.D1,
            self.CX + other.CX,
            blocks,
            (self.Bzz + other.Bzz).tocsr(),
            self.Bzx + other.Bzx,
            self.Bxx + other.Bxx,
            self.sum_log_weights + other.sum_log_weights,
        )


def _merge_blocks(a, b, m1):
    """Sum of two SparseBlocks of one term (blocks present in both added)."""
    keys = np.concatenate([a.cols * m1 + a.rows, b.cols * m1 + b.rows])
    present, inverse = np.unique(keys, return_inverse=True)
    values = np.zeros((len(present),) + a.values.shape[1:])
    np.add.at(values, inverse, np.concatenate([a.values, b.values]))
    return SparseBlocks(present % m1, present // m1, values)


def reduce_cross_products(parts):
    """Add up the cross-products of several chunks of rows (``reduce``).

    Parameters
    ----------
    parts : sequence of CrossProducts
        At least one; all with the same terms and levels.

    Returns
    -------
    CrossProducts
    """
    parts = list(parts)
    total = parts[0]
    for part in parts[1:]:
        total = total.add(part)
    return total


def _rest_layout(rest):
    """Column offset of each later term in the rest columns, and their count."""
    offsets, q_rest = [], 0
    for term in rest:
        offsets.append(q_rest)
        q_rest += term.m * term.k
    return offsets, q_rest


def accumulate(X, y, term_designs, weights=None, first_in_x=None, xy=None):
    """Cross-products of ``[Z X y]`` over one chunk of rows (``accumulate``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, p)
    y : ndarray of shape (n_samples,)
    term_designs : list of TermDesign
        Codes into the *global* levels of each factor (every chunk uses the
        same levels), so that the sums of several chunks add up.
    weights : ndarray of shape (n_samples,), optional
        Positive precision weights (lme4's prior weights: row i has residual
        variance σ²/w_i). The rows are weighted once, here: the sums are the
        cross-products of ``W^½ [Z X y]``.
    first_in_x : list of int, optional
        The column of X that each column of the first term equals (its
        intercept and slopes are usually fixed effects too): its ``Z1ᵀZ1``
        is then read from ``Z1ᵀX`` instead of another pass over the rows.
    xy : ndarray of shape (n_samples, p + 1), optional
        ``[X y]`` in one column-major array whose views ``X`` and ``y`` are
        (a chunk of rows built that way saves a copy of them here).

    Returns
    -------
    CrossProducts
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, p = X.shape
    sum_log_weights = 0.0
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        root = np.sqrt(weights)
        term_designs = [t.scaled_rows(root) for t in term_designs]
        X, y = X * root[:, None], y * root
        sum_log_weights = float(np.log(weights).sum())
    first, rest = term_designs[0], list(term_designs[1:])
    offsets, q_rest = _rest_layout(rest)
    # column-major: every per-level sum below reads one column of [X y],
    # contiguous here (np.bincount copies a strided column first: 2x slower)
    if xy is not None and weights is None:
        XY = xy
    else:
        XY = np.empty((n, p + 1), order="F")
        XY[:, :p] = X
        XY[:, p] = y

    CX = _per_level(first, XY)
    if first_in_x is None:
        D1 = _block_diagonal(first)
    else:
        D1 = np.ascontiguousarray(CX[:, :, list(first_in_x)])
    blocks = [_sparse_cross(first, term) for term in rest]
    Bzz = _sparse_later(rest, offsets, q_rest)
    Bzx = np.empty((q_rest, p + 1))
    for term, offset in zip(rest, offsets, strict=True):
        size = term.m * term.k
        Bzx[offset : offset + size] = _per_level(term, XY).reshape(size, p + 1)
    return CrossProducts(n, D1, CX, blocks, Bzz, Bzx, XY.T @ XY, sum_log_weights)


def design_from_cross_products(sums, term_designs, X=None, y=None, weights=None):
    """The :class:`Design` of reduced cross-products.

    Parameters
    ----------
    sums : CrossProducts
    term_designs : list of TermDesign
        The terms the sums were accumulated with (the same order).
    X, y : ndarray, optional
        The rows, when they are in memory; a design built from chunks that
        are not (a Dask fit) has none, and what needs the rows (fitted
        values, the bootstrap) asks for them by another pass.
    weights : ndarray, optional
        The rows' prior weights, when the sums were weighted and the rows
        are in memory.

    Returns
    -------
    Design
    """
    p = sums.CX.shape[2] - 1
    offsets, q_rest = _rest_layout(term_designs[1:])
    # the later terms' blocks and offsets as tuples (read only; a fitted
    # model keeps its design, and tuples leave the garbage collector's lists)
    return Design(
        sums.n,
        p,
        list(term_designs),
        X,
        y,
        sums.D1,
        sums.CX,
        tuple(sums.blocks),
        sums.Bzz,
        sums.Bzx,
        sums.Bxx,
        tuple(offsets),
        q_rest,
        weights=weights,
        sum_log_weights=sums.sum_log_weights,
    )


def build_design(X, y, term_designs, weights=None, first_in_x=None, xy=None):
    """Cross-products of ``[Z X y]`` for the profiled criterion.

    ``accumulate`` over all the rows at once, then the :class:`Design`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, p)
        Fixed-effects model matrix, including the intercept column when the
        model has one; ``p`` may be 0.
    y : ndarray of shape (n_samples,)
        Response.
    term_designs : list of TermDesign
        At least one term; the first should be the one with most levels
        (lme4's order), which is what makes the blocked Cholesky cheap.
    weights : ndarray of shape (n_samples,), optional
        Positive precision weights (see :func:`accumulate`).
    first_in_x : list of int, optional
        The column of X equal to each column of the first term (see
        :func:`accumulate`).
    xy : ndarray of shape (n_samples, p + 1), optional
        ``[X y]`` in one column-major array whose views ``X`` and ``y`` are
        (see :func:`accumulate`): the design keeps those views.

    Returns
    -------
    Design

    Examples
    --------
    >>> import numpy as np
    >>> from skmixed.mixed.design import TermDesign, build_design
    >>> codes = np.array([0, 0, 1, 1, 1])
    >>> term = TermDesign(codes, np.array(["a", "b"]), None, ["(Intercept)"])
    >>> X = np.ones((5, 1))
    >>> d = build_design(X, np.arange(5.0), [term])
    >>> d.D1.ravel().tolist(), d.B.tolist()
    ([2.0, 3.0], [[5.0, 10.0], [10.0, 30.0]])
    """
    if xy is None:
        X = np.ascontiguousarray(X, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError("X must be (n, p) and y (n,) with the same n.")
    if not term_designs:
        raise ValueError("A mixed model needs at least one random-effects term.")
    if weights is not None:
        weights = np.ascontiguousarray(weights, dtype=np.float64)
    sums = accumulate(X, y, term_designs, weights, first_in_x=first_in_x, xy=xy)
    return design_from_cross_products(sums, term_designs, X, y, weights)
