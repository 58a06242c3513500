"""Simulated data sets that several test modules share."""

import numpy as np
import pandas as pd


def crossed_frame(n, m_a, m_b, seed=1):
    """``n`` rows of two crossed factors ``user`` (``m_a`` levels) and
    ``item`` (``m_b``), each with a random intercept, and a feature ``x``."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, m_a, n), rng.integers(0, m_b, n)
    y = rng.normal(size=m_a)[a] + rng.normal(size=m_b)[b] + rng.normal(size=n)
    X = pd.DataFrame(
        {"x": rng.normal(size=n), "user": a.astype(str), "item": b.astype(str)}
    )
    return X, y
