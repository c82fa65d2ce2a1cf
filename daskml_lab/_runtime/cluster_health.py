"""Cluster health: whether the scheduler and any worker are still there, asked while a fit waits.

A wait on a cluster can end in three ways that have nothing to do with the work itself, and each deserves one
clear error, at once, rather than the first internal exception that happens to surface or the full timeout:

- the **scheduler is gone** (killed, its machine lost): the client loses its connection and every future is
  cancelled with the reason ``scheduler-connection-lost``; nothing can be computed any more, and the workers'
  data are unreachable. :class:`~daskml_lab.exceptions.SchedulerLostError` names its address.
- **no worker is left**: the scheduler knows at once, so the wait stops within a short grace (a nanny restarts
  a worker within seconds) instead of the cluster timeout. :class:`~daskml_lab.exceptions.NoWorkersLeftError`
  says how many of the workers the computation started with were lost.
- **some workers are lost**: the waits of the engine, the ensembles and the cascade recover while any worker
  remains and the blocks have lineage; this module only tells them when there is nothing left to recover on.

:class:`ClusterHealth` is created when a computation starts (it remembers the scheduler's address and the
workers it started with) and asked by every wait: :meth:`ClusterHealth.check` costs no round trip to learn that
the scheduler has gone (the client's own connection state) and one small round trip (the worker count) for the
rest. :meth:`ClusterHealth.explain` turns an error raised while the cluster failed into the clear one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from distributed import Future

from daskml_lab._compat import client_future_keys
from daskml_lab._runtime.client import current_client
from daskml_lab.exceptions import NoWorkersLeftError, SchedulerLostError

logger = logging.getLogger(__name__)

__all__ = [
    "CHECK_INTERVAL_S",
    "NO_WORKER_GRACE_S",
    "ClusterHealth",
    "explain_cluster_failures",
    "explain_error",
    "scheduler_lost",
    "stopped_error",
]

#: Seconds between two checks of the cluster while a wait goes on.
CHECK_INTERVAL_S = 0.5

#: Seconds a computation whose last worker was lost waits for one to join (a nanny restarts it within seconds).
NO_WORKER_GRACE_S = 10.0

#: States of a distributed client whose scheduler can be reached.
_CONNECTED = frozenset({"running", "newly-created"})


def scheduler_lost(client: Any) -> bool:
    """Whether ``client`` has lost the connection to its scheduler (or was closed); costs no round trip.

    The client notices at once when the scheduler's connection breaks and tries to reconnect (its status is
    then ``"connecting"``) until it gives up and closes.
    """
    return str(getattr(client, "status", "running")) not in _CONNECTED


class ClusterHealth:
    """The cluster a computation started on: its scheduler's address and workers, and checks against them.

    Parameters
    ----------
    client : distributed.Client
        The computation's client.
    n_workers_at_start : int or None, default=None
        How many workers the computation started with (``None``: unknown; :meth:`started` asks the scheduler).

    Attributes
    ----------
    address : str
        The scheduler's address, recorded at the start (it stays known once the scheduler is gone).
    """

    def __init__(self, client: Any, n_workers_at_start: int | None = None) -> None:
        self.client = client
        self.address = str(getattr(getattr(client, "scheduler", None), "address", None) or "?")
        self.n_workers_at_start = n_workers_at_start

    @classmethod
    def started(cls, client: Any) -> ClusterHealth:
        """The health of ``client``'s cluster, counting the workers it has now (one small round trip)."""
        health = cls(client)
        health.n_workers_at_start = health.n_workers()
        return health

    def n_workers(self) -> int:
        """How many workers the scheduler has now (one small round trip)."""
        info = self.client.scheduler_info(n_workers=0)
        count = info.get("n_workers")
        return len(info.get("workers", ())) if count is None else int(count)

    def lost_summary(self) -> str:
        """ " N of the M workers ... were lost." (with a leading space), or "" when unknown or none was lost."""
        if self.n_workers_at_start is None or scheduler_lost(self.client):
            return ""
        n_lost = self.n_workers_at_start - self.n_workers()
        if n_lost <= 0:
            return ""
        return f" {n_lost} of the {self.n_workers_at_start} workers the computation started with were lost."

    def check(self, *, doing: str, grace_s: float = 0.0) -> None:
        """Raise the clear error when the scheduler is gone or no worker is left; return otherwise.

        Parameters
        ----------
        doing : str
            What the computation was doing, for the message ("waiting for the per-worker loss and gradient").
        grace_s : float, default=0.0
            Seconds to wait for a worker to join when none is left (a nanny restarts one within seconds).

        Raises
        ------
        SchedulerLostError
            The client has lost its scheduler.
        NoWorkersLeftError
            The scheduler has no worker, and none joined within ``grace_s`` seconds.
        """
        if scheduler_lost(self.client):
            raise self.scheduler_lost_error(doing)
        if self.n_workers() > 0:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            time.sleep(min(0.25, max(deadline - time.monotonic(), 0.0)))
            if scheduler_lost(self.client):
                raise self.scheduler_lost_error(doing)
            if self.n_workers() > 0:
                return
        if scheduler_lost(self.client):  # the worker count came from the client's cache
            raise self.scheduler_lost_error(doing)
        raise self.no_workers_error(doing, grace_s)

    def explain(self, err: BaseException, *, doing: str) -> BaseException | None:
        """The clear error for ``err``, raised while the cluster failed; ``None`` when the cluster is healthy.

        Any error can surface from a wait when the scheduler or the last worker goes (a cancelled future, a
        closed connection, an internal error of a half-torn-down computation): the cluster's state, not the
        error's type, tells what happened. Never waits for a worker to join.
        """
        if isinstance(err, SchedulerLostError | NoWorkersLeftError):
            return None  # already clear
        if scheduler_lost(self.client) or "scheduler-connection-lost" in str(err):
            return self.scheduler_lost_error(doing)
        try:
            if self.n_workers() == 0:
                return self.no_workers_error(doing, 0.0)
        except OSError:
            return self.scheduler_lost_error(doing)
        return None

    @contextlib.contextmanager
    def translating(self, *, doing: str) -> Iterator[None]:
        """Context in which an error raised while the cluster failed becomes the clear one (:meth:`explain`)."""
        try:
            yield
        except Exception as err:
            explained = self.explain(err, doing=doing)
            if explained is None:
                raise
            raise explained from err

    def scheduler_lost_error(self, doing: str) -> SchedulerLostError:
        """The error for a scheduler that has gone while the computation was ``doing``."""
        situation = f"the scheduler at {self.address} is gone (the client lost its connection while {doing})"
        return SchedulerLostError(_message(situation, None, None), address=self.address, situation=situation)

    def no_workers_error(self, doing: str, grace_s: float) -> NoWorkersLeftError:
        """The error for a cluster left without workers while the computation was ``doing``."""
        joined = f" and none joined within {grace_s:g} s" if grace_s > 0 else ""
        lost = (
            "every worker was"
            if self.n_workers_at_start is None
            else f"all {self.n_workers_at_start} worker(s) the computation started with were"
        )
        situation = f"no worker is left in the cluster at {self.address}: {lost} lost while {doing}{joined}"
        return NoWorkersLeftError(
            _message(situation, None, None), n_lost=self.n_workers_at_start, situation=situation
        )


@contextlib.contextmanager
def explain_cluster_failures(client: Any, *, doing: str, checkpoint: Any = None) -> Iterator[None]:
    """Context of a whole fit: an error raised because the cluster failed becomes the clear one.

    A watchdog thread asks the scheduler every :data:`CHECK_INTERVAL_S` seconds for its worker count; once
    none has been left for :data:`NO_WORKER_GRACE_S` seconds, it cancels the futures created inside the block,
    so that even a plain ``dask.compute`` stops waiting. Whatever surfaces first when the scheduler or the last
    worker goes (a cancelled future, a closed connection, an internal error of a half-torn-down computation)
    is replaced by
    :class:`~daskml_lab.exceptions.SchedulerLostError` or :class:`~daskml_lab.exceptions.NoWorkersLeftError`,
    with how to resume (``checkpoint``); errors raised while the cluster is healthy pass unchanged.

    Parameters
    ----------
    client : distributed.Client or None
        The fit's client; ``None`` (a local scheduler) explains nothing.
    doing : str
        What the fit does, for the message ("fitting LogisticRegression").
    checkpoint : str, path-like or None, default=None
        The fit's checkpoint directory, named in the message.
    """
    if client is None:
        yield
        return
    health = ClusterHealth(client)
    watchdog = _Watchdog(health, grace_s=NO_WORKER_GRACE_S)
    try:
        yield
    except (SchedulerLostError, NoWorkersLeftError):
        raise  # already clear (and told where the fit stopped)
    except Exception as err:
        explained = health.explain(err, doing=doing)
        if explained is None:
            raise
        raise stopped_error(explained, stopped="", checkpoint=checkpoint) from err
    finally:
        watchdog.stop()


def explain_error(err: BaseException, *, doing: str) -> BaseException | None:
    """The clear error for ``err`` if the current client's cluster has failed (:meth:`ClusterHealth.explain`).

    ``err`` itself when it is already :class:`~daskml_lab.exceptions.SchedulerLostError` or
    :class:`~daskml_lab.exceptions.NoWorkersLeftError`; ``None`` without a distributed client or when the
    cluster is healthy (``err`` is then the computation's own).
    """
    if isinstance(err, SchedulerLostError | NoWorkersLeftError):
        return err
    client = current_client()
    return None if client is None else ClusterHealth(client).explain(err, doing=doing)


class _Watchdog:
    """A thread that ends the fit's computations once no worker has been left for ``grace_s`` seconds.

    The package's own waits ask the cluster themselves, but a plain ``dask.compute`` (sharding, class
    counts, a score) waits for ever for a worker to run its tasks. The watchdog cancels the futures created
    since it started, so that such a compute raises at once, and :func:`explain_cluster_failures` turns the
    cancellation into :class:`~daskml_lab.exceptions.NoWorkersLeftError`. (A lost scheduler needs nothing: the
    client cancels every future itself.)
    """

    def __init__(self, health: ClusterHealth, *, grace_s: float) -> None:
        self.health, self.grace_s = health, float(grace_s)
        self._before = client_future_keys(health.client)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daskml-cluster-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=1)  # a thread stuck on a dead scheduler ends by itself (daemon)

    def _run(self) -> None:
        client = self.health.client
        empty_since = None
        while not self._stopped.wait(CHECK_INTERVAL_S):
            if scheduler_lost(client):
                return
            try:
                n_workers = self.health.n_workers()
            except Exception:  # the client is closing: nothing to watch
                return
            if n_workers > 0:
                empty_since = None
                continue
            empty_since = time.monotonic() if empty_since is None else empty_since
            if time.monotonic() - empty_since >= self.grace_s and not self._stopped.is_set():
                keys = client_future_keys(client) - self._before
                logger.warning(
                    "no worker left for %g s: cancelling the fit's %d futures", self.grace_s, len(keys)
                )
                with contextlib.suppress(Exception):  # best effort: the fit's own waits also give up
                    client.cancel(
                        [Future(key, client) for key in keys], reason="no worker left in the cluster"
                    )
                return


def stopped_error(
    err: SchedulerLostError | NoWorkersLeftError, *, stopped: str, checkpoint: Any
) -> Exception:
    """``err`` told again with where the fit stopped and how to resume it.

    Parameters
    ----------
    err : SchedulerLostError or NoWorkersLeftError
        From :class:`ClusterHealth`.
    stopped : str
        Where the fit stopped ("the lbfgs solver stopped at iteration 7").
    checkpoint : str, path-like or None
        The fit's checkpoint directory: the same call with it resumes the fit.

    Returns
    -------
    SchedulerLostError or NoWorkersLeftError
        Of ``err``'s type and attributes; raise it ``from err``.
    """
    situation = getattr(err, "situation", "") or str(err)
    message = _message(situation, stopped, checkpoint)
    if isinstance(err, SchedulerLostError):
        return SchedulerLostError(message, address=err.address, situation=situation)
    return NoWorkersLeftError(message, n_lost=err.n_lost, situation=situation)


def _message(situation: str, stopped: str | None, checkpoint: Any) -> str:
    """The message: what happened, where the fit stopped, what to do."""
    head = situation[:1].upper() + situation[1:]
    if stopped:
        head += f"; {stopped}"
    if "scheduler" in situation.split(":")[0]:
        fix = "The workers' data went with it: start a scheduler and workers, connect a client to them and fit again"
    else:
        fix = (
            "Check the workers' logs (memory limits, crashes), start workers (under a nanny, the default of "
            "`dask worker`, a killed worker comes back) and fit again"
        )
    if checkpoint is None:
        resume = "; pass checkpoint=PATH to a fit to be able to resume it after such a failure."
    else:
        resume = (
            f": the same call with checkpoint={str(checkpoint)!r} resumes where its last checkpoint left off."
        )
    return f"{head}. {fix}{resume}"
