"""accumulate / reduce: the cross-products of chunks of rows add up to the whole.

Values are small multiples of 1/8, so every product and every sum is exact
in floating point: the chunked and the one-pass designs must be identical,
whatever the chunking (empty chunks, a level in one chunk only).
"""

import numpy as np
import pytest

from skmixed.mixed.design import (
    TermDesign,
    accumulate,
    build_design,
    design_from_cross_products,
    reduce_cross_products,
)


def _terms(rows, codes_a, codes_b, z, m_a, m_b):
    return [
        TermDesign(
            codes_a[rows], np.arange(m_a).astype(str), z[rows], ["(Intercept)", "z"]
        ),
        TermDesign(codes_b[rows], np.arange(m_b).astype(str), None, ["(Intercept)"]),
    ]


@pytest.mark.parametrize(
    "cuts", [[0, 50, 51, 51, 200], [0, 200], [0, 1, 7, 120, 199, 200]]
)
def test_reduced_chunks_equal_the_one_pass_design(cuts):
    rng = np.random.default_rng(0)
    n, m_a, m_b = 200, 12, 5
    codes_a = rng.integers(0, m_a, n)
    codes_a[-1] = m_a - 1  # make the last level appear in the last chunk only
    codes_a[codes_a == m_a - 1] = 0
    codes_a[-1] = m_a - 1
    codes_b = rng.integers(0, m_b, n)
    X = np.column_stack([np.ones(n), rng.integers(-16, 16, (n, 2)) / 8.0])
    y = rng.integers(-64, 64, n) / 8.0
    z = np.column_stack([np.ones(n), rng.integers(-8, 8, n) / 4.0])
    everything = np.arange(n)
    whole = build_design(X, y, _terms(everything, codes_a, codes_b, z, m_a, m_b))
    parts = []
    for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
        rows = np.arange(start, stop)
        parts.append(
            accumulate(X[rows], y[rows], _terms(rows, codes_a, codes_b, z, m_a, m_b))
        )
    sums = reduce_cross_products(parts)
    chunked = design_from_cross_products(sums, whole.terms)
    assert chunked.n == whole.n and chunked.X is None
    for name in ("D1", "CX", "B", "C"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))
    blk, ref = chunked.blocks[0], whole.blocks[0]
    np.testing.assert_array_equal(blk.rows, ref.rows)
    np.testing.assert_array_equal(blk.cols, ref.cols)
    np.testing.assert_array_equal(blk.values, ref.values)
