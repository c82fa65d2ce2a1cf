"""The live training page, for real: clusters on 127.0.0.1, fits, the page fetched over HTTP and its websocket.

- a LocalCluster started by ``daskml_lab.connect()`` (which installs the page), and a plain
  ``Client(LocalCluster())`` (the first fit installs it);
- a ``dask scheduler --preload daskml_lab.monitoring.preload`` and a ``dask worker`` started as subprocesses;
- the page's data pulled the way a browser gets it (Bokeh's websocket, ``bokeh.client.pull_session``) and the
  JSON endpoint, compared with ``history_`` and ``shard_report_``; the page listed among the individual plots;
- a screenshot with headless Chromium when it is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client, get_task_stream, wait
from distributed.utils import key_split
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import daskml_lab
from daskml_lab.data import make_sparse_classification
from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.monitoring import TOPIC, TrainingMonitor, fit_span, install_monitor, page_url
from daskml_lab.monitoring._events import start_run
from daskml_lab.solvers._common import History
from tests.conftest import REPO_ROOT, _dask_command, _free_port, wait_for_processes

pytestmark = pytest.mark.cluster


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _training_json(base: str, **query: str) -> dict:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return json.loads(_get(f"{base}/json/daskml-training.json{suffix}"))


def _pull(url: str, kind: str | None = None) -> dict[str, dict]:
    """The page's data sources as a browser receives them (Bokeh's websocket protocol)."""
    from bokeh.client import pull_session

    with pull_session(url=url, arguments=None if kind is None else {"kind": kind}) as session:
        document = session.document
        return {
            name: dict(document.get_model_by_name(name).data)
            for name in (
                "daskml-objective",
                "daskml-grad-norm",
                "daskml-shards",
                "daskml-store",
                "daskml-traffic",
            )
        }


def _data(seed: int = 0, n_samples: int = 4_000, n_features: int = 6) -> tuple[da.Array, da.Array]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    y = (X @ rng.normal(size=n_features) + 0.5 * rng.normal(size=n_samples) > 0).astype(np.int64)
    return da.from_array(X, chunks=n_samples // 4), da.from_array(y, chunks=n_samples // 4)


@pytest.fixture(scope="module")
def connected() -> Iterator[Client]:
    """A LocalCluster started by the package: the page must be there without any extra step."""
    with daskml_lab.connect(
        n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0", memory_limit="1GiB"
    ) as client:
        yield client


def _base(client: Client) -> str:
    url = page_url(client)
    assert url is not None
    return url.rsplit("/", 1)[0]


def _run_by_label(snapshot: dict, label: str) -> dict:
    runs = [run for run in snapshot["runs"] if run["label"] == label]
    assert runs, [run["label"] for run in snapshot["runs"]]
    return runs[-1]


def test_connect_installs_the_page_and_it_is_listed(connected):
    assert TrainingMonitor.name in connected.run_on_scheduler(
        lambda dask_scheduler: list(dask_scheduler.plugins)
    )
    base = _base(connected)
    plots = json.loads(_get(f"{base}/individual-plots.json"))
    assert plots["Individual Daskml Training"] == "/individual-daskml-training"
    page = _get(f"{base}/daskml-training").decode()
    # The full page carries the dashboard's navigation bar, with a link to itself and the "More..." entry.
    assert 'href="daskml-training"' in page
    assert 'href="individual-daskml-training"' in page
    assert 'href="status"' in page
    assert "Bokeh" in page
    assert "Bokeh" in _get(f"{base}/individual-daskml-training").decode()
    # Installing again is harmless (the plugin is idempotent, the routes are added once).
    assert install_monitor(connected) == f"{base}/daskml-training"


def test_solver_fit_is_on_the_page(connected):
    X, y = _data(0)
    model = LogisticRegression(C=10.0, tol=1e-8, max_iter=50).fit(X, y)
    history = model.history_
    assert len(history) >= 5

    run = _run_by_label(_training_json(_base(connected)), "LogisticRegression / lbfgs")
    assert run["kind"] == "solver"
    assert run["status"] == "finished"
    assert [r["iteration"] for r in run["records"]] == history["iteration"].tolist()
    # Exactly the values of history_: floats travel as their shortest repr (msgpack, then JSON).
    assert [r["objective"] for r in run["records"]] == history["objective"].tolist()
    assert [r["grad_norm"] for r in run["records"]] == history["grad_norm"].tolist()

    sources = _pull(f"{_base(connected)}/individual-daskml-training", kind="solver")
    assert sources["daskml-objective"]["objective"] == history["objective"].tolist()
    assert sources["daskml-objective"]["iteration"] == history["iteration"].tolist()
    assert sources["daskml-grad-norm"]["grad_norm"] == history["grad_norm"].tolist()


def test_partitioned_fit_shows_its_parameter_shards(connected):
    X, y = make_sparse_classification(2_000, 2**10, nnz_per_row=8, chunks=500, random_state=0)
    with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 2**10 * 8 // 2}):
        model = LogisticRegression(solver="lbfgs", model_partitions=2, tol=1e-5, max_iter=100).fit(X, y)
    history, stats = model.history_, model.coef_.stats()

    run = _run_by_label(_training_json(_base(connected)), "LogisticRegression / partitioned lbfgs")
    assert (run["kind"], run["status"]) == ("solver", "finished")
    assert [r["bytes_pulled"] for r in run["records"]] == history["bytes_pulled"].tolist()
    # one row per shard: its keys, its worker and its counters at the last iteration (no gather since)
    assert [row["shard"] for row in run["store"]] == [0, 1]
    assert sum(row["n_keys"] for row in run["store"]) == 2**10 + 1
    assert sorted(row["worker"] for row in run["store"]) == sorted(model.coef_.workers)
    assert [row["bytes_pushed"] for row in run["store"]] == [s["bytes_pushed"] for s in stats]

    sources = _pull(f"{_base(connected)}/individual-daskml-training", kind="solver")
    assert sources["daskml-traffic"]["bytes_pulled"] == history["bytes_pulled"].tolist()
    assert sources["daskml-store"]["n_keys"] == [row["n_keys"] for row in run["store"]]


def test_ensemble_fit_is_on_the_page(connected):
    X, y = _data(1)
    model = ShardEnsembleClassifier(
        SkLogisticRegression(), n_shards=4, fusion="soft-voting", validation_fraction=0.2, random_state=0
    ).fit(X, y)
    report = model.shard_report_.to_frame()
    workers = set(connected.scheduler_info()["workers"])

    run = _run_by_label(_training_json(_base(connected)), "ShardEnsembleClassifier")
    assert run["kind"] == "ensemble"
    assert run["status"] == "finished"
    assert run["n_shards"] == 4
    assert run["info"] == {"estimator": "LogisticRegression", "fusion": "SoftVoting"}
    shards = run["shards"]
    assert [s["shard"] for s in shards] == [0, 1, 2, 3]
    assert {s["status"] for s in shards} == {"finished"}
    assert {s["worker"] for s in shards} <= workers
    assert [s["n_rows"] for s in shards] == report["n_rows"].tolist()
    assert [s["n_train"] for s in shards] == report["n_train"].tolist()
    assert [s["validation_score"] for s in shards] == report["validation_score"].tolist()
    assert [s["weight"] for s in shards] == report["weight"].tolist()
    assert all(s["fit_time_s"] >= 0 for s in shards)

    sources = _pull(f"{_base(connected)}/daskml-training", kind="ensemble")
    assert sources["daskml-shards"]["validation_score"] == report["validation_score"].tolist()
    assert sources["daskml-shards"]["status"] == ["finished"] * 4


def test_page_updates_while_a_fit_runs(connected):
    """Records reach the page before the fit ends; the run is 'running' until its fit span closes."""
    base = _base(connected)
    with fit_span("ManualSolver"):
        history = History(1.0, None, (2, 1))
        for step in range(3):
            history.add(
                objective_scaled=1.0 / (step + 1),
                grad_norm=0.1**step,
                step_size=1.0,
                n_evals=step + 1,
                x=np.zeros(2),
                staleness=step,
            )
        assert history.run._publisher is not None
        assert history.run._publisher.flush()
        run = _run_by_label(_training_json(base, records="1"), "ManualSolver")
        assert run["status"] == "running"
        assert [r["objective"] for r in run["records"]] == [1.0, 0.5, 1.0 / 3.0]
        assert [r["staleness"] for r in run["records"]] == [0, 1, 2]
        sources = _pull(f"{base}/individual-daskml-training")
        assert sources["daskml-objective"]["objective"] == [1.0, 0.5, 1.0 / 3.0]
        history.add(objective_scaled=0.25, grad_norm=1e-3, step_size=1.0, n_evals=4, x=np.zeros(2))
    run = _run_by_label(_training_json(base), "ManualSolver")
    assert run["status"] == "finished"
    assert run["n_iter"] == 4
    assert run["objective"] == 0.25
    # ?records=0 leaves the iterations out; ?run= selects one run.
    light = _training_json(base, run=run["id"], records="0")
    assert [r["id"] for r in light["runs"]] == [run["id"]]
    assert "records" not in light["runs"][0]


def test_a_failing_fit_is_marked_failed(connected):
    def failing_fit() -> None:
        with fit_span("Failing"):
            start_run("solver").iteration({"iteration": 1, "objective": 3.0})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_fit()
    run = _run_by_label(_training_json(_base(connected)), "Failing")
    assert run["status"] == "failed"
    assert run["records"] == [{"iteration": 1, "objective": 3.0}]


def test_events_go_through_the_scheduler_event_log(connected):
    X, y = _data(2, n_samples=2_000)
    LogisticRegression(max_iter=20).fit(X, y)
    events = connected.get_events(TOPIC)
    kinds = [m["kind"] for _, event in events for m in event["messages"]]
    assert {"run-start", "iteration", "run-end"} <= set(kinds)


def test_publishing_can_be_turned_off(connected):
    import dask

    before = len(connected.get_events(TOPIC))
    X, y = _data(3, n_samples=2_000)
    with dask.config.set({"daskml_lab.monitoring.publish": False}):
        LogisticRegression(max_iter=20).fit(X, y)
        ShardEnsembleClassifier(SkLogisticRegression(), n_shards=2).fit(X, y)
    assert len(connected.get_events(TOPIC)) == before


def test_fit_tasks_carry_daskml_names(connected):
    """The task stream shows the package's work under its own names (data already on the workers)."""
    X, y = _data(4)
    X, y = X.persist(), y.persist()
    wait([X, y])
    with get_task_stream(connected) as stream:
        ShardEnsembleClassifier(SkLogisticRegression(), fusion="soft-voting", random_state=0).fit(X, y)
    prefixes = {key_split(task["key"]) for task in stream.data}
    assert prefixes
    assert {p for p in prefixes if not p.startswith("daskml-")} <= {"finalize-hlgfinalizecompute", "finalize"}
    assert "daskml-shard-fit" in prefixes


def test_solver_actor_calls_are_in_the_task_stream(connected):
    """The solver's per-iteration work runs in actors, not tasks; it still shows in Dask's task stream."""
    X, y = _data(5)
    with get_task_stream(connected) as stream:
        model = LogisticRegression(tol=1e-8, max_iter=20).fit(X, y)
    calls = [task for task in stream.data if key_split(task["key"]) == "daskml-loss-grad"]
    # one call per worker position and evaluation (line searches add some): at least one per iteration
    assert len(calls) >= model.n_iter_
    workers = set(connected.scheduler_info()["workers"])
    assert {call["worker"] for call in calls} <= workers
    for call in calls:
        (startstop,) = call["startstops"]
        assert startstop["action"] == "compute"
        assert 0 <= startstop["stop"] - startstop["start"] < 60


def test_a_plain_local_cluster_gets_the_page_when_a_fit_starts():
    """Client(LocalCluster()) in a notebook, with no daskml_lab.connect() and no preload: the first fit
    installs the monitor, so the training page and the task-stream bars are there."""
    from distributed import LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):
        plugins = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
        assert TrainingMonitor.name not in plugins
        X, y = _data(6, n_samples=2_000)
        LogisticRegression(max_iter=20).fit(X, y)
        plugins = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
        assert TrainingMonitor.name in plugins
        assert "Bokeh" in _get(page_url(client)).decode()
        _run_by_label(_training_json(_base(client)), "LogisticRegression / lbfgs")


def test_installing_at_fit_time_can_be_turned_off():
    import dask
    from distributed import LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
        dask.config.set({"daskml_lab.monitoring.install": False}),
    ):
        X, y = _data(7, n_samples=2_000)
        LogisticRegression(max_iter=20).fit(X, y)
        plugins = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
        assert TrainingMonitor.name not in plugins


def test_page_without_the_plugin_says_so(connected):
    """Removing the plugin leaves the routes; they answer 404 (JSON) or a message (page), never crash.

    A monitor installed later rebuilds the runs from the scheduler's event log.
    """
    base = _base(connected)
    with fit_span("BeforeRemoval"):
        start_run("solver").iteration({"iteration": 1, "objective": 1.0})
    before = [run["id"] for run in _training_json(base)["runs"]]
    connected.unregister_scheduler_plugin(TrainingMonitor.name)
    try:
        with pytest.raises(urllib.error.HTTPError, match="404"):
            _get(f"{base}/json/daskml-training.json")
        from bokeh.client import pull_session

        with pull_session(url=f"{base}/individual-daskml-training") as session:
            summary = session.document.get_model_by_name("daskml-summary").text
        assert "TrainingMonitor plugin is not installed" in summary
    finally:
        install_monitor(connected)
    assert [run["id"] for run in _training_json(base)["runs"]] == before


# ------------------------------------------------------------------------------------------------------------
# untrusted event contents: any client of the scheduler, or code on a worker, can log training events

XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(2)</script>"


def _strict_json(raw: bytes) -> dict:
    """JSON as a browser's ``JSON.parse`` reads it: NaN and Infinity are errors."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(raw, parse_constant=refuse)


def _until(condition, what: str, timeout_s: float = 30.0):
    """Poll ``condition()`` until it returns something true (worker events are batched, not immediate)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(0.1)


def _page_document(url: str, kind: str) -> tuple[str, set[str]]:
    """The page's run summary as a browser receives it, and the types of the models that hold planted markup.

    Only Markup models (``Div``, ``Paragraph``, ...) put their text into the page as HTML; BokehJS shows a
    ``Select``'s options, the table's cells (``StringFormatter``, ``NumberFormatter``) and plotted columns as
    text. The check fails if a Markup model holds raw markup or a table column renders its cells as HTML.
    """
    from bokeh.client import pull_session
    from bokeh.models import Markup, NumberFormatter, StringFormatter, TableColumn

    with pull_session(url=url, arguments={"kind": kind}) as session:
        document = session.document
        summary = document.get_model_by_name("daskml-summary").text
        holders = set()
        for model in document.models:
            values = repr(model.properties_with_values(include_defaults=False))
            if "<img" in values or "</script" in values:
                holders.add(type(model).__name__)
            if isinstance(model, Markup):
                assert "<img" not in model.text, model.text
                assert "<script" not in model.text, model.text
            if isinstance(model, TableColumn):
                assert isinstance(model.formatter, StringFormatter | NumberFormatter), model.formatter
    return summary, holders


def test_markup_in_training_events_is_escaped_on_the_page_and_in_the_json(connected):
    from distributed import get_worker

    from daskml_lab.monitoring._events import EVENT_VERSION

    base = _base(connected)
    # A solver run through the package's own API: label, info and final status carry markup.
    run = start_run("solver", label=f"{XSS} {SCRIPT}", info={"note": XSS, SCRIPT: "key"})
    run.iteration({"iteration": 1, "objective": 2.0, "grad_norm": 0.5})
    run.end(status=XSS)
    # An ensemble run planted by a client straight into the scheduler's event log (no package code involved) ...
    ensemble_id = "planted-" + XSS
    connected.log_event(
        TOPIC,
        {
            "v": EVENT_VERSION,
            "worker": XSS,
            "messages": [
                {
                    "run": ensemble_id,
                    "kind": "run-start",
                    "run_kind": "ensemble",
                    "label": SCRIPT,
                    "n_shards": 2,
                    "info": {"estimator": XSS},
                },
                {
                    "run": ensemble_id,
                    "kind": "shard",
                    "shard": 0,
                    "status": XSS,
                    "model": SCRIPT,
                    "n_rows": 5,
                },
            ],
        },
    )

    # ... and a shard event from code running on a worker.
    def from_worker() -> None:
        get_worker().log_event(
            TOPIC,
            {
                "v": EVENT_VERSION,
                "messages": [
                    {
                        "run": ensemble_id,
                        "kind": "shard",
                        "shard": 1,
                        "status": "finished",
                        "model": XSS,
                        "n_rows": 7,
                    }
                ],
            },
        )

    connected.submit(from_worker, pure=False).result()

    def planted_json() -> tuple[bytes, dict] | None:
        raw = _get(f"{base}/json/daskml-training.json")
        snapshot = _strict_json(raw)
        runs = [r for r in snapshot["runs"] if r["id"] == ensemble_id]
        return (
            (raw, snapshot)
            if runs and len(runs[0]["shards"]) == 2 and runs[0]["shards"][1].get("model")
            else None
        )

    raw, snapshot = _until(planted_json, "the worker's shard event reaching the monitor")
    # The JSON: no markup character travels raw, and every string decodes back to what was sent.
    for character in (b"<", b">", b"&"):
        assert character not in raw
    assert b"\\u003cimg src=x onerror=alert(1)\\u003e" in raw
    assert b"\\u003c/script\\u003e\\u003cscript\\u003e" in raw
    solver = _run_by_label(snapshot, f"{XSS} {SCRIPT}")
    assert solver["status"] == XSS
    assert solver["info"] == {"note": XSS, SCRIPT: "key"}
    ensemble = _run_by_label(snapshot, SCRIPT)
    assert [s["status"] for s in ensemble["shards"]] == [XSS, "finished"]
    assert [s["model"] for s in ensemble["shards"]] == [SCRIPT, XSS]
    assert ensemble["shards"][0]["worker"] == XSS

    # The pages: the summary (the page's only HTML) shows the text escaped; nothing else renders HTML.
    for route, kind, expected in (
        (
            "daskml-training",
            "solver",
            ["&lt;img src=x onerror=alert(1)&gt; &lt;/script&gt;", "note: &lt;img"],
        ),
        (
            "individual-daskml-training",
            "ensemble",
            ["&lt;/script&gt;&lt;script&gt;", "estimator: &lt;img src"],
        ),
    ):
        summary, holders = _page_document(f"{base}/{route}", kind)
        for text in expected:
            assert text in summary, summary
        assert "<img" not in summary
        assert "<script" not in summary
        assert "</script" not in summary
        assert holders <= {"Select", "ColumnDataSource"}, holders
        html_page = _get(f"{base}/{route}").decode()
        assert XSS not in html_page
        assert SCRIPT not in html_page


def test_training_events_are_bounded(connected):
    """A huge label, a huge shard count, a far shard index, NaN: the page and its JSON stay small and valid."""
    from daskml_lab.monitoring._dashboard import MAX_ITEMS, MAX_TEXT
    from daskml_lab.monitoring._events import EVENT_VERSION

    base = _base(connected)
    run_id = "bounded-" + "r" * 1_000
    huge = "x" * 1_000_000
    connected.log_event(
        TOPIC,
        {
            "v": EVENT_VERSION,
            "messages": [
                {
                    "run": run_id,
                    "kind": "run-start",
                    "run_kind": "solver",
                    "label": huge,
                    "n_shards": 10**12,
                    "info": {f"key{i}": huge for i in range(100)},
                    "time": "yesterday",
                },
                {
                    "run": run_id,
                    "kind": "iteration",
                    "record": {
                        "iteration": 1,
                        "objective": float("nan"),
                        "grad_norm": float("inf"),
                        "note": huge,
                    },
                },
                {"run": run_id, "kind": "shard", "shard": 10**9, "status": "finished"},
            ],
        },
    )
    kept_id = run_id[:63] + "\u2026"  # run ids are cut to 64 characters too
    raw = _get(f"{base}/json/daskml-training.json?run={urllib.parse.quote(kept_id)}")
    assert len(raw) < 20_000
    (run,) = _strict_json(raw)["runs"]
    assert run["label"] == "x" * (MAX_TEXT - 1) + "\u2026"
    assert len(run["info"]) == MAX_ITEMS
    assert all(len(value) == MAX_TEXT for value in run["info"].values())
    assert run["n_shards"] is None
    assert run["shards"] == []  # no 10**12 pending rows, and the far index was ignored
    assert run["started"] is None
    assert run["records"] == [{"iteration": 1, "objective": None, "grad_norm": None, "note": run["label"]}]
    summary, _ = _page_document(f"{base}/individual-daskml-training", "solver")
    assert len(summary) < 20_000


# ------------------------------------------------------------------------------------------------------------
# an external `dask scheduler` with the preload module


@pytest.fixture(scope="module")
def preloaded_scheduler(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """``dask scheduler --preload daskml_lab.monitoring.preload`` and one ``dask worker``, on 127.0.0.1."""
    port, dashboard_port = _free_port(), _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("preloaded-cluster")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    commands = [
        [
            *_dask_command("scheduler"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            f"127.0.0.1:{dashboard_port}",
            "--preload",
            "daskml_lab.monitoring.preload",
        ],
        [
            *_dask_command("worker"),
            address,
            "--host",
            "127.0.0.1",
            "--nthreads",
            "1",
            "--memory-limit",
            "1GiB",
            "--no-dashboard",
            "--preload",
            "daskml_lab.monitoring.preload",
        ],
    ]
    processes = []
    try:
        for index, command in enumerate(commands):
            with (logs / f"process-{index}.log").open("w") as log:
                processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
            if index == 0:
                time.sleep(0.5)
        wait_for_processes(address, 1, processes, logs)
        yield address, f"http://127.0.0.1:{dashboard_port}"
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_preloaded_external_scheduler_serves_the_page(preloaded_scheduler):
    address, dashboard = preloaded_scheduler
    with Client(address, timeout=30) as client:
        plugins = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
        assert TrainingMonitor.name in plugins
        X, y = _data(5, n_samples=2_000)
        model = LogisticRegression(max_iter=30).fit(X, y)
        ensemble = ShardEnsembleClassifier(SkLogisticRegression(), n_shards=2, random_state=0).fit(X, y)
    assert json.loads(_get(f"{dashboard}/individual-plots.json"))["Individual Daskml Training"] == (
        "/individual-daskml-training"
    )
    snapshot = _training_json(dashboard)
    solver = _run_by_label(snapshot, "LogisticRegression / lbfgs")
    assert [r["objective"] for r in solver["records"]] == model.history_["objective"].tolist()
    shards = _run_by_label(snapshot, "ShardEnsembleClassifier")["shards"]
    assert [s["n_rows"] for s in shards] == ensemble.shard_report_.to_frame()["n_rows"].tolist()
    sources = _pull(f"{dashboard}/daskml-training", kind="solver")
    assert sources["daskml-objective"]["objective"] == model.history_["objective"].tolist()


# ------------------------------------------------------------------------------------------------------------
# a screenshot, when Debian's chromium is installed


def _screenshot_module():
    spec = importlib.util.spec_from_file_location(
        "screenshot_training_page", REPO_ROOT / "docs" / "screenshot_training_page.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshot_of_the_page(connected, tmp_path):
    shots = _screenshot_module()
    if shots.find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    X, y = _data(6)
    LogisticRegression(C=10.0, tol=1e-8, max_iter=50).fit(X, y)
    path = shots.screenshot(
        f"{_base(connected)}/daskml-training?kind=solver", tmp_path / "page.png", wait_s=3.0
    )
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # A drawn page (navigation bar, two plots) compresses much worse than a blank one (~15 kB at this size).
    assert len(png) > 30_000
