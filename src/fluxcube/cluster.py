"""The one place that creates a Dask cluster.

A ``LocalCluster`` by default (processes, one thread each, memory limit per worker); the
dask-kubernetes operator's ``KubeCluster`` when ``FLUXCUBE_CLUSTER=kubernetes`` (issue #6 adds the
cluster spec and its tests). ``FLUXCUBE_DASK_WORKERS`` and ``FLUXCUBE_DASK_MEMORY`` size the local one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster


def local_cluster(n_workers: int | None = None, memory_limit: str | None = None) -> LocalCluster:
    """A LocalCluster of ``n_workers`` single-threaded processes (default: one per core).

    ``memory_limit`` per worker, e.g. ``"4GiB"`` (default: ``FLUXCUBE_DASK_MEMORY`` or Dask's share).
    """
    n = n_workers or int(os.environ.get("FLUXCUBE_DASK_WORKERS", os.cpu_count() or 1))
    memory = memory_limit or os.environ.get("FLUXCUBE_DASK_MEMORY", "auto")
    return LocalCluster(
        n_workers=n, threads_per_worker=1, memory_limit=memory, processes=True, dashboard_address=None
    )


@contextmanager
def client(n_workers: int | None = None) -> Iterator[Client]:
    """A Dask client on the configured cluster, closed afterwards."""
    kind = os.environ.get("FLUXCUBE_CLUSTER", "local")
    if kind != "local":
        raise NotImplementedError(f"FLUXCUBE_CLUSTER={kind!r}: only 'local' is built so far (issue #6)")
    with local_cluster(n_workers) as cluster, Client(cluster) as c:
        yield c
