"""Simulate the awkward data sets of the robustness tests (run once, by hand).

The CSVs written here are committed; `make_refs.R` fits them with lme4 and
writes the reference JSON next to them. Neither script runs in the tests.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def save(name, frame):
    frame.to_csv(HERE / f"{name}.csv", index=False, float_format="%.17g")


def main():
    rng = np.random.default_rng(20261126)
    # Strongly correlated random intercepts and slopes (rho = 0.99).
    n_groups, per = 30, 8
    cov = np.array([[1.0, 0.99 * 0.5], [0.99 * 0.5, 0.25]])
    b = rng.multivariate_normal([0, 0], cov, size=n_groups)
    g = np.repeat(np.arange(n_groups), per)
    x = np.tile(np.arange(per, dtype=float), n_groups)
    y = 2 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(0, 0.5, g.size)
    save("corr_slopes", pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]}))

    # A random slope with no variance: slopes identical in every group.
    b0 = rng.normal(0, 1.0, n_groups)
    y = 1 + 0.3 * x + b0[g] + rng.normal(0, 0.7, g.size)
    save(
        "zero_slope_var", pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})
    )

    # 10,000 groups of size 2.
    n_groups = 10_000
    g = np.repeat(np.arange(n_groups), 2)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.8, n_groups)[g] + rng.normal(0, 1.0, g.size)
    save("pairs_10k", pd.DataFrame({"y": y, "x": x, "g": [f"p{i}" for i in g]}))

    # One group holding 99% of the rows (990 of 1000; ten groups of one row).
    g = np.concatenate([np.zeros(990, int), np.arange(1, 11)])
    x = rng.normal(size=g.size)
    b0 = rng.normal(0, 1.0, 11)
    y = 3 - 0.4 * x + b0[g] + rng.normal(0, 1.0, g.size)
    save("one_big_group", pd.DataFrame({"y": y, "x": x, "g": [f"h{i}" for i in g]}))


if __name__ == "__main__":
    main()
