"""Waiting for futures on a cluster, with errors that say what was awaited, where, and what to do.

Polls here and elsewhere wait a short time and look again. distributed's ``wait`` and ``Future.result`` say
that the time ran out by raising ``TimeoutError``, and its ``sync`` keeps that error in a reference cycle with
its own frames; the error's traceback reaches the frame that caught it. Until Python's cycle collector runs,
that frame stays alive, with every future it holds, and the scheduler keeps their tasks and data: a later fit
of the same data then finds them (on a worker that may since have been paused) instead of computing its own.
:func:`forget_traceback` breaks the link; every poll that catches such a ``TimeoutError`` calls it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from distributed import CancelledError, Future, wait

from daskml_lab._runtime.client import TIMEOUT_KEY
from daskml_lab._runtime.cluster_health import (
    CHECK_INTERVAL_S,
    NO_WORKER_GRACE_S,
    ClusterHealth,
    scheduler_lost,
)

__all__ = [
    "DataLostError",
    "forget_traceback",
    "lost_data_error",
    "raise_task_errors",
    "result_within",
    "timeout_error",
    "wait_briefly",
    "wait_for",
]


class DataLostError(RuntimeError):
    """Data were lost with a worker: the scheduler cancelled the work that needs them."""


def forget_traceback(err: BaseException) -> None:
    """Drop the traceback of a poll's ``TimeoutError``, so that it no longer keeps the polling frame alive.

    See the module's docstring: distributed holds the error in a reference cycle until the garbage collector
    runs, and with the traceback, every future of the frame that caught it.
    """
    err.__traceback__ = None


def wait_briefly(futures: Sequence[Any], timeout_s: float) -> bool:
    """``distributed.wait(futures, timeout=timeout_s)`` for a poll: whether they are all done, never raising.

    The ``TimeoutError`` of a time that ran out has its traceback dropped (:func:`forget_traceback`).
    """
    try:
        wait(futures, timeout=timeout_s)
    except TimeoutError as err:
        forget_traceback(err)
        return False
    return True


def wait_for(
    futures: Sequence[Any],
    *,
    what: str,
    client: Any,
    timeout_s: float,
    health: ClusterHealth | None = None,
) -> None:
    """Wait until every future is done, then raise the first task's own error, if any.

    Parameters
    ----------
    futures : sequence of distributed.Future
        What to wait for.
    what : str
        What the futures are, for messages ("the row blocks to be computed and held in memory").
    client : distributed.Client
        The client (its scheduler's address goes in the messages).
    timeout_s : float
        Longest wait.
    health : ClusterHealth or None, default=None
        The computation's cluster (it knows how many workers there were at the start); ``None`` makes one.

    Raises
    ------
    TimeoutError
        After ``timeout_s`` seconds, naming ``what``, the scheduler and the setting to raise.
    SchedulerLostError
        As soon as the client has lost its scheduler.
    NoWorkersLeftError
        When no worker is left and none joins within
        :data:`~daskml_lab._runtime.cluster_health.NO_WORKER_GRACE_S` seconds (the cluster is asked every
        :data:`~daskml_lab._runtime.cluster_health.CHECK_INTERVAL_S` seconds while waiting).
    DataLostError
        When the scheduler cancelled the futures because data were lost with a worker and cannot be computed
        again (they have no lineage).
    Exception
        The error a task raised (for example the data layer's finiteness check).
    """
    health = ClusterHealth(client) if health is None else health
    futures = list(futures)
    doing = f"waiting for {what}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            wait(futures, timeout=max(min(CHECK_INTERVAL_S, deadline - time.monotonic()), 0.01))
            break
        except TimeoutError as err:
            forget_traceback(err)
            # the scheduler knows at once that no worker is left: do not wait for the timeout
            health.check(doing=doing, grace_s=NO_WORKER_GRACE_S)
            if time.monotonic() >= deadline:
                raise timeout_error(what, client, timeout_s) from err
        except CancelledError as err:
            raise _cancelled_error(what, err, client, health) from err
    raise_task_errors(futures)


def result_within(
    future: Any, *, what: str, client: Any, timeout_s: float | None, health: ClusterHealth | None = None
) -> Any:
    """The value of one future, waited for at most ``timeout_s`` seconds (``None``: no limit).

    ``Future.result(timeout=...)`` raises a ``TimeoutError`` without a message; this one names ``what``, the
    scheduler and the setting to raise, like :func:`wait_for`. A ``TimeoutError`` the task itself raised
    (the future is done) is passed on unchanged.

    Parameters
    ----------
    future : distributed.Future or distributed.ActorFuture
        What to wait for.
    what : str
        What the future is, for the message.
    client : distributed.Client
        The client (its scheduler's address goes in the message).
    timeout_s : float or None
        Longest wait.
    health : ClusterHealth or None, default=None
        The computation's cluster; ``None`` makes one.

    Raises
    ------
    TimeoutError
        After ``timeout_s`` seconds, naming ``what``, the scheduler and the setting to raise.
    SchedulerLostError, NoWorkersLeftError
        As :func:`wait_for`.
    DataLostError
        When the scheduler cancelled the future because its data were lost for good.
    """
    health = ClusterHealth(client) if health is None else health
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        remaining = CHECK_INTERVAL_S if deadline is None else deadline - time.monotonic()
        step = max(min(CHECK_INTERVAL_S, remaining), 0.01)
        try:
            if not isinstance(future, Future):  # an actor's call: its own timeout
                return future.result(timeout=step)
            # waited for, then asked without a timeout: the TimeoutError of Future.result(timeout=...) keeps the
            # future itself in distributed's reference cycle (see the module's docstring)
            if wait_briefly([future], step):
                return future.result()
        except TimeoutError as err:
            forget_traceback(err)
            if _is_done(future):
                # finished since the poll gave up (a race, frequent on a loaded machine), or the task raised
                # its own TimeoutError: ask again without a timeout, which returns the value or that error
                return future.result()
        except CancelledError as err:
            raise _cancelled_error(what, err, client, health) from err
        health.check(doing=f"waiting for {what}", grace_s=NO_WORKER_GRACE_S)
        if deadline is not None and time.monotonic() >= deadline:
            raise timeout_error(what, client, float(timeout_s))


def _cancelled_error(what: str, err: BaseException, client: Any, health: ClusterHealth) -> Exception:
    """Why futures were cancelled: the scheduler has gone, no worker is left, or their data were lost."""
    if scheduler_lost(client) or "scheduler-connection-lost" in str(err):
        return health.scheduler_lost_error(f"waiting for {what}")
    explained = health.explain(err, doing=f"waiting for {what}")
    return lost_data_error(what, err, health) if explained is None else explained


def _is_done(future: Any) -> bool:
    done = getattr(future, "done", None)
    return bool(done()) if callable(done) else False


def timeout_error(what: str, client: Any, timeout_s: float) -> TimeoutError:
    """The error for a wait of ``timeout_s`` seconds for ``what`` that did not end."""
    address = getattr(getattr(client, "scheduler", None), "address", "?")
    msg = (
        f"Timed out after {timeout_s:g} s waiting for {what} on the cluster at {address}. "
        "Check that the workers are alive and have memory to hold the data, or raise the timeout "
        f"(dask.config {TIMEOUT_KEY})."
    )
    return TimeoutError(msg)


def lost_data_error(what: str, err: BaseException, health: ClusterHealth | None = None) -> DataLostError:
    """The error for futures the scheduler cancelled because their data were lost for good.

    The scheduler forgets data lost with a worker when it cannot compute them again (no lineage). With
    ``health``, the message says how many of the workers the computation started with were lost.
    """
    lost = "" if health is None else health.lost_summary()
    msg = (
        f"Waiting for {what} failed: data were lost with a worker and cannot be computed again (they have "
        f"no lineage: scattered data, or data persisted by a client that has gone).{lost} Load the input from its "
        "source (files or a lazy graph) rather than scattering it, or keep a copy on another worker "
        f"(client.replicate). Details: {err}"
    )
    return DataLostError(msg)


def raise_task_errors(futures: Sequence[Any]) -> None:
    """Raise the exception of the first errored future (as ``dask.compute`` does); nothing if none failed."""
    for future in futures:
        if future.status == "error":
            future.result()  # raises the task's own exception
