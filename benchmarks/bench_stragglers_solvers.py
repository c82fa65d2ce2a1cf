"""One of three workers paused (SIGSTOP) during a linear-model fit: time against the undisturbed fit.

For each solver (lbfgs, sgd, async-sgd), a ``LogisticRegression`` is fitted twice on a LocalCluster of three
single-threaded worker processes on 127.0.0.1: once undisturbed, and once with one worker paused right after
the first iteration, for the rest of the fit (resumed afterwards). Prints both times, their ratio, the
iterations and the largest coefficient difference. The straggler rule's defaults apply (detection after
``max(5 s, 4 x the median answer time)``, see ``docs/reliability.rst``), so the paused fit pays one detection
delay plus the work of two workers instead of three.

Run: ``python benchmarks/bench_stragglers_solvers.py [--n-samples 400000] [--n-features 50]`` (about a minute
on an idle 2-core machine with the defaults).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
import warnings

import dask
import numpy as np
from distributed import Client, LocalCluster

from daskml_lab.data import make_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.solvers import _common

SOLVERS = {
    "lbfgs": {"solver": "lbfgs", "tol": 1e-8, "max_iter": 100},
    "sgd": {"solver": "sgd", "tol": 1e-6, "max_iter": 20},
    "async-sgd": {"solver": "async-sgd", "tol": 1e-6, "max_iter": 20},
}


def _fit(X, y, params: dict) -> tuple[LogisticRegression, float]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(random_state=0, **params).fit(X, y)
    return model, time.perf_counter() - start


def _paused_fit(client: Client, X, y, params: dict) -> tuple[LogisticRegression, float]:
    """The fit with one worker paused right after the solver's first iteration, resumed at the end."""
    pids = client.run(os.getpid)
    victim = pids[sorted(pids)[1]]
    stopped: list[int] = []
    original = _common.History.add

    def add(self, **kwargs):
        stop = original(self, **kwargs)
        if len(self.records) == 1 and not stopped:
            os.kill(victim, signal.SIGSTOP)
            stopped.append(victim)
        return stop

    _common.History.add = add
    try:
        return _fit(X, y, params)
    finally:
        _common.History.add = original
        if stopped:
            os.kill(victim, signal.SIGCONT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=400_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--n-blocks", type=int, default=24)
    args = parser.parse_args()
    with (
        LocalCluster(
            n_workers=3, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
        dask.config.set({"daskml_lab.solvers.timeout_s": 120}),
    ):
        X, y = make_classification(
            n_samples=args.n_samples,
            n_features=args.n_features,
            chunks=args.n_samples // args.n_blocks,
            random_state=0,
        )
        print(f"{args.n_samples} x {args.n_features}, {args.n_blocks} blocks, 3 workers x 1 thread")
        print(
            f"{'solver':<10} {'undisturbed s':>14} {'paused s':>9} {'ratio':>6} {'n_iter':>9} {'max |dcoef|':>12}"
        )
        for name, params in SOLVERS.items():
            _fit(X, y, params)  # warm-up: imports and the first graph
            reference, undisturbed = _fit(X, y, params)
            model, paused = _paused_fit(client, X, y, params)
            difference = float(np.max(np.abs(model.coef_ - reference.coef_)))
            print(
                f"{name:<10} {undisturbed:>14.2f} {paused:>9.2f} {paused / undisturbed:>6.2f} "
                f"{reference.n_iter_:>4}/{model.n_iter_:<4} {difference:>12.2e}"
            )


if __name__ == "__main__":
    main()
