"""The cluster-health rule (``daskml_lab._runtime.cluster_health``) against a client whose state a test sets.

The real processes (scheduler and workers killed during fits) are in ``test_reliability_cluster_loss.py``.
"""

from __future__ import annotations

import time

import pytest
from distributed import CancelledError

from daskml_lab._runtime.cluster_health import (
    ClusterHealth,
    explain_cluster_failures,
    scheduler_lost,
    stopped_error,
)
from daskml_lab._runtime.waiting import wait_for
from daskml_lab.exceptions import NoWorkersLeftError, SchedulerLostError

ADDRESS = "tcp://127.0.0.1:1"


class _Client:
    """A client whose connection state and worker count a test sets."""

    def __init__(self, n_workers: int, status: str = "running") -> None:
        self.n, self.status, self.asked = n_workers, status, 0
        self.scheduler = type("Scheduler", (), {"address": ADDRESS})()

    def scheduler_info(self, n_workers=-1):
        self.asked += 1
        return {"workers": {f"tcp://w{i}": {} for i in range(self.n)}, "n_workers": self.n}


class _Pending:
    """A future that never finishes (``wait`` on it times out) or is cancelled."""

    def __init__(self, cancelled: BaseException | None = None) -> None:
        self.cancelled = cancelled
        self.status = "pending"


def test_scheduler_lost_reads_the_client_state_without_a_round_trip():
    client = _Client(3)
    assert not scheduler_lost(client)
    client.status = "connecting"  # the client noticed the broken connection and tries to reconnect
    assert scheduler_lost(client)
    assert client.asked == 0


def test_check_raises_the_clear_errors_and_waits_a_grace_for_a_worker():
    client = _Client(3)
    health = ClusterHealth.started(client)
    assert health.n_workers_at_start == 3
    health.check(doing="testing")  # healthy: nothing
    client.n = 0
    started = time.monotonic()
    with pytest.raises(
        NoWorkersLeftError,
        match=rf"No worker is left in the cluster at {ADDRESS}: all 3 worker\(s\) the computation started with "
        r"were lost while testing and none joined within 0.3 s\. Check the workers' logs",
    ) as raised:
        health.check(doing="testing", grace_s=0.3)
    assert time.monotonic() - started >= 0.3
    assert raised.value.n_lost == 3
    assert "pass checkpoint=PATH" in str(raised.value)
    client.status = "closed"
    with pytest.raises(SchedulerLostError, match=rf"The scheduler at {ADDRESS} is gone") as lost:
        health.check(doing="testing")
    assert lost.value.address == ADDRESS
    assert isinstance(lost.value, ConnectionError)


def test_explain_tells_what_the_cluster_state_says_and_nothing_on_a_healthy_cluster():
    client = _Client(2)
    health = ClusterHealth(client)
    internal = TypeError("'int' object is not subscriptable")
    assert health.explain(internal, doing="fitting") is None
    client.n = 0
    assert isinstance(health.explain(internal, doing="fitting"), NoWorkersLeftError)
    client.status = "connecting"
    assert isinstance(health.explain(internal, doing="fitting"), SchedulerLostError)
    # the cancellation reason of a future tells it even before the client's state changes
    client.status, client.n = "running", 2
    cancelled = CancelledError("x cancelled for reason: scheduler-connection-lost.")
    assert isinstance(health.explain(cancelled, doing="fitting"), SchedulerLostError)


def test_a_fit_context_replaces_the_error_that_surfaced_and_names_the_checkpoint():
    client = _Client(2, status="connecting")
    with (
        pytest.raises(
            SchedulerLostError, match=r"the same call with checkpoint='fit.ckpt' resumes"
        ) as raised,
        explain_cluster_failures(client, doing="fitting X", checkpoint="fit.ckpt"),
    ):
        raise KeyError("some internal key")
    assert isinstance(raised.value.__cause__, KeyError)
    client.status = "running"
    with pytest.raises(KeyError), explain_cluster_failures(client, doing="fitting X"):
        raise KeyError("a healthy cluster: the error is the fit's own")
    with pytest.raises(KeyError), explain_cluster_failures(None, doing="fitting X"):
        raise KeyError("no cluster: nothing to explain")


def test_stopped_error_says_where_the_fit_stopped():
    health = ClusterHealth(_Client(1, status="closed"))
    err = health.scheduler_lost_error("waiting for the loss")
    told = stopped_error(err, stopped="the lbfgs solver stopped at iteration 7", checkpoint="ck")
    assert type(told) is SchedulerLostError
    assert told.address == ADDRESS
    assert str(told).startswith(
        f"The scheduler at {ADDRESS} is gone (the client lost its connection while waiting for the loss); the "
        "lbfgs solver stopped at iteration 7. The workers' data went with it"
    )
    assert str(told).endswith(
        "the same call with checkpoint='ck' resumes where its last checkpoint left off."
    )


def test_wait_for_stops_at_once_when_the_scheduler_is_gone(monkeypatch):
    import daskml_lab._runtime.waiting as waiting

    def wait(futures, timeout):
        time.sleep(min(timeout, 0.01))
        for future in futures:
            if future.cancelled is not None:
                raise future.cancelled
        raise TimeoutError

    monkeypatch.setattr(waiting, "wait", wait)
    client = _Client(2, status="connecting")
    started = time.monotonic()
    with pytest.raises(SchedulerLostError, match="while waiting for the blocks"):
        wait_for([_Pending()], what="the blocks", client=client, timeout_s=600)
    # no worker left: after the grace, not after the 600 s timeout
    monkeypatch.setattr(waiting, "NO_WORKER_GRACE_S", 0.2)
    client.status, client.n = "running", 0
    with pytest.raises(
        NoWorkersLeftError, match=r"while waiting for the blocks and none joined within 0\.2 s"
    ):
        wait_for([_Pending()], what="the blocks", client=client, timeout_s=600)
    # futures cancelled because the client lost its scheduler: not "data were lost with a worker"
    client.n = 2
    cancelled = CancelledError("k cancelled for reason: scheduler-connection-lost.")
    with pytest.raises(SchedulerLostError):
        wait_for([_Pending(cancelled)], what="the blocks", client=client, timeout_s=600)
    assert time.monotonic() - started < 30


def test_a_lost_data_error_says_how_many_workers_were_lost():
    from daskml_lab._runtime.waiting import lost_data_error

    client = _Client(3)
    health = ClusterHealth.started(client)
    assert health.lost_summary() == ""
    client.n = 1
    message = str(lost_data_error("the blocks", RuntimeError("cancelled"), health))
    assert "cannot be computed again" in message
    assert "2 of the 3 workers the computation started with were lost." in message
