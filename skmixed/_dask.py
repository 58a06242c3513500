"""Fitting from Dask collections: accumulate per partition, reduce, optimise.

Everything the estimators need from the rows is a sum over rows, per level
(``skmixed.mixed.design``). A Dask fit therefore maps
:func:`skmixed.mixed.design.accumulate` over the partitions and adds the
results up in a tree, either

- with one grouping factor, in one pass: a batch of partitions codes its
  rows by their own distinct labels (64-bit keys, :func:`label_keys`, where
  the labels allow; else :func:`local_codes`), the merges unite the labels
  (:func:`union_labels`) and add each level's sums where its label went, and
  the client puts the levels in R's order (:func:`coder_of_labels`); or
- with several, after a pass that learns each factor's levels (the distinct
  labels of every partition, put in R's level order on the client exactly
  as an in-memory fit orders them), coding every partition's rows with
  those *global* levels;

and then runs the in-memory optimiser and results on the client. Rows are
read again only for what needs them (fitted values, residuals, predictions),
by ``map_partitions`` with the fitted model.

Dask is optional: collections are recognised by the module of their type,
so nothing here imports dask unless the user passed a Dask collection.
"""

import numbers
import warnings

import numpy as np
import pandas as pd

from skmixed._inputs import (
    _FIT_HINT,
)
from skmixed._stacklevel import user_stacklevel

#: Column names the input assembly gives y and the groups= columns.
_Y = "__skmixed_y__"
_W = "__skmixed_w__"
_GROUP = "__skmixed_group_{}__"
_FEATURE = "__skmixed_x{}__"
#: Columns of a formula's design, added to the frame partition by partition.
_DESIGN = "__skmixed_f{}__"
#: Partial results added together per task of the tree reduction.
SPLIT_EVERY = 4


def is_dask_collection(obj):
    """Whether ``obj`` is a Dask collection (without importing dask)."""
    module = type(obj).__module__ or ""
    return module == "dask" or module.startswith("dask.")


def any_dask(*objects):
    """Whether any of the arguments is a Dask collection."""
    return any(is_dask_collection(o) for o in objects if o is not None)


def shared(obj):
    """``obj`` for the tasks of a pass: one copy per worker.

    With a distributed client it is scattered to every worker beforehand (the
    levels of a million groups are tens of MB: inside the task graph they
    would travel through the scheduler); otherwise it is one graph key.
    """
    import dask
    from dask.base import get_scheduler

    # the scheduler the next compute() will use: a distributed Client's get,
    # or the threaded/synchronous ones (with or without a client around)
    client = getattr(get_scheduler(), "__self__", None)
    if not hasattr(client, "scatter"):
        return dask.delayed(obj, traverse=False)
    return client.scatter(obj, broadcast=True, hash=False)


def _client():
    """The distributed Client the next compute() will use, or None."""
    from dask.base import get_scheduler

    client = getattr(get_scheduler(), "__self__", None)
    return client if hasattr(client, "scatter") else None


def compute_to_client(*collections):
    """``dask.compute(*collections)``, the results fetched straight from the
    workers that hold them when a distributed Client computes them on this
    machine.

    A Client's gather otherwise asks the scheduler, which fetches the
    results from the workers and sends them on: a second copy through a
    socket. A one-factor fit's merged sums are ~110 MB for a million
    levels: fetched directly, about half the wall time and a third of the
    client's CPU time (2 local workers, 2 x 56 MB).
    """
    import dask

    client = _client()
    if client is None or not _gathers_directly(client):
        return dask.compute(*collections)
    return dask.compute(*collections, direct=True)


def _gathers_directly(client):
    """Whether results are fetched from the workers themselves: as the
    user's ``distributed.client.direct-to-workers`` says, else when every
    worker is on this machine (in this process, or listening on the
    loopback interface, as a LocalCluster's do), which the client surely
    reaches (remote workers may sit behind the scheduler)."""
    if client.direct_to_workers is not None:
        return bool(client.direct_to_workers)
    addresses = list(client.nthreads())
    return bool(addresses) and all(_is_local(a) for a in addresses)


def _is_local(address):
    """Whether a worker's address is in this process or on the loopback."""
    from distributed.comm import get_address_host, parse_address

    if parse_address(address)[0] == "inproc":
        return True
    host = get_address_host(address)
    return host in ("localhost", "::1") or host.startswith("127.")


def run_everywhere(function):
    """Call ``function()`` in every worker process (and in this one)."""
    client = _client()
    if client is not None:
        client.run(function)
    function()


def parallelism():
    """How many tasks the next compute() runs at once (threads in all)."""
    import os

    client = _client()
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    import dask

    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def partition_graphs(frame):
    """Each partition's own task graph, as ``(index, graph, key)``, or None.

    None when a partition's graph is not its own -- two partitions share a
    task (a shuffle, a repartition: computing them one by one would redo
    it) or it reads data held by a cluster (a persisted collection) --
    then the partitions are tasks of the graph as usual.
    """
    from dask.core import get_dependencies

    parts = frame.to_delayed(optimize_graph=True)
    graph = {}
    for part in parts:
        if part.key not in graph:
            graph.update(part.dask)
    if any(type(task).__name__ == "Future" for task in graph.values()):
        return None
    owner, items = {}, []
    for index, part in enumerate(parts):
        own, todo = {}, [part.key]
        while todo:
            key = todo.pop()
            if key in own:
                continue
            if key not in graph:
                return None  # data held by the cluster (scattered, persisted)
            if owner.setdefault(key, index) != index:
                return None  # shared with another partition
            own[key] = graph[key]
            # a task's own list of what it reads: get_dependencies leaves out
            # keys that are not in the graph (an Alias of a scattered future)
            todo.extend(
                getattr(graph[key], "dependencies", None)
                or get_dependencies(graph, key)
            )
        items.append((index, own, part.key))
    return items


# -- a partition's rows: the dtypes of the metadata, complete rows ----------------
def _check_dtypes(part, meta, index):
    """A partition whose dtypes differ from the collection's is an error."""
    for column in meta.columns:
        if column not in part.columns or part[column].dtype == meta[column].dtype:
            continue
        if _unknown_categories(meta[column].dtype) and isinstance(
            part[column].dtype, pd.CategoricalDtype
        ):
            continue  # dd.read_parquet's categoricals: each partition's own
        if isinstance(part[column].dtype, pd.CategoricalDtype) and isinstance(
            meta[column].dtype, pd.CategoricalDtype
        ):
            raise _other_categories(column, part[column].dtype, meta, index)
        raise ValueError(
            f"Column {_shown(column)!r} has dtype {part[column].dtype} in partition "
            f"{index} but {meta[column].dtype} in the collection's metadata: "
            "every partition must have the same dtypes."
        )


def _other_categories(column, dtype, meta, index):
    """The error for a partition whose categorical column has other
    categories than the metadata's ("dtype category ... but category" said
    nothing): which labels differ, and how to read such a column."""
    ours = {str(c) for c in dtype.categories}
    theirs = {str(c) for c in meta[column].dtype.categories}
    name = _shown(column)
    return ValueError(
        f"Column {name!r} has other categories in partition {index} than in "
        f"the collection's metadata (only in the partition: "
        f"{sorted(ours - theirs)[:5]}; only in the metadata: "
        f"{sorted(theirs - ours)[:5]}): every partition must have the same "
        "dtypes. For categories that differ by partition, declare them "
        f"unknown (X[{name!r}].cat.as_unknown(), as dd.read_parquet does) or "
        "give the labels as strings."
    )


def _shown(column):
    """The name a message gives a column of the assembled frame: the
    user's, not the label the assembly gave y, weights, groups= or the
    columns of an array X or of a formula's design."""
    if column == _Y:
        return "y"
    if column == _W:
        return "sample_weight"
    named = ((_GROUP, "groups= {}"), (_FEATURE, "x{}"), (_DESIGN, "formula column {}"))
    if not isinstance(column, str):
        return column
    for template, shown in named:
        head, tail = template.split("{}")
        if column.startswith(head) and column.endswith(tail):
            return shown.format(column[len(head) : len(column) - len(tail)])
    return column


def _unknown_categories(dtype):
    """A Dask categorical whose categories are not known (read_parquet's)."""
    from dask.dataframe.utils import UNKNOWN_CATEGORIES

    return (
        isinstance(dtype, pd.CategoricalDtype)
        and UNKNOWN_CATEGORIES in dtype.categories
    )


def _complete_rows(part, features, group_columns, drop):
    """Rows kept by missing='drop' (all True otherwise): R's na.omit."""
    keep = np.ones(len(part), dtype=bool)
    if not drop:
        return keep
    for column in group_columns:
        keep &= ~np.asarray(pd.isna(part[column]), dtype=bool)
    columns = list(features) + ([_Y] if _Y in part.columns else [])
    if columns:
        values = part[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        keep &= np.isfinite(values).all(axis=1)
    if _W in part.columns:  # a missing weight is a missing value; inf is an error
        keep &= ~np.isnan(part[_W].to_numpy(dtype=np.float64, na_value=np.nan))
    return keep


# -- the tree reduction ----------------------------------------------------------
def _combine(combine, *parts):
    total = parts[0]
    for part in parts[1:]:
        total = combine(total, part)
    return total


def tree_reduce(parts, combine, split_every=SPLIT_EVERY, combine_many=None):
    """Add up delayed partial results ``split_every`` at a time (a tree).

    ``combine(a, b)`` adds two partial results; ``combine_many(*parts)``,
    when given, adds a task's ``split_every`` results at once instead.
    """
    import dask

    parts = list(parts)
    if not parts:
        raise ValueError("The Dask collection has no partitions.")
    while len(parts) > 1:
        parts = [
            dask.delayed(combine_many)(*parts[i : i + split_every])
            if combine_many is not None
            else dask.delayed(_combine)(combine, *parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]


def _warn_dropped(n_dropped, n_kept):
    warnings.warn(
        f"missing='drop': dropped {n_dropped} row(s) with NaN or inf or a "
        f"missing group label ({n_kept} rows remain), as R's na.omit does.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


# -- precision weights, checked from counts summed over partitions --------------
def first_negative_weight(part):
    """(index label, value) of a partition's first negative weight, or None."""
    if _W not in part.columns:
        return None
    raw = part[_W].to_numpy(dtype=np.float64, na_value=np.nan)
    negative = np.flatnonzero(raw < 0)
    if not negative.size:
        return None
    # the row's index label: its position for a default (range) index
    return (part.index[negative[0]], float(raw[negative[0]]))


def label_order(first_negative):
    """Sort key of index labels (numbers by value, others as text)."""
    label = first_negative[0]
    if isinstance(label, numbers.Real):
        return (0, float(label), "")
    return (1, 0.0, str(label))


def weight_counts(w):
    if w is None:
        return {"nan": 0, "inf": 0, "negative": 0, "zero": 0, "positive": 0}
    return {
        "nan": int(np.isnan(w).sum()),
        "inf": int(np.isinf(w).sum()),
        "negative": int((w < 0).sum()),
        "zero": int((w == 0).sum()),
        "positive": int((w > 0).sum()),
    }


def check_weights(counts, first_negative):
    """The in-memory fit's checks of sample_weight, from the summed counts."""
    if counts["nan"]:
        raise ValueError(
            f"sample_weight contains NaN in {counts['nan']} row(s). {_FIT_HINT}"
        )
    if counts["inf"]:
        raise ValueError(
            f"sample_weight contains inf in {counts['inf']} row(s); weights must "
            "be finite."
        )
    if first_negative is not None:
        row, value = first_negative
        raise ValueError(
            f"sample_weight has {counts['negative']} negative weight(s) (first at "
            f"row {row}: {value!r}); precision weights must be >= 0, as R's lm "
            "requires."
        )
    if counts["zero"] and not counts["positive"]:
        raise ValueError(
            "sample_weight is zero (or missing) for every row: no row carries "
            "information, nothing to fit."
        )
