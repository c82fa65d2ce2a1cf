"""Whether parameter shards fit their workers, and their creation watched: a clear error, never a killed worker.

A shard lives on one worker (its task may run nowhere else). :func:`check_shard_room` refuses, before anything
is allocated, a shard whose arrays exceed what its worker has free below the nanny's ``terminate`` fraction;
:func:`created_watched` waits for the shards' actors while checking that their workers are still in the
cluster, since a task restricted to a worker that died would wait for it for ever.
"""

from __future__ import annotations

import time
from typing import Any

from distributed import wait

from daskml_lab._compat import scheduler_workers
from daskml_lab._runtime.client import cluster_timeout_s
from daskml_lab._runtime.memory import WorkerMemory, free_memory
from daskml_lab.solvers._store_view import POLL_S

__all__ = ["actors_held", "check_shard_room", "created_watched"]


def actors_held(keys: list[str], dask_worker: Any = None) -> int:
    """How many of the actors ``keys`` this worker still holds (runs on the worker, through ``client.run``)."""
    return sum(key in dask_worker.state.actors for key in keys)


def _resident_bytes() -> int:
    """This process's resident memory now, in bytes (runs on a worker, through ``client.run``)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def check_shard_room(client: Any, shard_bytes: list[int], placed: list[str]) -> None:
    """Refuse shards whose arrays exceed what their worker has free below its ``terminate`` fraction.

    Creating them would get the worker killed by its nanny, and with it everything it holds (the user's other
    fitted shards, persisted blocks): a clear error before any allocation instead. ``shard_bytes`` are the
    shards' planned arrays (``ParameterShard.planned_nbytes``), ``placed`` their workers; workers without a
    ``memory_limit`` are not checked.

    Raises
    ------
    MemoryError
        Naming the worker, the shards' size and its free memory, with the fixes.
    """
    needed: dict[str, int] = {}
    for nbytes, address in zip(shard_bytes, placed, strict=True):
        needed[address] = needed.get(address, 0) + nbytes
    known = scheduler_workers(client)
    limits = {address: float((known.get(address) or {}).get("memory_limit", 0) or 0) for address in needed}
    limited = [address for address, limit in limits.items() if limit > 0]
    # each worker's memory now, not at its last heartbeat: shards released just before are gone from it
    resident = client.run(_resident_bytes, workers=limited, on_error="ignore") if limited else {}
    for address in limited:
        nbytes, limit = needed[address], limits[address]
        used = float(resident[address]) if isinstance(resident.get(address), int) else 0.0
        room = free_memory([WorkerMemory(limit, used)], "terminate")
        if nbytes > room:
            msg = (
                f"The parameter shard(s) for worker {address} would hold {nbytes / 2**30:.2f} GiB (coefficients and "
                "the solver's state), "
                f"but it has {room / 2**30:.2f} GiB free below the point where its nanny restarts it "
                f"(memory_limit {limit / 2**30:.2f} GiB, {used / 2**30:.2f} GiB in use): creating them would "
                "kill the worker and whatever it holds. Spread the model over more workers (one shard each), use "
                "workers with a larger memory_limit, or release what they hold (another partitioned model: "
                "model.coef_.release())."
            )
            raise MemoryError(msg)


def created_watched(client: Any, futures: list[Any], placed: list[str], nbytes: int) -> tuple[Any, ...]:
    """The shards' actors once created; a clear error as soon as a worker of a shard has left (never a hang).

    A shard's task may run only on its worker: if that worker dies (most often killed above its memory limit
    while allocating the shard) the task would wait for it for ever.
    """
    deadline = time.monotonic() + cluster_timeout_s()
    while True:
        try:
            wait(futures, timeout=POLL_S)
        except TimeoutError:
            pass
        if all(future.done() for future in futures):
            return tuple(future.result() for future in futures)
        gone = sorted(set(placed) - set(scheduler_workers(client)))
        if gone or time.monotonic() > deadline:
            client.cancel(futures)
            shards = [shard for shard, address in enumerate(placed) if address in gone]
            what = (
                f"worker(s) {gone} left the cluster while parameter shard(s) {shards} were created on them"
                if gone
                else f"the parameter shards were not created within {cluster_timeout_s():.0f} s"
            )
            msg = (
                f"{what} ({nbytes / 2**30:.3f} GiB of arrays each; a worker restarted above its memory "
                "limit is the usual cause). Check the workers' memory_limit and logs, then try again."
            )
            raise RuntimeError(msg)
