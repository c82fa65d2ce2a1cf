"""Fit every linear model of daskml_lab on chunked data and compare its coefficients with scikit-learn's.

Run it with ``python examples/linear_models.py`` (a local cluster of two worker processes is started), or
``python examples/linear_models.py --scheduler tcp://HOST:8786`` to use a running ``dask scheduler``. It fits

- each model on a synthetic dataset made lazily in row blocks by :mod:`daskml_lab.data`;
- LogisticRegression on the MAGIC gamma telescope data (also given as a dask DataFrame and a dask Series, and
  fitted by Newton-CG), Ridge on the California housing data and a GammaRegressor of the diamond prices from
  ``../shared/data`` (skipped, with a message, when the files are absent);

and prints, for each, our coefficients next to scikit-learn's fitted on the same (computed) data.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn import linear_model as sk
from sklearn import svm
from sklearn.preprocessing import StandardScaler

import daskml_lab
from daskml_lab import linear_model as ours

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROWS_PER_BLOCK = 5_000


def synthetic(kind: str) -> tuple[da.Array, da.Array]:
    """A chunked synthetic dataset from daskml_lab.data (float64, 20,000 rows in blocks of 5,000)."""
    if kind == "regression":
        X, y = daskml_lab.data.make_regression(
            20_000, 8, n_informative=4, noise=5.0, random_state=0, chunks=ROWS_PER_BLOCK
        )
        return X, y / 50
    return daskml_lab.data.make_classification(
        20_000,
        8,
        n_informative=5,
        n_classes=3 if kind == "multiclass" else 2,
        flip_y=0.05,
        random_state=0,
        chunks=ROWS_PER_BLOCK,
    )


def compare(name: str, model, reference, X: da.Array, y: da.Array) -> None:
    """Fit ``model`` on the dask arrays and ``reference`` on their computed values; print both."""
    start = time.perf_counter()
    model.fit(X, y)
    elapsed = time.perf_counter() - start
    X_np, y_np = da.compute(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear's tight tolerance is reached through max_iter
        reference.fit(X_np, y_np)
    ours_coef = np.atleast_2d(model.coef_)
    their_coef = np.atleast_2d(reference.coef_)
    difference = np.max(np.abs(ours_coef - their_coef))
    print(
        f"\n{name}: {model.n_iter_} iterations in {elapsed:.2f} s, max |coef difference| = {difference:.2e}"
    )
    for row, (mine, theirs) in enumerate(zip(ours_coef, their_coef, strict=True)):
        several = hasattr(model, "classes_") and len(ours_coef) > 1
        label = f"  class {model.classes_[row]!s:>5}" if several else "  coef"
        print(f"{label}  daskml_lab: {_format(mine)}")
        print(f"{' ' * len(label)}  sklearn:    {_format(theirs)}")
    intercepts = np.round(model.intercept_, 4), np.round(reference.intercept_, 4)
    print(f"  intercept   daskml_lab: {intercepts[0]}  sklearn: {intercepts[1]}")
    print(f"  score       daskml_lab: {model.score(X, y):.4f}  sklearn: {reference.score(X_np, y_np):.4f}")


def _format(values: np.ndarray) -> str:
    return np.array2string(values, precision=4, suppress_small=True, max_line_width=200)


def synthetic_models() -> None:
    X, y = synthetic("regression")
    compare("LinearRegression", ours.LinearRegression(), sk.LinearRegression(), X, y)
    compare("Ridge(alpha=10)", ours.Ridge(alpha=10.0, tol=1e-8), sk.Ridge(alpha=10.0), X, y)
    compare("Lasso(alpha=0.5)", ours.Lasso(alpha=0.5, tol=1e-8), sk.Lasso(alpha=0.5, tol=1e-10), X, y)
    compare(
        "ElasticNet(alpha=0.5, l1_ratio=0.3)",
        ours.ElasticNet(alpha=0.5, l1_ratio=0.3, tol=1e-8),
        sk.ElasticNet(alpha=0.5, l1_ratio=0.3, tol=1e-10),
        X,
        y,
    )
    X_clean, y_clean = da.compute(X, y)
    y_outliers = y_clean.copy()
    y_outliers[::20] += 30.0  # 5 % gross outliers
    compare(
        "HuberRegressor (5 % outliers)",
        ours.HuberRegressor(tol=1e-8),
        sk.HuberRegressor(tol=1e-10, max_iter=1000),
        da.from_array(X_clean, chunks=(ROWS_PER_BLOCK, -1)),
        da.from_array(y_outliers, chunks=ROWS_PER_BLOCK),
    )
    X, y = synthetic("binary")
    compare(
        "LogisticRegression (binary)",
        ours.LogisticRegression(C=0.1, tol=1e-8),
        sk.LogisticRegression(C=0.1, tol=1e-10, max_iter=1000),
        X,
        y,
    )
    compare(
        "LogisticRegression (L1, l1_ratio=1)",
        ours.LogisticRegression(C=0.01, l1_ratio=1.0, tol=1e-7, max_iter=2000),
        sk.LogisticRegression(C=0.01, l1_ratio=1.0, solver="saga", tol=1e-8, max_iter=10_000),
        X,
        y,
    )
    compare(
        "LinearSVC (no intercept)",
        ours.LinearSVC(C=0.1, fit_intercept=False, tol=1e-8),
        svm.LinearSVC(C=0.1, fit_intercept=False, dual=False, tol=1e-10, max_iter=100_000),
        X,
        y,
    )
    X, y = synthetic("multiclass")
    compare(
        "LogisticRegression (multinomial, 3 classes)",
        ours.LogisticRegression(C=0.1, tol=1e-8),
        sk.LogisticRegression(C=0.1, tol=1e-10, max_iter=1000),
        X,
        y,
    )
    compare(
        "LinearSVC (one-vs-rest, intercept_scaling=1000 for sklearn)",
        ours.LinearSVC(C=0.1, tol=1e-8),
        svm.LinearSVC(C=0.1, dual=False, intercept_scaling=1e3, tol=1e-10, max_iter=100_000),
        X,
        y,
    )


def real_models() -> None:
    magic = SHARED_DATA / "magic_gamma_telescope" / "magic.tsv.gz"
    if magic.exists():
        frame = pd.read_csv(magic, sep="\t")
        y = frame.pop("target").to_numpy()
        X = StandardScaler().fit_transform(frame.to_numpy())
        compare(
            "LogisticRegression on MAGIC gamma telescope (19,020 x 10)",
            ours.LogisticRegression(tol=1e-8),
            sk.LogisticRegression(tol=1e-10, max_iter=1000),
            da.from_array(X, chunks=(ROWS_PER_BLOCK, -1)),
            da.from_array(y, chunks=ROWS_PER_BLOCK),
        )
        compare(
            "LogisticRegression(solver='newton-cg') on MAGIC",
            ours.LogisticRegression(solver="newton-cg", tol=1e-8),
            sk.LogisticRegression(solver="newton-cg", tol=1e-10, max_iter=1000),
            da.from_array(X, chunks=(ROWS_PER_BLOCK, -1)),
            da.from_array(y, chunks=ROWS_PER_BLOCK),
        )
        # What dask users pass: a dask DataFrame and one of its columns (partition lengths found in one pass).
        scaled = dd.from_pandas(pd.DataFrame(X, columns=frame.columns).assign(target=y), npartitions=4)
        features, target = scaled[list(frame.columns)], scaled["target"]
        model = ours.LogisticRegression(tol=1e-8).fit(features, target)
        print(f"  from a dask DataFrame and Series: accuracy {model.score(features, target):.4f}")
    else:
        print(f"\nskipped MAGIC gamma telescope: {magic} not found")
    housing = SHARED_DATA / "california_housing" / "537_houses_pmlb.tsv.gz"
    if housing.exists():
        frame = pd.read_csv(housing, sep="\t")
        y = np.log(frame.pop("target").to_numpy())
        X = StandardScaler().fit_transform(frame.to_numpy())
        compare(
            "Ridge on California housing, log price (20,640 x 8)",
            ours.Ridge(alpha=1.0, tol=1e-10),
            sk.Ridge(alpha=1.0),
            da.from_array(X, chunks=(ROWS_PER_BLOCK, -1)),
            da.from_array(y, chunks=ROWS_PER_BLOCK),
        )
    else:
        print(f"\nskipped California housing: {housing} not found")
    diamonds = SHARED_DATA / "diamonds" / "diamonds.csv.gz"
    if diamonds.exists():
        frame = pd.read_csv(diamonds)
        numeric = frame[["carat", "depth", "table", "x", "y", "z"]].to_numpy(dtype=np.float64)
        codes = [
            frame[c].astype("category").cat.codes.to_numpy(np.float64) for c in ("cut", "color", "clarity")
        ]
        X = StandardScaler().fit_transform(np.column_stack([numeric, *codes]))
        price = frame["price"].to_numpy(dtype=np.float64)
        compare(
            "GammaRegressor on diamond prices, log link (53,940 x 9)",
            ours.GammaRegressor(alpha=1e-3, tol=1e-8, max_iter=1000),
            sk.GammaRegressor(alpha=1e-3, tol=1e-8, max_iter=1000),
            da.from_array(X, chunks=(10_000, -1)),
            da.from_array(price, chunks=10_000),
        )
    else:
        print(f"\nskipped diamonds: {diamonds} not found")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    args = parser.parse_args()
    options = {} if args.scheduler else {"n_workers": 2, "threads_per_worker": 1, "dashboard_address": ":0"}
    with daskml_lab.connect(args.scheduler, **options) as client:
        print(f"Dask client: {client}")
        synthetic_models()
        real_models()


if __name__ == "__main__":
    main()
