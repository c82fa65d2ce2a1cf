"""Shard ensembles on a real tabular dataset: one scikit-learn model per shard, fused in several ways.

The data are read with dask into row blocks, split into train and test sets block by block, re-sharded on the
workers, and every fusion strategy of :mod:`daskml_lab.fusion` is fitted and scored. A single model trained on
all training rows (``n_shards=1``) is the reference. Nothing but models and scores reaches this process.

Usage::

    python examples/shard_ensemble.py /work/shared/data/magic_gamma_telescope/magic.tsv.gz --target target
    python examples/shard_ensemble.py /work/shared/data/cpu_act/197_cpu_act.tsv.gz --target target \\
        --task regression --n-shards 8
    python examples/shard_ensemble.py data.csv --target label --address tcp://127.0.0.1:8786

The file may be CSV or TSV, compressed or not (see :func:`daskml_lab.data.read_csv`); all feature columns must
be numeric. Without ``--address`` a local cluster of ``--n-workers`` processes is started on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from typing import Any

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge

import daskml_lab
from daskml_lab.data import read_csv, train_test_split
from daskml_lab.ensemble import ShardEnsembleClassifier, ShardEnsembleRegressor
from daskml_lab.fusion import Stacking, WeightedAveraging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="CSV/TSV file (optionally compressed) with a header row")
    parser.add_argument("--target", required=True, help="name of the target column")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification")
    parser.add_argument("--n-shards", type=int, default=4, help="number of shards (default: 4)")
    parser.add_argument(
        "--sharding",
        choices=("contiguous", "shuffle", "stratified"),
        default="shuffle",
        help="how rows are assigned to shards (default: shuffle)",
    )
    parser.add_argument("--test-size", type=float, default=0.25, help="share of rows held out for scoring")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--address", default=None, help="address of a running dask scheduler")
    parser.add_argument("--n-workers", type=int, default=2, help="workers of the local cluster (default: 2)")
    return parser.parse_args(argv)


def strategies(task: str) -> list[tuple[str, Any, Any]]:
    """(label, base estimator, fusion) for every strategy compared."""
    if task == "classification":
        linear: Any = LogisticRegression(max_iter=2000)
        forest: Any = RandomForestClassifier(n_estimators=25, min_samples_leaf=2)
        voting = [("hard voting", linear, "hard-voting"), ("soft voting", linear, "soft-voting")]
    else:
        linear = Ridge(alpha=1.0)
        forest = RandomForestRegressor(n_estimators=25, min_samples_leaf=2)
        voting = [("mean (soft voting)", linear, "soft-voting")]
    return [
        *voting,
        ("weighted by validation score", linear, WeightedAveraging(weights="validation")),
        ("stacking", linear, Stacking()),
        ("parameter averaging", linear, "parameter-averaging"),
        ("forest union", forest, "forest-union"),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    Ensemble = ShardEnsembleClassifier if args.task == "classification" else ShardEnsembleRegressor
    sharding = "shuffle" if args.task == "regression" and args.sharding == "stratified" else args.sharding
    local = (
        {}
        if args.address
        else {"n_workers": args.n_workers, "threads_per_worker": 1, "dashboard_address": ":0"}
    )
    with daskml_lab.connect(args.address, **local) as client:
        print(f"dask dashboard: {client.dashboard_link}")
        X, y = read_csv(args.path, target=args.target)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, random_state=args.random_state
        )
        # The rows are read and split once, then kept in the workers' memory for every fit and score.
        X_train, X_test, y_train, y_test = client.persist([X_train, X_test, y_train, y_test])
        print(
            f"{X.shape[0]} rows x {X.shape[1]} features; {X_train.shape[0]} for training, "
            f"{X_test.shape[0]} for testing"
        )
        metric = "accuracy" if args.task == "classification" else "R^2"
        print(f"\n{'strategy':<32} {'shards':>6} {metric:>9} {'fit (s)':>8}")
        rows = [
            (
                "one model on all training rows",
                LogisticRegression(max_iter=2000) if args.task == "classification" else Ridge(alpha=1.0),
                "soft-voting",
                1,
            )
        ]
        rows += [(label, base, fusion, args.n_shards) for label, base, fusion in strategies(args.task)]
        model = None
        for label, base, fusion, n_shards in rows:
            model = Ensemble(
                base, fusion=fusion, n_shards=n_shards, sharding=sharding, random_state=args.random_state
            )
            start = time.perf_counter()
            model.fit(X_train, y_train)
            elapsed = time.perf_counter() - start
            print(f"{label:<32} {n_shards:>6} {model.score(X_test, y_test):>9.4f} {elapsed:>8.2f}")
        print("\nShard report of the last ensemble:")
        print(model.shard_report_)
    return 0


if __name__ == "__main__":
    sys.exit(main())
