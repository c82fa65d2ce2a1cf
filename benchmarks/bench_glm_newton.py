"""Benchmark: the Newton solvers against lbfgs on an ill-conditioned problem, and the GLM families against sklearn.

One run, on the reference LocalCluster (2 single-threaded worker processes):

1. **Ill-conditioned logistic regression**: 200,000 x 50 float64 rows (chunks of 20,000) whose feature scales
   span 1e-3 .. 1e3 (``logspace``), C=1. For daskml_lab's ``lbfgs``, ``newton-cg`` and ``newton-cholesky``
   and scikit-learn's same three solvers (on the same data in numpy, in this process), at ``tol=1e-8`` and
   ``max_iter=500`` (lbfgs stops there, far from the optimum): time, iterations, and the relative objective
   gap to the best objective any of them reached.
2. **GLM families**: Poisson, gamma and Tweedie (power 1.5) regression on 200,000 x 50 standardised rows,
   alpha=1e-3, with ``lbfgs`` and ``newton-cholesky``, against scikit-learn's estimator with the same solver:
   time, iterations, D^2 and the largest coefficient difference.

The ratio columns divide our time by scikit-learn's for the same solver, measured in the same run. Timings
depend on what else runs on the machine: rerun on an idle machine for the figures that count.

Usage::

    python benchmarks/bench_glm_newton.py           # full run (a few minutes)
    python benchmarks/bench_glm_newton.py --quick   # 20,000 x 20 rows, lbfgs capped at 300 iterations
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import dask.array as da
import numpy as np
from _cluster import bench_client
from scipy.special import log_expit
from sklearn import linear_model as sk

from daskml_lab.linear_model import GammaRegressor, LogisticRegression, PoissonRegressor, TweedieRegressor

SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky")


def _logistic_objective(X: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: float, C: float) -> float:
    """scikit-learn's objective divided by C n: mean log-loss plus ||w||^2 / (2 C n)."""
    z = X @ coef.ravel() + intercept
    sign = 2 * y - 1
    return float(-log_expit(sign * z).mean() + coef.ravel() @ coef.ravel() / (2 * C * len(y)))


def _timed(model, X, y):
    """``model.fit(X, y)`` and its wall time."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs stopping at max_iter is a result here, not an error
        model.fit(X, y)
    return model, time.perf_counter() - start


def ill_conditioned(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    n, d = args.n_samples, args.n_features
    scales = np.logspace(-3, 3, d)
    X = rng.standard_normal((n, d)) * scales
    coef = rng.standard_normal(d) / scales
    y = (X @ coef + rng.logistic(size=n) > 0).astype(np.int64)
    Xd = da.from_array(X, chunks=(args.chunk, d)).persist()
    yd = da.from_array(y, chunks=args.chunk).persist()
    settings = {"C": 1.0, "tol": 1e-8, "max_iter": args.max_iter}
    rows = []
    for solver in SOLVERS:
        ours, t_ours = _timed(LogisticRegression(solver=solver, **settings), Xd, yd)
        theirs, t_theirs = _timed(sk.LogisticRegression(solver=solver, **settings), X, y)
        for who, model, elapsed in (("daskml_lab", ours, t_ours), ("scikit-learn", theirs, t_theirs)):
            objective = _logistic_objective(X, y, model.coef_, float(model.intercept_[0]), settings["C"])
            rows.append((who, solver, elapsed, int(np.max(model.n_iter_)), objective))
    best = min(row[4] for row in rows)
    print(f"\n1. Ill-conditioned logistic regression: {n:,} x {d}, feature scales 1e-3 .. 1e3, tol=1e-8")
    print(f"{'':14}{'solver':>17}{'time (s)':>11}{'iterations':>12}{'gap':>11}{'ratio':>8}")
    sklearn_time = {row[1]: row[2] for row in rows if row[0] == "scikit-learn"}
    for who, solver, elapsed, n_iter, objective in rows:
        ratio = f"{elapsed / sklearn_time[solver]:.2f}" if who == "daskml_lab" else ""
        gap = (objective - best) / abs(best)
        print(f"{who:14}{solver:>17}{elapsed:>11.2f}{n_iter:>12}{gap:>11.1e}{ratio:>8}")


def glm_families(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(1)
    n, d = args.n_samples, args.n_features
    X = rng.standard_normal((n, d))
    mean = np.exp(0.3 + X @ (rng.standard_normal(d) * 0.3 / np.sqrt(d)))
    counts = rng.poisson(mean)
    targets = {
        "poisson": (PoissonRegressor, sk.PoissonRegressor, {}, counts.astype(np.float64)),
        "gamma": (GammaRegressor, sk.GammaRegressor, {}, rng.gamma(2.0, mean / 2.0)),
        "tweedie-1.5": (
            TweedieRegressor,
            sk.TweedieRegressor,
            {"power": 1.5},
            np.array([rng.gamma(2.0 * k, 0.5) if k else 0.0 for k in counts]),
        ),
    }
    Xd = da.from_array(X, chunks=(args.chunk, d)).persist()
    print(f"\n2. GLM families: {n:,} x {d}, alpha=1e-3, tol=1e-8")
    print(
        f"{'model':13}{'solver':>17}{'ours (s)':>10}{'sklearn (s)':>13}{'ratio':>7}{'iter':>6}{'D^2':>9}"
        f"{'max |dcoef|':>13}"
    )
    for name, (ours_cls, theirs_cls, params, y) in targets.items():
        yd = da.from_array(y, chunks=args.chunk).persist()
        for solver in ("lbfgs", "newton-cholesky"):
            settings = {"alpha": 1e-3, "tol": 1e-8, "max_iter": 1000, "solver": solver, **params}
            ours, t_ours = _timed(ours_cls(**settings), Xd, yd)
            theirs, t_theirs = _timed(theirs_cls(**settings), X, y)
            difference = float(np.max(np.abs(ours.coef_ - theirs.coef_)))
            print(
                f"{name:13}{solver:>17}{t_ours:>10.2f}{t_theirs:>13.2f}{t_ours / t_theirs:>7.2f}"
                f"{ours.n_iter_:>6}{ours.score(Xd, yd):>9.4f}{difference:>13.1e}"
            )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--max-iter", type=int, default=500, help="iteration cap of the logistic fits")
    parser.add_argument("--quick", action="store_true", help="20,000 x 20 rows (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_samples, args.n_features, args.chunk, args.max_iter = 20_000, 20, 5_000, 300
    with bench_client():
        ill_conditioned(args)
        glm_families(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
