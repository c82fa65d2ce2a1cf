"""Connecting to a Dask cluster: an explicit address, the configured scheduler, or a local one."""

from daskml_lab.cluster._allocator import WORKER_ALLOCATOR_ENV, worker_allocator
from daskml_lab.cluster._connect import connect

__all__ = ["WORKER_ALLOCATOR_ENV", "connect", "worker_allocator"]
