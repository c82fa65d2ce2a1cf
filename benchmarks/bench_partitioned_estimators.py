"""Benchmark: Ridge and LinearSVC over the partitioned parameter store next to scikit-learn (issue 13).

Wide sparse rows from :func:`daskml_lab.data.make_sparse_classification` (Zipf-distributed features, 20 draws
per row, ``--features`` columns, default 2**18):

- **Ridge** on a target linear in 1,000 of the columns plus noise: ``Ridge(solver="lbfgs",
  model_partitions=2)`` on the reference cluster (2 single-threaded worker processes), our replicated
  ``Ridge(solver="lbfgs")`` on the same cluster, and scikit-learn's ``Ridge(solver="sparse_cg")`` in one
  process, all to the same ``tol``: time, iterations, the objective's relative gap to scikit-learn's tight
  optimum (``tol=1e-10``), held-out R^2.
- **LinearSVC** (squared hinge, no intercept: liblinear's problem is then ours) on the binary labels of the
  same rows: ``LinearSVC(solver="lbfgs", model_partitions=2)``, our replicated ``lbfgs``, and scikit-learn's
  ``LinearSVC(dual=False)`` (liblinear's primal Newton), to the same ``tol``: time, the gap to liblinear's
  ``tol=1e-10`` optimum, held-out accuracy.

Run from the repository root::

    .venv/bin/python benchmarks/bench_partitioned_estimators.py            # 200,000 rows, 2**18 features
    .venv/bin/python benchmarks/bench_partitioned_estimators.py --quick    # 20,000 rows, 2**16 features

Timings on a shared 2-core machine are noisy; run it on an idle machine before quoting figures.
"""

from __future__ import annotations

import argparse
import time
import warnings

import dask.array as da
import numpy as np
from _cluster import bench_client
from sklearn.linear_model import Ridge as SkRidge
from sklearn.svm import LinearSVC as SkLinearSVC

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LinearSVC, Ridge


def ridge_objective(model, X, y: np.ndarray, alpha: float) -> float:
    """scikit-learn's Ridge objective ``||y - X w - b||^2 + alpha ||w||^2``."""
    coef = np.ravel(np.asarray(model.coef_))
    residual = y - X @ coef - float(np.ravel(model.intercept_)[0])
    return float(residual @ residual + alpha * coef @ coef)


def svc_objective(model, X, y: np.ndarray, C: float) -> float:
    """liblinear's primal objective without intercept, ``C sum max(0, 1 - t z)^2 + ||w||^2 / 2``."""
    coef = np.ravel(np.asarray(model.coef_))
    margins = np.maximum(0.0, 1.0 - (2.0 * y - 1.0) * (X @ coef))
    return float(C * margins @ margins + 0.5 * coef @ coef)


def timed(fit) -> tuple[object, float]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fit()
    return model, time.perf_counter() - start


def print_rows(rows: list[tuple[str, float, int, float, float]], sk_s: float, metric: str) -> None:
    print(f"| fit | s | iterations | gap to the optimum | {metric} | time / scikit-learn's |")
    print("|---|---|---|---|---|---|")
    for label, seconds, n_iter, gap, score in rows:
        print(f"| {label} | {seconds:.2f} | {n_iter} | {gap:.1e} | {score:.4f} | {seconds / sk_s:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows and 2**16 features")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--features", type=int, default=None)
    parser.add_argument("--tol", type=float, default=1e-6)
    args = parser.parse_args()
    n_train, n_features = (20_000, 2**16) if args.quick else (200_000, 2**18)
    n_train, n_features = args.rows or n_train, args.features or n_features
    n_test, chunk = n_train // 5, n_train // 4
    X, labels = make_sparse_classification(
        n_train + n_test, n_features, nnz_per_row=20, chunks=chunk, random_state=0
    )
    X_all = X.compute().tocsr()
    rng = np.random.default_rng(1)
    truth = np.zeros(n_features)
    truth[rng.choice(n_features, size=1_000, replace=False)] = rng.normal(size=1_000)
    target = X_all @ truth + rng.normal(scale=0.5, size=n_train + n_test)
    X_np, X_test = X_all[:n_train], X_all[n_train:]
    y_np, y_test = target[:n_train], target[n_train:]
    labels_all = labels.compute()
    c_np, c_test = labels_all[:n_train], labels_all[n_train:]
    print(
        f"{n_train} train rows, {n_test} test rows, {n_features} features, 20 draws per row, tol={args.tol:g}"
    )

    alpha, C = 1.0, 0.1
    tight = SkRidge(alpha=alpha, solver="sparse_cg", tol=1e-10, max_iter=100_000).fit(X_np, y_np)
    ridge_best = ridge_objective(tight, X_np, y_np, alpha)
    sk_ridge, sk_ridge_s = timed(
        lambda: SkRidge(alpha=alpha, solver="sparse_cg", tol=args.tol).fit(X_np, y_np)
    )
    svc_tight = SkLinearSVC(C=C, fit_intercept=False, dual=False, tol=1e-10, max_iter=10_000).fit(X_np, c_np)
    svc_best = svc_objective(svc_tight, X_np, c_np, C)
    sk_svc, sk_svc_s = timed(
        lambda: SkLinearSVC(C=C, fit_intercept=False, dual=False, tol=args.tol, max_iter=10_000).fit(
            X_np, c_np
        )
    )
    ridge_rows = [
        (
            "scikit-learn Ridge(sparse_cg), one process",
            sk_ridge_s,
            int(np.ravel(sk_ridge.n_iter_)[0]) if sk_ridge.n_iter_ is not None else -1,
            ridge_objective(sk_ridge, X_np, y_np, alpha) / ridge_best - 1,
            sk_ridge.score(X_test, y_test),
        )
    ]
    svc_rows = [
        (
            "scikit-learn LinearSVC(dual=False), one process",
            sk_svc_s,
            int(np.ravel(sk_svc.n_iter_)[0]),
            svc_objective(sk_svc, X_np, c_np, C) / svc_best - 1,
            sk_svc.score(X_test, c_test),
        )
    ]
    with bench_client() as client:
        X_p = client.persist(X[:n_train])
        y_p = client.persist(da.from_array(y_np, chunks=chunk))
        c_p = client.persist(labels[:n_train])
        for label, params in (
            ("partitioned lbfgs, 2 shards", {"model_partitions": 2}),
            ("replicated lbfgs", {}),
        ):
            model, seconds = timed(
                lambda params=params: Ridge(
                    alpha=alpha, solver="lbfgs", tol=args.tol, max_iter=10_000, **params
                ).fit(X_p, y_p)
            )
            gap = ridge_objective(model, X_np, y_np, alpha) / ridge_best - 1
            ridge_rows.append((f"Ridge, {label}", seconds, model.n_iter_, gap, model.score(X_test, y_test)))
            model, seconds = timed(
                lambda params=params: LinearSVC(
                    C=C, fit_intercept=False, solver="lbfgs", tol=args.tol, max_iter=10_000, **params
                ).fit(X_p, c_p)
            )
            gap = svc_objective(model, X_np, c_np, C) / svc_best - 1
            svc_rows.append((f"LinearSVC, {label}", seconds, model.n_iter_, gap, model.score(X_test, c_test)))
    print_rows(ridge_rows, sk_ridge_s, "held-out R^2")
    print()
    print_rows(svc_rows, sk_svc_s, "held-out accuracy")


if __name__ == "__main__":
    main()
