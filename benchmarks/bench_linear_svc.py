"""``LinearSVC(loss="hinge")`` on a9a against liblinear (scikit-learn's ``LinearSVC``, dual), in the same run.

a9a: 32,561 sparse rows, 123 binary features (``../shared/data/a9a_libsvm``; skipped when absent), ``C=1``.
Objectives compared on one definition each:

- **liblinear's** (intercept penalised, ``intercept_scaling=1``): ours minimises it exactly when the constant
  column is appended to ``X`` and ``fit_intercept=False``;
- **ours** (intercept not penalised): liblinear's point is evaluated on it, and can only be above our optimum.

Rows: liblinear at ``tol=1e-8`` (its converged optimum), ours with the default solver (``smoothed-newton``) at
the default ``tol=1e-4``, in memory (local engine) and on the reference cluster (2 worker processes, 4 row
blocks); without ``--quick`` also the previous default for the hinge, ``admm``. Each timing is the best of
``--repeats`` runs, liblinear and ours alternated. Run from the repository root::

    python benchmarks/bench_linear_svc.py --quick
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import scipy.sparse as sp
from sklearn import svm
from sklearn.datasets import load_svmlight_file

from daskml_lab.linear_model import LinearSVC

try:
    from _cluster import bench_client
except ImportError:  # run as a module
    from benchmarks._cluster import bench_client

A9A = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "a9a_libsvm" / "a9a.gz"
C = 1.0


def objective(X, y, coef, intercept, *, penalise_intercept):
    """``1/2 ||w||^2 (+ b^2 / 2) + C sum_i max(0, 1 - y_i (x_i . w + b))``."""
    coef, intercept = np.ravel(coef), float(np.ravel(intercept)[0]) if np.size(intercept) else 0.0
    value = 0.5 * coef @ coef + C * np.maximum(0.0, 1.0 - y * (X @ coef + intercept)).sum()
    return value + (0.5 * intercept**2 if penalise_intercept else 0.0)


def timed(fit):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fit()
    return time.perf_counter() - start, model


def liblinear(X, y, fit_intercept=True):
    return svm.LinearSVC(
        loss="hinge", C=C, dual=True, fit_intercept=fit_intercept, tol=1e-8, max_iter=200_000, random_state=0
    ).fit(X, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip admm (about 30 s)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not A9A.exists():
        print(f"a9a: skipped ({A9A} not found)")
        return
    X, y = load_svmlight_file(str(A9A), n_features=123)
    X = sp.csr_matrix(X)
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)  # liblinear wants int32
    X_ones = sp.hstack([X, np.ones((X.shape[0], 1))], format="csr")

    rows = []  # (setting, objective definition, seconds, objective, liblinear seconds, liblinear objective)

    def compare(name, fit_ours, fit_theirs, penalise_intercept, data):
        ours_times, theirs_times = [], []
        for _ in range(args.repeats):
            seconds, theirs = timed(fit_theirs)
            theirs_times.append(seconds)
            seconds, ours = timed(fit_ours)
            ours_times.append(seconds)
        if penalise_intercept:  # ours fitted on X_ones without intercept: liblinear's objective
            ours_value = objective(data, y, ours.coef_, 0.0, penalise_intercept=False)
        else:
            ours_value = objective(X, y, ours.coef_, ours.intercept_, penalise_intercept=False)
        theirs_value = objective(X, y, theirs.coef_, theirs.intercept_, penalise_intercept=penalise_intercept)
        definition = "liblinear's (b penalised)" if penalise_intercept else "ours (b free)"
        iterations = int(ours.n_iter_)
        rows.append(
            (name, definition, min(ours_times), ours_value, iterations, min(theirs_times), theirs_value)
        )

    compare(
        "smoothed-newton, in memory",
        lambda: LinearSVC(loss="hinge", C=C, fit_intercept=False).fit(X_ones, y),
        lambda: liblinear(X, y),
        True,
        X_ones,
    )
    compare(
        "smoothed-newton, in memory",
        lambda: LinearSVC(loss="hinge", C=C).fit(X, y),
        lambda: liblinear(X, y),
        False,
        X,
    )
    if not args.quick:
        compare(
            "admm (previous default), in memory",
            lambda: LinearSVC(loss="hinge", C=C, solver="admm").fit(X, y),
            lambda: liblinear(X, y),
            False,
            X,
        )
    with bench_client() as client:
        Xd = da.from_array(X, chunks=(8_200, -1), asarray=False)
        yd = da.from_array(y, chunks=8_200)
        Xd, yd = client.persist([Xd, yd])
        compare(
            "smoothed-newton, 2 workers",
            lambda: LinearSVC(loss="hinge", C=C).fit(Xd, yd),
            lambda: liblinear(X, y),
            False,
            X,
        )

    print(f"a9a {X.shape[0]:,} x {X.shape[1]}, C={C:g}, best of {args.repeats}")
    header = f"{'setting':36s} {'objective definition':26s} {'ours s':>7s} {'iters':>5s} {'ours F':>12s}"
    print(header + f" {'liblinear s':>11s} {'liblinear F':>12s} {'time ratio':>10s} {'F rel diff':>10s}")
    for name, definition, seconds, value, iterations, lib_seconds, lib_value in rows:
        print(
            f"{name:36s} {definition:26s} {seconds:7.3f} {iterations:5d} {value:12.4f} {lib_seconds:11.3f} "
            f"{lib_value:12.4f} {seconds / lib_seconds:10.2f} {(value - lib_value) / lib_value:10.2e}"
        )


if __name__ == "__main__":
    main()
