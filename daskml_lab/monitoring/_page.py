"""The Bokeh document of the training page: the plots and tables of one run, refreshed twice a second.

The data come from the ``TrainingMonitor`` plugin of the scheduler that serves the page
(:mod:`daskml_lab.monitoring._dashboard` collects and bounds them). The run summary is the page's only HTML:
it escapes every string it shows (the events are untrusted); the other widgets render text as text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

__all__ = ["RUN_KINDS", "STORE_COLUMNS", "training_document"]

#: The kinds of training runs.
RUN_KINDS = ("solver", "ensemble", "search")
#: What the page keeps of a parameter shard of a partitioned model (its store counters).
STORE_COLUMNS = (
    "shard",
    "worker",
    "n_keys",
    "keys_pulled",
    "bytes_pulled",
    "keys_pushed",
    "bytes_pushed",
    "n_pushes",
    "staleness_max",
    "clock",
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


def _shard_columns(run: Any) -> dict[str, list[Any]]:
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


def _store_columns(run: Any) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in STORE_COLUMNS}
    if run is None:
        return columns
    for shard in sorted(run.store):
        row = run.store[shard]
        for name in STORE_COLUMNS:
            value = row.get(name)
            columns[name].append("" if value is None and name == "worker" else value)
    return columns


def _traffic_columns(run: Any) -> dict[str, list[Any]]:
    """Bytes pulled and pushed per iteration (records of a solver over a partitioned store)."""
    columns: dict[str, list[Any]] = {"iteration": [], "bytes_pulled": [], "bytes_pushed": []}
    for record in run.records if run is not None else ():
        if isinstance(record.get("bytes_pulled"), int | float):
            columns["iteration"].append(record.get("iteration"))
            columns["bytes_pulled"].append(record["bytes_pulled"])
            columns["bytes_pushed"].append(record.get("bytes_pushed"))
    return columns


def _record_columns(run: Any, key: str) -> dict[str, list[Any]]:
    if run is None:
        return {"iteration": [], key: []}
    pairs = [(r.get("iteration"), r.get(key)) for r in run.records if r.get(key) is not None]
    return {"iteration": [p[0] for p in pairs], key: [p[1] for p in pairs]}


def _run_summary(run: Any) -> str:
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
        if run.store:
            keys = sum(row.get("n_keys") or 0 for row in run.store.values())
            parts.append(f"parameter shards: {len(run.store)} ({keys} keys)")
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
    return kinds[0] if kinds and kinds[0] in RUN_KINDS else None


def training_document(scheduler: Any, doc: Any, *, full_page: bool, plugin: str) -> None:
    """Fill a Bokeh document with the training page (called by the Bokeh server for each session).

    The page shows the latest run (of the kind given by ``?kind=solver`` or ``?kind=ensemble`` in its URL, if
    any) until another run is chosen in its menu.

    Parameters
    ----------
    scheduler : distributed.Scheduler
        The scheduler whose ``TrainingMonitor`` feeds the page.
    doc : bokeh.document.Document
        The session's document.
    full_page : bool
        Whether to use the dashboard's page template (navigation bar).
    plugin : str
        The name of the ``TrainingMonitor`` among the scheduler's plugins.
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
    store = ColumnDataSource(_store_columns(None), name="daskml-store")
    traffic = ColumnDataSource(_traffic_columns(None), name="daskml-traffic")

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
    traffic_figure = figure(title="Parameter shards: bytes per iteration", x_axis_label="iteration", **common)
    traffic_figure.line("iteration", "bytes_pulled", source=traffic, line_width=2, legend_label="pulled")
    traffic_figure.line(
        "iteration", "bytes_pushed", source=traffic, line_width=2, color="#d07020", legend_label="pushed"
    )
    store_figure = figure(title="Parameter shards: bytes pulled so far", x_axis_label="shard", **common)
    store_figure.vbar(x="shard", top="bytes_pulled", width=0.8, source=store, color="#3070b0")
    store_table = DataTable(
        source=store,
        columns=[TableColumn(field=name, title=name) for name in STORE_COLUMNS],
        height=160,
        sizing_mode="stretch_width",
        index_position=None,
    )
    store_part = column(
        row(traffic_figure, store_figure, sizing_mode="stretch_width"),
        store_table,
        sizing_mode="stretch_width",
    )
    store_part.visible = False
    solver_part = column(
        row(objective_figure, grad_figure, sizing_mode="stretch_width"),
        staleness_figure,
        store_part,
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
        monitor = scheduler.plugins.get(plugin)
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
        store.data = _store_columns(run)
        traffic.data = _traffic_columns(run)
        store_part.visible = run is not None and run.kind == "solver" and bool(run.store)

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
