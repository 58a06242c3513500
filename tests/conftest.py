"""Shared fixtures: one distributed.LocalCluster for every Dask test file."""

import pytest


@pytest.fixture(scope="session")
def client():
    """Two worker processes with little memory, for the whole session."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="1GiB",
        dashboard_address=":0",
        silence_logs=50,
    )
    with distributed.Client(cluster, timeout="60s") as c:
        yield c
    cluster.close(timeout=30)
