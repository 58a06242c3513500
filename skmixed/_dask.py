"""Dask basics shared by every Dask pass: recognising a Dask collection, the
client, the private column names of the assembled frame, the tree reduction.

Everything the estimators need from the rows is a sum over rows, per level
(``skmixed.mixed.design``). A Dask fit therefore maps
:func:`skmixed.mixed.design.accumulate` over the partitions and adds the
results up in a tree, either

- with one grouping factor, in one pass: a batch of partitions codes its
  rows by their own distinct labels (64-bit keys,
  :func:`skmixed._dask_labels.label_keys`, where the labels allow; else
  :func:`skmixed._dask_labels.local_codes`), the merges unite the labels
  (:func:`skmixed._dask_labels.union_labels`) and add each level's sums where
  its label went, and the client puts the levels in R's order
  (:func:`skmixed._dask_labels.coder_of_labels`); or
- with several, after a pass that learns each factor's levels (the distinct
  labels of every partition, put in R's level order on the client exactly
  as an in-memory fit orders them), coding every partition's rows with
  those *global* levels;

and then runs the in-memory optimiser and results on the client. Rows are
read again only for what needs them (fitted values, residuals, predictions),
by ``map_partitions`` with the fitted model.

The modules, each importing only those above it:

- ``skmixed._dask`` (this one): detection, the client, tree reduction;
- ``skmixed._dask_rows``: checks of a partition's rows (dtypes, complete
  rows, weights);
- ``skmixed._dask_formula``: a formula's state learned from the partitions;
- ``skmixed._dask_labels``: label keys, factor levels and their coders;
- ``skmixed._dask_input``: the input checked and assembled into one frame;
- ``skmixed._dask_predict``: predictions, residuals, score, quantiles;
- the fits: ``skmixed.mixed.dask_fit``, ``skmixed.mixed.dask_ranges`` and
  ``skmixed._dask_lm``.

Dask is optional: collections are recognised by the module of their type,
so nothing here imports dask unless the user passed a Dask collection.
"""

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
