"""Benchmark: grid searches of scikit-learn estimators on MAGIC, ours on the cluster against scikit-learn's.

Issue 14's small-data target: ``SVC`` and ``ExtraTreesClassifier`` candidates x 5 folds on the MAGIC gamma
telescope data (``../shared/data``) with :class:`daskml_lab.model_selection.GridSearchCV` on the reference
cluster (2 worker processes x 1 thread on 127.0.0.1; every (candidate, fold) is one task, the data scattered
once) against :class:`sklearn.model_selection.GridSearchCV` with ``n_jobs=2`` (joblib's processes) on the same
machine, in the same run. Target: at most 1.15x scikit-learn's time. It also checks that both searches give the
same ``best_params_`` and mean scores.

The full grid (24 candidates per estimator, the issue's) takes minutes; ``--quick`` runs 4 candidates per
estimator on 5,000 rows, one repeat, as a smoke test. Timings depend on what else runs on the machine: rerun on
an idle machine for the figures that count.

``--large`` runs the issue's large-data case instead: logistic regression over 10 values of C x 5 folds on
1,000,000 x 50 rows in 100,000-row blocks (``--rows`` makes it smaller, e.g. to try it on a busy machine), in
one run: our :class:`~daskml_lab.model_selection.LogisticRegressionCV` on the dask array (every lockstep round
one pass over the blocks for all the folds), scikit-learn's ``LogisticRegressionCV(n_jobs=2)`` on the same rows
in memory, and scikit-learn's ``GridSearchCV`` around our own ``LogisticRegression`` (one distributed fit per
(C, fold)). Targets: at most 0.5x and 0.25x their times; it also reports whether ``C_`` agrees.

A last row runs successive halving (:class:`daskml_lab.model_selection.HalvingGridSearchCV`, rows as the
resource, ``factor=3``) over the ExtraTrees grid against scikit-learn's ``HalvingGridSearchCV(n_jobs=2)``: same
rounds, survivors and scores expected (``same``), and the time of all the rounds.

Usage::

    python benchmarks/bench_model_selection.py            # 24 candidates x 5 folds per estimator, all rows
    python benchmarks/bench_model_selection.py --quick    # 4 candidates x 5 folds, 5,000 rows
    python benchmarks/bench_model_selection.py --large    # 10 Cs x 5 folds on 1,000,000 x 50
    python benchmarks/bench_model_selection.py --large --rows 100000 --block-rows 10000   # a small version
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _cluster import bench_client
from sklearn import linear_model as sk_linear
from sklearn import model_selection as sk
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.experimental import enable_halving_search_cv  # noqa: F401 -- scikit-learn's halving, the reference
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from daskml_lab.data.synthetic import make_classification
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.model_selection import GridSearchCV, HalvingGridSearchCV, LogisticRegressionCV

MAGIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "magic_gamma_telescope" / "magic.tsv.gz"

GRIDS = {
    "SVC": (
        make_pipeline(StandardScaler(), SVC()),
        {"svc__C": [0.1, 1, 10, 100], "svc__gamma": ["scale", 0.01, 0.1, 1, 3, 10]},
    ),
    "ExtraTrees": (
        ExtraTreesClassifier(n_estimators=50, random_state=0),
        {"max_depth": [4, 8, 16, None], "max_features": ["sqrt", 0.5, 1.0], "min_samples_leaf": [1, 10]},
    ),
}
QUICK_GRIDS = {
    "SVC": {"svc__C": [1, 10], "svc__gamma": ["scale", 0.1]},
    "ExtraTrees": {"max_depth": [8, None], "min_samples_leaf": [1, 10]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 candidates per estimator on 5,000 rows")
    parser.add_argument("--data", default=str(MAGIC), help="magic.tsv.gz")
    parser.add_argument("--large", action="store_true", help="the large-data case: 10 Cs x 5 folds, 1M x 50")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large case")
    parser.add_argument("--block-rows", type=int, default=100_000, help="rows per block of the large case")
    args = parser.parse_args()
    if args.large:
        large(args.rows, args.block_rows)
        return
    table = pd.read_csv(args.data, sep="\t")
    y = table.pop("target").to_numpy()
    X = table.to_numpy(dtype=float)
    if args.quick:
        rows = np.random.default_rng(0).permutation(len(y))[:5_000]
        X, y = X[rows], y[rows]
    print(f"MAGIC: {X.shape[0]:,} rows x {X.shape[1]} features; 5 folds")
    dask_ml_search = _dask_ml_grid_search()
    print(
        f"{'estimator':<11} {'candidates':>10} {'ours (s)':>9} {'sklearn n_jobs=2 (s)':>21} {'ratio':>6}  same"
        + ("   dask-ml (s)  ratio" if dask_ml_search is not None else "   (dask-ml not installed)")
    )
    with bench_client() as client:
        client.wait_for_workers(2)
        for name, (model, grid) in GRIDS.items():
            grid = QUICK_GRIDS[name] if args.quick else grid
            start = time.perf_counter()
            ours = GridSearchCV(model, grid, cv=5).fit(X, y)
            ours_s = time.perf_counter() - start
            start = time.perf_counter()
            reference = sk.GridSearchCV(model, grid, cv=5, n_jobs=2).fit(X, y)
            reference_s = time.perf_counter() - start
            difference = np.abs(
                ours.cv_results_["mean_test_score"] - reference.cv_results_["mean_test_score"]
            )
            same = ours.best_params_ == reference.best_params_ and difference.max() <= 1e-6
            n = len(ours.cv_results_["params"])
            line = f"{name:<11} {n:>10} {ours_s:>9.2f} {reference_s:>21.2f} {ours_s / reference_s:>6.2f}  {same!s:<5}"
            if dask_ml_search is not None:
                # dask-ml's search on the same cluster (its client is the default one), same folds
                start = time.perf_counter()
                dask_ml_search(model, grid, cv=5).fit(X, y)
                dask_ml_s = time.perf_counter() - start
                line += f" {dask_ml_s:>12.2f} {ours_s / dask_ml_s:>6.2f}"
            print(line)
        _halving(X, y, args.quick)


def _dask_ml_grid_search() -> Any:
    """dask-ml's ``GridSearchCV`` when dask-ml is installed (an optional baseline), else ``None``."""
    try:
        from dask_ml.model_selection import GridSearchCV as DaskMLGridSearchCV
    except ImportError:
        return None
    return DaskMLGridSearchCV


def _halving(X: np.ndarray, y: np.ndarray, quick: bool) -> None:
    """Successive halving over the ExtraTrees grid, ours on the cluster against scikit-learn's (``n_jobs=2``)."""
    model, grid = GRIDS["ExtraTrees"]
    grid = QUICK_GRIDS["ExtraTrees"] if quick else grid
    options = {"cv": 5, "factor": 3, "random_state": 0}
    start = time.perf_counter()
    ours = HalvingGridSearchCV(model, grid, **options).fit(X, y)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    reference = sk.HalvingGridSearchCV(model, grid, n_jobs=2, **options).fit(X, y)
    reference_s = time.perf_counter() - start
    difference = np.abs(ours.cv_results_["mean_test_score"] - reference.cv_results_["mean_test_score"])
    same = (
        ours.best_params_ == reference.best_params_
        and ours.n_resources_ == reference.n_resources_
        and ours.cv_results_["params"] == list(reference.cv_results_["params"])
        and difference.max() <= 1e-6
    )
    label = "halving ET"
    rounds = "/".join(str(n) for n in ours.n_candidates_)
    print(
        f"{label:<11} {rounds:>10} {ours_s:>9.2f} {reference_s:>21.2f} {ours_s / reference_s:>6.2f}  {same}"
    )


def large(n_rows: int, block_rows: int) -> None:
    """The issue's large-data case: 10 Cs x 5 folds of logistic regression, three ways, one run."""
    Cs, n_folds = 10, 5
    with bench_client() as client:
        client.wait_for_workers(2)
        X, y = make_classification(
            n_rows, 50, n_informative=10, n_redundant=10, random_state=0, chunks=block_rows
        )
        X, y = client.persist(
            [X, y]
        )  # generated once on the workers; the timings start from blocks in memory
        X_np, y_np = X.compute(), y.compute()  # the same rows in memory, for scikit-learn
        print(f"{n_rows:,} x 50 in {block_rows:,}-row blocks; {Cs} Cs x {n_folds} folds; 2 workers")
        start = time.perf_counter()
        ours = LogisticRegressionCV(Cs=Cs, cv=n_folds).fit(X, y)
        ours_s = time.perf_counter() - start
        print(f"ours LogisticRegressionCV          {ours_s:9.1f} s  ({ours.n_rounds_} rounds, one pass each)")
        start = time.perf_counter()
        reference = sk_linear.LogisticRegressionCV(
            Cs=Cs, cv=n_folds, n_jobs=2, l1_ratios=None, scoring=None, use_legacy_attributes=True
        ).fit(X_np, y_np)
        reference_s = time.perf_counter() - start
        print(
            f"sklearn LogisticRegressionCV(n_jobs=2) {reference_s:5.1f} s  "
            f"ratio {ours_s / reference_s:.2f} (target 0.5)"
        )
        # the rounds can only be cheaper, not fewer: every fold makes scikit-learn's iterations
        print(f"same n_iter_ as sklearn: {np.array_equal(ours.n_iter_, reference.n_iter_)}")
        start = time.perf_counter()
        search = sk.GridSearchCV(LogisticRegression(), {"C": list(ours.Cs_)}, cv=n_folds).fit(X_np, y_np)
        search_s = time.perf_counter() - start
        print(
            f"sklearn GridSearchCV(our model)    {search_s:9.1f} s  ratio {ours_s / search_s:.2f} (target 0.25)"
        )
        same = bool(np.all(ours.C_ == reference.C_)) and ours.C_[0] == search.best_params_["C"]
        print(
            f"same C_: {same} (ours {ours.C_[0]:.4g}, sklearn {reference.C_[0]:.4g}, "
            f"grid {search.best_params_['C']:.4g})"
        )


if __name__ == "__main__":
    main()
