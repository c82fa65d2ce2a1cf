"""Small pre-fit passes that survive a paused worker: compute, watch heartbeats, recompute elsewhere.

The watched phases of a fit (shard fits, solver rounds) move work away from a worker that stops answering.
The small plain computes that run before them (a classifier's label count, ...) did not: a worker paused
(SIGSTOP) before the fit held one of their tasks, and the fit waited for it forever. :func:`watched_compute`
runs such a pass on the cluster, watches the scheduler's heartbeats of the workers, and when one has sent none
for ``unresponsive_s`` seconds (the ensembles' speculation rule, same ``dask.config`` key) computes a copy of
the pass from its lineage (:func:`~daskml_lab._compat.recomputable_copy`) on the responsive workers only;
the first result wins and nothing is fetched from the silent worker.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dask
from distributed import wait

from daskml_lab._compat import recomputable_copy, scheduler_workers
from daskml_lab._runtime.client import current_client

__all__ = ["watched_compute"]

logger = logging.getLogger(__name__)

#: ``dask.config`` key of the seconds without heartbeat after which a worker is unresponsive (shared with the
#: ensembles' speculation rule, whose default is the same).
UNRESPONSIVE_KEY = "daskml_lab.ensemble.speculation.unresponsive_s"

#: Seconds between two looks at the scheduler's heartbeats.
_POLL_S = 0.5


def watched_compute(collection: Any, *, tag: str = "rerun") -> Any:
    """Compute the one-output ``collection`` (a Delayed); recompute it elsewhere if a worker stops answering.

    Parameters
    ----------
    collection : dask.delayed.Delayed
        A small pass (its result is a few values).
    tag : str, default="rerun"
        Suffix of the copy's keys.

    Returns
    -------
    object
        The computed value, identical whichever copy won.
    """
    client = current_client()
    if client is None:
        return collection.compute()
    unresponsive_s = float(dask.config.get(UNRESPONSIVE_KEY, 10.0))
    future = client.compute(collection)
    futures = [future]
    heard: dict[str, tuple[Any, float]] = {}  # worker -> (last_seen, when it last changed)
    rerun = False
    try:
        while True:
            try:
                wait(futures, timeout=_POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:  # distributed's wait raises when nothing finished in time
                pass
            winners = [f for f in futures if f.done() and f.status == "finished"]
            if winners:
                return winners[0].result()
            if all(f.done() for f in futures):
                return futures[0].result()  # raises the error of the computation
            if rerun:
                continue
            now = time.monotonic()
            records = scheduler_workers(client)
            for worker, record in records.items():
                previous = heard.get(worker)
                if previous is None or previous[0] != record.get("last_seen"):
                    heard[worker] = (record.get("last_seen"), now)
            silent = {w for w, (_, changed) in heard.items() if now - changed > unresponsive_s}
            responsive = sorted(set(records) - silent)
            if silent and responsive:
                logger.warning(
                    "worker(s) %s sent no heartbeat for %.0f s; computing the pass again on %s",
                    sorted(silent),
                    unresponsive_s,
                    responsive,
                )
                copy = recomputable_copy(collection, f"{tag}-{int(now * 1000)}")
                futures.append(client.compute(copy, workers=responsive, allow_other_workers=False))
                rerun = True
    finally:
        for f in futures:
            if not f.done():
                f.cancel()
