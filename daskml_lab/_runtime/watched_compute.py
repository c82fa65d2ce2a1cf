"""Small passes before a fit that survive a paused worker: compute, watch heartbeats, recompute elsewhere.

The watched phases of a fit (shard fits, solver rounds) move work away from a worker that stops answering.
The small plain computations that run before them -- a classifier's label count, the row lengths of blocks
or partitions, the label or key counts of a sharding plan, a GLM's target checks -- did not: dask gave one
of their tasks to a worker paused (SIGSTOP) before the fit, and the fit waited for it for ever (the worker is
still in the cluster, so no lost-worker rule fires).

:func:`watched_compute` is the one way to run such a pass: it computes the collections on the cluster and
watches the scheduler's heartbeats of the workers (:class:`~daskml_lab._runtime.heartbeats.Heartbeats`).
When a worker has sent none for ``unresponsive_s`` seconds (dask config
``daskml_lab.solvers.straggler.unresponsive_s``, the solvers' rule for a worker holding up work before any of
it is done; default 10), a copy of the pass under new keys
(:func:`~daskml_lab._compat.recomputable_copy`) is computed from its lineage on the responsive workers only.
The first result wins (both are the same pure computation), and nothing is ever fetched from the silent
worker. Data the caller persisted or scattered (futures) have no lineage: when such data exist only on the
silent worker, :class:`~daskml_lab.exceptions.UnresponsiveWorkerError` names the worker at once instead of
waiting for it. A lost scheduler or a cluster left without workers give the clear errors of
:class:`~daskml_lab._runtime.cluster_health.ClusterHealth`.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

import dask
from dask.base import is_dask_collection
from dask.delayed import Delayed
from dask.graph_manipulation import clone
from distributed import CancelledError, Future, futures_of, wait

from daskml_lab._compat import held_keys, recomputable_copy
from daskml_lab._runtime.client import cluster_timeout_s, current_client
from daskml_lab._runtime.cluster_health import NO_WORKER_GRACE_S, ClusterHealth
from daskml_lab._runtime.heartbeats import Heartbeats, known_silent
from daskml_lab._runtime.waiting import forget_traceback, wait_briefly
from daskml_lab._runtime.watch import WorkerWatch
from daskml_lab.exceptions import UnresponsiveWorkerError

__all__ = ["UNRESPONSIVE_KEY", "watched_compute", "watched_persist"]

logger = logging.getLogger(__name__)

#: ``dask.config`` key of the seconds without a heartbeat after which a worker holding up a pass is silent:
#: the solvers' rule for work of which nothing is done yet (the one key; its default is theirs).
UNRESPONSIVE_KEY = "daskml_lab.solvers.straggler.unresponsive_s"

#: Its default, when the key is not set.
_DEFAULT_UNRESPONSIVE_S = 10.0

#: Seconds between two looks at the pass and the workers' heartbeats.
_POLL_S = 0.25


def _pack(*values: Any) -> tuple[Any, ...]:
    return values


def _delayed_leaves(value: Any) -> Any:
    """``value`` with every dask collection inside lists, tuples and dicts wrapped in its own ``Delayed``.

    ``dask.delayed`` lowers a dask DataFrame expression only when it is an argument itself; one nested in a
    container is asked for its keys unlowered and fails (``NotImplementedError`` from its divisions).
    """
    if isinstance(value, dict):
        return {key: _delayed_leaves(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_delayed_leaves(item) for item in value)
    if is_dask_collection(value) and not isinstance(value, Delayed):
        return dask.delayed(value)
    return value


def watched_compute(*collections: Any, what: str, unresponsive_s: float | None = None) -> tuple[Any, ...]:
    """``dask.compute(*collections)`` that computes the pass again elsewhere when a worker stops answering.

    Parameters
    ----------
    *collections : dask collections (or nested lists and dicts of them)
        A small pass: its results are model-sized (counts, lengths, a few statistics).
    what : str
        What the pass computes, for messages ("the class counts").
    unresponsive_s : float or None, default=None
        Seconds without a heartbeat after which a worker is silent; ``None`` reads :data:`UNRESPONSIVE_KEY`.

    Returns
    -------
    tuple
        The computed values, as ``dask.compute`` returns them; the same whichever copy won.

    Raises
    ------
    UnresponsiveWorkerError
        When data the pass needs were persisted by the caller and exist only on a silent worker.
    SchedulerLostError, NoWorkersLeftError
        When the scheduler is gone, or no worker is left (after a short grace).
    """
    unresponsive_s = _unresponsive_s(unresponsive_s)
    client = current_client()
    if client is None or not collections:
        return dask.compute(*collections)  # a local scheduler has no worker to pause
    # one output, so that its whole lineage can be copied under new keys; a key of its own for every call
    # (two passes whose graphs tokenize alike, such as two scores, must not share a key: the scheduler
    # would keep the first one's task and the second would wait for ever)
    packed = dask.delayed(_pack, pure=True)(
        *(_delayed_leaves(c) for c in collections), dask_key_name=f"daskml-watched-{uuid.uuid4().hex}"
    )
    health = ClusterHealth(client)
    watch = WorkerWatch(client, interval_s=_POLL_S, health=health)
    heartbeats = Heartbeats(recall=True)
    set_aside = _set_aside_known(client, watch, heartbeats, [packed], what, unresponsive_s)
    if set_aside:
        # keys of its own for the whole lineage: a task of it still known to the scheduler (given to the silent
        # worker by an earlier pass) would keep its old worker and ignore the restriction below
        packed = recomputable_copy(packed, f"watched-{uuid.uuid4().hex[:12]}")
    futures = [client.compute(packed, **_placement(watch, set_aside))]
    try:
        while True:
            try:
                wait(futures, timeout=_POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError as err:  # distributed's wait raises when nothing finished in time
                forget_traceback(err)
            except CancelledError as err:  # the scheduler gone, or no worker left: the clear error
                explained = health.explain(err, doing=f"computing {what}")
                if explained is None:
                    raise
                raise explained from err
            finished = [f for f in futures if f.status == "finished"]
            if finished:
                return tuple(finished[0].result(timeout=cluster_timeout_s()))
            failed = [f for f in futures if f.status == "error"]
            if failed:
                failed[0].result()  # raises the computation's own error (each copy would raise it)
            found = _newly_silent(watch, heartbeats, set_aside, unresponsive_s, doing=f"computing {what}")
            if found is None:
                continue
            silent, responsive = found
            _refuse_data_only_on(client, packed, silent, what, unresponsive_s)
            logger.warning(
                "worker(s) %s sent no heartbeat for %g s while computing %s: computing it again from its "
                "lineage on %s",
                sorted(silent),
                unresponsive_s,
                what,
                responsive,
            )
            copy = recomputable_copy(packed, f"watched-{uuid.uuid4().hex[:12]}")  # keys no earlier copy had
            futures.append(client.compute(copy, workers=responsive, allow_other_workers=False))
    finally:
        client.cancel([f for f in futures if not f.done()])


def watched_persist(*collections: Any, what: str, unresponsive_s: float | None = None) -> tuple[Any, ...]:
    """``dask.persist(*collections)`` that persists the data again elsewhere when a worker stops answering.

    For an estimator that reads its rows many times and persists them itself (``HuberRegressor``): the
    persisted copy has no lineage, so a worker paused while computing its share would hold up every later
    pass. Here the persist is waited for under the rule of :func:`watched_compute`; when a worker is silent
    before every block is in memory, the collections are copied from their lineage
    (:func:`dask.graph_manipulation.clone`) and persisted on the responsive workers only, and the first copy
    whose every block is in memory is returned (the other is released).

    Parameters
    ----------
    *collections : dask collections
        Data-sized collections with a lineage (not persisted by the caller).
    what : str
        What they are, for messages ("the rows").
    unresponsive_s : float or None, default=None
        As for :func:`watched_compute`.

    Returns
    -------
    tuple
        The persisted collections, as ``dask.persist`` returns them.
    """
    unresponsive_s = _unresponsive_s(unresponsive_s)
    client = current_client()
    if client is None or not collections:
        return dask.persist(*collections)
    health = ClusterHealth(client)
    watch = WorkerWatch(client, interval_s=_POLL_S, health=health)
    heartbeats = Heartbeats(recall=True)
    set_aside = _set_aside_known(client, watch, heartbeats, collections, what, unresponsive_s)
    first = collections
    if set_aside:
        with contextlib.suppress(ValueError):  # dask cannot copy every graph: the originals, restricted
            # keys of their own (see watched_compute); not optimised, as for the copies below
            copies = clone(*collections, seed=uuid.uuid4().hex)
            first = copies if isinstance(copies, tuple) else (copies,)
    placement = _placement(watch, set_aside)
    if first is not collections:
        placement["optimize_graph"] = False
    attempts = [client.persist(list(first), **placement)]
    try:
        while True:
            pending = [f for attempt in attempts for c in attempt for f in futures_of(c) if not f.done()]
            wait_briefly(pending[:1], _POLL_S)
            for index, attempt in enumerate(attempts):
                futures = [f for c in attempt for f in futures_of(c)]
                if all(f.status == "finished" for f in futures):
                    return tuple(attempts.pop(index))  # the others are released below
                for future in futures:
                    if future.status in ("error", "cancelled"):
                        with health.translating(doing=f"persisting {what}"):
                            future.result()  # the computation's own error, or the clear cluster one
            found = _newly_silent(watch, heartbeats, set_aside, unresponsive_s, doing=f"persisting {what}")
            if found is None:
                continue
            silent, responsive = found
            for collection in collections:
                _refuse_data_only_on(client, collection, silent, what, unresponsive_s)
            try:
                copies = clone(*collections, seed=uuid.uuid4().hex)
            except ValueError as err:  # dask cannot copy every graph (fused tasks with several outputs)
                logger.warning(
                    "worker(s) %s are silent, but %s cannot be copied (%s): waiting", silent, what, err
                )
                continue
            logger.warning(
                "worker(s) %s sent no heartbeat for %g s while persisting %s: persisting them again from their "
                "lineage on %s",
                sorted(silent),
                unresponsive_s,
                what,
                responsive,
            )
            copies = copies if isinstance(copies, tuple) else (copies,)
            attempts.append(
                # not optimised: dask's fusion of some cloned graphs fails (solvers._stragglers)
                client.persist(
                    list(copies), workers=responsive, allow_other_workers=False, optimize_graph=False
                )
            )
    finally:
        client.cancel([f for attempt in attempts for c in attempt for f in futures_of(c) if not f.done()])
        for attempt in attempts:
            for future in (f for c in attempt for f in futures_of(c)):
                future.release()


def _newly_silent(
    watch: WorkerWatch, heartbeats: Heartbeats, set_aside: set[str], seconds: float, *, doing: str
) -> tuple[set[str], list[str]] | None:
    """Workers silent for ``seconds`` not yet in ``set_aside`` (added to it), and the responsive ones; or None.

    ``None`` when there is none, or no responsive worker to move the work to. A cluster left without workers
    raises the clear error (after a short grace).
    """
    records = watch.records()
    if not records:
        watch.health.check(doing=doing, grace_s=NO_WORKER_GRACE_S)
        return None
    heartbeats.heard(records)
    silent = set(heartbeats.silent(seconds)) & set(records)
    responsive = sorted(set(records) - silent)
    if not silent - set_aside or not responsive:
        return None
    set_aside |= silent
    return silent, responsive


def _set_aside_known(
    client: Any, watch: Any, heartbeats: Heartbeats, collections: Any, what: str, seconds: float
) -> set[str]:
    """The workers an earlier watch found silent and still silent: the pass is not given to them at all."""
    records = watch.records()
    heartbeats.heard(records)
    known = known_silent(records)
    if not known or not set(records) - known:
        return set()
    for collection in collections:
        _refuse_data_only_on(client, collection, known, what, seconds)
    logger.warning(
        "worker(s) %s, found silent earlier, still send no heartbeat: %s goes to the others only",
        sorted(known),
        what,
    )
    return known


def _placement(watch: Any, set_aside: set[str]) -> dict[str, Any]:
    if not set_aside:
        return {}
    return {"workers": sorted(watch.live() - set_aside), "allow_other_workers": False}


def _unresponsive_s(value: float | None) -> float:
    if value is None:
        value = float(dask.config.get(UNRESPONSIVE_KEY, _DEFAULT_UNRESPONSIVE_S))
    if not value > 0:
        msg = f"dask.config {UNRESPONSIVE_KEY} must be > 0 seconds, got {value!r}."
        raise ValueError(msg)
    return value


def _refuse_data_only_on(client: Any, packed: Any, silent: set[str], what: str, seconds: float) -> None:
    """Raise :class:`UnresponsiveWorkerError` when data the pass needs (no lineage) are held only by ``silent``."""
    keys = held_keys(packed)
    if not keys:
        return
    holders = {
        key: set(workers) for key, workers in client.who_has([Future(key, client) for key in keys]).items()
    }
    if not all(holders.values()):  # some not computed yet: the worker they were given to will hold them
        for worker, processing in client.processing(workers=sorted(silent)).items():
            for key in set(processing) & holders.keys():
                holders[key] = holders[key] or {worker}
    stuck = sorted({w for workers in holders.values() if workers and workers <= silent for w in workers})
    if not stuck:
        return
    situation = (
        f"worker(s) {stuck} sent no heartbeat for {seconds:g} s while computing {what}, and "
        f"they alone hold data that were persisted or scattered before the fit (futures, which have no lineage "
        f"to compute them again from)"
    )
    msg = (
        f"{situation}. Resume the worker (SIGCONT if it was paused) or restart it and persist the data again, "
        "or pass the data lazily (not persisted) so that they can be rebuilt on the other workers. The worker "
        "was left in the cluster: removing it would destroy the persisted data."
    )
    raise UnresponsiveWorkerError(msg, workers=stuck, situation=situation)
