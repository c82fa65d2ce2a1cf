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

``--large --l1-ratios 0 0.5 1`` runs the elastic-net version of that case: every (l1_ratio, fold) path over the
Cs by FISTA, all in the same lockstep passes, against scikit-learn's ``LogisticRegressionCV(solver="saga",
n_jobs=2)`` with the same ``l1_ratios`` and folds (saga is scikit-learn's only solver for them); it reports the
best (C, l1_ratio) of both and their cross-validated accuracy.

``--shards`` times a grid over a shard ensemble instead (issue 14: one task per (candidate, fold, shard)):
``ShardEnsembleClassifier(DecisionTreeClassifier, n_shards=4)`` over ``max_depth`` x ``fusion`` (soft voting and
best-model selection) x 5 folds on MAGIC as a dask array in 8 blocks, on the reference cluster: our
:class:`~daskml_lab.model_selection.GridSearchCV` with every shard fit of every (candidate, fold) submitted at
once ("concurrent"), the same search one (candidate, fold) after the other (dask.config
``daskml_lab.model_selection.joint_shard_fits=False``, "sequential"; ``same`` says whether both give identical
mean scores), and scikit-learn's ``GridSearchCV(n_jobs=2)`` around the same ensemble on the rows in memory
(its folds are scikit-learn's, so only its time is compared). ``--quick`` runs 4 candidates x 3 folds on 5,000
rows.

``--large --halving`` runs successive halving over ``max_iter`` instead (:class:`HalvingGridSearchCV` of our
``LogisticRegression`` over 9 values of C, ``resource="max_iter"`` from 10 to 90, ``factor=3``, 5 folds): the
rounds run in the shared passes (one blocked pass per lockstep round for every (candidate, fold), train scores
included), against scikit-learn's ``HalvingGridSearchCV`` around our estimator on the rows in memory (one
distributed fit per (candidate, fold), the same scores expected) and around scikit-learn's own
``LogisticRegression`` with ``n_jobs=2`` (its time only).

A last row runs successive halving (:class:`daskml_lab.model_selection.HalvingGridSearchCV`, rows as the
resource, ``factor=3``) over the ExtraTrees grid against scikit-learn's ``HalvingGridSearchCV(n_jobs=2)``: same
rounds, survivors and scores expected (``same``), and the time of all the rounds.

Usage::

    python benchmarks/bench_model_selection.py            # 24 candidates x 5 folds per estimator, all rows
    python benchmarks/bench_model_selection.py --quick    # 4 candidates x 5 folds, 5,000 rows
    python benchmarks/bench_model_selection.py --large    # 10 Cs x 5 folds on 1,000,000 x 50
    python benchmarks/bench_model_selection.py --large --rows 100000 --block-rows 10000   # a small version
    python benchmarks/bench_model_selection.py --large --rows 200000 --l1-ratios 0 0.5 1   # elastic net
    python benchmarks/bench_model_selection.py --shards   # a shard ensemble: concurrent vs sequential vs sklearn
    python benchmarks/bench_model_selection.py --large --rows 200000 --block-rows 20000 --halving   # max_iter
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import dask
import dask.array as da
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
from sklearn.tree import DecisionTreeClassifier

from daskml_lab.data.synthetic import make_classification
from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.exceptions import ConvergenceWarning
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
    parser.add_argument(
        "--l1-ratios", type=float, nargs="+", help="with --large: elastic-net paths over these l1_ratios"
    )
    parser.add_argument("--shards", action="store_true", help="a grid over a shard ensemble, three ways")
    parser.add_argument("--halving", action="store_true", help="with --large: halving over max_iter")
    parser.add_argument(
        "--only", choices=sorted(GRIDS), action="append", help="only this grid (repeatable; default: all)"
    )
    args = parser.parse_args()
    if args.large and args.l1_ratios:
        elastic_net_path(args.rows, args.block_rows, args.l1_ratios)
        return
    if args.large and args.halving:
        halving_over_max_iter(args.rows, args.block_rows)
        return
    if args.large:
        large(args.rows, args.block_rows)
        return
    table = pd.read_csv(args.data, sep="\t")
    y = table.pop("target").to_numpy()
    X = table.to_numpy(dtype=float)
    if args.quick:
        rows = np.random.default_rng(0).permutation(len(y))[:5_000]
        X, y = X[rows], y[rows]
    if args.shards:
        shard_ensemble_grid(X, y, args.quick)
        return
    print(f"MAGIC: {X.shape[0]:,} rows x {X.shape[1]} features; 5 folds")
    dask_ml_search = _dask_ml_grid_search()
    print(
        f"{'estimator':<11} {'candidates':>10} {'ours (s)':>9} {'sklearn n_jobs=2 (s)':>21} {'ratio':>6}  same"
        + ("   dask-ml (s)  ratio" if dask_ml_search is not None else "   (dask-ml not installed)")
    )
    with bench_client() as client:
        client.wait_for_workers(2)
        names = args.only or list(GRIDS)
        _warm_up(X, y, names, dask_ml_search)
        for name in names:
            model, grid = GRIDS[name]
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
        if "ExtraTrees" in names:
            _halving(X, y, args.quick)


def _warm_up(X: np.ndarray, y: np.ndarray, names: list[str], dask_ml_search: Any) -> None:
    """Each search once on 500 rows, not timed: the workers and joblib's processes import the estimators
    before any timing starts, so the search timed first pays no start-up the others skip."""
    rows = np.random.default_rng(0).permutation(len(y))[:500]  # both classes (the file is sorted by class)
    for name in names:
        model, grid = GRIDS[name]
        small = {key: values[:1] for key, values in grid.items()}
        GridSearchCV(model, small, cv=2).fit(X[rows], y[rows])
        sk.GridSearchCV(model, small, cv=2, n_jobs=2).fit(X[rows], y[rows])
        if dask_ml_search is not None:
            dask_ml_search(model, small, cv=2).fit(X[rows], y[rows])


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


def shard_ensemble_grid(X: np.ndarray, y: np.ndarray, quick: bool) -> None:
    """A grid over a shard ensemble on MAGIC: concurrent shard fits, sequential fits, scikit-learn's n_jobs=2."""
    model = ShardEnsembleClassifier(DecisionTreeClassifier(random_state=0), n_shards=4, random_state=0)
    grid = {"estimator__max_depth": [4, 8, 16, None], "fusion": ["soft-voting", "best-model"]}
    n_folds = 5
    if quick:
        grid, n_folds = {"estimator__max_depth": [4, None], "fusion": ["soft-voting", "best-model"]}, 3
    n_candidates = int(np.prod([len(values) for values in grid.values()]))
    block_rows = -(-len(y) // 8)
    print(
        f"MAGIC: {X.shape[0]:,} rows x {X.shape[1]} features in 8 blocks; ShardEnsembleClassifier(DecisionTree, "
        f"n_shards=4): {n_candidates} candidates x {n_folds} folds x 4 shards"
    )
    with bench_client() as client:
        client.wait_for_workers(2)
        # the blocks in the workers' memory first: the timings start from persisted data
        X_dask, y_dask = client.persist(
            [da.from_array(X, chunks=(block_rows, -1)), da.from_array(y, chunks=block_rows)]
        )
        # warm-up, not timed: the workers import the estimators and the scheduler sees its first graphs
        ShardEnsembleClassifier(DecisionTreeClassifier(max_depth=2), n_shards=4).fit(X_dask, y_dask)
        times, results = {}, {}
        for label, joint in (("concurrent", True), ("sequential", False)):
            with dask.config.set({"daskml_lab.model_selection.joint_shard_fits": joint}):
                start = time.perf_counter()
                results[label] = GridSearchCV(model, grid, cv=n_folds, scoring="accuracy", refit=False).fit(
                    X_dask, y_dask
                )
                times[label] = time.perf_counter() - start
        start = time.perf_counter()
        sk.GridSearchCV(model, grid, cv=n_folds, scoring="accuracy", n_jobs=2, refit=False).fit(X, y)
        times["sklearn n_jobs=2"] = time.perf_counter() - start
    same = np.array_equal(
        results["concurrent"].cv_results_["mean_test_score"],
        results["sequential"].cv_results_["mean_test_score"],
    )
    for label, seconds in times.items():
        print(f"{label:<17} {seconds:8.2f} s  {seconds / times['concurrent']:5.2f}x the concurrent search")
    print(f"same mean scores (concurrent vs sequential): {same}")


def _large_data(client: Any, n_rows: int, block_rows: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """The large case's rows, generated and persisted on the workers, and the same rows in memory."""
    X, y = make_classification(
        n_rows, 50, n_informative=10, n_redundant=10, random_state=0, chunks=block_rows
    )
    X, y = client.persist([X, y])  # generated once on the workers; the timings start from blocks in memory
    return X, y, X.compute(), y.compute()


def large(n_rows: int, block_rows: int) -> None:
    """The issue's large-data case: 10 Cs x 5 folds of logistic regression, three ways, one run."""
    Cs, n_folds = 10, 5
    with bench_client() as client:
        client.wait_for_workers(2)
        X, y, X_np, y_np = _large_data(client, n_rows, block_rows)
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


def halving_over_max_iter(n_rows: int, block_rows: int) -> None:
    """Successive halving over max_iter of our logistic regression, three ways, one run."""
    grid = {"C": list(np.logspace(-4, 4, 9))}
    options = {"resource": "max_iter", "min_resources": 10, "max_resources": 90, "factor": 3, "cv": 5}
    with bench_client() as client, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the small budgets stop early on purpose
        client.wait_for_workers(2)
        X, y, X_np, y_np = _large_data(client, n_rows, block_rows)
        print(f"{n_rows:,} x 50 in {block_rows:,}-row blocks; halving over max_iter 10/30/90, 9 Cs x 5 folds")
        start = time.perf_counter()
        ours = HalvingGridSearchCV(LogisticRegression(), grid, **options).fit(X, y)
        ours_s = time.perf_counter() - start
        print(f"ours HalvingGridSearchCV (shared passes)        {ours_s:7.1f} s  rounds {ours.n_candidates_}")
        start = time.perf_counter()
        separate = sk.HalvingGridSearchCV(LogisticRegression(), grid, **options).fit(X_np, y_np)
        separate_s = time.perf_counter() - start
        difference = np.abs(
            ours.cv_results_["mean_test_score"] - separate.cv_results_["mean_test_score"]
        ).max()
        same = ours.best_params_ == separate.best_params_ and difference <= 1e-6
        print(
            f"sklearn HalvingGridSearchCV(our model)          {separate_s:7.1f} s  ratio "
            f"{ours_s / separate_s:.2f}; same best_params_, scores within 1e-6: {same} ({difference:.1e})"
        )
        start = time.perf_counter()
        sk.HalvingGridSearchCV(sk_linear.LogisticRegression(), grid, n_jobs=2, **options).fit(X_np, y_np)
        sklearn_s = time.perf_counter() - start
        print(
            f"sklearn HalvingGridSearchCV(sklearn's, n_jobs=2) {sklearn_s:6.1f} s  ratio {ours_s / sklearn_s:.2f}"
        )


def elastic_net_path(n_rows: int, block_rows: int, l1_ratios: list[float]) -> None:
    """Elastic-net paths: 10 Cs x ``l1_ratios`` x 5 folds, ours (FISTA, lockstep) against scikit-learn's saga."""
    Cs, n_folds = 10, 5
    with bench_client() as client:
        client.wait_for_workers(2)
        X, y, X_np, y_np = _large_data(client, n_rows, block_rows)
        folds = list(sk.StratifiedKFold(n_folds).split(X_np, y_np))  # the same folds for both
        print(
            f"{n_rows:,} x 50 in {block_rows:,}-row blocks; {Cs} Cs x l1_ratios {l1_ratios} x {n_folds} folds; "
            "2 workers"
        )
        start = time.perf_counter()
        ours = LogisticRegressionCV(Cs=Cs, l1_ratios=l1_ratios, cv=folds, max_iter=1000).fit(X, y)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        reference = sk_linear.LogisticRegressionCV(
            Cs=Cs,
            l1_ratios=l1_ratios,
            cv=folds,
            solver="saga",
            n_jobs=2,
            scoring=None,
            use_legacy_attributes=True,
        ).fit(X_np, y_np)
        reference_s = time.perf_counter() - start
        for name, model, seconds in (
            ("ours (FISTA paths)", ours, ours_s),
            ("sklearn saga n_jobs=2", reference, reference_s),
        ):
            best = model.scores_[model.classes_[1]].mean(axis=0).max()
            print(
                f"{name:<22} {seconds:8.1f} s  best C {model.C_[0]:.4g}, l1_ratio {model.l1_ratio_[0]:g}, "
                f"cv accuracy {best:.4f}, zero coefficients {int(np.sum(model.coef_ == 0))}"
            )
        print(f"ratio ours / sklearn: {ours_s / reference_s:.2f} ({ours.n_rounds_} rounds, one pass each)")


if __name__ == "__main__":
    main()
