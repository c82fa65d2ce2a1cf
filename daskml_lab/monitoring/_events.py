"""Training events: what a fit tells the scheduler (and the terminal) while it runs.

Every fit runs inside :func:`~daskml_lab.monitoring.fit_span`, which opens a *scope*. A solver's
``History`` of the solvers and a shard ensemble's ``fit`` start a :class:`TrainingRun` in the
innermost scope; the run ends (``finished`` or ``failed``) when that scope closes. A run

- publishes its messages to the scheduler's event log under the topic :data:`TOPIC`, through distributed's own
  mechanism (``Scheduler.log_event``, which hands every event to the scheduler plugins), when a distributed
  client is current. Publishing never blocks the fit: messages are queued and sent from the client's event
  loop, at most one batch per ``interval`` while the fit produces them faster than that. Without a client
  nothing is sent;
- draws a progress bar in the terminal or notebook, when progress bars are on (see
  :func:`~daskml_lab.monitoring.progress`).

Shard fits report ``started`` / ``finished`` from the worker that runs them (``Worker.log_event``, batched and
non-blocking). The :class:`~daskml_lab.monitoring.TrainingMonitor` scheduler plugin collects all of it for
the dashboard page.

Message format (msgpack-serialisable): each event is ``{"v": 1, "messages": [message, ...]}`` and each
message a dict with ``kind`` in ``run-start``, ``iteration``, ``run-end``, ``shard``, ``shards``, ``search``,
``store`` (the parameter shards of a partitioned model) and the ``run`` id it belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import numbers
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import dask
from distributed import get_worker

from daskml_lab._runtime.client import current_client
from daskml_lab.monitoring._progress import IterationBar, SearchBar, ShardBar, progress_enabled

__all__ = [
    "EVENT_VERSION",
    "TOPIC",
    "TrainingRun",
    "fit_scope",
    "plain",
    "publish_shard_event",
    "publishing_client",
    "start_run",
]

logger = logging.getLogger(__name__)

#: Topic of the scheduler's event log that carries the training events.
TOPIC = "daskml-training"
#: Called with the client when a run that publishes starts (the dashboard module installs its monitor here;
#: a hook, so that this module does not import the dashboard's).
RUN_START_HOOKS: list[Any] = []
#: Version of the message format.
EVENT_VERSION = 1
_PUBLISH_INTERVAL_S = 0.1
_FLUSH_TIMEOUT_S = 5.0


@dataclass
class _Scope:
    names: tuple[str, ...]
    runs: list[TrainingRun] = field(default_factory=list)


#: The fit scopes open in this thread or task, innermost last.
_SCOPES: ContextVar[tuple[_Scope, ...]] = ContextVar("daskml_lab_fit_scopes", default=())


@contextlib.contextmanager
def fit_scope(*names: str) -> Iterator[None]:
    """Open a fit scope: the runs started inside end when it closes (``failed`` if it raises).

    Parameters
    ----------
    *names : str
        What runs in the scope (e.g. ``"LogisticRegression"``, then ``"lbfgs"`` for a nested scope).
    """
    scope = _Scope(tuple(str(name) for name in names))
    token = _SCOPES.set((*_SCOPES.get(), scope))
    status = "failed"
    try:
        yield
        status = "finished"
    finally:
        _SCOPES.reset(token)
        for run in scope.runs:
            run.end(status)


def _scope_label() -> str:
    names = [name for scope in _SCOPES.get() for name in scope.names]
    return " / ".join(names) if names else "fit"


def publishing_client() -> Any | None:
    """The current distributed client when training events should be published to it, else ``None``.

    Publishing is on by default; ``dask.config.set({"daskml_lab.monitoring.publish": False})`` turns it off.
    """
    if not dask.config.get("daskml_lab.monitoring.publish", True):
        return None
    client = current_client()
    if client is None or getattr(client, "status", None) != "running":
        return None
    return client


def plain(value: Any) -> Any:
    """``value`` as a msgpack/JSON-friendly Python object (numpy scalars to numbers, NaN and inf to None).

    Examples
    --------
    >>> import numpy as np
    >>> plain({"a": np.float32(0.5), "b": [np.int64(2), float("nan")]})
    {'a': 0.5, 'b': [2, None]}
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        if not isinstance(items, list | tuple):
            return plain(items)
        return [plain(item) for item in items]
    return str(value)


class _Publisher:
    """Sends queued messages to the scheduler's event log from the client's event loop, in order."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._running = False
        self._hurry = False
        self._idle = threading.Event()
        self._idle.set()

    def publish(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(message)
            if self._running:
                return
            self._running = True
            self._idle.clear()
        try:
            self._client.loop.add_callback(self._drain)
        except Exception:  # the client's loop is gone: drop the messages, never fail the fit
            logger.debug("Could not schedule the training events for publication.", exc_info=True)
            self._stop()

    def _stop(self) -> None:
        with self._lock:
            self._pending.clear()
            self._running = False
            self._idle.set()

    async def _drain(self) -> None:
        from daskml_lab._compat import log_event_async

        try:
            while True:
                with self._lock:
                    batch, self._pending = self._pending, []
                    if not batch:
                        self._running = False
                        self._idle.set()
                        return
                try:
                    await log_event_async(self._client, TOPIC, {"v": EVENT_VERSION, "messages": batch})
                except Exception:  # the scheduler went away or refused: monitoring is best effort
                    logger.debug("Could not publish %d training event(s).", len(batch), exc_info=True)
                # Fits that report faster than the interval are batched: wait (unless a flush is asked for).
                waited = 0.0
                while self._pending and not self._hurry and waited < _PUBLISH_INTERVAL_S:
                    await asyncio.sleep(0.01)
                    waited += 0.01
        except BaseException:
            self._stop()
            raise

    def flush(self, timeout_s: float = _FLUSH_TIMEOUT_S) -> bool:
        """Wait until every queued message has been sent (not from the client's own event loop).

        Returns at once when the client has lost its scheduler: the messages cannot be sent, and a fit that
        failed because the scheduler is gone must report it without waiting ``timeout_s``.
        """
        self._hurry = True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = getattr(self._client.loop, "asyncio_loop", None)
        if running is not None and running is loop:
            return self._idle.is_set()
        deadline = time.monotonic() + timeout_s
        while not self._idle.wait(min(0.05, timeout_s)):
            if getattr(self._client, "status", "running") != "running" or time.monotonic() >= deadline:
                return self._idle.is_set()
        return True


class TrainingRun:
    """One training run (a solver's iterations, a shard ensemble's shard fits, a search's fits) as the monitor
    sees it.

    Create it with :func:`start_run`. Methods never raise because of monitoring problems.

    Parameters
    ----------
    kind : {"solver", "ensemble", "search"}
        What is trained.
    label : str
        Title of the run (by default the names of the enclosing fit spans).
    run_id : str, default=None
        Unique id; a new one when ``None``.
    n_shards : int, default=None
        Number of shards (ensembles).
    info : dict, default=None
        Extra small facts shown with the run (estimator, fusion, ...).
    client : distributed.Client, default=None
        Where to publish; ``None`` publishes nothing.
    n_fits : int, default=None
        Number of (candidate, fold) fits (searches).
    """

    def __init__(
        self,
        kind: str,
        label: str,
        *,
        run_id: str | None = None,
        n_shards: int | None = None,
        info: Mapping[str, Any] | None = None,
        client: Any = None,
        n_fits: int | None = None,
    ) -> None:
        self.id = run_id or uuid.uuid4().hex
        self.kind = kind
        self.label = label
        self.n_shards = n_shards
        self.status = "running"
        self._client = client
        self._publisher = _Publisher(client) if client is not None else None
        self._bar: IterationBar | ShardBar | SearchBar | None = None
        self._subscribed = False
        if progress_enabled():
            if kind == "ensemble":
                self._bar = ShardBar(label, n_shards or 0)
                self._subscribe_shard_events()
            elif kind == "search":
                self._bar = SearchBar(label, n_fits or 0)
            else:
                self._bar = IterationBar(label)
        self._send(
            {
                "kind": "run-start",
                "run_kind": kind,
                "label": label,
                "n_shards": n_shards,
                "info": plain(dict(info or {})),
                "time": time.time(),
            }
        )

    @property
    def reporting_id(self) -> str | None:
        """The id that tasks on the workers report to, ``None`` when this run publishes nothing."""
        return self.id if self._publisher is not None else None

    def _send(self, message: dict[str, Any]) -> None:
        if self._publisher is None:
            return
        try:
            self._publisher.publish({"run": self.id, **message})
        except Exception:  # pragma: no cover - defensive: monitoring never breaks a fit
            logger.debug("Could not queue a training event.", exc_info=True)

    def iteration(self, record: Mapping[str, Any]) -> None:
        """Report one solver iteration (a record of the solver's history)."""
        self._send({"kind": "iteration", "record": plain(dict(record))})
        if isinstance(self._bar, IterationBar):
            self._bar.update(record)

    def search(self, state: Mapping[str, Any]) -> None:
        """Report a search's progress: fits and candidates done, candidates running, the best score so far."""
        self._send({"kind": "search", "state": plain(dict(state))})
        if isinstance(self._bar, SearchBar):
            self._bar.update(state)

    def shards(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Report final per-shard facts (rows, validation score, weight) once the ensemble is fused."""
        self._send({"kind": "shards", "rows": [plain(dict(row)) for row in rows]})
        if self.status != "running" and self._publisher is not None:
            self._publisher.flush()

    def store(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Report the parameter shards of a partitioned model (keys held, keys and bytes moved, staleness).

        Sent after each iteration of a solver over a partitioned store; each row has the ``shard`` index and
        that shard's counters so far.
        """
        self._send({"kind": "store", "rows": [plain(dict(row)) for row in rows]})

    def end(self, status: str = "finished") -> None:
        """End the run: publish its end, wait for the queued events to reach the scheduler, close the bar."""
        if self.status != "running":
            return
        self.status = status
        self._send({"kind": "run-end", "status": status, "time": time.time()})
        if self._subscribed:
            with contextlib.suppress(Exception):
                self._client.unsubscribe_topic(TOPIC)
        if self._bar is not None:
            self._bar.close(status)
        if self._publisher is not None and not self._publisher.flush():
            logger.debug("Training events of run %s were still being sent after the fit.", self.id)

    # Shard progress bar: the workers' events come back to this client through a topic subscription.
    def _subscribe_shard_events(self) -> None:
        if self._client is None:
            return
        try:
            self._client.subscribe_topic(TOPIC, self._on_event)
            self._subscribed = True
        except Exception:
            logger.debug("Could not subscribe to the shard events.", exc_info=True)

    def _on_event(self, event: Any) -> None:
        _, payload = event
        if not isinstance(payload, Mapping) or not isinstance(self._bar, ShardBar):
            return
        for message in payload.get("messages", ()):
            if message.get("run") == self.id and message.get("kind") == "shard":
                self._bar.update(int(message["shard"]), str(message["status"]))


def start_run(
    kind: str,
    *,
    label: str | None = None,
    run_id: str | None = None,
    n_shards: int | None = None,
    info: Mapping[str, Any] | None = None,
    n_fits: int | None = None,
) -> TrainingRun:
    """Start a :class:`TrainingRun` in the innermost fit scope (it ends with the scope).

    Outside any scope the run is returned unattached: end it with :meth:`TrainingRun.end`.

    Parameters
    ----------
    kind : {"solver", "ensemble", "search"}
        What is trained.
    label : str, default=None
        Title; by default the names of the enclosing fit spans (``"LogisticRegression / lbfgs"``).
    run_id : str, default=None
        Unique id; a new one when ``None``.
    n_shards : int, default=None
        Number of shards (ensembles).
    info : dict, default=None
        Extra small facts shown with the run.
    n_fits : int, default=None
        Number of (candidate, fold) fits (searches).

    Returns
    -------
    TrainingRun
    """
    client = publishing_client()
    if client is not None:
        for hook in RUN_START_HOOKS:
            hook(client)
    run = TrainingRun(
        kind,
        label or _scope_label(),
        run_id=run_id,
        n_shards=n_shards,
        info=info,
        client=client,
        n_fits=n_fits,
    )
    scopes = _SCOPES.get()
    if scopes:
        scopes[-1].runs.append(run)
    return run


def publish_shard_event(run_id: str | None, shard: int, status: str, **facts: Any) -> None:
    """From a shard-fit task on a worker: report that shard ``shard`` is ``started``/``finished``/``failed``.

    Does nothing outside a distributed worker, without a ``run_id``, or when publishing is off.

    Parameters
    ----------
    run_id : str or None
        The ensemble run the shard belongs to.
    shard : int
        Shard index.
    status : str
        New status.
    **facts
        Small numbers (``n_rows``, ``n_train``, ``fit_time_s``, ...).
    """
    if run_id is None or not dask.config.get("daskml_lab.monitoring.publish", True):
        return
    try:
        worker = get_worker()
    except ValueError:  # not in a worker's task
        return
    message = {"kind": "shard", "run": run_id, "shard": int(shard), "status": status, "time": time.time()}
    message.update(plain(facts))
    try:
        worker.log_event(TOPIC, {"v": EVENT_VERSION, "messages": [message]})
    except Exception:  # pragma: no cover - defensive: monitoring never breaks a fit
        logger.debug("Could not publish a shard event.", exc_info=True)
