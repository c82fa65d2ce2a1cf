"""The live training page of the Dask dashboard: a scheduler plugin that collects the training events.

:class:`TrainingMonitor` is a :class:`distributed.diagnostics.plugin.SchedulerPlugin`. The scheduler hands it
every event logged under :data:`~daskml_lab.monitoring.TOPIC` (its ``log_event`` hook); it keeps the recent
runs and serves them from the scheduler's own dashboard server:

- ``/daskml-training``: the full page, with the dashboard's navigation bar (also linked from it);
- ``/individual-daskml-training``: the same plots alone, listed in ``/individual-plots.json`` so that the
  JupyterLab Dask extension offers it;
- ``/json/daskml-training.json``: the data as JSON (``?run=<id>`` for one run).

The pages are Bokeh documents (:mod:`daskml_lab.monitoring._page`) updated twice a second while the fit
runs: objective and gradient norm per iteration for the solvers (staleness for asynchronous SGD; bytes moved
and the parameter shards' counters for a partitioned model), per-shard status, rows and validation scores for
the shard ensembles.

Any client of the scheduler, and any code on a worker, can log training events, so their contents are
untrusted: the monitor keeps only bounded values (text cut to :data:`MAX_TEXT` characters, at most
:data:`MAX_ITEMS` entries per dict or list, shard indices below :data:`MAX_SHARDS`), the page's only HTML
(the run summary) escapes every string it shows, the other widgets render their strings as text, and the JSON
escapes ``<``, ``>`` and ``&`` so that it cannot close a ``<script>`` element it is embedded in.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import dask
from distributed import default_client
from distributed.diagnostics.plugin import SchedulerPlugin

from daskml_lab.monitoring._events import EVENT_VERSION, RUN_START_HOOKS, TOPIC
from daskml_lab.monitoring._page import RUN_KINDS, STORE_COLUMNS, training_document
from daskml_lab.monitoring._task_stream import TASK_STREAM_TOPIC

__all__ = ["INDIVIDUAL_ROUTE", "JSON_ROUTE", "PAGE_ROUTE", "TrainingMonitor", "install_monitor"]

logger = logging.getLogger(__name__)

#: Path of the full page below the dashboard prefix.
PAGE_ROUTE = "daskml-training"
#: Path of the plots-only page (an "individual plot" of the dashboard).
INDIVIDUAL_ROUTE = "individual-daskml-training"
#: Path of the JSON data.
JSON_ROUTE = "json/daskml-training.json"

#: Longest text kept from a training event (a run's label and status, info, a shard's facts); longer is cut.
MAX_TEXT = 200
#: Most entries kept from a dict or a list of a training event (run info, an iteration record, shard facts).
MAX_ITEMS = 32
#: Shard indices accepted are below this (an ensemble has at most one shard per row block).
MAX_SHARDS = 10_000
#: What a search reports (anything else in its messages is dropped).
_SEARCH_KEYS = (
    "n_candidates",
    "n_splits",
    "n_fits",
    "fits_done",
    "candidates_done",
    "candidates_running",
    "best_score",
    "best_params",
    "best_candidate",
    "round",
    "n_rounds",
)


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    """``value`` as text of at most ``limit`` characters (a longer one ends with an ellipsis)."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _bounded(value: Any, depth: int = 0) -> Any:
    """An event's value as the monitor keeps it: JSON-ready and bounded in size, whoever sent it.

    Numbers stay numbers (NaN and infinities, which JSON lacks, become ``None``), text is cut to
    :data:`MAX_TEXT` characters, dicts and lists to :data:`MAX_ITEMS` entries and two levels of nesting
    (deeper values become text).
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth < 2 and isinstance(value, Mapping):
        items = itertools.islice(value.items(), MAX_ITEMS)
        return {_text(key, 64): _bounded(item, depth + 1) for key, item in items}
    if depth < 2 and isinstance(value, list | tuple):
        return [_bounded(item, depth + 1) for item in value[:MAX_ITEMS]]
    return _text(value)


def _time(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _shard_index(value: Any) -> int:
    shard = int(value)
    if not 0 <= shard < MAX_SHARDS:
        msg = f"shard index {shard} outside [0, {MAX_SHARDS})"
        raise ValueError(msg)
    return shard


class _Run:
    """What the monitor knows about one run (every value bounded, see :func:`_bounded`)."""

    def __init__(self, run_id: str, max_records: int) -> None:
        self.id = run_id
        self.kind = "solver"
        self.label = run_id[:8]
        self.status = "running"
        self.info: dict[str, Any] = {}
        self.started: float | None = None
        self.ended: float | None = None
        self.n_shards: int | None = None
        self.records: list[dict[str, Any]] = []
        self.truncated = False
        self.shards: dict[int, dict[str, Any]] = {}
        self.search: dict[str, Any] = {}
        self.store: dict[int, dict[str, Any]] = {}
        self.version = 0
        self._max_records = max_records

    def apply(self, message: dict[str, Any], worker: str | None) -> None:
        kind = message.get("kind")
        if kind == "run-start":
            run_kind = message.get("run_kind", self.kind)
            self.kind = run_kind if run_kind in RUN_KINDS else self.kind
            self.label = _text(message.get("label", self.label))
            info = message.get("info")
            self.info = _bounded(info) if isinstance(info, Mapping) else {}
            self.started = _time(message.get("time", self.started))
            n_shards = message.get("n_shards")
            self.n_shards = (
                int(n_shards) if isinstance(n_shards, int) and 0 <= n_shards <= MAX_SHARDS else None
            )
            for shard in range(self.n_shards or 0):
                self.shards.setdefault(shard, {"shard": shard, "status": "pending"})
        elif kind == "iteration":
            if len(self.records) < self._max_records:
                record = message.get("record")
                self.records.append(_bounded(record) if isinstance(record, Mapping) else {})
            else:
                self.truncated = True
        elif kind == "run-end":
            self.status = _text(message.get("status", "finished"))
            self.ended = _time(message.get("time"))
        elif kind == "shard":
            self.kind = "ensemble"
            row = self._shard_row(_shard_index(message["shard"]), "pending")
            # A late "started" never overwrites a final status (worker events may overtake each other).
            if not (message.get("status") == "started" and row.get("status") in ("finished", "failed")):
                row["status"] = _bounded(message.get("status"))
            if worker is not None:
                row["worker"] = _text(worker)
            facts = {
                k: v
                for k, v in message.items()
                if k not in ("kind", "run", "shard", "status", "time", "worker")
            }
            self._update_row(row, facts)
        elif kind == "search":
            self.kind = "search"
            state = message.get("state")
            if isinstance(state, Mapping):
                self.search = {key: _bounded(state[key], depth=1) for key in _SEARCH_KEYS if key in state}
        elif kind == "store":  # the parameter shards of a partitioned model: the run stays a solver's
            for values in itertools.islice(message.get("rows") or (), MAX_SHARDS):
                shard = _shard_index(values["shard"])
                self.store[shard] = {
                    name: _bounded(values.get(name), depth=1) for name in STORE_COLUMNS if name in values
                }
        elif kind == "shards":
            self.kind = "ensemble"
            for values in itertools.islice(message.get("rows") or (), MAX_SHARDS):
                row = self._shard_row(_shard_index(values["shard"]), "finished")
                self._update_row(
                    row, {key: value for key, value in values.items() if key not in ("shard", "status")}
                )
        self.version += 1

    def _shard_row(self, shard: int, status: str) -> dict[str, Any]:
        return self.shards.setdefault(shard, {"shard": shard, "status": status})

    @staticmethod
    def _update_row(row: dict[str, Any], facts: Mapping[str, Any]) -> None:
        """Add a shard's facts to its row: bounded values, and at most :data:`MAX_ITEMS` keys in the row."""
        for key, value in facts.items():
            name = _text(key, 64)
            if name in row or len(row) < MAX_ITEMS:
                row[name] = _bounded(value, depth=1)

    def to_dict(self, *, records: bool = True) -> dict[str, Any]:
        last = self.records[-1] if self.records else {}
        out = {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "status": self.status,
            "info": self.info,
            "started": self.started,
            "ended": self.ended,
            "n_iter": len(self.records),
            "objective": last.get("objective"),
            "grad_norm": last.get("grad_norm"),
            "n_shards": self.n_shards,
            "truncated": self.truncated,
            "shards": [self.shards[shard] for shard in sorted(self.shards)],
            "search": self.search,
            "store": [self.store[shard] for shard in sorted(self.store)],
        }
        if records:
            out["records"] = self.records
        return out


class TrainingMonitor(SchedulerPlugin):
    """Scheduler plugin behind the dashboard's training page: collects daskml_lab's training events.

    Install it with :func:`install_monitor` (``daskml_lab.connect`` does so for the local clusters it starts),
    or on a ``dask scheduler`` with ``--preload daskml_lab.monitoring.preload``.

    Parameters
    ----------
    max_runs : int, default=50
        Runs kept (the oldest are forgotten first).
    max_records : int, default=100000
        Iteration records kept per run.

    Attributes
    ----------
    runs : OrderedDict of str to run state
        The runs, oldest first (after :meth:`start`).
    """

    name = "daskml-training-monitor"
    idempotent = True

    def __init__(self, max_runs: int = 50, max_records: int = 100_000) -> None:
        self.max_runs = int(max_runs)
        self.max_records = int(max_records)
        self.runs: OrderedDict[str, _Run] = OrderedDict()
        self.scheduler: Any = None
        self.pages: list[str] = []

    async def start(self, scheduler: Any) -> None:
        """Collect the events already logged, and serve the pages and the JSON from the dashboard server."""
        self.scheduler = scheduler
        for _, event in scheduler.get_events(TOPIC):
            self._handle(event)
        self.pages = _serve(scheduler)

    def log_event(self, topic: str, msg: Any) -> None:
        """Take in a training event (called by the scheduler for every logged event)."""
        if topic == TOPIC:
            self._handle(msg)
        elif topic == TASK_STREAM_TOPIC and self.scheduler is not None:
            self._add_to_task_stream(msg)

    def _add_to_task_stream(self, record: Any) -> None:
        """Show a worker's actor call (:func:`~daskml_lab.monitoring.shown_in_task_stream`) in the task stream."""
        from daskml_lab._compat import add_task_stream_record

        try:
            start, stop = float(record["start"]), float(record["stop"])
            if not (math.isfinite(start) and math.isfinite(stop) and start <= stop):
                return
            add_task_stream_record(
                self.scheduler,
                key=_text(record["key"], 80),
                worker=_text(record["worker"], 200),
                thread=int(record["thread"]),
                start=start,
                stop=stop,
                status="OK" if record.get("status") == "OK" else "error",
            )
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            logger.debug("Ignored a malformed task-stream record: %r", record)

    def _handle(self, event: Any) -> None:
        if not isinstance(event, dict) or event.get("v") != EVENT_VERSION:
            return
        worker = event.get("worker")
        for message in event.get("messages") or ():
            if not isinstance(message, dict) or "run" not in message:
                continue
            try:
                self._run(_text(message["run"], 64)).apply(message, worker)
            except (KeyError, TypeError, ValueError, OverflowError):
                logger.debug("Ignored a malformed training event: %r", message)

    def _run(self, run_id: str) -> _Run:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = _Run(run_id, self.max_records)
            while len(self.runs) > self.max_runs:
                self.runs.popitem(last=False)
        return run

    def snapshot(self, run_id: str | None = None, *, records: bool = True) -> dict[str, Any]:
        """The monitor's state as JSON-ready data: ``{"topic", "runs": [...]}``, oldest run first.

        Parameters
        ----------
        run_id : str, default=None
            Only this run.
        records : bool, default=True
            Include the per-iteration records.

        Returns
        -------
        dict
        """
        runs = [run for run in self.runs.values() if run_id is None or run.id == run_id]
        return {"topic": TOPIC, "time": time.time(), "runs": [run.to_dict(records=records) for run in runs]}


def install_monitor(client: Any = None) -> str | None:
    """Install :class:`TrainingMonitor` on the client's scheduler; return the URL of the training page.

    Installing twice is harmless. The scheduler must be able to import daskml_lab; for a ``dask scheduler``
    started from the shell, prefer ``dask scheduler --preload daskml_lab.monitoring.preload``.

    Parameters
    ----------
    client : distributed.Client, default=None
        The client; the current default client when ``None``.

    Returns
    -------
    str or None
        ``<dashboard>/daskml-training``, or ``None`` when the scheduler has no dashboard.

    Examples
    --------
    >>> from daskml_lab.monitoring import install_monitor
    >>> url = install_monitor(client)  # doctest: +SKIP
    >>> url  # doctest: +SKIP
    'http://127.0.0.1:8787/daskml-training'
    """
    if client is None:
        client = default_client()
    client.register_plugin(TrainingMonitor())
    return page_url(client)


#: The (scheduler address, client id) pairs this process has installed the monitor through, or tried to.
_MONITORED: set[str] = set()


def ensure_monitor(client: Any) -> None:
    """Install the training monitor on ``client``'s scheduler when a fit first runs there (once per client).

    This is what makes the training page and the solvers' task-stream bars appear on any scheduler, also one
    made with ``Client(LocalCluster())`` in a notebook. ``dask.config.set({"daskml_lab.monitoring.install":
    False})`` turns it off (then use the preload or :func:`install_monitor`). A scheduler that cannot import
    daskml_lab refuses the plugin; that is logged once and the fit goes on without the page.
    """
    if not dask.config.get("daskml_lab.monitoring.install", True) or getattr(client, "asynchronous", False):
        return
    address = getattr(getattr(client, "scheduler", None), "address", None)
    # Per client, not per address: a new cluster may reuse a closed one's port.
    seen = f"{address} {getattr(client, 'id', '')}"
    if not address or seen in _MONITORED:
        return
    _MONITORED.add(seen)
    try:
        url = install_monitor(client)
    except Exception as err:  # the page is a convenience; the fit must not depend on it
        logger.info(
            "The training page could not be installed on the scheduler at %s (%s). Start the scheduler with "
            "--preload daskml_lab.monitoring.preload, or install daskml_lab where it runs.",
            address,
            err,
        )
        return
    if url:
        logger.info("Training page: %s", url)


RUN_START_HOOKS.append(ensure_monitor)


def page_url(client: Any, route: str = PAGE_ROUTE) -> str | None:
    """URL of a monitoring page on the client's dashboard (``None`` without a dashboard).

    Parameters
    ----------
    client : distributed.Client
        The client.
    route : str, default="daskml-training"
        Page path.

    Returns
    -------
    str or None
    """
    link = getattr(client, "dashboard_link", None)
    if not link:
        return None
    base = link.rsplit("/", 1)[0] if link.endswith("/status") else link.rstrip("/")
    return f"{base}/{route}"


# ----------------------------------------------------------------------------------------------------------
# serving


def _serve(scheduler: Any) -> list[str]:
    """Add the JSON route and the two Bokeh pages to the scheduler's HTTP server (once per scheduler)."""
    from daskml_lab._compat import add_dashboard_page, dashboard_prefix

    http_application = getattr(scheduler, "http_application", None)
    if http_application is None:
        logger.info("The scheduler has no HTTP server; the training page is not served.")
        return []
    served: list[str] = [JSON_ROUTE]
    if not http_application.settings.get("daskml_lab_monitoring"):
        http_application.settings["daskml_lab_monitoring"] = True
        from tornado import web

        class TrainingJSON(web.RequestHandler):
            def get(self) -> None:
                monitor = scheduler.plugins.get(TrainingMonitor.name)
                if monitor is None:
                    raise web.HTTPError(404, reason="The daskml_lab TrainingMonitor is not installed")
                run_id = self.get_argument("run", None)
                records = self.get_argument("records", "1") not in ("0", "false")
                self.set_header("Content-Type", "application/json")
                self.set_header("X-Content-Type-Options", "nosniff")
                self.write(to_json(monitor.snapshot(run_id, records=records)))

        prefix = dashboard_prefix(scheduler)
        http_application.add_handlers(r".*", [(f"{prefix}/{JSON_ROUTE}", TrainingJSON)])
    if add_dashboard_page(
        scheduler,
        INDIVIDUAL_ROUTE,
        lambda doc: training_document(scheduler, doc, full_page=False, plugin=TrainingMonitor.name),
        menu_name="Training (daskml_lab)",
    ):
        served.append(INDIVIDUAL_ROUTE)
    if add_dashboard_page(
        scheduler,
        PAGE_ROUTE,
        lambda doc: training_document(scheduler, doc, full_page=True, plugin=TrainingMonitor.name),
        nav_page=True,
    ):
        served.append(PAGE_ROUTE)
    return served


#: What :func:`to_json` escapes: HTML's special characters (``json.dumps`` already escapes non-ASCII ones).
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def to_json(data: Any) -> str:
    """``data`` as strict JSON that is also safe inside HTML: no ``<``, ``>`` or ``&`` appears unescaped.

    The strings decode to the same text (``\\u003c`` is ``<``), but no string can close a ``<script>``
    element or open a tag if the JSON is ever embedded in a page. NaN and infinities are refused (they are not
    JSON): the monitor stores them as ``None``.

    Examples
    --------
    >>> print(to_json({"label": "</script><b>"}))
    {"label": "\\u003c/script\\u003e\\u003cb\\u003e"}
    """
    return json.dumps(data, allow_nan=False).translate(_JSON_ESCAPES)
