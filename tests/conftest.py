"""Shared fixtures: real clusters on 127.0.0.1 and the public datasets in ../shared/data."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster

from daskml_lab.cluster import worker_allocator

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DASKML_LAB_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real public datasets; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def shared_file(shared_data: Path, *parts: str) -> Path:
    """Path of one shared dataset file, skipping the test when it is missing."""
    path = shared_data.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset file {path} is absent")
    return path


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    """Two single-threaded worker processes on 127.0.0.1, shared by the whole session (as connect() starts them)."""
    with (
        worker_allocator(),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            memory_limit="2GiB",
        ) as cluster,
    ):
        yield cluster


@pytest.fixture
def client(local_cluster: LocalCluster) -> Iterator[Client]:
    """A client of the session's LocalCluster, set as default for the duration of one test."""
    with Client(local_cluster) as client:
        yield client


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dask_command(name: str) -> list[str]:
    executable = Path(sys.executable).with_name("dask")
    if executable.exists():
        return [str(executable), name]
    found = shutil.which("dask")
    if found is None:
        pytest.skip("the `dask` command-line tool is not installed")
    return [found, name]


#: How long processes started with `dask scheduler` / `dask worker` may take to come up: generous, because a
#: loaded machine (two test runs on 2 cores) took more than 30 s to import and start a preloaded scheduler.
STARTUP_DEADLINE_S = 300.0


def wait_for_processes(address: str, n_workers: int, processes: list[subprocess.Popen], logs: Path) -> None:
    """Wait until the scheduler at ``address`` answers with ``n_workers`` workers; fail at once if one died.

    Polls instead of one long connect so that a process that exited fails the fixture with its logs, not
    after the deadline.
    """
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while True:
        dead = [process.args for process in processes if process.poll() is not None]
        if dead:
            tails = {log.name: log.read_text()[-2000:] for log in sorted(logs.glob("*.log"))}
            raise RuntimeError(f"a cluster process exited during start-up: {dead}; logs: {tails}")
        try:
            with Client(address, timeout=10) as probe:
                probe.wait_for_workers(n_workers, timeout=max(1.0, deadline - time.monotonic()))
            return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise


@pytest.fixture(scope="session")
def external_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and two `dask worker` processes started as subprocesses on 127.0.0.1.

    Yields the scheduler address ``tcp://127.0.0.1:PORT``.
    """
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("external-cluster")
    env = {
        **os.environ,
        # the test modules and their helpers (pytest's pythonpath) are importable there too: functions of a
        # test module are pickled by reference
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO_ROOT), str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")])
        ),
    }
    processes = []
    try:
        processes.append(
            subprocess.Popen(
                [
                    *_dask_command("scheduler"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dashboard-address",
                    "127.0.0.1:0",
                ],
                stdout=(logs / "scheduler.log").open("w"),
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        for index in range(2):
            processes.append(
                subprocess.Popen(
                    [
                        *_dask_command("worker"),
                        address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--memory-limit",
                        "2GiB",
                        "--name",
                        f"external-{index}",
                        "--no-dashboard",
                    ],
                    stdout=(logs / f"worker-{index}.log").open("w"),
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
        wait_for_processes(address, 2, processes, logs)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        deadline = time.monotonic() + 20
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


def default_final_classifier() -> object:
    """Stacking's default final estimator for classes, written out: C chosen by 5-fold CV log-loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(
        LogisticRegression(max_iter=1000), {"C": [0.01, 0.1, 1.0, 10.0]}, cv=5, scoring="neg_log_loss"
    )


class ExternalCluster:
    """`dask scheduler` and `dask worker` subprocesses on 127.0.0.1 (a free port), owned by one test.

    Attributes
    ----------
    address : str
        The scheduler's address.
    scheduler : subprocess.Popen
        The scheduler process (a test may kill it).
    workers : list of subprocess.Popen
        The worker processes; without a nanny, each is the worker itself (a killed one never comes back).
    """

    def __init__(self, logs: Path, n_workers: int = 3, *, nanny: bool = False) -> None:
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")])
            ),
        }
        logs.mkdir(parents=True, exist_ok=True)
        self.scheduler = subprocess.Popen(
            [*_dask_command("scheduler"), "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=(logs / "scheduler.log").open("w"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        worker_options = ["--nthreads", "1", "--memory-limit", "2GiB", "--no-dashboard"]
        self.workers = [
            subprocess.Popen(
                [
                    *_dask_command("worker"),
                    self.address,
                    "--host",
                    "127.0.0.1",
                    *worker_options,
                    "--nanny" if nanny else "--no-nanny",
                    "--name",
                    f"test-{index}",
                ],
                stdout=(logs / f"worker-{index}.log").open("w"),
                stderr=subprocess.STDOUT,
                env=env,
            )
            for index in range(n_workers)
        ]
        try:
            wait_for_processes(self.address, n_workers, [self.scheduler, *self.workers], logs)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process still running (paused ones are resumed first, to act on the signal)."""
        processes = [*self.workers, self.scheduler]
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGCONT)
                    process.terminate()
        # throwaway processes: a worker whose scheduler is gone retries its connection for a while on SIGTERM
        deadline = time.monotonic() + 2
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def external_cluster_factory(tmp_path: Path) -> Iterator[Any]:
    """Start :class:`ExternalCluster` s for one test (``factory(n_workers=3, nanny=False)``); all stopped after it."""
    started: list[ExternalCluster] = []

    def factory(n_workers: int = 3, *, nanny: bool = False) -> ExternalCluster:
        cluster = ExternalCluster(tmp_path / f"cluster-{len(started)}", n_workers, nanny=nanny)
        started.append(cluster)
        return cluster

    try:
        yield factory
    finally:
        for cluster in started:
            cluster.stop()
