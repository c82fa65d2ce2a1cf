"""Benchmark: sgd, async-sgd and admm against lbfgs and scikit-learn's SGDClassifier.

One run, on a LocalCluster of 2 single-threaded worker processes on 127.0.0.1:

1. **Logistic regression** (``C = 1``, intercept): 500,000 x 50 float64 rows in chunks of 50,000, generated on
   the workers and persisted once. The optimum ``f*`` comes from lbfgs at ``tol=1e-10``.
2. **Linear SVM with the hinge loss** (``LinearSVC(loss="hinge", C=1, fit_intercept=False)``): 200,000 x 50
   rows. ``f*`` is the lowest objective reached by any method (admm's final iterate, within about 1e-8 of
   the optimum, or liblinear's dual coordinate descent, scikit-learn's ``LinearSVC``, run once to the end).

For each solver the table gives the wall time, from the solver's call, until the objective of its iterate
is within 1e-3 and 1e-4 (relative) of ``f*`` (measured through a callback; the evaluation the solver makes
anyway is included, nothing else), the iterations run, the final gap and the total time. scikit-learn's
``SGDClassifier`` (same objective: ``alpha = 1 / (C n)``; its default schedule, and averaged SGD with a
constant rate) runs on the same data gathered into this process, one epoch per ``partial_fit`` call; the time
of the objective evaluations between epochs is excluded.

Timings depend on what else runs on the machine; rerun on an idle machine for the figures that count.

Usage::

    python benchmarks/bench_solvers_stochastic.py            # full run (about two minutes)
    python benchmarks/bench_solvers_stochastic.py --quick    # 10x smaller (smoke test)
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import dask
import dask.array as da
import numpy as np
import threadpoolctl
from _cluster import bench_client
from distributed import Client
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.svm import LinearSVC as LiblinearSVC

from daskml_lab.solvers import BlockedProblem, get_solver

GAPS = (1e-3, 1e-4)


def _generate(n_samples: int, n_features: int, chunks: int, seed: int) -> tuple[da.Array, da.Array]:
    """Standardised-scale features and labels from a noisy linear model, one numpy generator per block."""

    def block(index: int, rows: int) -> np.ndarray:
        rng = np.random.default_rng([seed, index])
        X = rng.standard_normal((rows, n_features))
        coef = np.random.default_rng(seed).standard_normal(n_features) / np.sqrt(n_features)
        y = (X @ coef + 0.5 * rng.standard_normal(rows) > 0).astype(np.float64)
        return np.column_stack([X, y])

    sizes = [min(chunks, n_samples - start) for start in range(0, n_samples, chunks)]
    blocks = [
        da.from_delayed(dask.delayed(block)(i, rows), (rows, n_features + 1), dtype=np.float64)
        for i, rows in enumerate(sizes)
    ]
    data = da.concatenate(blocks)
    return data[:, :n_features], data[:, n_features].astype(np.int64)


class _Trace:
    """Callback recording (seconds since the solver's call, objective) after every iteration."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.points: list[tuple[float, float]] = []

    def __call__(self, record: dict, W: np.ndarray) -> bool:
        self.points.append((time.perf_counter() - self.start, record["objective"]))
        return False


def _summary(name: str, points: list[tuple[float, float]], f_star: float, n_iter: int, total: float) -> dict:
    row = {"solver": name, "iterations": n_iter, "total_s": total}
    for gap in GAPS:
        reached = [t for t, f in points if np.isfinite(f) and (f - f_star) / abs(f_star) <= gap]
        row[gap] = reached[0] if reached else None
    finite = [f for _, f in points if np.isfinite(f)]
    row["final_gap"] = (min(finite) - f_star) / abs(f_star) if finite else float("nan")
    return row


def _run_ours(problem: BlockedProblem, name: str, **options) -> tuple[list, int, float, np.ndarray]:
    trace = _Trace()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = get_solver(name)(problem, callback=trace, **options)
    total = time.perf_counter() - trace.start
    return trace.points, result.n_iter, total, result.W


def _run_sklearn_sgd(
    X: np.ndarray,
    y: np.ndarray,
    problem: BlockedProblem,
    *,
    loss: str,
    C: float,
    fit_intercept: bool,
    epochs: int,
    **options,
) -> tuple[list, int, float]:
    """SGDClassifier, one epoch per partial_fit call; objective evaluations excluded from the time."""
    n = len(y)
    model = SGDClassifier(
        loss=loss, alpha=1.0 / (C * n), fit_intercept=fit_intercept, random_state=0, **options
    )
    points, elapsed = [], 0.0
    classes = np.unique(y)
    for _ in range(epochs):
        start = time.perf_counter()
        with threadpoolctl.threadpool_limits(1):
            model.partial_fit(X, y, classes=classes)
        elapsed += time.perf_counter() - start
        W = np.append(model.coef_.ravel(), model.intercept_ if fit_intercept else [])[:, None]
        points.append((elapsed, problem.objective(W)))
    return points, epochs, elapsed


def _table(title: str, rows: list[dict], f_star: float) -> None:
    print(f"\n{title}   (f* = {f_star:.8g})")
    header = f"{'solver':<28}{'to 1e-3':>10}{'to 1e-4':>10}{'iters':>7}{'final gap':>11}{'total':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = [f"{row[gap]:.2f}s" if row[gap] is not None else "--" for gap in GAPS]
        print(
            f"{row['solver']:<28}{cells[0]:>10}{cells[1]:>10}{row['iterations']:>7}"
            f"{row['final_gap']:>11.1e}{row['total_s']:>8.2f}s"
        )


#: scikit-learn's SGDClassifier: its default schedule, and averaged SGD with a constant rate (tuned by hand on
#: the --quick problem), one epoch per partial_fit call.
SKLEARN_VARIANTS = (
    ("sklearn SGD default (1 proc)", {}),
    ("sklearn ASGD eta0=0.01 (1 proc)", {"learning_rate": "constant", "eta0": 0.01, "average": True}),
)
#: Our stochastic solvers, with settings shared by both problems.
STOCHASTIC_RUNS = (
    ("sgd", "sgd", {"tol": 1e-6, "max_iter": 30, "random_state": 0}),
    (
        "async-sgd (local_steps=64)",
        "async-sgd",
        {"tol": 1e-6, "max_iter": 60, "random_state": 0, "local_steps": 64},
    ),
)


def _logistic(client: Client, n_samples: int, n_features: int, chunks: int) -> None:
    X, y = _generate(n_samples, n_features, chunks, seed=0)
    X, y = client.persist([X, y])
    problem = BlockedProblem(X, y, loss="logistic", data_scale=1.0, l2=1.0, client=client)
    rows = []
    with problem:
        reference = get_solver("lbfgs")(problem, tol=1e-10, max_iter=500)
        f_star = problem.objective(reference.W)
        runs = [
            ("lbfgs (tol 1e-8)", "lbfgs", {"tol": 1e-8, "max_iter": 200}),
            *STOCHASTIC_RUNS,
            ("admm (tol 1e-6)", "admm", {"tol": 1e-6, "max_iter": 200}),
        ]
        for label, name, options in runs:
            points, n_iter, total, _ = _run_ours(problem, name, **options)
            rows.append(_summary(label, points, f_star, n_iter, total))
        # compute: the whole design matrix into this process, for scikit-learn (n_samples x n_features)
        X_np, y_np = client.compute([X, y], sync=True)
        for label, options in SKLEARN_VARIANTS:
            points, n_iter, total = _run_sklearn_sgd(
                X_np, y_np, problem, loss="log_loss", C=1.0, fit_intercept=True, epochs=15, **options
            )
            rows.append(_summary(label, points, f_star, n_iter, total))
    _table(f"Logistic regression, {n_samples:,} x {n_features}, C=1, 2 workers", rows, f_star)


def _hinge(client: Client, n_samples: int, n_features: int, chunks: int) -> None:
    X, y = _generate(n_samples, n_features, chunks, seed=1)
    X, y = client.persist([X, y])
    C = 1.0
    problem = BlockedProblem(
        X,
        y,
        loss="hinge",
        fit_intercept=False,
        data_scale=1.0 / n_samples,
        l2=1.0 / (C * n_samples),
        client=client,
    )
    traces = []
    with problem:
        for label, name, options in [
            *STOCHASTIC_RUNS,
            ("admm (tol 1e-5)", "admm", {"tol": 1e-5, "max_iter": 150}),
        ]:
            points, n_iter, total, _ = _run_ours(problem, name, **options)
            traces.append((label, points, n_iter, total))
        # compute: the whole design matrix into this process, for scikit-learn (n_samples x n_features)
        X_np, y_np = client.compute([X, y], sync=True)
        for label, options in SKLEARN_VARIANTS:
            points, n_iter, total = _run_sklearn_sgd(
                X_np, y_np, problem, loss="hinge", C=C, fit_intercept=False, epochs=15, **options
            )
            traces.append((label, points, n_iter, total))
        with warnings.catch_warnings(), threadpoolctl.threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            liblinear = LiblinearSVC(
                loss="hinge", C=C, fit_intercept=False, dual=True, tol=1e-6, max_iter=1_000, random_state=2
            ).fit(X_np, y_np)
            liblinear_s = time.perf_counter() - start
        f_liblinear = problem.objective(liblinear.coef_.ravel()[:, None])
        traces.append(
            ("liblinear dual CD (1 proc)", [(liblinear_s, f_liblinear)], int(liblinear.n_iter_), liblinear_s)
        )
    # the optimum: the best objective any method reached (admm's converges to about 1e-8)
    f_star = min(f for _, points, _, _ in traces for _, f in points if np.isfinite(f))
    rows = [_summary(label, points, f_star, n_iter, total) for label, points, n_iter, total in traces]
    _table(
        f"LinearSVC(loss='hinge'), {n_samples:,} x {n_features}, C=1, no intercept, 2 workers", rows, f_star
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller problems (smoke test)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    logging.basicConfig(level=logging.WARNING)
    with bench_client() as client:
        start = time.perf_counter()
        _logistic(client, 500_000 // scale, 50, 50_000 // scale)
        _hinge(client, 200_000 // scale, 50, 25_000 // scale)
        print(f"\nbenchmark wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
