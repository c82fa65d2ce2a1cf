"""The runtime floor: the memory plan from explicit inputs, waits with clear errors, the worker watch, files."""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Event

from daskml_lab._runtime.checkpoint_files import (
    CheckpointError,
    atomic_write,
    load_arrays,
    lock_checkpoint_directory,
    open_checkpoint_directory,
    read_verified,
    save_arrays,
)
from daskml_lab._runtime.client import cluster_timeout_s, current_client, worker_address
from daskml_lab._runtime.memory import (
    WorkerMemory,
    block_room,
    dense_nbytes,
    free_memory,
    plan_memory,
    resolve_persist,
)
from daskml_lab._runtime.waiting import DataLostError, result_within, wait_briefly, wait_for
from daskml_lab._runtime.watch import WorkersLost, WorkerWatch, require_a_worker
from daskml_lab.exceptions import NoWorkersLeftError

GB = 1e9
LOGGER = logging.getLogger("daskml_lab.tests.runtime")


def _plan(nbytes, workers, persist="auto", *, sparse=False, **options):
    return plan_memory(
        nbytes=nbytes,
        sparse=sparse,
        persist=persist,
        config_key="daskml_lab.solvers.persist",
        workers=workers,
        subject="the data",
        streaming="streaming the blocks",
        logger=LOGGER,
        **options,
    )


# -- the memory plan -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nbytes", "used", "persist"),
    [
        (1.0 * GB, 0.0, True),  # 1 GB <= 0.5 * (2 * 0.7 * 4 GB) = 2.8 GB
        (2.8 * GB, 0.0, True),  # the boundary is kept
        (2.81 * GB, 0.0, False),
    ],
)
def test_auto_decides_from_the_workers_free_memory_below_spill(nbytes, used, persist, caplog):
    workers = (WorkerMemory(4 * GB, used),) * 2
    with caplog.at_level(logging.DEBUG, logger=LOGGER.name):
        plan = _plan(nbytes, workers)
    assert plan.persist is persist
    assert plan.room == pytest.approx(2 * 0.7 * 4 * GB)
    if persist:
        assert "Persisting the data" in caplog.text
    else:
        assert "Not persisting the data" in caplog.text
        assert "more than 0.5 of the workers' free memory (5.60 GB)" in caplog.text
        assert "streaming the blocks" in caplog.text
        assert "'daskml_lab.solvers.persist' to True to persist anyway" in caplog.text


def test_memory_in_use_reduces_the_room():
    idle = (WorkerMemory(4 * GB, 0.0),) * 2
    busy = (WorkerMemory(4 * GB, 2.5 * GB),) * 2  # 0.3 GB left below spill on each
    assert _plan(1 * GB, idle).persist
    plan = _plan(1 * GB, busy)
    assert not plan.persist
    assert plan.room == pytest.approx(2 * (0.7 * 4 - 2.5) * GB)


def test_the_fraction_is_an_explicit_input_and_a_config_key():
    workers = (WorkerMemory(4 * GB, 0.0),)
    assert _plan(1 * GB, workers).persist
    assert not _plan(1 * GB, workers, fraction=0.1).persist
    with dask.config.set({"daskml_lab.memory.persist_fraction": 0.1}):
        plan = _plan(1 * GB, workers)
    assert not plan.persist
    assert plan.reason.startswith("more than 0.1 of")


def test_without_workers_the_available_memory_decides():
    assert _plan(1 * GB, (), available=3 * GB).persist
    plan = _plan(2 * GB, (), available=3 * GB)
    assert not plan.persist
    assert "this machine's free memory (3.00 GB)" in plan.reason


def test_sparse_data_are_kept_under_auto():
    plan = _plan(100 * GB, (WorkerMemory(1 * GB, 0.0),), sparse=True)
    assert plan.persist
    assert plan.reason == "sparse blocks are always kept"


def test_explicit_settings_win_and_are_logged(caplog):
    workers = (WorkerMemory(4 * GB, 0.0),)
    with caplog.at_level(logging.DEBUG, logger=LOGGER.name):
        assert _plan(100 * GB, (), persist=False).persist is False
        assert _plan(0.1 * GB, workers, persist=True).persist is True
    assert "Not persisting the data (100.00 GB dense): persist=False set explicitly" in caplog.text
    assert "Persisting the data (0.10 GB dense): persist=True set explicitly" in caplog.text
    assert "streaming the blocks" not in caplog.text  # the reason is the setting, not the memory


def test_forced_persist_beyond_the_workers_is_refused():
    workers = (WorkerMemory(1 * GB, 0.0),) * 2  # 1.9 GB below terminate (0.95)
    with pytest.raises(
        ValueError,
        match=r"dask.config daskml_lab.solvers.persist=True, but the data \(2.00 GB dense\) exceed the free "
        r"memory of the 2 workers \(1.90 GB below their memory_limit\)",
    ):
        _plan(2 * GB, workers, persist=True)
    assert _plan(1.8 * GB, workers, persist=True).persist


def test_free_memory_and_block_room():
    workers = [WorkerMemory(1000, 100), WorkerMemory(2000, 0)]
    assert free_memory(workers, "spill") == pytest.approx(0.7 * 1000 - 100 + 0.7 * 2000)
    with dask.config.set({"distributed.worker.memory.spill": False}):
        assert free_memory(workers, "spill") == pytest.approx(900 + 2000)  # no threshold: the limit
    assert block_room(workers) == pytest.approx(0.95 * 2000)
    assert block_room([]) == float("inf")
    assert free_memory([], "spill", available=123.0) == 123.0


def test_dense_nbytes_counts_every_array():
    X = da.zeros((1000, 10), dtype=np.float32, chunks=100)
    y = da.zeros((1000,), dtype=np.int64, chunks=100)
    assert dense_nbytes(X, y, None) == 1000 * 10 * 4 + 1000 * 8


@pytest.mark.parametrize(
    ("value", "from_config", "match"),
    [
        ("yes", False, r"^persist must be 'auto', True or False, got 'yes'\.$"),
        ("yes", True, r"^dask.config key 'daskml_lab.solvers.persist' must be 'auto', True or False"),
    ],
)
def test_resolve_persist_names_where_a_bad_setting_came_from(value, from_config, match):
    with dask.config.set({"daskml_lab.solvers.persist": value}), pytest.raises(ValueError, match=match):
        resolve_persist(None if from_config else value, "daskml_lab.solvers.persist")
    for good in ("auto", True, False):
        assert resolve_persist(good, "daskml_lab.solvers.persist") is good


# -- the client, waits and the watch ------------------------------------------------------------------------


def test_local_schedulers_have_no_client(client):
    assert current_client() is client
    with dask.config.set(scheduler="sync"):
        assert current_client() is None
    assert worker_address() is None
    assert client.submit(lambda: worker_address()).result() in client.scheduler_info()["workers"]
    with dask.config.set({"daskml_lab.solvers.timeout_s": 12}):
        assert cluster_timeout_s() == 12.0


def _wait_on(name: str) -> int:
    Event(name).wait()
    return 1


def test_wait_for_times_out_with_a_clear_message(client):
    event = Event("daskml-test-runtime-block")
    future = client.submit(_wait_on, "daskml-test-runtime-block", pure=False)
    try:
        with pytest.raises(
            TimeoutError,
            match=r"Timed out after 0.2 s waiting for the thing on the cluster at tcp://127.0.0.1:\d+\. Check "
            r"that the workers are alive .* \(dask.config daskml_lab.solvers.timeout_s\)",
        ):
            wait_for([future], what="the thing", client=client, timeout_s=0.2)
    finally:
        event.set()
    wait_for([future], what="the thing", client=client, timeout_s=30)
    assert future.result() == 1


@pytest.mark.parametrize("poll", ["wait_briefly", "result_within"])
def test_a_poll_that_ran_out_of_time_keeps_no_future_alive(client, poll):
    # distributed keeps the TimeoutError of a poll in a reference cycle with its own frames, and its traceback
    # reached the polling frame: the futures of that frame (a pass, the rows of a fit) stayed wanted, and their
    # tasks stayed on the scheduler, until the garbage collector ran (a later fit then found them there)
    name = f"daskml-test-runtime-poll-{poll}"

    def polled() -> str:
        future = client.submit(_wait_on, name, pure=False)
        if poll == "wait_briefly":
            assert not wait_briefly([future], 0.05)  # the task waits for the event: the time runs out
        else:
            with pytest.raises(TimeoutError, match="the blocked task"):
                result_within(future, what="the blocked task", client=client, timeout_s=0.05)
        Event(name).set()
        assert future.result() == 1
        return future.key

    was_enabled = gc.isenabled()
    gc.disable()  # only reference counts free the futures: what the cycle collector would hide
    try:
        key = polled()
        # the client forgets a released future on its event loop, soon after; held, it would never be
        deadline = time.monotonic() + 30
        while key in client.futures and time.monotonic() < deadline:
            time.sleep(0.05)
        assert key not in client.futures
    finally:
        if was_enabled:
            gc.enable()


def _fail() -> None:
    msg = "the task's own error"
    raise ValueError(msg)


def test_wait_for_raises_the_tasks_own_error(client):
    future = client.submit(_fail, pure=False)
    with pytest.raises(ValueError, match="the task's own error"):
        wait_for([future], what="a failing task", client=client, timeout_s=30)


def test_data_lost_for_good_is_a_clear_error(client):
    # the scheduler cancels what it cannot compute again; cancelling by hand has the same effect on the wait
    scattered = client.scatter(np.arange(3))
    client.cancel([scattered])
    with pytest.raises(DataLostError, match="lost with a worker and cannot be computed again"):
        wait_for([scattered], what="the scattered block", client=client, timeout_s=30)


class _FakeClient:
    """A client whose scheduler knows the workers it is told to know."""

    def __init__(self, workers):
        self.workers = set(workers)
        self.asked = 0
        self.scheduler = type(
            "Scheduler",
            (),
            {"address": "tcp://127.0.0.1:1", "identity": lambda _, n_workers=-1: self.scheduler_info()},
        )()

    def scheduler_info(self, n_workers=-1):
        self.asked += 1
        return {"workers": {address: {} for address in self.workers}, "n_workers": len(self.workers)}

    def sync(self, func, **kwargs):  # what the watch awaits: the scheduler's identity RPC
        return func(**kwargs)

    def wait_for_workers(self, n, timeout):
        time.sleep(0.01)
        raise TimeoutError


def test_the_watch_raises_when_a_pinned_worker_leaves():
    fake = _FakeClient({"tcp://a", "tcp://b"})
    watch = WorkerWatch(fake, interval_s=60)
    watch.check(["tcp://a", None])
    watch.check(["tcp://b"])
    assert fake.asked == 1  # asked once within the interval
    fake.workers.discard("tcp://a")
    watch.check(["tcp://a"])  # the cached answer still has it
    with pytest.raises(WorkersLost, match=r"worker\(s\) \['tcp://a'\] left the cluster while fitting"):
        watch.check(["tcp://a", "tcp://b"], max_age_s=0.0, during="while fitting")
    assert isinstance(WorkersLost("x"), OSError)  # engines retry on OSError


def test_no_worker_left_is_a_clear_error():
    with pytest.raises(
        NoWorkersLeftError, match=r"No worker is left in the cluster at tcp://127.0.0.1:1: .* worker to fit"
    ):
        require_a_worker(_FakeClient(()), grace_s=0.01, doing="fit")
    require_a_worker(_FakeClient({"tcp://a"}), grace_s=0.01, doing="fit")


def test_the_watch_waits_for_pinned_work(client):
    watch = WorkerWatch(client, interval_s=0.05)
    event = Event("daskml-test-runtime-watch")
    future = client.submit(_wait_on, "daskml-test-runtime-watch", pure=False)
    timer = threading.Timer(0.3, event.set)
    timer.start()
    try:
        assert watch.gather([future], list(client.scheduler_info()["workers"]), what="the work") == [1]
    finally:
        timer.cancel()
        event.set()
    gone = ["tcp://127.0.0.1:9"]  # never a worker of this cluster
    blocked = client.submit(_wait_on, "daskml-test-runtime-watch-2", pure=False)
    try:
        with pytest.raises(WorkersLost, match="left the cluster while waiting for the work"):
            watch.wait([blocked], gone, what="the work")
    finally:
        Event("daskml-test-runtime-watch-2").set()


# -- checkpoint files ---------------------------------------------------------------------------------------


def test_files_are_written_atomically_and_read_back_verified(tmp_path):
    path = tmp_path / "state.npz"
    checksum, n_bytes = save_arrays(path, {"W": np.arange(6.0).reshape(3, 2)})
    assert path.stat().st_size == n_bytes
    np.testing.assert_array_equal(
        load_arrays(path, checksum, what="state")["W"], np.arange(6.0).reshape(3, 2)
    )
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    atomic_write(path, bytes(damaged))
    with pytest.raises(CheckpointError, match=r"The state .*state.npz' is corrupt: its SHA-256 checksum"):
        read_verified(path, checksum, what="state")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises((CheckpointError, ValueError)):
        load_arrays(path, checksum, what="file")


def test_a_directory_belongs_to_one_fit(tmp_path):
    with lock_checkpoint_directory(tmp_path):
        first = open_checkpoint_directory(tmp_path, owner="Model", fingerprint={"C": 1.0}, state={"root": 7})
    with lock_checkpoint_directory(tmp_path):
        again = open_checkpoint_directory(tmp_path, owner="Model", fingerprint={"C": 1.0}, state={"root": 8})
    assert (first["resumed"], again["resumed"]) == (False, True)
    assert again["state"] == {"root": 7}
    assert again["id"] == first["id"]
    with (
        lock_checkpoint_directory(tmp_path),
        pytest.raises(
            CheckpointError, match=r"belongs to another fit \(Model\); what differs: fingerprint.C"
        ),
    ):
        open_checkpoint_directory(tmp_path, owner="Model", fingerprint={"C": 2.0})
    # every writer holds the lock: opening the directory without it is a programming error
    with pytest.raises(RuntimeError, match=r"written without holding its lock"):
        open_checkpoint_directory(tmp_path, owner="Model", fingerprint={"C": 1.0})
