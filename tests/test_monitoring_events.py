"""Training events without a cluster: message conversion, fit scopes, the non-blocking publisher, the monitor's
bookkeeping, and that fits without a distributed client publish nothing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tornado.ioloop import IOLoop

from daskml_lab.linear_model import LogisticRegression
from daskml_lab.monitoring import TOPIC, TrainingMonitor, fit_span
from daskml_lab.monitoring._events import TrainingRun, _Publisher, plain, publishing_client, start_run
from daskml_lab.solvers._common import History


def test_plain_makes_messages_serialisable():
    message = plain(
        {
            "float32": np.float32(0.25),
            "int64": np.int64(3),
            "bool": np.bool_(True),
            "nan": float("nan"),
            "inf": np.inf,
            "array": np.array([1.5, 2.5]),
            "tuple": (1, None, "a"),
            1: "key",
            "object": object,
        }
    )
    assert message["float32"] == 0.25
    assert type(message["int64"]) is int
    assert message["bool"] is True
    assert message["nan"] is None
    assert message["inf"] is None
    assert message["array"] == [1.5, 2.5]
    assert message["tuple"] == [1, None, "a"]
    assert message["1"] == "key"
    assert message["object"] == "<class 'object'>"


def test_fit_scope_ends_its_runs():
    with fit_span("Outer"), fit_span("inner"):
        run = start_run("solver")
        assert run.label == "Outer / inner"
        assert run.status == "running"
    assert run.status == "finished"

    runs = []

    def failing_fit() -> None:
        with fit_span("Outer"):
            runs.append(start_run("solver"))
            raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        failing_fit()
    assert runs[0].status == "failed"

    loose = start_run("solver", label="no scope")
    assert loose.status == "running"
    loose.end()
    assert loose.status == "finished"
    loose.end("failed")  # ending twice keeps the first status
    assert loose.status == "finished"


def test_no_client_publishes_nothing():
    assert publishing_client() is None
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    assert len(model.history_) == model.n_iter_
    history = History(1.0, None, (1, 1))
    assert history.run._publisher is None
    assert history.run.reporting_id is None


class _FakeScheduler:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def log_event(self, topic: str, msg: Any) -> None:
        await asyncio.sleep(0.005)
        self.events.append((topic, msg))


class _FakeClient:
    def __init__(self, loop: IOLoop) -> None:
        self.loop = loop
        self.scheduler = _FakeScheduler()


@pytest.fixture
def loop() -> Iterator[IOLoop]:
    """A tornado IOLoop running in a thread, like a distributed client's."""
    holder: dict[str, IOLoop] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        holder["loop"] = IOLoop.current()
        ready.set()
        holder["loop"].start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield holder["loop"]
    holder["loop"].add_callback(holder["loop"].stop)
    thread.join(10)


def test_publisher_sends_everything_in_order_in_few_batches(loop):
    client = _FakeClient(loop)
    run = TrainingRun("solver", "Fake / lbfgs", client=client)
    for iteration in range(1, 201):
        run.iteration({"iteration": iteration, "objective": 1.0 / iteration})
    run.end()
    events = client.scheduler.events
    assert {topic for topic, _ in events} == {TOPIC}
    messages = [m for _, event in events for m in event["messages"]]
    assert [m["kind"] for m in messages] == ["run-start"] + ["iteration"] * 200 + ["run-end"]
    assert [m["record"]["iteration"] for m in messages if m["kind"] == "iteration"] == list(range(1, 201))
    assert {m["run"] for m in messages} == {run.id}
    assert messages[-1]["status"] == "finished"
    # Batched: far fewer scheduler calls than messages.
    assert len(events) < 50


def test_publisher_survives_a_failing_scheduler(loop):
    client = _FakeClient(loop)

    async def refuse(topic: str, msg: Any) -> None:
        raise OSError("scheduler gone")

    client.scheduler.log_event = refuse  # type: ignore[method-assign]
    publisher = _Publisher(client)
    publisher.publish({"run": "x", "kind": "run-start"})
    assert publisher.flush(5)


def test_monitor_bookkeeping():
    monitor = TrainingMonitor(max_runs=2)
    start = {
        "v": 1,
        "messages": [
            {
                "run": "a",
                "kind": "run-start",
                "run_kind": "ensemble",
                "label": "Ens",
                "n_shards": 2,
                "info": {"fusion": "SoftVoting"},
                "time": 1.0,
            }
        ],
    }
    monitor.log_event(TOPIC, start)
    monitor.log_event("other-topic", {"v": 1, "messages": [{"run": "z", "kind": "run-start"}]})
    finished = {"run": "a", "kind": "shard", "shard": 1, "status": "finished", "n_rows": 5}
    monitor.log_event(TOPIC, {"v": 1, "worker": "tcp://w1", "messages": [finished]})
    late = {"run": "a", "kind": "shard", "shard": 1, "status": "started", "n_rows": 5}
    monitor.log_event(TOPIC, {"v": 1, "worker": "tcp://w1", "messages": [late]})
    monitor.log_event(
        TOPIC,
        {
            "v": 1,
            "messages": [{"run": "a", "kind": "shards", "rows": [{"shard": 1, "validation_score": 0.75}]}],
        },
    )
    monitor.log_event(TOPIC, {"v": 99, "messages": [{"run": "b"}]})  # another format version: ignored
    monitor.log_event(TOPIC, {"v": 1, "messages": [{"run": "a", "kind": "shard", "shard": "x"}, "junk"]})
    snapshot = monitor.snapshot()
    assert [run["id"] for run in snapshot["runs"]] == ["a"]
    run = snapshot["runs"][0]
    assert run["kind"] == "ensemble"
    assert run["info"] == {"fusion": "SoftVoting"}
    assert run["shards"] == [
        {"shard": 0, "status": "pending"},
        {"shard": 1, "status": "finished", "worker": "tcp://w1", "n_rows": 5, "validation_score": 0.75},
    ]
    for name in ("b", "c"):
        monitor.log_event(
            TOPIC, {"v": 1, "messages": [{"run": name, "kind": "iteration", "record": {"i": 1}}]}
        )
    assert [run["id"] for run in monitor.snapshot()["runs"]] == ["b", "c"]  # at most max_runs, oldest dropped
    assert monitor.snapshot("c", records=False)["runs"][0]["n_iter"] == 1
