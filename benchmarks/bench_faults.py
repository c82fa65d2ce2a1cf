"""Benchmark: what each estimator family does when the cluster fails under it (issue 16's fault table).

Every scenario runs on a fresh cluster of its own, started by this script on 127.0.0.1 only: ``dask scheduler``
and 3 ``dask worker --no-nanny`` processes (1 thread, 2 GiB each; a killed worker never comes back). The fit
runs in a child process of this script (so that a fit that hangs is stopped after ``--cap-s`` seconds and its
cluster with it). The fault comes at a known point of the fit: right after iteration 5 (``lbfgs``) or epoch 2
(``sgd``, ``async-sgd``) of the solver, or as soon as the first shard task of the ensemble or the cascade has
finished. Each family's undisturbed fit is measured first, on its own fresh cluster. Faults:

- ``sigstop-one``: one worker paused (SIGSTOP) for the rest of the fit (a straggler; resumed afterwards);
- ``kill-two``: two of the three workers killed (SIGKILL);
- ``kill-scheduler``: the scheduler killed (SIGKILL);
- ``kill-all``: the three workers killed (SIGKILL).

Families: shard ensemble (soft voting of 16 logistic regressions), Cascade SVM, and ``LogisticRegression``
with the ``lbfgs``, ``sgd`` and ``async-sgd`` solvers, on lazy synthetic data (every block can be computed
again from its lineage). The script prints a markdown table: outcome (completed, with the result equal to the
undisturbed one or not, or the error's type and the start of its message) and the time from the fault to the
outcome. The package's cluster timeout (``daskml_lab.solvers.timeout_s``) is set to ``--timeout-s``.

Usage::

    python benchmarks/bench_faults.py                                # every family x fault (20-40 minutes)
    python benchmarks/bench_faults.py --family lbfgs --fault kill-two
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FAMILIES = ("shard-ensemble", "cascade", "lbfgs", "sgd", "async-sgd")
FAULTS = ("sigstop-one", "kill-two", "kill-scheduler", "kill-all")
#: Solver families: the fault comes right after this iteration (an epoch for the stochastic solvers).
AFTER_ITERATION = {"lbfgs": 5, "sgd": 2, "async-sgd": 2}
REPO_ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------
# the cluster


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dask(name: str) -> list[str]:
    executable = Path(sys.executable).with_name("dask")
    return (
        [str(executable), name]
        if executable.exists()
        else [sys.executable, "-m", "distributed.cli.dask_" + name]
    )


def start_cluster(logs: Path, n_workers: int = 3) -> tuple[str, subprocess.Popen, list[subprocess.Popen]]:
    """`dask scheduler` and ``n_workers`` `dask worker --no-nanny` processes on 127.0.0.1 (a free port)."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    scheduler = subprocess.Popen(
        [*_dask("scheduler"), "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=(logs / "scheduler.log").open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    workers = [
        subprocess.Popen(
            [
                *_dask("worker"),
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--memory-limit",
                "2GiB",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                f"fault-{index}",
            ],
            stdout=(logs / f"worker-{index}.log").open("w"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        for index in range(n_workers)
    ]
    with Client(address, timeout=60) as probe:
        probe.wait_for_workers(n_workers, timeout=120)
    return address, scheduler, workers


def stop_cluster(scheduler: subprocess.Popen, workers: list[subprocess.Popen]) -> None:
    for process in [*workers, scheduler]:
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
                process.terminate()
            except ProcessLookupError:
                pass
    for process in [*workers, scheduler]:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


# ---------------------------------------------------------------------------------------------------------
# the families


def make_family(family: str) -> tuple[Any, Any, Any, Any]:
    """``(estimator, X, y, X_test)``: lazy synthetic data and a fresh estimator of ``family``."""
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    from daskml_lab.data import make_classification
    from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
    from daskml_lab.linear_model import LogisticRegression

    if family == "cascade":
        X, y = make_classification(12_500, 10, n_informative=6, chunks=500, random_state=0)
        return CascadeSVC(C=1.0, random_state=0), X[:12_000], y[:12_000], X[12_000:].compute()
    # sizes chosen for fits of 10-30 s on 3 single-threaded workers (the fault lands in the solver's loop)
    n_rows = 400_000 if family in ("sgd", "async-sgd") else 1_000_000
    X, y = make_classification(n_rows, 20, n_informative=10, chunks=n_rows // 20, random_state=0)
    X_test = X[:2_000].compute()
    if family == "shard-ensemble":
        model = ShardEnsembleClassifier(
            SkLogisticRegression(max_iter=1_000), fusion="soft-voting", n_shards=16, random_state=0
        )
    elif family == "lbfgs":
        model = LogisticRegression(solver="lbfgs", tol=1e-8, max_iter=200, random_state=0)
    elif family == "sgd":
        model = LogisticRegression(solver="sgd", tol=1e-6, max_iter=10, random_state=0)
    elif family == "async-sgd":
        model = LogisticRegression(
            solver="async-sgd",
            max_iter=10,
            random_state=0,
            solver_options={"batch_size": 256, "local_steps": 16},
        )
    else:
        msg = f"unknown family {family!r}; choose from {FAMILIES}"
        raise ValueError(msg)
    return model, X, y, X_test


def fingerprint(family: str, model: Any, X_test: Any) -> list[float]:
    """What two fits of ``family`` must agree on: coefficients, or the test predictions' probabilities."""
    import numpy as np

    if family in ("lbfgs", "sgd", "async-sgd"):
        return np.concatenate([model.coef_.ravel(), np.ravel(model.intercept_)]).tolist()
    if family == "cascade":
        return np.asarray(model.decision_function(X_test), dtype=float).ravel().tolist()
    return np.asarray(model.predict_proba(X_test), dtype=float).ravel().tolist()


# ---------------------------------------------------------------------------------------------------------
# one scenario (in a child process)


def _inject(fault: str, client: Any, scheduler: subprocess.Popen, workers: list[subprocess.Popen]) -> None:
    if fault == "kill-scheduler":
        scheduler.send_signal(signal.SIGKILL)
        return
    pids = client.run(os.getpid)  # worker address -> process id (no nanny: the worker process itself)
    victims = sorted(pids)
    if fault == "sigstop-one":
        os.kill(pids[victims[0]], signal.SIGSTOP)
    elif fault == "kill-two":
        for address in victims[:2]:
            os.kill(pids[address], signal.SIGKILL)
    elif fault == "kill-all":
        for address in victims:
            os.kill(pids[address], signal.SIGKILL)
    else:
        msg = f"unknown fault {fault!r}; choose from {FAULTS}"
        raise ValueError(msg)


@contextlib.contextmanager
def _fault_point(family: str, client: Any, fire: Callable[[], None]) -> Iterator[None]:
    """Call ``fire`` at a known point of the fit: after iteration AFTER_ITERATION of a solver, or once the
    first shard task of an ensemble or the cascade has finished (seen from a thread polling the scheduler)."""
    if family in AFTER_ITERATION:
        from daskml_lab.solvers import _common

        original = _common.History.add

        def add(self: Any, **kwargs: Any) -> Any:
            stop = original(self, **kwargs)
            if len(self.records) == AFTER_ITERATION[family] and not fired.is_set():
                fired.set()
                fire()
            return stop

        fired = threading.Event()
        _common.History.add = add
        try:
            yield
        finally:
            _common.History.add = original
        return
    prefix = "daskml-cascade-fit" if family == "cascade" else "daskml-shard-fit"
    done = threading.Event()

    def name(key: Any) -> str:
        return str(key[0] if isinstance(key, tuple) else key)

    def watch() -> None:
        seen: set[Any] = set()
        while not done.is_set():
            try:
                processing = client.processing()
            except Exception:  # the client is closing
                return
            running = {k for keys in processing.values() for k in keys if name(k).startswith(prefix)}
            if seen - running:  # a shard task seen running has finished
                fire()
                return
            seen |= running
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(10)


def run_scenario(family: str, fault: str, timeout_s: float) -> dict[str, Any]:
    """Fit ``family`` on a fresh cluster, injecting ``fault`` at a known point (``"none"``: no fault)."""
    import dask
    from distributed import Client

    logs = Path(tempfile.mkdtemp(prefix=f"faults-{family}-{fault}-"))
    address, scheduler, workers = start_cluster(logs)
    injected: list[float] = []
    try:
        with (
            Client(address, timeout=30) as client,
            dask.config.set({"daskml_lab.solvers.timeout_s": timeout_s}),
        ):
            model, X, y, X_test = make_family(family)

            def fire() -> None:
                try:
                    _inject(fault, client, scheduler, workers)
                finally:
                    injected.append(time.monotonic())

            trigger = contextlib.nullcontext() if fault == "none" else _fault_point(family, client, fire)
            started = time.monotonic()
            try:
                with trigger, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(X, y)
                ended = time.monotonic()
                result = {"outcome": "completed", "fingerprint": fingerprint(family, model, X_test)}
            except Exception as err:  # the outcome measured: which error, how soon
                ended = time.monotonic()
                result = {"outcome": "error", "error": f"{type(err).__name__}: {err}"}
            result["fit_s"] = ended - started
            result["after_fault_s"] = ended - injected[0] if injected else None
            result["fault_injected"] = bool(injected)
            return result
    finally:
        stop_cluster(scheduler, workers)


# ---------------------------------------------------------------------------------------------------------
# the table (in the parent process)


def _child(family: str, fault: str, timeout_s: float, cap_s: float) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--family",
        family,
        "--fault",
        fault,
        "--timeout-s",
        str(timeout_s),
    ]
    # A session of its own: on a hang, the child and its cluster are stopped together.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=cap_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGCONT)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"outcome": "hang", "error": f"no outcome within {cap_s:g} s"}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        return {"outcome": "crash", "error": (err.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1])


def _same(a: list[float], b: list[float], family: str) -> bool:
    import numpy as np

    a_, b_ = np.asarray(a), np.asarray(b)
    if a_.shape != b_.shape:
        return False
    if family in ("sgd", "async-sgd"):  # mini-batch noise: the same model to a tenth of its largest weight
        return bool(np.allclose(a_, b_, atol=0.1 * np.abs(b_).max()))
    return bool(np.allclose(a_, b_, rtol=1e-6, atol=1e-9))


def _describe(result: dict[str, Any], reference: dict[str, Any], family: str) -> tuple[str, str]:
    outcome = result["outcome"]
    if outcome == "completed":
        same = _same(result["fingerprint"], reference.get("fingerprint", []), family)
        text = "completed, " + ("same result" if same else "**different result**")
    elif outcome == "error":
        text = "error: " + result["error"].replace("|", "/").replace("\n", " ")[:160]
    else:
        text = f"{outcome}: {result['error']}"
    after = result.get("after_fault_s")
    time_text = "-" if after is None else f"{after:.1f} s (fit {result['fit_s']:.1f} s)"
    return text, time_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=FAMILIES, help="repeatable; default: all")
    parser.add_argument(
        "--fault", action="append", choices=(*FAULTS, "none"), help="repeatable; default: all"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=120.0, help="daskml_lab.solvers.timeout_s (default 120)"
    )
    parser.add_argument(
        "--cap-s", type=float, default=240.0, help="a scenario without outcome by then is a hang"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = run_scenario(args.family[0], args.fault[0], args.timeout_s)
        print(json.dumps(result))
        return 0
    families = args.family or list(FAMILIES)
    faults = args.fault or list(FAULTS)
    rows = []
    for family in families:
        reference = _child(family, "none", args.timeout_s, args.cap_s)
        if reference["outcome"] != "completed":
            print(f"{family}: the undisturbed fit failed: {reference}", file=sys.stderr)
            continue
        print(f"{family}: undisturbed fit {reference['fit_s']:.1f} s", file=sys.stderr)
        for fault in faults:
            result = _child(family, fault, args.timeout_s, args.cap_s)
            if result.get("outcome") in ("completed", "error") and not result.get("fault_injected"):
                result["outcome"], result["error"] = "skipped", "the fit ended before the fault"
            text, time_text = _describe(result, reference, family)
            print(f"  {fault}: {text} [{time_text}]", file=sys.stderr)
            rows.append((family, f"{reference['fit_s']:.1f} s", fault, text, time_text))
    print("| family | undisturbed fit | fault | outcome | time from fault to outcome |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
