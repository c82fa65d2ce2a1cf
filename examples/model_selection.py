"""Choose a model on the MAGIC gamma telescope data, on a local cluster, and compare with scikit-learn.

Run it with ``python examples/model_selection.py ../shared/data/magic_gamma_telescope/magic.tsv.gz``. It

- splits the data, as a dask array in row blocks, into stratified folds chosen next to the blocks (no row
  travels to the client) and prints each fold's class counts next to scikit-learn's;
- cross-validates daskml_lab's LogisticRegression on those folds (every fold's rows stay lazy dask arrays);
- runs a grid search of a scikit-learn decision tree on the in-memory data, every (candidate, fold) pair one
  task on the cluster, and checks ``best_params_`` and ``cv_results_`` against scikit-learn's GridSearchCV.
"""

from __future__ import annotations

import argparse
import time

import dask.array as da
import numpy as np
import pandas as pd
from sklearn import model_selection as sk
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

import daskml_lab
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from daskml_lab.preprocessing import StandardScaler

ROWS_PER_BLOCK = 4_000


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The MAGIC table: ten float features and a 0/1 target."""
    table = pd.read_csv(path, sep="\t")
    y = table.pop("target").to_numpy()
    return table.to_numpy(dtype=float), y


def folds(X: da.Array, y: da.Array, y_np: np.ndarray) -> None:
    """Stratified folds on the dask array: class counts per fold, and the rows against scikit-learn's."""
    ours = [np.flatnonzero(test.compute()) for _, test in StratifiedKFold(5).split(X, y)]
    reference = [test for _, test in sk.StratifiedKFold(5).split(y_np, y_np)]
    print("folds:   test rows per class (ours | scikit-learn)")
    for fold, (a, b) in enumerate(zip(ours, reference, strict=True)):
        print(f"  fold {fold}: {np.bincount(y_np[a]).tolist()} | {np.bincount(y_np[b]).tolist()}")
    same = all(np.array_equal(a, b) for a, b in zip(ours, reference, strict=True))
    print(f"same test rows as scikit-learn's folds: {same}")


def cross_validation(X: da.Array, y: da.Array) -> None:
    """5-fold cross-validation of a scaled logistic regression on the dask arrays."""
    model = make_pipeline(StandardScaler(), LogisticRegression())
    start = time.perf_counter()
    scores = cross_validate(model, X, y, cv=5, scoring=["accuracy", "neg_log_loss"])
    elapsed = time.perf_counter() - start
    accuracy, log_loss = scores["test_accuracy"], -scores["test_neg_log_loss"]
    print(
        f"cross_validate: accuracy {accuracy.mean():.4f} +/- {accuracy.std():.4f}, "
        f"log loss {log_loss.mean():.4f} ({elapsed:.1f} s, 5 distributed fits)"
    )


def grid_search(X: np.ndarray, y: np.ndarray) -> None:
    """A decision tree's depth and leaf size: our search on the cluster against scikit-learn's."""
    grid = {"max_depth": [4, 8], "min_samples_leaf": [1, 50]}
    model = DecisionTreeClassifier(random_state=0)
    start = time.perf_counter()
    ours = GridSearchCV(model, grid, cv=5).fit(X, y)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    reference = sk.GridSearchCV(model, grid, cv=5).fit(X, y)
    reference_s = time.perf_counter() - start
    difference = np.abs(ours.cv_results_["mean_test_score"] - reference.cv_results_["mean_test_score"]).max()
    print(
        f"grid search: best {ours.best_params_}, accuracy {ours.best_score_:.4f} ({ours_s:.1f} s, 20 tasks)"
    )
    print(
        f"scikit-learn: best {reference.best_params_}, accuracy {reference.best_score_:.4f} ({reference_s:.1f} s)"
    )
    print(
        f"same best parameters: {ours.best_params_ == reference.best_params_}; largest difference of the mean "
        f"scores: {difference:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="magic.tsv.gz of ../shared/data/magic_gamma_telescope")
    args = parser.parse_args()
    X_np, y_np = load(args.path)
    with daskml_lab.connect(n_workers=2, threads_per_worker=1, dashboard_address=":0") as client:
        print(f"Dask client: {client}")
        X = da.from_array(X_np, chunks=(ROWS_PER_BLOCK, -1))
        y = da.from_array(y_np, chunks=ROWS_PER_BLOCK)
        folds(X, y, y_np)
        cross_validation(X, y)
        grid_search(X_np, y_np)


if __name__ == "__main__":
    main()
