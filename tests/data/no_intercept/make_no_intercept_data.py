"""Simulate no_intercept.csv (run once, by hand; the CSV is committed).

The rows of ``_no_intercept_data`` in tests/test_robustness.py (x, g and
``y0 = 2 x + b_g + e``, the same draws) and, for the other models, a
crossed factor h with its own intercepts (``yh = y0 + a_h``), a random
slope on x by g (``ys = y0 + s_g x``) and precision weights w. The offsets
(0, 1e4, 1e6, 1e8) are added by ``make_refs.R`` and by the tests, to the
values as read from this file. Neither script runs in the tests.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main():
    rng = np.random.default_rng(3)  # as _no_intercept_data
    g = np.repeat(np.arange(60), 10)
    x = rng.normal(size=600)
    y0 = 2 * x + 2 * rng.normal(size=60)[g] + rng.normal(size=600)
    other = np.random.default_rng(4)
    h = other.integers(0, 12, 600)
    yh = y0 + 1.5 * other.normal(size=12)[h]
    ys = y0 + 0.7 * other.normal(size=60)[g] * x
    w = other.uniform(0.5, 2.0, 600)
    frame = pd.DataFrame(
        {
            "x": x,
            "g": [f"g{i}" for i in g],
            "h": [f"h{i}" for i in h],
            "y0": y0,
            "yh": yh,
            "ys": ys,
            "w": w,
        }
    )
    frame.to_csv(HERE / "no_intercept.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
