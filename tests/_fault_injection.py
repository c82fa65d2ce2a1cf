"""Fault injection shared by the reliability tests: act on the cluster right after a given task finished."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from distributed import Client, LocalCluster

__all__ = ["after_first_task", "three_worker_cluster", "wait_until_idle"]


@contextlib.contextmanager
def after_first_task(client: Client, prefix: str, fault: Callable[[str], None]) -> Iterator[list[str]]:
    """Call ``fault(worker)``, from a thread, once a task whose key starts with ``prefix`` was seen running on
    ``worker`` and is no longer running (it has finished). Yields the list of workers ``fault`` was called for
    (empty when the fit ended before the fault).

    The thread polls the tasks the workers are processing every 10 ms and stops with the context.
    """
    fired: list[str] = []
    stop = threading.Event()

    def name(key) -> str:
        return str(key[0] if isinstance(key, tuple) else key)

    def watch() -> None:
        seen: dict = {}  # task key -> the worker it was seen running on
        while not stop.is_set():
            try:
                processing = client.processing()
            except Exception:  # the client is closing: nothing left to do
                return
            running = {k: w for w, keys in processing.items() for k in keys if name(k).startswith(prefix)}
            finished = set(seen) - set(running)
            if finished:
                worker = seen[sorted(finished, key=str)[0]]
                fault(worker)
                fired.append(worker)
                return
            seen.update(running)
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        stop.set()
        thread.join(10)


@contextlib.contextmanager
def three_worker_cluster() -> Iterator[LocalCluster]:
    """Three single-threaded worker processes on 127.0.0.1 (2 GiB each): one can be paused or killed while two
    remain to take over its work."""
    with LocalCluster(
        n_workers=3,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        memory_limit="2GiB",
    ) as cluster:
        yield cluster


def _tasks_on_workers(dask_worker: Any) -> int:
    state = dask_worker.state
    return state.executing_count + len(state.ready) + len(state.constrained) + len(state.long_running)


def wait_until_idle(client: Client, timeout_s: float = 60.0) -> None:
    """Wait until neither the scheduler nor any worker has a task left to run (after an interrupted search).

    The scheduler forgets a cancelled task at once, but a worker may still be running it or about to start
    it: the workers are asked too, so that no task of the interrupted work starts after this returns.
    """
    deadline = time.monotonic() + timeout_s
    while any(client.processing().values()) or any(client.run(_tasks_on_workers).values()):
        assert time.monotonic() < deadline, (client.processing(), client.run(_tasks_on_workers))
        time.sleep(0.05)
