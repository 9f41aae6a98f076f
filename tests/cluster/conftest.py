"""A Dask LocalCluster per test module: two single-threaded worker processes, each under a nanny that starts
it again if it is killed."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def local_cluster():
    """(the scheduler's address, a client of it)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as lc, distributed.Client(lc) as client:  # any free port
        yield lc.scheduler_address, client
