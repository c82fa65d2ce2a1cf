"""How the worker processes we start allocate memory: glibc keeping numpy's temporaries instead of mapping each.

A Dask nanny starts its worker with ``MALLOC_TRIM_THRESHOLD_`` set (``distributed.nanny.pre-spawn-environ``), to
hand freed memory back to the system. Setting it also turns off glibc's *dynamic* mmap threshold, which would
otherwise rise with the program's allocations: every allocation of 128 KiB or more is then a fresh ``mmap``
and every first touch of its pages a page fault. Numpy code that makes many temporaries of that size (a
mini-batch's scores, a column table, a sub-block's margins) runs many times slower inside a worker than in a
plain process: 19x for arithmetic on 160 KB arrays, measured (the solvers' per-step kernels 3-4x).
``MALLOC_MMAP_THRESHOLD_`` set to glibc's own ceiling for the dynamic threshold (32 MiB) gives them back their
plain-process speed; larger arrays are still mapped and returned to the system when freed, and the trim
threshold still returns the heap's free top.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dask

__all__ = ["WORKER_ALLOCATOR_ENV", "worker_allocator"]

#: glibc settings for worker processes: allocations below 32 MiB come from the heap (see the module's text).
WORKER_ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": 2**25}

_PRE_SPAWN = "distributed.nanny.pre-spawn-environ"


@contextlib.contextmanager
def worker_allocator() -> Iterator[None]:
    """Start worker processes in this block with ``WORKER_ALLOCATOR_ENV`` (unless configured otherwise).

    Sets ``distributed.nanny.pre-spawn-environ`` for the block, so that the nannies started in it (a
    :class:`distributed.LocalCluster`'s) start their workers with the setting; a value the user configured
    there is kept. For workers started by ``dask worker``, set the variable in their environment instead, e.g.
    ``MALLOC_MMAP_THRESHOLD_=33554432 dask worker ADDRESS``.

    Examples
    --------
    >>> from distributed import LocalCluster
    >>> with worker_allocator():  # doctest: +SKIP
    ...     cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1")
    """
    missing = {
        f"{_PRE_SPAWN}.{name}": value
        for name, value in WORKER_ALLOCATOR_ENV.items()
        if dask.config.get(f"{_PRE_SPAWN}.{name}", None) is None
    }
    with dask.config.set(missing):
        yield
