"""The pairwise merge of partial (weighted) means that every Dask pass
summing rows around their means uses: Chan, Golub and LeVeque's update.

Each partition centres its rows on its own means, so its centred sums keep
their digits; two partitions' sums are then joined around their joint mean
with a correction in the difference of the means, never as a sum of squares
less n mean², which cancels.
"""

import numpy as np


def merge_means(wa, ma, wb, mb):
    """The joint weight and mean of two sets of rows, and what their
    centred cross-products gain.

    Parameters
    ----------
    wa, wb : float or ndarray
        The weights (or counts) of the two sets: scalars, or one per group.
    ma, mb : float or ndarray
        Their means: the weights' shape, then any axes of columns.

    Returns
    -------
    w : float or ndarray
        ``wa + wb``.
    mean : float or ndarray
        ``ma + (wb / w) delta``: ``ma`` where ``w`` is 0.
    delta : float or ndarray
        ``mb - ma``.
    gain : float or ndarray
        ``wa wb / w`` (0 where ``w`` is 0): the centred cross-products of
        columns ``i`` and ``j`` of both sets are the sums of each set's
        plus ``gain delta_i delta_j``.
    """
    w = wa + wb
    share = wb / np.where(w > 0, w, 1.0)
    columns = (...,) + (np.newaxis,) * (np.ndim(ma) - np.ndim(w))
    delta = mb - ma
    return w, ma + share[columns] * delta, delta, share * wa
