"""Classic data sets for mixed models, shipped with the package.

Each loader returns a :class:`pandas.DataFrame` with numeric response and
covariate columns (``float64``) and grouping factors as pandas categoricals
whose categories are the levels in R's order (sorted numerically when every
label is a number, otherwise byte-wise).
"""

from skmixed.datasets._loaders import (
    load_cake,
    load_cbpp,
    load_dyestuff,
    load_dyestuff2,
    load_grouseticks,
    load_oats,
    load_pastes,
    load_penicillin,
    load_sleepstudy,
)

__all__ = [
    "load_cake",
    "load_cbpp",
    "load_dyestuff",
    "load_dyestuff2",
    "load_grouseticks",
    "load_oats",
    "load_pastes",
    "load_penicillin",
    "load_sleepstudy",
]
