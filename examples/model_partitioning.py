"""A model split over parameter shards: adult's columns and crosses hashed into 2**18 features, fitted by the
partitioned L-BFGS, next to scikit-learn's LogisticRegression on the same CSR rows; then an L1 model by the
SGD over the same kind of shards with FTRL-proximal steps.

The coefficients live in two parameter shards (Dask actors, one per worker) during the fit: each iteration,
each row block pulls the direction's rows of its own columns and adds its gradient rows to the shards of
those keys; the client only holds a small matrix of dot products. A gather limit below the model's size
keeps the fitted model in its shards, and prediction pulls each block's keys. The dashboard's training
page shows the shards' traffic while it runs.

Run::

    python examples/model_partitioning.py ../shared/data/adult/adult.data.gz ../shared/data/adult/adult.test.gz
"""

from __future__ import annotations

import argparse
import time
import warnings

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import daskml_lab
from daskml_lab.data import hash_features
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression, PartitionedCoefficients
from daskml_lab.monitoring import page_url

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income",
]  # fmt: skip
CATEGORICAL = ["workclass", "education", "marital_status", "occupation", "relationship", "race", "sex"]
CROSSES = [("education", "occupation"), ("sex", "marital_status"), ("workclass", "occupation")]
C = 0.1


def objective(coef: np.ndarray, intercept: float, X, y: np.ndarray) -> float:
    """scikit-learn's objective: C * the sum of the log losses + ||coef||^2 / 2."""
    z = X @ coef + intercept
    return float(C * np.sum(np.logaddexp(0.0, z) - y * z) + coef @ coef / 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("train", help="adult.data.gz")
    parser.add_argument("test", help="adult.test.gz")
    parser.add_argument("--n-features", type=int, default=2**18, help="width of the hashed matrix")
    args = parser.parse_args()
    test = pd.read_csv(args.test, names=COLUMNS, skipinitialspace=True, na_values="?", skiprows=1)
    test["income"] = test["income"].str.rstrip(".")

    with daskml_lab.connect(n_workers=2, threads_per_worker=1) as client:
        print(f"training page: {page_url(client)}")
        frame = dd.read_csv(
            args.train, names=COLUMNS, skipinitialspace=True, na_values="?", blocksize=None
        ).repartition(npartitions=4)
        X, y, spec = hash_features(
            frame[[*CATEGORICAL, "income"]],
            "income",
            n_features=args.n_features,
            crosses=CROSSES,
            return_spec=True,
        )
        X, y = client.persist([X, y])
        model = LogisticRegression(C=C, solver="lbfgs", model_partitions=2, tol=1e-6, max_iter=1000)
        start = time.perf_counter()
        # a gather limit below the model's 2 MiB: the fitted model stays in its shards, as a model too large
        # for the client would
        with dask.config.set({"daskml_lab.solvers.store.max_gather_bytes": 2**20}):
            model.fit(X, y)
        fit_s = time.perf_counter() - start
        coef = model.coef_
        assert isinstance(coef, PartitionedCoefficients)
        print(f"fitted: {model.n_iter_} iterations in {fit_s:.1f} s; coef_ is {coef!r}")
        history = model.history_
        print(
            f"per iteration: {history['keys_pulled'].median():.0f} keys pulled of the model's "
            f"{args.n_features + 1}, {history['bytes_pulled'].median():.0f} bytes pulled, "
            f"{history['bytes_pushed'].median():.0f} bytes pushed"
        )
        for shard, stats in enumerate(coef.stats()):
            print(
                f"  shard {shard} on {coef.workers[shard]}: {stats['n_keys']} keys, "
                f"{stats['bytes_pulled']} bytes pulled, {stats['bytes_pushed']} bytes pushed in all"
            )
        X_test, y_test = spec.transform(test[[*CATEGORICAL, "income"]], "income")
        proba = model.predict_proba(X_test)  # lazy: each block pulls its own keys from the shards
        # the SGD over the same shards with FTRL-proximal steps and an L1 penalty: exact zeros in the shards
        sparse = LogisticRegression(
            C=C,
            l1_ratio=1.0,
            solver="async-sgd",
            model_partitions=2,
            max_iter=5,
            tol=1e-9,
            random_state=0,
            solver_options={"step_rule": "ftrl", "learning_rate": 5.0},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 5 epochs on purpose
            sparse.fit(X, y)
        print(
            f"FTRL-proximal, L1, 5 epochs: {np.count_nonzero(sparse.coef_)} non-zero coefficients of "
            f"{args.n_features}, test accuracy {sparse.score(X_test, y_test):.4f}"
        )
        # plain AdaGrad SGD over the same shards, 32 mini-batch steps per pull and push (local steps); each
        # epoch's model the average of its iterates, its objective taken during the epoch (no extra pass)
        quick = LogisticRegression(
            C=C,
            solver="sgd",
            model_partitions=2,
            max_iter=3,
            tol=1e-9,
            random_state=0,
            solver_options={"local_steps": 32, "average": True, "objective": "progressive"},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 3 epochs on purpose
            quick.fit(X, y)
        print(
            f"SGD with local steps, 3 epochs: {quick.history_['n_pushes'].sum()} pushes for "
            f"{quick.history_['n_steps'].sum()} steps, test accuracy {quick.score(X_test, y_test):.4f}"
        )
        ours = proba.compute()[:, 1]
        y_test = (y_test.compute() == model.classes_[1]).astype(np.float64)
        accuracy = float(((ours > 0.5) == y_test).mean())
        dense_coef = coef.to_numpy(max_bytes=2**22)  # brought to the client on purpose, for the comparison
        X_mem, y_mem, X_test_mem = X.compute(), y.compute(), X_test.compute()

    # The rows use a few hundred of the 2**18 columns. A column of zeros has the coefficient 0 at the optimum (its
    # gradient is its L2 term alone), so scikit-learn fitted on the used columns solves the same problem, to the
    # same tolerance, with the same L-BFGS: only its work per iteration, which grows with the width, is saved.
    used = np.unique(X_mem.nonzero()[1])
    start = time.perf_counter()
    reference = SkLogisticRegression(C=C, tol=1e-6, max_iter=1000).fit(X_mem[:, used], y_mem)
    reference_s = time.perf_counter() - start
    reference_coef = np.zeros(args.n_features)
    reference_coef[used] = reference.coef_[0]
    positive = (y_mem == model.classes_[1]).astype(np.float64)  # the labels are strings ("<=50K", ">50K")
    best = objective(reference_coef, reference.intercept_[0], X_mem, positive)
    mine = objective(dense_coef[0], model.intercept_[0], X_mem, positive)
    print(f"objective {mine:.6f}, scikit-learn's {best:.6f} (relative gap {(mine - best) / best:.1e})")
    theirs = expit(X_test_mem @ reference_coef + reference.intercept_[0])
    print(f"test accuracy {accuracy:.4f}, scikit-learn's {float(((theirs > 0.5) == y_test).mean()):.4f}")
    print(f"largest difference of the test probabilities: {np.abs(ours - theirs).max():.1e}")
    print(
        f"scikit-learn fitted in {reference_s:.1f} s on the client's copy of the rows, "
        f"on the {used.size} columns they use"
    )


if __name__ == "__main__":
    main()
