"""Benchmark: time for sgd and async-sgd to reach scikit-learn's optimum, against scikit-learn's averaged SGD.

Two L2 logistic regression problems (``C = 1``, intercept), on a LocalCluster of 2 single-threaded worker
processes on 127.0.0.1:

1. **MAGIC gamma telescope** (19,020 x 10, ``/work/shared/data``; skipped when absent), standardised, in 10
   row blocks. The rows come sorted by class, so most blocks hold one class only.
2. **The 2,000,000 x 50 problem of** ``bench_logistic.py`` (``daskml_lab.data.make_classification`` with 20
   informative and 10 redundant features, chunks of 100,000 rows), generated on the workers and persisted.

``f*`` is the lower objective of scikit-learn's ``LogisticRegression(C=1, tol=1e-10)`` (lbfgs, on the data
gathered into this process) and of our lbfgs at ``tol=1e-10``. For each method the table gives the wall time
until the objective is within 1e-3 and 1e-4 (relative) of ``f*``, the iterations (epochs for scikit-learn),
the final gap, the total time and, for ours, whether the solver said it converged (and at what ``tol``).

- ``sgd`` and ``async-sgd`` run with their defaults (variance-reduced steps, ``max_iter=100``) at ``tol=1e-8``
  (measured through a callback, from the solver's call: the step-size estimate and the evaluations the solver
  makes anyway are included), and ``sgd`` once more with ``variance_reduction="none"`` (plain mini-batch SGD,
  the "adaptive" rate) to show what the variance reduction buys.
- scikit-learn's averaged SGD, ``SGDClassifier(loss="log_loss", alpha=1 / (C n), average=True)``: the same
  objective divided by ``C n``. With its default schedule (``"optimal"``, whose first steps are huge when
  ``alpha`` is this small), and with constant rates of 0.01 (best on MAGIC) and 0.001 (best on the --quick
  problem among 1e-2, 1e-3, 1e-4 and the ``"invscaling"`` and ``"adaptive"`` schedules at 0.01). One epoch
  per ``partial_fit`` call on the data in this process, one thread; the objective evaluations between epochs
  are not timed; at most ``--sklearn-epochs`` epochs (100 on MAGIC), fewer once 1e-4 is reached.

Timings depend on what else runs on the machine; rerun on an idle machine for the figures that count.

Usage::

    python benchmarks/bench_stochastic_gap.py            # MAGIC and 2,000,000 x 50 (about four minutes idle)
    python benchmarks/bench_stochastic_gap.py --quick    # MAGIC and 200,000 x 50 (one to two minutes)
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import threadpoolctl
from _cluster import bench_client
from distributed import Client
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.preprocessing import StandardScaler

from daskml_lab.data import make_classification
from daskml_lab.solvers import BlockedProblem, get_solver

GAPS = (1e-3, 1e-4)
MAGIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "magic_gamma_telescope" / "magic.tsv.gz"
C = 1.0
#: Our runs: label, solver, options (the solvers' defaults otherwise, max_iter=100 included).
OURS = (
    ("sgd", "sgd", {"tol": 1e-8}),
    ("async-sgd", "async-sgd", {"tol": 1e-8}),
    ("sgd, no variance reduction", "sgd", {"tol": 1e-8, "variance_reduction": "none"}),
)
#: scikit-learn's averaged SGD: label, SGDClassifier options beyond loss, alpha and average.
SKLEARN = (
    ("sklearn ASGD, default schedule", {}),
    ("sklearn ASGD, constant 0.01", {"learning_rate": "constant", "eta0": 1e-2}),
    ("sklearn ASGD, constant 0.001", {"learning_rate": "constant", "eta0": 1e-3}),
)


class _Trace:
    """Callback recording (seconds since the solver's call, objective) after every iteration."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.points: list[tuple[float, float]] = []

    def __call__(self, record: dict, W: np.ndarray) -> bool:
        self.points.append((time.perf_counter() - self.start, record["objective"]))
        return False


def _row(label: str, points: list, f_star: float, n_iter: int, total: float, status: str) -> dict:
    row = {"method": label, "iterations": n_iter, "total_s": total, "status": status}
    for gap in GAPS:
        reached = [t for t, f in points if np.isfinite(f) and (f - f_star) / abs(f_star) <= gap]
        row[gap] = reached[0] if reached else None
    finite = [f for _, f in points if np.isfinite(f)]
    row["final_gap"] = (finite[-1] - f_star) / abs(f_star) if finite else float("nan")
    return row


def _ours(problem: BlockedProblem, f_star: float) -> list[dict]:
    rows = []
    for label, name, options in OURS:
        trace = _Trace()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            result = get_solver(name)(problem, random_state=0, callback=trace, **options)
        total = time.perf_counter() - trace.start
        warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        status = f"converged at tol={options['tol']:g}" if result.converged else "max_iter, warned"
        assert result.converged != warned, "a stochastic solver must warn exactly when it did not converge"
        rows.append(_row(label, trace.points, f_star, result.n_iter, total, status))
    return rows


def _sklearn(X: np.ndarray, y: np.ndarray, problem: BlockedProblem, f_star: float, epochs: int) -> list[dict]:
    rows = []
    classes = np.unique(y)
    for label, options in SKLEARN:
        model = SGDClassifier(
            loss="log_loss", alpha=1.0 / (C * len(y)), average=True, random_state=0, **options
        )
        points, elapsed = [], 0.0
        for _ in range(epochs):
            start = time.perf_counter()
            with threadpoolctl.threadpool_limits(1):
                model.partial_fit(X, y, classes=classes)
            elapsed += time.perf_counter() - start
            W = np.append(model.coef_.ravel(), model.intercept_)[:, None]
            points.append((elapsed, problem.objective(W)))
            if (points[-1][1] - f_star) / abs(f_star) <= GAPS[-1]:
                break
        rows.append(_row(label, points, f_star, len(points), elapsed, "one epoch per call"))
    return rows


def _run(title: str, client: Client, X: da.Array, y: da.Array, epochs: int) -> None:
    X, y = client.persist([X, y])
    problem = BlockedProblem(X, y, loss="logistic", data_scale=C, l2=1.0, client=client)
    with problem:
        # compute: the whole design matrix into this process, for scikit-learn (n_samples x n_features)
        X_np, y_np = client.compute([X, y], sync=True)
        with threadpoolctl.threadpool_limits(1):
            reference = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X_np, y_np)
        f_sklearn = problem.objective(np.append(reference.coef_.ravel(), reference.intercept_)[:, None])
        f_lbfgs = problem.objective(get_solver("lbfgs")(problem, tol=1e-10, max_iter=1000).W)
        f_star = min(f_sklearn, f_lbfgs)
        rows = _ours(problem, f_star) + _sklearn(X_np, y_np, problem, f_star, epochs)
    print(f"\n{title}   (f* = {f_star:.10g}; scikit-learn lbfgs {f_sklearn:.10g}, ours {f_lbfgs:.10g})")
    header = f"{'method':<32}{'to 1e-3':>9}{'to 1e-4':>9}{'iters':>7}{'final gap':>11}{'total':>9}  status"
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = [f"{row[gap]:.2f}s" if row[gap] is not None else "--" for gap in GAPS]
        print(
            f"{row['method']:<32}{cells[0]:>9}{cells[1]:>9}{row['iterations']:>7}"
            f"{row['final_gap']:>11.1e}{row['total_s']:>8.2f}s  {row['status']}"
        )


def _magic() -> tuple[da.Array, da.Array] | None:
    if not MAGIC.exists():
        print(f"MAGIC skipped: {MAGIC} not found")
        return None
    table = pd.read_csv(MAGIC, sep="\t")
    X = StandardScaler().fit_transform(table.iloc[:, :-1].to_numpy(dtype=np.float64))
    y = table.iloc[:, -1].to_numpy()
    rows = -(-len(y) // 10)
    return da.from_array(X, chunks=(rows, -1)), da.from_array(y, chunks=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows instead of 2,000,000")
    parser.add_argument("--sklearn-epochs", type=int, default=30, help="most epochs of scikit-learn's SGD")
    parser.add_argument("--skip-magic", action="store_true")
    args = parser.parse_args()
    n_samples = 200_000 if args.quick else 2_000_000
    logging.basicConfig(level=logging.WARNING)
    with bench_client() as client:
        start = time.perf_counter()
        magic = None if args.skip_magic else _magic()
        if magic is not None:
            _run(
                "MAGIC gamma telescope, 19,020 x 10, standardised, 10 blocks, C=1, 2 workers",
                client,
                *magic,
                100,
            )
        X, y = make_classification(
            n_samples, 50, n_informative=20, n_redundant=10, chunks=n_samples // 20, random_state=0
        )
        _run(f"make_classification {n_samples:,} x 50, C=1, 2 workers", client, X, y, args.sklearn_epochs)
        print(f"\nbenchmark wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
