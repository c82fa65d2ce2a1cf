"""Benchmark: the partitioned SGD (``model_partitions=``) next to scikit-learn's SGDClassifier on the same CSR data.

A wide sparse binary problem from :func:`daskml_lab.data.make_sparse_classification` (Zipf-distributed
features), split into train and test rows:

- ``LogisticRegression(model_partitions=2)`` on the reference cluster (2 single-threaded worker processes):
  time per epoch (the SGD pass alone, from ``history_["epoch_s"]``), bytes per step pulled and pushed (the
  shards' own counters), keys per step, objective and test accuracy;
- scikit-learn's ``SGDClassifier(loss="log_loss")`` with the same L2 strength, one process, on the same rows
  (time per epoch and test accuracy), and ``LogisticRegression(solver="lbfgs")`` for the optimum;
- prediction with the fitted model kept in its shards (the fit runs with
  ``daskml_lab.solvers.store.max_gather_bytes`` set to 0, so ``coef_`` is a ``PartitionedCoefficients``):
  ``decision_function`` time on the test rows (4 row blocks, best of 3) and the keys and bytes each block
  pulls from the shards, next to the same model gathered to the client (today's replicated prediction).

Run from the repository root::

    .venv/bin/python benchmarks/bench_model_partitioning.py --quick     # 20,000 rows, 2**16 features
    .venv/bin/python benchmarks/bench_model_partitioning.py             # 200,000 rows, 2**18 features

Timings on a shared 2-core machine are noisy; run it on an idle machine before quoting figures.
"""

from __future__ import annotations

import argparse
import time
import warnings

import dask
import numpy as np
from _cluster import bench_client
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.linear_model import SGDClassifier

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression


def objective(coef: np.ndarray, intercept: float, X, y: np.ndarray, C: float) -> float:
    """scikit-learn's objective divided by C * n_samples."""
    z = X @ coef + intercept
    return float(np.mean(np.logaddexp(0.0, z) - y * z) + coef @ coef / (2 * C * len(y)))


def best_of(n: int, run) -> float:
    """The shortest of ``n`` timed runs of ``run()``, in seconds."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def predict_figures(model: LogisticRegression, coef: np.ndarray, X_test) -> None:
    """Prediction time and traffic of the partitioned model, next to the same model gathered."""
    X_blocks = X_test.rechunk({0: -(-X_test.shape[0] // 4)}).persist()
    n_blocks = X_blocks.numblocks[0]
    before = model.coef_.stats()
    model.decision_function(X_blocks).compute()  # one pass for the counters
    after = model.coef_.stats()
    keys = sum(a["keys_pulled"] - b["keys_pulled"] for a, b in zip(after, before, strict=True))
    pulled = sum(a["bytes_pulled"] - b["bytes_pulled"] for a, b in zip(after, before, strict=True))
    partitioned_s = best_of(3, lambda: model.decision_function(X_blocks).compute())
    gathered = clone(model)
    gathered.__dict__.update({k: v for k, v in vars(model).items() if k.endswith("_")})
    gathered.coef_ = coef
    gathered_s = best_of(3, lambda: gathered.decision_function(X_blocks).compute())
    print(
        f"predict ({X_test.shape[0]} rows, {n_blocks} blocks): partitioned {partitioned_s:.3f} s, "
        f"gathered {gathered_s:.3f} s; per block {keys / n_blocks:.0f} keys and {pulled / n_blocks:.0f} bytes "
        f"pulled (the model: {model.coef_.shape[1]} keys, {model.coef_.nbytes} bytes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows and 2**16 features")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args()
    n_train, n_features = (20_000, 2**16) if args.quick else (200_000, 2**18)
    n_test, C = n_train // 5, 1.0
    X, y = make_sparse_classification(
        n_train + n_test, n_features, nnz_per_row=20, chunks=n_train // 4, random_state=0
    )
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    X_np, y_np, X_test_np, y_test_np = (a.compute() for a in (X_train, y_train, X_test, y_test))
    print(f"{n_train} train rows, {n_test} test rows, {n_features} features, 20 draws per row")

    start = time.perf_counter()
    best = SkLogisticRegression(C=C, tol=1e-8, max_iter=1000).fit(X_np, y_np)
    print(
        f"sklearn lbfgs:     objective {objective(best.coef_[0], best.intercept_[0], X_np, y_np, C):.6f}  "
        f"accuracy {best.score(X_test_np, y_test_np):.4f}  ({time.perf_counter() - start:.1f} s)"
    )
    sgd = SGDClassifier(
        loss="log_loss", alpha=1.0 / (C * n_train), max_iter=args.epochs, tol=None, random_state=0
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter epochs on purpose
        sgd.fit(X_np, y_np)
    per_epoch = (time.perf_counter() - start) / args.epochs
    print(
        f"sklearn SGD:       objective {objective(sgd.coef_[0], sgd.intercept_[0], X_np, y_np, C):.6f}  "
        f"accuracy {sgd.score(X_test_np, y_test_np):.4f}  {per_epoch:.3f} s/epoch"
    )

    with bench_client() as client:
        del client  # the default client: the estimator finds it
        model = LogisticRegression(
            C=C, model_partitions=args.partitions, max_iter=args.epochs, tol=1e-6, random_state=0
        )
        # a gather limit of 0: the fitted model stays in its shards, as a model too large for the client would
        with warnings.catch_warnings(), dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 0}):
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter epochs on purpose
            model.fit(X_train, y_train)
        history = model.history_
        accuracy = model.score(X_test, y_test)
        coef = model.coef_.to_numpy(max_bytes=2**31)  # the benchmark's own reference, brought on purpose
        predict_figures(model, coef, X_test)
    steps = history["n_steps"].sum()
    print(
        f"partitioned SGD:   objective "
        f"{objective(coef[0], model.intercept_[0], X_np, y_np, C):.6f}  accuracy {accuracy:.4f}  "
        f"{history['epoch_s'].median():.3f} s/epoch (median)"
    )
    print(
        f"  per step: {history['keys_pulled'].sum() / steps:.0f} keys, "
        f"{history['bytes_pulled'].sum() / steps:.0f} bytes pulled, "
        f"{history['bytes_pushed'].sum() / steps:.0f} bytes pushed "
        f"({n_features + 1} keys in the model, {args.partitions} shards)"
    )
    print(history[["iteration", "objective", "epoch_s", "n_steps", "staleness_max"]].to_string(index=False))


if __name__ == "__main__":
    main()
