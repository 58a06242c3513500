"""The rest block of the blocked Cholesky: later factors, X and y.

Once the first factor's block is eliminated, the rows of the later terms'
random effects (z) and of ``[X y]`` (x) form the Schur complement ::

    S = [S_zz  S_zx]   S_zz = Λ̃ᵀ (Bzz − Σ_j C_jzᵀ M_j C_jz) Λ̃ + I
        [S_xz  S_xx]   S_zx = Λ̃ᵀ (Bzx − Σ_j C_jzᵀ M_j C_jx), ...

with ``C_j`` the first factor's level-j cross-products and
``M_j = λ A_j⁻¹ λᵀ``. ``S_zz`` is as sparse as the levels' meeting pattern
(which later level shares a first-factor level, or rows, with which), and
that pattern does not depend on θ. So it is found once per fit, and the
factor of ``S_zz`` takes the structure it allows (MixedModels.jl keeps a
type per block for the same reason):

- ``"diagonal"``: one later factor nested in the first (every first-factor
  level meets one of its levels): ``S_zz`` is block-diagonal, one ``k x k``
  block per level, factored for all levels at once;
- ``"sparse"``: few crossings: a sparse LU without pivoting (SuperLU with a
  fill-reducing symmetric ordering, from scipy; ``S_zz`` is symmetric
  positive definite, eigenvalues >= 1, so no pivoting is needed);
- ``"dense"``: the pattern fills in: LAPACK's Cholesky.

``[X y]``'s part is then the small dense ``T = S_xx − S_xz S_zz⁻¹ S_zx``,
whose Cholesky factor gives ``log|R_X|²`` and the penalised residual sum
of squares.
"""

import os

import numpy as np
from scipy import sparse
from scipy.linalg.lapack import dpotrf, dpotri, dtrtrs
from scipy.sparse.linalg import splu

# Below this many later random effects a dense factor is always cheap.
_SMALL_DENSE = 1500
# Patterns denser than this fraction of q² are factored densely.
_DENSE_FRACTION = 0.02
# A sparse factor filling more than this fraction of the triangle: dense.
_SPARSE_FILL = 0.1
# Gathering the selected inverse for the conditional variances: columns of
# S_zz⁻¹ solved for at a time.
_INVERSE_CHUNK = 256


# Stored products up to this many are sorted into CSR order once (see RestBlock)
_CSR_PRODUCTS = 1 << 20


def available_memory():
    """Bytes of memory available to this process (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - not Linux
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 62


def describe_factors(design):
    """``"user (50,000 levels x 1), item (5,000 levels x 1)"`` for messages."""
    return ", ".join(
        f"{t.factor or t.group or 'factor'} ({t.m:,} levels x {t.k})"
        for t in design.terms
    )


def _size(nbytes):
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.0f} MB"


def check_memory(design, needed, what):
    """MemoryError naming the factor sizes when ``needed`` bytes will not fit."""
    if needed < 1e7:  # small models: not worth reading /proc/meminfo
        return
    available = available_memory()
    if needed > 0.8 * available:
        raise MemoryError(
            f"This model needs about {_size(needed)} for {what}, more than "
            f"this machine has available ({_size(available)}). Grouping "
            f"factors: {describe_factors(design)}."
        )


def _level_elements(design):
    """The later terms' non-zero columns of each first-factor level.

    Returns (level, column, values (k1,)) sorted by level, then column.
    """
    k1 = design.D1.shape[1]
    lev, col, val = [], [], []
    for blk, term, offset in zip(
        design.blocks, design.terms[1:], design.offsets, strict=True
    ):
        kt = term.k
        lev.append(np.repeat(blk.rows, kt))
        col.append((offset + blk.cols[:, None] * kt + np.arange(kt)).ravel())
        val.append(blk.values.transpose(0, 2, 1).reshape(-1, k1))
    if not lev:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, k1))
    lev, col, val = np.concatenate(lev), np.concatenate(col), np.concatenate(val)
    order = np.lexsort((col, lev))
    return lev[order], col[order], val[order]


def _pairs_by_column(lev, col):
    """Every element paired with itself and each later one of its level.

    ``lev`` and ``col`` are sorted by level, then column. The pairs are
    grouped by their first element's column (then level): a run of pairs
    then writes to one row of ``S_zz`` (a few kB), so building the stored
    products and applying them stay in cache (grouped by level, the writes
    jump over the whole pattern).

    Returns (first, n_pairs, second): the pairs' first elements are
    ``np.repeat(first, n_pairs)`` (a repeat of the elements' own values is
    cheaper than gathering them through an index), their partners
    ``second``.
    """
    n = len(lev)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    counts = np.bincount(lev)
    # elements after each one in its level, itself included
    n_after = np.cumsum(counts)[lev] - np.arange(n)
    total = int(n_after.sum())
    itype = np.int32 if max(total, n) < 2**31 else np.int64
    # a stable sort of 16-bit keys is a radix sort: ~10x faster
    keys = col.astype(np.uint16) if col.max() < 2**16 else col
    first = np.argsort(keys, kind="stable").astype(itype)
    n_pairs = n_after[first]
    # partner of the i-th pair of element e: e + (i - start of e's run)
    start = (np.cumsum(n_pairs) - n_pairs).astype(itype)
    second = np.arange(total, dtype=itype)
    second -= np.repeat(start - first, n_pairs)
    return first, n_pairs, second


def _nested_in_first(design, lev):
    """Whether one later factor meets each first-factor level in one level.

    Then ``S_zz`` is block-diagonal (the ``"diagonal"`` structure); ``lev``
    holds the first-factor level of each later-term column met.
    """
    terms = design.terms[1:]
    if len(terms) != 1 or not len(lev):
        return len(terms) == 1
    return bool(np.bincount(lev).max() <= terms[0].k)


def _lu_size(lu):
    """(entries of L and U, ~flops of the factorisation: 2 Σ_j c_j² for
    the column counts c_j of L)."""
    counts = np.diff(lu.L.indptr).astype(np.float64)
    return float(lu.L.nnz + lu.U.nnz), float(2.0 * np.dot(counts, counts))


def _compact(parts, size):
    """(distinct sorted positions, a lookup table from position to index).

    ``parts`` are arrays of positions. The table has one entry per possible
    position (q², 5 bytes each): used where that is at most a few times the
    products (which take 12-52 bytes each to build), since it is ~10x
    faster than sorting them (3e6 of 2.5e7 positions met by 1e7 products:
    0.5 against 4 s); otherwise (None) the positions are looked up by a
    sorted search.
    """
    if size <= max(8 * sum(map(len, parts)), 1 << 12):
        seen = np.zeros(size, dtype=bool)
        for positions in parts:
            seen[positions] = True
        present = np.flatnonzero(seen)
        lookup = np.zeros(size, dtype=np.int32 if size < 2**31 else np.int64)
        lookup[present] = np.arange(len(present))
        return present, lookup
    # np.unique hashes first (numpy 2.4): 20x slower than sorting here
    positions = np.sort(np.concatenate(parts))
    first = np.empty(len(positions), dtype=bool)
    first[:1] = True
    np.not_equal(positions[1:], positions[:-1], out=first[1:])
    return positions[first], None


def products_count(design):
    """Number of upper-triangle products per θ pair in ``S_zz``'s update."""
    m1 = design.D1.shape[0]
    counts = np.zeros(m1)
    for blk, term in zip(design.blocks, design.terms[1:], strict=True):
        counts += term.k * np.bincount(blk.rows, minlength=m1)
    return float((counts * (counts + 1) / 2).sum())


class RestBlock:
    """Schur complement of the first block and its structured factor.

    Parameters
    ----------
    design : Design
    pairs : list of (int, int)
        The first term's ``(a, b)``, ``a <= b``, in the order of the
        per-level weights ``M_j[a, b]``.
    structure : {None, "diagonal", "sparse", "dense"}
        How ``S_zz`` is factored; chosen from the meeting pattern when None.

    Attributes
    ----------
    structure : str
    n_stored : int
        Stored per-level products (see :mod:`skmixed.mixed.cost`).
    """

    def __init__(self, design, pairs, structure=None):
        self.design = design
        self.pairs = pairs
        q, p1 = design.q_rest, design.p + 1
        m1, k1 = design.D1.shape[:2]
        self.q, self.p1, self.m1, self.k1 = q, p1, m1, k1
        self._scalar_rest = all(t.k == 1 for t in design.terms[1:])
        self._CX = design.CX.reshape(m1 * k1, p1)
        self.structure = None
        self._factor_size = None
        if not q:  # one grouping factor: T = S_xx is all there is
            return
        npairs = len(pairs)
        n_products = npairs * products_count(design)
        # products (12 bytes) and the index arrays that build them (~40)
        check_memory(
            design,
            52.0 * n_products + 16.0 * design.Bzz.nnz,
            "the later factors' cross-products",
        )
        lev, col, val = _level_elements(design)
        # C_z: the first factor's rows (level * k1 + a) against z columns
        self._Cz = sparse.csr_matrix(
            (
                val.ravel(),
                (
                    np.repeat(lev * k1, k1) + np.tile(np.arange(k1), len(lev)),
                    np.repeat(col, k1),
                ),
            ),
            shape=(m1 * k1, q),
        )
        self._CzT = self._Cz.T.tocsr()
        first, n_pairs, second = _pairs_by_column(lev, col)
        col = col.astype(np.int32 if q * q < 2**31 else np.int64)
        bzz = sparse.triu(design.Bzz).tocoo()
        whole = (
            structure in (None, "dense")
            and q <= _SMALL_DENSE
            and not _nested_in_first(design, lev)
        )
        if whole:
            # S_zz will be factored densely: its whole upper triangle is the
            # pattern (entries no level fills stay 0), and an entry's place
            # in it follows from its row and column, without sorting the
            # products' positions
            c = np.arange(q, dtype=col.dtype)
            diagonal_at = c * q - c * (c - 1) // 2  # (c, c), row-major triangle
            index = np.repeat((diagonal_at - c)[col[first]], n_pairs)
            index += col[second]
            b_index = diagonal_at[bzz.row] + (bzz.col - bzz.row)
            self._rows, self._cols = np.triu_indices(q)
            n_pattern = len(self._rows)
        else:
            positions = np.repeat(col[first] * q, n_pairs)
            positions += col[second]
            b_positions = (bzz.row.astype(np.int64) * q + bzz.col).astype(
                positions.dtype
            )
            present, lookup = _compact([positions, b_positions], q * q)
            if lookup is not None:
                index, b_index = lookup[positions], lookup[b_positions]
            else:
                index = np.searchsorted(present, positions)
                b_index = np.searchsorted(present, b_positions)
            del positions, b_positions
            self._rows, self._cols = present // q, present % q
            n_pattern = len(present)
        self._diag = self._rows == self._cols
        self._diag_index = np.flatnonzero(self._diag)
        self._b_values = np.zeros(n_pattern)
        np.add.at(self._b_values, b_index, bzz.data)
        # P: one row per pattern entry, one column per (pair, first-factor
        # level), kept as triplets in the pairs' order (see
        # _pairs_by_column): P @ w then writes within a row of S_zz at a
        # time, as fast as a CSR product, and sorting the 10⁶-10⁷ products
        # into CSR order would cost more than the fit's evaluations
        index_type = np.int32 if max(n_pattern, npairs * m1) < 2**31 else np.int64
        level = lev.astype(index_type)[second]
        data, columns = [], []
        for i, (a, b) in enumerate(pairs):
            va, vb = val[:, a], val[:, b]
            prod = np.repeat(va[first], n_pairs)
            prod *= vb[second]
            if a != b:
                prod += np.repeat(vb[first], n_pairs) * va[second]
            data.append(prod)
            columns.append(level + i * m1 if i else level)
        del first, n_pairs, second
        cat = np.concatenate if npairs > 1 else (lambda parts: parts[0])
        index = index.astype(index_type, copy=False)
        P = sparse.coo_matrix(
            (
                cat(data),
                (np.tile(index, npairs) if npairs > 1 else index, cat(columns)),
            ),
            shape=(n_pattern, npairs * m1),
        )
        del index, level, data, columns
        if P.nnz <= _CSR_PRODUCTS:
            # few products: sorting them costs well under a millisecond, and
            # scipy's CSR product is 3-4x faster than the triplets' (47 vs
            # 13 us a call on nested-200k, whose BOBYQA fit makes ~100)
            P = P.tocsr()
        # Pᵀ (a free view) serves the conditional variances
        self._P, self._PT = P, P.T
        self._term_of_column = np.zeros(q, dtype=np.intp)
        for i, (term, offset) in enumerate(
            zip(design.terms[1:], design.offsets, strict=True)
        ):
            self._term_of_column[offset : offset + term.m * term.k] = i
        self._n_rest = len(design.terms) - 1
        if self._scalar_rest and self._n_rest > 1:
            # each entry's (row term, column term), to scale it by a small
            # table of θ products instead of two gathers of q scales
            n = self._n_rest
            kind = np.uint8 if n * n < 256 else np.intp
            self._entry_terms = (
                self._term_of_column[self._rows] * n + self._term_of_column[self._cols]
            ).astype(kind)
        self.structure = structure or self._choose_structure()
        if self.structure == "diagonal" and not self._is_block_diagonal():
            raise ValueError("S_zz is not block-diagonal for this design")
        self._setup_structure()

    def __getstate__(self):
        # A fitted model is pickled to be deployed: the per-level products
        # (P, C_z, the pattern's index arrays: often several times the
        # data) are rebuilt from the design on unpickling; the structure
        # is given back, so no trial factorisation chooses it again.
        return {
            "design": self.design,
            "pairs": self.pairs,
            "structure": self.structure,
            "factor_size": self._factor_size,
        }

    def __setstate__(self, state):
        self.__init__(state["design"], state["pairs"], state["structure"])
        self._factor_size = state["factor_size"]

    @property
    def n_stored(self):
        """Number of stored per-level products (one pass per evaluation)."""
        return self._P.nnz if self.q else 0

    @property
    def sparse_factor_size(self):
        """(entries of the sparse LU factors, flops of one factorisation).

        From the trial factorisation that chose the sparse structure (one is
        made here when the structure was given).
        """
        if self._factor_size is None:
            lu = self._sparse_lu(self._full_matrix(self._pattern_values()))
            self._factor_size = _lu_size(lu)
        return self._factor_size

    def _pattern_values(self):
        """A positive definite matrix with ``S_zz``'s pattern, for the trial.

        Every pattern entry non-zero (-1 off the diagonal, the row's count
        plus one on it: diagonally dominant). ``Bzz + I`` alone has zeros
        where only the update fills in (all of the off-diagonal pattern for
        one later factor), and SuperLU drops them: its factor then looked
        diagonal, and a block that fills in was factored as sparse (3,000
        times as many entries, and ~10x slower than dense).
        """
        q = self.q
        values = np.full(len(self._rows), -1.0)
        degree = np.bincount(self._rows, minlength=q)
        degree += np.bincount(self._cols, minlength=q)
        values[self._diag_index] = degree[self._rows[self._diag_index]] + 1.0
        return values

    # -- the pattern -------------------------------------------------------------
    def _is_block_diagonal(self):
        terms = self.design.terms[1:]
        if len(terms) != 1:
            return False
        k = terms[0].k
        return bool(np.all(self._rows // k == self._cols // k))

    def _choose_structure(self):
        if self._is_block_diagonal():
            return "diagonal"
        q = self.q
        # a pattern holding more than a few percent of q² fills in (and
        # SuperLU's ordering of it alone costs more than dense Cholesky)
        if q <= _SMALL_DENSE or len(self._rows) > _DENSE_FRACTION * q * q / 2:
            check_memory(self.design, 24.0 * q * q, "a dense later-factor block")
            return "dense"
        # One trial sparse factorisation shows how much the ordering fills in.
        self.structure = "sparse"
        self._setup_structure()
        try:
            lu = self._sparse_lu(self._full_matrix(self._pattern_values()))
        except MemoryError:
            lu = None
        else:
            self._factor_size = _lu_size(lu)
        # The factor's fill decides (not the clock: the choice must not
        # depend on the machine's load): a sparse factor with less than a
        # tenth of the dense triangle's entries is the cheaper one.
        if lu is not None and lu.L.nnz < _SPARSE_FILL * q * (q + 1) / 2:
            fill = 12.0 * (lu.L.nnz + lu.U.nnz)
            check_memory(self.design, 2 * fill, "the sparse later-factor block")
            return "sparse"
        check_memory(self.design, 24.0 * q * q, "a dense later-factor block")
        return "dense"

    def _setup_structure(self):
        q = self.q
        rows, cols = self._rows, self._cols
        if self.structure == "diagonal":
            k = self.design.terms[1].k
            self._k = k
            self._blk_level = rows // k
            self._blk_a, self._blk_b = rows % k, cols % k
        elif self.structure == "sparse":
            off = ~self._diag
            # the full symmetric matrix: where each stored value goes
            full_rows = np.r_[rows, cols[off]]
            full_cols = np.r_[cols, rows[off]]
            source = np.r_[np.arange(len(rows)), np.flatnonzero(off)]
            order = np.lexsort((full_rows, full_cols))  # CSC order
            self._csc_source = source[order]
            counts = np.bincount(full_cols, minlength=q)
            self._csc_indptr = np.r_[0, np.cumsum(counts)]
            self._csc_indices = full_rows[order].astype(np.int32)
        else:
            # the lower triangle of S_zz (C order) and the upper one, flat
            self._dense_lower = cols * q + rows
            self._dense_upper = rows * q + cols

    # -- one evaluation ----------------------------------------------------------
    def _weights_full(self, weights):
        """Per level M_j as (m1, k1, k1) from the pair weights (m1, pairs)."""
        k1 = self.k1
        M = np.empty((self.m1, k1, k1))
        for i, (a, b) in enumerate(self.pairs):
            M[:, a, b] = M[:, b, a] = weights[:, i]
        return M

    def _column_scales(self, lambdas):
        """Per z column, the θ of its (scalar) term."""
        t = np.array([lam[0, 0] for lam in lambdas[1:]])
        return t[self._term_of_column]

    def schur(self, weights, lambdas):
        """(S_zz values on the pattern, unscaled for vector terms; S_zx; S_xx; Q).

        ``Q`` is the update before the later terms' scaling,
        ``Bzz − Σ_j C_jzᵀ M_j C_jz`` on the pattern (the gradient needs it).

        For scalar later terms the values are scaled by Λ̃ and have I added;
        for vector terms the structure's own step does both.
        """
        k1, p1 = self.k1, self.p1
        if k1 == 1:
            Y = weights[:, :1] * self._CX
        else:
            Y = (self._weights_full(weights) @ self.design.CX).reshape(-1, p1)
        Sxx = self.design.Bxx - self._CX.T @ Y
        if not self.q:
            return None, None, Sxx, None
        Szx = self.design.Bzx - self._CzT @ Y
        Q = self._b_values - self._P @ weights.T.ravel()
        vals = Q
        if self._scalar_rest:
            vals = Q * self._entry_scales(lambdas)
            vals[self._diag_index] += 1.0
            Szx *= self._column_scales(lambdas)[:, None]
        return vals, Szx, Sxx, Q

    def _entry_scales(self, lambdas):
        """Per pattern entry, the θ product of its row's and column's
        (scalar) terms; a scalar when there is one later term."""
        t = np.array([lam[0, 0] for lam in lambdas[1:]])
        if self._n_rest == 1:
            return t[0] * t[0]
        return np.outer(t, t).ravel()[self._entry_terms]

    def _full_matrix(self, vals):
        """S_zz as a symmetric CSC matrix from its upper-triangle values."""
        q = self.q
        return sparse.csc_matrix(
            (vals[self._csc_source], self._csc_indices, self._csc_indptr),
            shape=(q, q),
        )

    def lambda_tilde(self, lambdas):
        """Λ̃: the later terms' factors, block-diagonal (q, q), sparse."""
        return sparse.block_diag(
            [
                sparse.kron(sparse.identity(t.m), lam)
                for lam, t in zip(lambdas[1:], self.design.terms[1:], strict=True)
            ],
            format="csr",
        )

    @staticmethod
    def _sparse_lu(S):
        return splu(
            S,
            permc_spec="MMD_AT_PLUS_A",
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )

    def _scale_dense(self, lambdas, S, Szx):
        """Λ̃ᵀ S Λ̃ + I and Λ̃ᵀ S_zx for vector later terms (in place)."""
        for lam, term, offset in zip(
            lambdas[1:], self.design.terms[1:], self.design.offsets, strict=True
        ):
            m, k = term.m, term.k
            cols = slice(offset, offset + m * k)
            part = S[:, cols].reshape(S.shape[0], m, k)
            S[:, cols] = (part @ lam).reshape(S.shape[0], m * k)
            part = S[cols, :].reshape(m, k, S.shape[1])
            S[cols, :] = (lam.T @ part).reshape(m * k, S.shape[1])
            Szx[cols] = (lam.T @ Szx[cols].reshape(m, k, -1)).reshape(m * k, -1)
        S[np.arange(self.q), np.arange(self.q)] += 1.0

    def factor(self, weights, lambdas):
        """Factor S_zz: (log|S_zz|, T, solve, inverse, S_zx), None if not PD.

        ``solve(R)`` applies ``S_zz⁻¹`` to a (q, c) array; ``T`` is
        ``S_xx − S_xz S_zz⁻¹ S_zx``; ``inverse`` is what
        :meth:`selected_inverse` and :meth:`logdet_gradient_parts` need;
        ``S_zx`` is scaled by Λ̃.
        """
        vals, Szx, Sxx, Q = self.schur(weights, lambdas)
        if not self.q:
            return 0.0, Sxx, lambda R: R, None, Szx
        if self.structure == "diagonal":
            k, m = self._k, self.design.terms[1].m
            blocks = np.zeros((m, k, k))
            blocks[self._blk_level, self._blk_a, self._blk_b] = vals
            blocks[self._blk_level, self._blk_b, self._blk_a] = vals
            if not self._scalar_rest:
                lam = lambdas[1]
                blocks = lam.T @ blocks @ lam
                blocks[:, np.arange(k), np.arange(k)] += 1.0
                Szx = (lam.T @ Szx.reshape(m, k, -1)).reshape(m * k, -1)
            if k == 1:
                d = blocks[:, 0, 0]
                if np.any(d <= 0):
                    return None
                logdet = np.log(d).sum()
                F = Szx / d[:, None]
                inverse = ("diagonal", 1.0 / d, Q)

                def solve(R, d=d):
                    return R / d[:, None]
            else:
                try:
                    L = np.linalg.cholesky(blocks)
                except np.linalg.LinAlgError:
                    return None
                logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()

                def solve(R, blocks=blocks, m=m, k=k):
                    out = np.linalg.solve(blocks, R.reshape(m, k, -1))
                    return out.reshape(m * k, -1)

                F = solve(Szx)
                inverse = ("blocks", blocks, Q)
            return logdet, Sxx - Szx.T @ F, solve, inverse, Szx
        if self.structure == "sparse":
            S = self._full_matrix(vals)
            Lt = None
            if not self._scalar_rest:
                Lt = self.lambda_tilde(lambdas)
                S = (Lt.T @ S @ Lt + sparse.identity(self.q)).tocsc()
                Szx = Lt.T @ Szx
            try:
                lu = self._sparse_lu(S)
            except RuntimeError:  # exactly singular
                return None
            diag = lu.U.diagonal()
            if np.any(diag <= 0):
                return None
            F = lu.solve(Szx)
            return np.log(diag).sum(), Sxx - Szx.T @ F, lu.solve, ("lu", lu, Q), Szx
        q = self.q
        S = np.zeros((q, q))
        S.ravel()[self._dense_lower] = vals
        if not self._scalar_rest:
            S.ravel()[self._dense_upper] = vals
            self._scale_dense(lambdas, S, Szx)
        # LAPACK reads the lower triangle of the Fortran-ordered S.T
        L, info = dpotrf(S.T, lower=0, overwrite_a=1)
        if info != 0:
            return None
        # L.T (C order) is the lower factor of S: solve with its transpose
        W, _ = dtrtrs(L, Szx, lower=0, trans=1)
        logdet = 2.0 * np.log(np.diagonal(L)).sum()

        def solve(R, L=L):
            X, _ = dtrtrs(L, R, lower=0, trans=1)
            X, _ = dtrtrs(L, X, lower=0, trans=0)
            return X

        return logdet, Sxx - W.T @ W, solve, ("cholesky", L, Q), Szx

    # -- after the optimum -------------------------------------------------------
    def selected_inverse(self, inverse, lambdas):
        """``Λ̃ S_zz⁻¹ Λ̃`` on the pattern's entries (the conditional variances).

        Built without a dense q x q inverse for the diagonal and sparse
        structures (columns of ``S_zz⁻¹`` are solved for in chunks).
        """
        kind, data = inverse[:2]
        rows, cols, q = self._rows, self._cols, self.q
        if kind == "diagonal":
            values = data[rows]
        elif kind == "blocks":
            lam = lambdas[1]
            inv = lam @ np.linalg.inv(data) @ lam.T
            return inv[self._blk_level, self._blk_a, self._blk_b]
        elif kind == "cholesky":
            check_memory(self.design, 16.0 * q * q, "the conditional variances")
            inv, _ = dpotri(data.copy(), lower=0)
            # data is the upper factor U (S = UᵀU): dpotri fills the upper
            # triangle of S⁻¹
            inv = np.triu(inv) + np.triu(inv, 1).T
            if not self._scalar_rest:
                scale = np.zeros((q, q))
                for lam, term, offset in zip(
                    lambdas[1:],
                    self.design.terms[1:],
                    self.design.offsets,
                    strict=True,
                ):
                    size = term.m * term.k
                    scale[offset : offset + size, offset : offset + size] = np.kron(
                        np.eye(term.m), lam
                    )
                inv = scale @ inv @ scale.T
                return inv[rows, cols]
            values = inv[rows, cols]
        else:
            # columns of Λ̃ S⁻¹ Λ̃ᵀ, a chunk at a time: Λ̃ S⁻¹ (Λ̃ᵀ E)
            Lt = self.lambda_tilde(lambdas)
            LtT = Lt.T.tocsc()
            values = np.empty(len(rows))
            by_column = np.argsort(cols, kind="stable")
            bounds = np.searchsorted(cols[by_column], np.arange(0, q + 1))
            for start in range(0, q, _INVERSE_CHUNK):
                stop = min(start + _INVERSE_CHUNK, q)
                block = Lt @ data.solve(LtT[:, start:stop].toarray())
                entries = by_column[bounds[start] : bounds[stop]]
                values[entries] = block[rows[entries], cols[entries] - start]
            return values
        t = self._column_scales(lambdas)
        return values * t[rows] * t[cols]

    def first_term_inner(self, X_pattern):
        """Per level j, ``C_jz X C_jzᵀ`` (m1, k1, k1) for a symmetric X on the pattern.

        The update's products count an off-diagonal pattern entry once per
        unordered pair, so X's diagonal (for a != b) and off-diagonal (for
        a == b) entries are reweighted to give the full quadratic form.
        """
        m1, k1 = self.m1, self.k1
        doubled = 2.0 * X_pattern
        doubled[self._diag] = X_pattern[self._diag]
        G = np.zeros((m1, k1, k1))
        if k1 == 1:
            G[:, 0, 0] = self._PT @ doubled
            return G
        halved = 0.5 * doubled
        # one pass over Pᵀ for both vectors
        both = self._PT @ np.stack([doubled, halved], axis=1)
        on = both[:, 0].reshape(len(self.pairs), m1)
        off = both[:, 1].reshape(len(self.pairs), m1)
        for i, (a, b) in enumerate(self.pairs):
            G[:, a, b] = G[:, b, a] = on[i] if a == b else off[i]
        return G

    def first_term_weighted_sums(self, X_pattern, K):
        """``Σ_j Σ_ab K_j[o, a, b] G_j[a, b]`` per output o, for the
        ``G_j`` of :meth:`first_term_inner`, without forming them.

        ``G_j[a, b] = c_jaᵀ X c_jb``, so the sum is ``⟨X, Σ_j β_j(c_a c_bᵀ
        + c_b c_aᵀ)⟩``: one product of the stored per-level products with
        the weights (by rows, as for the update, the faster direction), then
        one dot product on the pattern; :meth:`first_term_inner` reads the
        products by levels instead, ~1.5-2x dearer.

        Parameters
        ----------
        X_pattern : ndarray of shape (n_pattern,)
            A symmetric X on the pattern (upper triangle).
        K : ndarray of shape (m1, n_out, k1, k1)

        Returns
        -------
        ndarray of shape (n_out,)
        """
        doubled = 2.0 * X_pattern
        doubled[self._diag] = X_pattern[self._diag]
        n_out = K.shape[1]
        # per pair (a <= b) and level: K[a, a], or the mean of K[a, b] and
        # K[b, a] (the products hold c_a c_bᵀ + c_b c_aᵀ, counted twice)
        beta = np.empty((len(self.pairs), self.m1, n_out))
        for i, (a, b) in enumerate(self.pairs):
            beta[i] = K[:, :, a, a] if a == b else 0.5 * (K[:, :, a, b] + K[:, :, b, a])
        beta = beta.reshape(-1, n_out)
        # one matrix-vector product per output: scipy's product with
        # several vectors at once is slower than as many single ones
        return np.array([doubled @ (self._P @ beta[:, o]) for o in range(n_out)])

    def diagonal_blocks(self, X_pattern):
        """Per later term, the (m, k, k) diagonal blocks of X on the pattern."""
        out = []
        rows, cols = self._rows, self._cols
        for term, offset in zip(
            self.design.terms[1:], self.design.offsets, strict=True
        ):
            m, k = term.m, term.k
            inside = (rows >= offset) & (rows < offset + m * k)
            inside &= (rows - offset) // k == (cols - offset) // k
            r, c = rows[inside] - offset, cols[inside] - offset
            blocks = np.zeros((m, k, k))
            blocks[r // k, r % k, c % k] = X_pattern[inside]
            blocks[r // k, c % k, r % k] = X_pattern[inside]
            out.append(blocks)
        return out

    # -- the criterion's gradient ------------------------------------------------
    def _rows_times_lambda(self, lambdas, M, transpose=False):
        """``Λ̃ M`` (or ``Λ̃ᵀ M``) for a (q, c) array M, without forming Λ̃."""
        out = np.empty_like(M)
        for lam, term, offset in zip(
            lambdas[1:], self.design.terms[1:], self.design.offsets, strict=True
        ):
            m, k = term.m, term.k
            rows = slice(offset, offset + m * k)
            if k == 1:
                np.multiply(M[rows], lam[0, 0], out=out[rows])
                continue
            factor = lam.T if transpose else lam
            out[rows] = (factor @ M[rows].reshape(m, k, -1)).reshape(m * k, -1)
        return out

    def logdet_gradient_parts(self, lambdas, inverse):
        """What the gradient of ``log|S_zz|`` and of the first block needs.

        With ``Q = Bzz − Σ_j C_jzᵀ M_j C_jz`` (the Schur complement before
        the later terms' scaling, ``S_zz = Λ̃ᵀ Q Λ̃ + I``) and ``Y = S_zz⁻¹``:

        - per later term, the k x k sum over its levels l of the diagonal
          blocks ``[Y Λ̃ᵀ Q]_ll``, which are the later terms' diagonal blocks
          of ``A⁻¹ ΛᵀZᵀZ`` (``A = ΛᵀZᵀZΛ + I``);
        - ``X = Λ̃ Y Λ̃ᵀ`` on the pattern (:meth:`first_term_inner` turns it
          into the first term's part).

        Only products with Λ̃ are formed, never a division by θ, so both are
        exact as θ goes to 0 (singular fits).

        Returns
        -------
        X_pattern : ndarray of shape (n_pattern,)
        sums : list of ndarray of shape (k, k)
        """
        kind, data, Q = inverse
        terms, offsets = self.design.terms[1:], self.design.offsets
        if kind in ("diagonal", "blocks"):
            lam, m, k = lambdas[1], terms[0].m, terms[0].k
            Y = data[:, None, None] if kind == "diagonal" else np.linalg.inv(data)
            Qb = np.zeros((m, k, k))
            Qb[self._blk_level, self._blk_a, self._blk_b] = Q
            Qb[self._blk_level, self._blk_b, self._blk_a] = Q
            H = Y @ lam.T @ Qb
            X = (lam @ Y @ lam.T)[self._blk_level, self._blk_a, self._blk_b]
            return X, [H.sum(axis=0)]
        rows, cols = self._rows, self._cols
        if kind == "cholesky" and self._scalar_rest:
            # data is the upper factor U (S = UᵀU), no longer needed: dpotri
            # overwrites it with the upper triangle of S⁻¹ (rows <= cols)
            Yu, _ = dpotri(data, lower=0, overwrite_c=1)
            # the upper triangle's entries, read without copying Yu (LAPACK
            # returns it in Fortran order: Yuᵀ is C-ordered)
            if Yu.flags.f_contiguous:
                Y = Yu.T.ravel().take(self._dense_lower)
            else:
                Y = Yu.ravel().take(self._dense_upper)
            return self._scalar_parts(Y, Q, lambdas)
        if kind == "cholesky":
            check_memory(self.design, 32.0 * self.q**2, "the gradient")
            Y, _ = dpotri(data, lower=0, overwrite_c=1)
            Y = np.triu(Y) + np.triu(Y, 1).T
            Qd = np.zeros_like(Y)
            Qd[rows, cols] = Q
            Qd[cols, rows] = Q
            R = self._rows_times_lambda(lambdas, Qd, transpose=True)
            sums = []
            for term, offset in zip(terms, offsets, strict=True):
                m, k = term.m, term.k
                block = slice(offset, offset + m * k)
                Yt = Y[block].reshape(m, k, -1)
                Rt = R[:, block].reshape(-1, m, k)
                sums.append(np.einsum("lbq,qla->ba", Yt, Rt))
            LY = self._rows_times_lambda(lambdas, Y)
            X = self._rows_times_lambda(lambdas, LY.T.copy())
            return X[rows, cols], sums
        # sparse LU: columns of S_zz⁻¹ a chunk of levels at a time
        q = self.q
        Qfull = self._full_matrix(Q)
        Lt = self.lambda_tilde(lambdas)
        R = (Lt.T @ Qfull).tocsc()
        X = np.empty(len(rows))
        by_column = np.argsort(cols, kind="stable")
        bounds = np.searchsorted(cols[by_column], np.arange(0, q + 1))
        sums = []
        for lam, term, offset in zip(lambdas[1:], terms, offsets, strict=True):
            m, k = term.m, term.k
            total = np.zeros((k, k))
            step = max(1, _INVERSE_CHUNK // k)
            for l0 in range(0, m, step):
                l1 = min(m, l0 + step)
                start, stop = offset + l0 * k, offset + l1 * k
                E = np.zeros((q, stop - start))
                E[np.arange(start, stop), np.arange(stop - start)] = 1.0
                Yc = data.solve(E).reshape(q, l1 - l0, k)
                Rc = R[:, start:stop].toarray().reshape(q, l1 - l0, k)
                total += np.einsum("qlb,qla->ba", Yc, Rc)
                # columns of Λ̃ Y Λ̃ᵀ: Λ̃ Σ_c Y[:, (l, c)] λ[a, c]
                block = Lt @ (Yc @ lam.T).reshape(q, stop - start)
                entries = by_column[bounds[start] : bounds[stop]]
                X[entries] = block[rows[entries], cols[entries] - start]
            sums.append(total)
        return X, sums

    def _scalar_parts(self, Y, Q, lambdas):
        """:meth:`logdet_gradient_parts` for scalar later terms, on the pattern.

        ``[Y Λ̃ᵀ Q]_ll = Σ_l' Y_ll' t_l' Q_l'l``: summed over a term's levels
        l, every stored (upper) entry adds ``Y Q t(column)`` to its row's
        term and, off the diagonal, ``Y Q t(row)`` to its column's.
        """
        t = np.array([lam[0, 0] for lam in lambdas[1:]])
        X = Y * self._entry_scales(lambdas)
        YQ = Y * Q
        on_diagonal = YQ[self._diag_index]
        n = self._n_rest
        if n == 1:
            total = 2.0 * YQ.sum() - on_diagonal.sum()
            return X, [np.array([[t[0] * total]])]
        # sums of YQ by (row term, column term); the diagonal's by term
        by_pair = np.bincount(self._entry_terms, YQ, minlength=n * n).reshape(n, n)
        diagonal = np.bincount(
            self._term_of_column[self._rows[self._diag_index]], on_diagonal, minlength=n
        )
        off = by_pair - np.diag(diagonal)
        h = by_pair @ t + off.T @ t
        return X, [np.array([[value]]) for value in h]
