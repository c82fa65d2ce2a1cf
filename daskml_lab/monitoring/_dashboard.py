"""The live training page of the Dask dashboard: a scheduler plugin that collects the training events.

:class:`TrainingMonitor` is a :class:`distributed.diagnostics.plugin.SchedulerPlugin`. The scheduler hands it
every event logged under :data:`~daskml_lab.monitoring.TOPIC` (its ``log_event`` hook); it keeps the recent
runs and serves them from the scheduler's own dashboard server:

- ``/daskml-training``: the full page, with the dashboard's navigation bar (also linked from it);
- ``/individual-daskml-training``: the same plots alone, listed in ``/individual-plots.json`` so that the
  JupyterLab Dask extension offers it;
- ``/json/daskml-training.json``: the data as JSON (``?run=<id>`` for one run).

The pages are Bokeh documents updated twice a second while the fit runs: objective and gradient norm per
iteration for the solvers (staleness for asynchronous SGD), per-shard status, rows and validation scores for
the shard ensembles.

Any client of the scheduler, and any code on a worker, can log training events, so their contents are
untrusted: the monitor keeps only bounded values (text cut to :data:`MAX_TEXT` characters, at most
:data:`MAX_ITEMS` entries per dict or list, shard indices below :data:`MAX_SHARDS`), the page's only HTML
(the run summary) escapes every string it shows, the other widgets render their strings as text, and the JSON
escapes ``<``, ``>`` and ``&`` so that it cannot close a ``<script>`` element it is embedded in.
"""

from __future__ import annotations

import html
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
_RUN_KINDS = ("solver", "ensemble", "search")
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

_STATUS_COLORS = {"pending": "#bbbbbb", "started": "#f0a030", "finished": "#3070b0", "failed": "#d03030"}
_SHARD_COLUMNS = (
    "shard",
    "status",
    "worker",
    "n_rows",
    "n_train",
    "n_held_out",
    "fit_time_s",
    "model",
    "validation_score",
    "weight",
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
        self.version = 0
        self._max_records = max_records

    def apply(self, message: dict[str, Any], worker: str | None) -> None:
        kind = message.get("kind")
        if kind == "run-start":
            run_kind = message.get("run_kind", self.kind)
            self.kind = run_kind if run_kind in _RUN_KINDS else self.kind
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
        lambda doc: training_document(scheduler, doc, full_page=False),
        menu_name="Training (daskml_lab)",
    ):
        served.append(INDIVIDUAL_ROUTE)
    if add_dashboard_page(
        scheduler, PAGE_ROUTE, lambda doc: training_document(scheduler, doc, full_page=True), nav_page=True
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


def _shard_columns(run: _Run | None) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in (*_SHARD_COLUMNS, "color")}
    if run is None:
        return columns
    for shard in sorted(run.shards):
        row = run.shards[shard]
        for name in _SHARD_COLUMNS:
            value = row.get(name)
            columns[name].append("" if value is None and name in ("worker", "model", "status") else value)
        columns["color"].append(_STATUS_COLORS.get(str(row.get("status")), "#bbbbbb"))
    return columns


def _record_columns(run: _Run | None, key: str) -> dict[str, list[Any]]:
    if run is None:
        return {"iteration": [], key: []}
    pairs = [(r.get("iteration"), r.get(key)) for r in run.records if r.get(key) is not None]
    return {"iteration": [p[0] for p in pairs], key: [p[1] for p in pairs]}


def _run_summary(run: _Run | None) -> str:
    """The HTML of the run's summary line; every string from the events is escaped (they are untrusted)."""
    if run is None:
        return "<b>No training run yet.</b> Fit a daskml_lab model on this cluster to see it here."
    esc = html.escape
    parts = [f"<b>{esc(run.label)}</b>", f"status: <b>{esc(run.status)}</b>"]
    if run.kind == "ensemble":
        done = sum(1 for row in run.shards.values() if row.get("status") == "finished")
        parts.append(f"shards fitted: {done}/{run.n_shards if run.n_shards is not None else len(run.shards)}")
    elif run.kind == "search":
        state = run.search
        if "n_rounds" in state:  # successive halving: the candidates are the round's
            parts.append(f"round: {esc(str(_round_number(state)))}/{esc(str(state['n_rounds']))}")
        parts.append(
            f"candidates done: {esc(str(state.get('candidates_done', 0)))}/{esc(str(state.get('n_candidates', '?')))}"
        )
        parts.append(f"running: {esc(str(state.get('candidates_running', 0)))}")
        parts.append(f"fits: {esc(str(state.get('fits_done', 0)))}/{esc(str(state.get('n_fits', '?')))}")
        best = state.get("best_score")
        if isinstance(best, int | float):
            parts.append(f"best score so far: {best:.6g} ({esc(str(state.get('best_params', '')))})")
    else:
        parts.append(f"iterations: {len(run.records)}")
        if run.records:
            last = run.records[-1]
            for key in ("objective", "grad_norm", "staleness"):
                if isinstance(last.get(key), int | float):
                    parts.append(f"{key}: {last[key]:.6g}")
    for key, value in run.info.items():
        parts.append(f"{esc(key)}: {esc(str(value))}")
    return " &nbsp;|&nbsp; ".join(parts)


def _round_number(state: Mapping[str, Any]) -> Any:
    """The round of a search state counted from 1 (the state counts from 0, as ``cv_results_["iter"]``)."""
    value = state.get("round")
    return value + 1 if isinstance(value, int) and not isinstance(value, bool) else "?"


def _requested_kind(doc: Any) -> str | None:
    """The ``?kind=solver|ensemble|search`` of the page's URL: which kind of run "latest run" means."""
    try:
        values = doc.session_context.request.arguments.get("kind") or []
    except AttributeError:
        return None
    kinds = [value.decode() if isinstance(value, bytes) else str(value) for value in values]
    return kinds[0] if kinds and kinds[0] in _RUN_KINDS else None


def training_document(scheduler: Any, doc: Any, *, full_page: bool) -> None:
    """Fill a Bokeh document with the training page (called by the Bokeh server for each session).

    The page shows the latest run (of the kind given by ``?kind=solver`` or ``?kind=ensemble`` in its URL, if
    any) until another run is chosen in its menu.

    Parameters
    ----------
    scheduler : distributed.Scheduler
        The scheduler whose :class:`TrainingMonitor` feeds the page.
    doc : bokeh.document.Document
        The session's document.
    full_page : bool
        Whether to use the dashboard's page template (navigation bar).
    """
    from bokeh.layouts import column, row
    from bokeh.models import ColumnDataSource, DataTable, Div, NumberFormatter, Select, TableColumn
    from bokeh.plotting import figure

    from daskml_lab._compat import dashboard_template, dashboard_theme

    state: dict[str, Any] = {"pinned": "", "shown": None, "version": -1, "kind": _requested_kind(doc)}
    select = Select(title="Run", value="", options=[("", "latest run")], width=420)
    summary = Div(text="", sizing_mode="stretch_width", name="daskml-summary")
    objective = ColumnDataSource(_record_columns(None, "objective"), name="daskml-objective")
    grad_norm = ColumnDataSource(_record_columns(None, "grad_norm"), name="daskml-grad-norm")
    staleness = ColumnDataSource(_record_columns(None, "staleness"), name="daskml-staleness")
    shards = ColumnDataSource(_shard_columns(None), name="daskml-shards")

    common = {"height": 280, "sizing_mode": "stretch_width", "tools": "pan,wheel_zoom,box_zoom,reset,save"}
    objective_figure = figure(title="Objective", x_axis_label="iteration", **common)
    objective_figure.line("iteration", "objective", source=objective, line_width=2)
    objective_figure.scatter("iteration", "objective", source=objective, size=4)
    grad_figure = figure(title="Gradient norm", x_axis_label="iteration", y_axis_type="log", **common)
    grad_figure.line("iteration", "grad_norm", source=grad_norm, line_width=2, color="#d07020")
    grad_figure.scatter("iteration", "grad_norm", source=grad_norm, size=4, color="#d07020")
    staleness_figure = figure(title="Staleness (async SGD)", x_axis_label="update", **common)
    staleness_figure.scatter("iteration", "staleness", source=staleness, size=4, color="#309040")
    staleness_figure.visible = False
    rows_figure = figure(title="Shards: rows (colour: status)", x_axis_label="shard", **common)
    rows_figure.vbar(x="shard", top="n_rows", width=0.8, source=shards, color="color")
    score_figure = figure(title="Shards: validation score", x_axis_label="shard", **common)
    score_figure.vbar(x="shard", top="validation_score", width=0.8, source=shards, color="#3070b0")
    table = DataTable(
        source=shards,
        columns=[
            TableColumn(field=name, title=name, formatter=NumberFormatter(format="0.[0000]"))
            if name in ("fit_time_s", "validation_score", "weight")
            else TableColumn(field=name, title=name)
            for name in _SHARD_COLUMNS
        ],
        height=220,
        sizing_mode="stretch_width",
        index_position=None,
    )
    solver_part = column(
        row(objective_figure, grad_figure, sizing_mode="stretch_width"),
        staleness_figure,
        sizing_mode="stretch_width",
    )
    ensemble_part = column(
        row(rows_figure, score_figure, sizing_mode="stretch_width"), table, sizing_mode="stretch_width"
    )

    def on_select(attr: str, old: Any, new: Any) -> None:
        state["pinned"] = new
        state["version"] = -1
        update()

    select.on_change("value", on_select)

    def update() -> None:
        monitor = scheduler.plugins.get(TrainingMonitor.name)
        runs = list(monitor.runs.values()) if monitor is not None else []
        options = [("", "latest run")] + [
            (r.id, f"{r.label} [{r.status}] {r.id[:6]}") for r in reversed(runs)
        ]
        if select.options != options:
            select.options = options
        chosen = next((r for r in runs if r.id == state["pinned"]), None) if state["pinned"] else None
        candidates = [r for r in runs if state["kind"] is None or r.kind == state["kind"]]
        run = chosen or (candidates[-1] if candidates else None)
        if monitor is None:
            summary.text = "<b>The daskml_lab TrainingMonitor plugin is not installed on this scheduler.</b>"
            return
        key = None if run is None else run.id
        if key == state["shown"] and run is not None and run.version == state["version"]:
            return
        state["shown"], state["version"] = key, None if run is None else run.version
        summary.text = _run_summary(run)
        is_ensemble = run is not None and run.kind == "ensemble"
        solver_part.visible = run is None or run.kind == "solver"
        ensemble_part.visible = is_ensemble
        objective.data = _record_columns(run, "objective")
        grad_norm.data = _record_columns(run, "grad_norm")
        stale = _record_columns(run, "staleness")
        staleness.data = stale
        staleness_figure.visible = bool(stale["iteration"]) and not is_ensemble
        shards.data = _shard_columns(run)

    update()
    doc.add_periodic_callback(update, 500)
    doc.title = "daskml_lab: training"
    doc.add_root(
        column(
            row(select, summary, sizing_mode="stretch_width"),
            solver_part,
            ensemble_part,
            sizing_mode="stretch_width",
            name="daskml-training",
        )
    )
    theme = dashboard_theme()
    if theme is not None:
        doc.theme = theme
    if full_page:
        template = dashboard_template(scheduler)
        if template is not None:
            doc.template, variables = template
            doc.template_variables.update(variables)
