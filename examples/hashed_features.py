"""Wide sparse data: adult's categorical columns and two crosses hashed into 2**18 features, on a local cluster.

The training table is read by dask, hashed into CSR row blocks on the workers and fitted by our
LogisticRegression; the test table is hashed the same way through the returned spec. scikit-learn's
LogisticRegression on the same CSR matrix is the reference, and scikit-learn's FeatureHasher on the same
"column=value" tokens gives the same matrix. Then a synthetic click-like problem with Zipf-distributed features
and a known model.

Run::

    python examples/hashed_features.py ../shared/data/adult/adult.data.gz ../shared/data/adult/adult.test.gz
"""

from __future__ import annotations

import argparse
import time

import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.feature_extraction import FeatureHasher
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import daskml_lab
from daskml_lab.data import hash_features, make_sparse_classification
from daskml_lab.linear_model import LogisticRegression

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income",
]  # fmt: skip
CROSSES = [("education", "occupation"), ("sex", "marital_status")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("train", help="adult.data.gz")
    parser.add_argument("test", help="adult.test.gz")
    parser.add_argument("--n-features", type=int, default=2**14, help="width of the hashed matrix")
    args = parser.parse_args()

    test = pd.read_csv(args.test, names=COLUMNS, skipinitialspace=True, na_values="?", skiprows=1)
    test["income"] = test["income"].str.rstrip(".")  # the test file's labels end with a dot

    with daskml_lab.connect(n_workers=2, threads_per_worker=1):
        # dask reads the file where the work runs; a .gz file is one block, cut into partitions after reading
        frame = dd.read_csv(
            args.train, names=COLUMNS, skipinitialspace=True, na_values="?", blocksize=None
        ).repartition(npartitions=4)
        X, y, spec = hash_features(
            frame, "income", n_features=args.n_features, crosses=CROSSES, return_spec=True
        )
        print(f"hashed:  X {X.shape} in {X.numblocks[0]} CSR blocks of {X.chunks[0]} rows")
        print(f"columns: {list(spec.columns)} and crosses {[f'{a} x {b}' for a, b in spec.crosses]}")
        start = time.perf_counter()
        model = LogisticRegression(C=1.0, max_iter=500).fit(X, y)
        print(
            f"fitted in {time.perf_counter() - start:.1f} s, {int(np.count_nonzero(model.coef_))} non-zero coefs"
        )
        X_test, y_test = spec.transform(test, "income")  # hashed exactly as the training table
        predicted = model.predict(X_test).compute()
        accuracy = float((predicted == y_test.compute()).mean())
        X_mem, y_mem = X.compute(), y.compute()  # only for the in-memory references below

        # A synthetic click log: 10 features per row out of 2**14, Zipf-distributed, labels from a known model,
        # generated on the workers.
        X, y, coef = make_sparse_classification(
            20_000, 2**14, nnz_per_row=10, chunks=5_000, random_state=0, return_coef=True
        )
        start = time.perf_counter()
        # the direction of the model is what is compared: a tolerance of 1e-3 gets it in a third of the iterations
        fitted = LogisticRegression(fit_intercept=False, tol=1e-3, max_iter=200).fit(X, y)
        synthetic_s = time.perf_counter() - start
        counts = np.asarray(X.compute().sum(axis=0)).ravel()  # 20,000 x 10 entries: small

    # The rows use a few hundred of the 2**14 columns. A column of zeros has the coefficient 0 at the optimum (its
    # gradient is its L2 term alone), so scikit-learn fitted on the used columns solves the same problem, to the
    # same tolerance, with the same L-BFGS: only its work per iteration, which grows with the width, is saved.
    used = np.unique(X_mem.nonzero()[1])
    reference = SkLogisticRegression(C=1.0, max_iter=500).fit(X_mem[:, used], y_mem)
    theirs = reference.predict(X_test.compute()[:, used])  # the other columns weigh 0
    reference_accuracy = float((theirs == y_test.compute()).mean())
    print(f"accuracy {accuracy:.4f} (scikit-learn on the same CSR matrix: {reference_accuracy:.4f})")
    print(f"same test predictions as scikit-learn: {float((predicted == theirs).mean()):.2%}")

    train = pd.read_csv(args.train, names=COLUMNS, skipinitialspace=True, na_values="?")
    tokens = [
        [f"{c}={row[c]}" for c in spec.columns if pd.notna(row[c])]
        + [f"{a}={row[a]}^{b}={row[b]}" for a, b in CROSSES if pd.notna(row[a]) and pd.notna(row[b])]
        for row in train[spec.input_columns].to_dict("records")
    ]
    hasher = FeatureHasher(args.n_features, input_type="string").transform(tokens)
    print(f"same matrix as FeatureHasher on the same tokens: {(hasher != X_mem).nnz == 0}")

    print(f"synthetic: X {X.shape}, {np.count_nonzero(counts)} features used, fitted in {synthetic_s:.1f} s")
    print(f"the 5 most frequent features are in {np.sort(counts)[::-1][:5].astype(int).tolist()} rows")
    frequent = counts >= 100
    agreement = np.corrcoef(fitted.coef_.ravel()[frequent], coef[frequent])[0, 1]
    print(
        f"recovered model: correlation {agreement:.3f} with the true coefficients of {frequent.sum()} frequent features"
    )


if __name__ == "__main__":
    main()
