"""The cluster every benchmark runs on: the issues' reference set-up, on this machine only.

A :class:`distributed.LocalCluster` of 2 worker processes x 1 thread bound to 127.0.0.1, its dashboard on a free
port, quiet logs, worker processes allocating as :func:`daskml_lab.connect` starts them
(:func:`daskml_lab.cluster.worker_allocator`); a benchmark overrides what it needs (``memory_limit`` mostly).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from distributed import Client, LocalCluster

from daskml_lab.cluster import worker_allocator

__all__ = ["bench_client"]

#: The reference cluster of the issues' targets.
REFERENCE = {
    "n_workers": 2,
    "threads_per_worker": 1,
    "processes": True,
    "host": "127.0.0.1",
    "dashboard_address": "127.0.0.1:0",
    "silence_logs": logging.ERROR,
}


@contextlib.contextmanager
def bench_client(**overrides: Any) -> Iterator[Client]:
    """A client of a fresh reference cluster, closed (with the cluster) on exit.

    Parameters
    ----------
    **overrides
        :class:`distributed.LocalCluster` arguments replacing or adding to :data:`REFERENCE`.

    Yields
    ------
    distributed.Client
    """
    with worker_allocator(), LocalCluster(**{**REFERENCE, **overrides}) as cluster, Client(cluster) as client:
        yield client
