"""One writer per checkpoint directory: a second fit gets a clear error; a killed holder frees the directory.

Fits racing on one directory run in real processes. The outcome never depends on timing: a fit that gets the
lock pauses after its first iteration (it waits for a line on its stdin) while the other tries, so exactly one
proceeds and the other fails, whichever starts first. Then: every entry point (linear models, shard ensembles,
Cascade SVM, solvers run directly) refuses a directory locked by another process; a holder killed with
``SIGKILL`` leaves the directory usable (the operating system drops its lock) and its half-written temporary
files are removed; the lock is released when a fit fails or is interrupted; temporary files carry the
writer's process id and a random part and a writer never removes another's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from daskml_lab._runtime import checkpoint_files
from daskml_lab._runtime.checkpoint_files import atomic_write, check_directory, lock_checkpoint_directory
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.linear_model import Ridge
from daskml_lab.solvers import BlockedProblem, CheckpointError, SolverCheckpoint, _common, get_solver
from daskml_lab.testing import raise_if_computes

REPO_ROOT = Path(__file__).resolve().parents[1]

# A Ridge fit with a checkpoint that pauses after its first iteration, holding the directory's lock, until
# it reads a line on stdin; argv: directory, alpha.
PAUSED_FIT = textwrap.dedent(
    """
    import json, sys
    import dask
    import dask.array as da
    import numpy as np
    from daskml_lab.linear_model import Ridge
    from daskml_lab.solvers import _common

    original_add = _common.History.add

    def add(self, **record):
        stop = original_add(self, **record)
        if len(self.records) == 1:
            print("holding", flush=True)
            sys.stdin.readline()
        return stop

    _common.History.add = add
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=400)
    model = Ridge(alpha=float(sys.argv[2]), solver="gd", tol=1e-6, max_iter=50, checkpoint=sys.argv[1])
    with dask.config.set(scheduler="sync"):
        model.fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100))
    print("done", json.dumps(model.coef_.tolist()), flush=True)
    """
)

# Holds the lock of a directory until it reads a line on stdin; argv: directory.
HOLDER = textwrap.dedent(
    """
    import sys
    from daskml_lab._runtime.checkpoint_files import lock_checkpoint_directory

    with lock_checkpoint_directory(sys.argv[1]):
        print("holding", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)

# Takes the lock of a directory and releases it at once; argv: directory.
TAKE_LOCK = "import sys\nfrom daskml_lab._runtime.checkpoint_files import lock_checkpoint_directory\n" + (
    "with lock_checkpoint_directory(sys.argv[1]):\n    print('locked', flush=True)\n"
)

IN_USE = r"is in use by another fit \(process {pid} on host '[^']+', started \d{{4}}-\d\d-\d\dT[^)]*\)"


def _start(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=60)


@pytest.fixture
def held(tmp_path):
    """A checkpoint directory whose lock another process holds (yields the directory and that process)."""
    directory = tmp_path / "ckpt"
    process = _start(HOLDER, str(directory))
    try:
        assert process.stdout.readline() == "holding\n", process.communicate()[1][-3000:]
        yield directory, process
    finally:
        _stop(process)


def _data(n_rows=400, classes=False):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n_rows, 4))
    y = (X[:, 0] > 0).astype(int) if classes else X @ np.array([1.0, -2.0, 0.5, 0.0])
    return da.from_array(X, chunks=100), da.from_array(y, chunks=100)


def test_two_fits_racing_on_one_directory_exactly_one_proceeds(tmp_path):
    directory = tmp_path / "ckpt"
    # different parameters: without the lock both could pass the manifest check before either wrote it
    first, second = _start(PAUSED_FIT, str(directory), "1.0"), _start(PAUSED_FIT, str(directory), "2.0")
    try:
        # the loser fails at once; the winner pauses after its first iteration, holding the lock (polling
        # only waits for the loser to finish: the outcome does not depend on it)
        deadline = time.monotonic() + 180
        while first.poll() is None and second.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        loser = first if first.poll() is not None else second
        winner = second if loser is first else first
        assert loser.poll() is not None, "neither fit finished within 180 s"
        out, err = loser.communicate(timeout=60)
        assert loser.returncode == 1, err[-3000:]
        assert "CheckpointError" in err
        assert re.search(IN_USE.format(pid=winner.pid), err), err[-3000:]
        assert f"{os.fspath(directory)!r}" in err
        assert "Wait for that fit to finish (or stop it), or give this fit another checkpoint path" in err
        assert "FileNotFoundError" not in err
        assert winner.stdout.readline() == "holding\n"
        out, err = winner.communicate("\n", timeout=120)
        assert winner.returncode == 0, err[-3000:]
        assert out.startswith("done")
    finally:
        _stop(first)
        _stop(second)
    manifest = json.loads((directory / "checkpoint.json").read_text())
    alpha = 1.0 if winner is first else 2.0
    assert manifest["fingerprint"]["alpha"] == alpha  # the winner's, untouched by the loser
    assert not list(directory.glob(".*.tmp"))


def _solver_run(directory):
    X, y = _data()
    with dask.config.set(scheduler="sync"), BlockedProblem(X, y, loss="squared") as problem:
        get_solver("gd")(problem, checkpoint=SolverCheckpoint(directory))


#: A fit through each entry point that takes a checkpoint.
_ENTRY_POINTS = {
    "Ridge": lambda directory: Ridge(solver="gd", checkpoint=directory).fit(*_data()),
    "ShardEnsembleClassifier": lambda directory: ShardEnsembleClassifier(
        DecisionTreeClassifier(), checkpoint=directory
    ).fit(*_data(classes=True)),
    "CascadeSVC": lambda directory: CascadeSVC(n_shards=2, random_state=0, checkpoint=directory).fit(
        *_data(classes=True)
    ),
    "solver": _solver_run,
}


@pytest.mark.parametrize("entry", sorted(_ENTRY_POINTS))
def test_every_entry_point_refuses_a_directory_another_process_holds(held, entry):
    directory, holder = held
    pattern = IN_USE.format(pid=holder.pid)
    with raise_if_computes(max_computes=0), pytest.raises(CheckpointError, match=pattern):
        _ENTRY_POINTS[entry](directory)
    assert sorted(p.name for p in directory.iterdir()) == ["checkpoint.lock"]  # nothing written
    out, _ = holder.communicate("\n", timeout=60)
    assert out == "released\n"
    with dask.config.set(scheduler="sync"):  # free again: the same fit now runs
        Ridge(solver="gd", tol=1e-2, max_iter=50, checkpoint=directory).fit(*_data())


def test_a_killed_holder_does_not_leave_the_directory_locked(tmp_path):
    directory = tmp_path / "ckpt"
    process = _start(PAUSED_FIT, str(directory), "1.0")
    try:
        assert process.stdout.readline() == "holding\n", process.communicate()[1][-3000:]
        # what a writer killed between creating its temporary file and renaming it leaves behind
        stale = directory / f".solver.json.{process.pid}.k2j4h1.tmp"
        stale.write_bytes(b'{"half": ')
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        _stop(process)
    assert process.returncode == -signal.SIGKILL
    assert json.loads((directory / "checkpoint.lock").read_bytes())["pid"] == process.pid  # last holder
    model = Ridge(alpha=1.0, solver="gd", tol=1e-6, max_iter=50, checkpoint=directory)
    rng = np.random.default_rng(0)  # the subprocess's data: the fit resumes its checkpoint
    X = rng.normal(size=(400, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=400)
    with dask.config.set(scheduler="sync"):
        model.fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100))
    assert model.history_["iteration"].iloc[0] == 1
    assert not stale.exists()  # removed once the lock was taken


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, ValueError])
def test_the_lock_is_released_when_a_fit_fails_or_is_interrupted(tmp_path, monkeypatch, interruption):
    directory = tmp_path / "ckpt"

    def add(self, **record):
        raise interruption("stop")

    monkeypatch.setattr(_common.History, "add", add)
    with dask.config.set(scheduler="sync"), pytest.raises(interruption):
        Ridge(solver="gd", checkpoint=directory).fit(*_data())
    # another process can take the lock now
    process = _start(TAKE_LOCK, str(directory))
    out, err = process.communicate(timeout=120)
    assert (out, process.returncode) == ("locked\n", 0), err[-3000:]


def test_one_thread_at_a_time_and_reentrant_in_the_holding_thread(tmp_path):
    errors = []

    def other_thread():
        try:
            with lock_checkpoint_directory(tmp_path):
                pass
        except CheckpointError as err:
            errors.append(str(err))

    with lock_checkpoint_directory(tmp_path):
        with lock_checkpoint_directory(tmp_path):  # the fit, then its solver runs
            pass
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert f"is in use by another fit (another thread of this process (pid {os.getpid()}))" in errors[0]
    thread = threading.Thread(target=other_thread)  # released: the other thread gets it now
    thread.start()
    thread.join()
    assert len(errors) == 1


def test_temporary_files_are_unique_and_never_touch_another_writers(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    # another writer's temporary file, with this process's id (a different host on a shared file system)
    other = tmp_path / f".state.json.{os.getpid()}.abcdefgh.tmp"
    other.write_bytes(b"theirs")
    replaced = []
    original_replace = os.replace

    def replace(source, destination):
        replaced.append(Path(source).name)
        original_replace(source, destination)

    monkeypatch.setattr(checkpoint_files.os, "replace", replace)
    atomic_write(path, b"one")
    atomic_write(path, b"two")
    pattern = rf"^\.state\.json\.{os.getpid()}\.[a-z0-9_]{{8}}\.tmp$"
    assert all(re.match(pattern, name) for name in replaced), replaced
    assert len(set(replaced)) == 2
    assert other.name not in replaced
    assert path.read_bytes() == b"two"

    def failing(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_files.os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"three")
    # the failed write removed its own temporary file only; checking the directory removes none
    check_directory(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "state.json"]
    assert other.read_bytes() == b"theirs"
