"""A raw table from file to saved model in Python: adult (text columns, '?' as missing), on a local cluster.

The preprocessing (impute, scale, one-hot) is fitted by one blocked pass over a dask DataFrame and saved inside
the model, so the loaded model predicts the raw pandas table. The same pipeline built from scikit-learn's own
classes on the whole table in memory is the reference.

Run::

    python examples/tables.py ../shared/data/adult/adult.data.gz ../shared/data/adult/adult.test.gz
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer as sk_make_column_transformer
from sklearn.impute import SimpleImputer as SkSimpleImputer
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder as SkOneHotEncoder
from sklearn.preprocessing import StandardScaler as SkStandardScaler

import daskml_lab
from daskml_lab.compose import make_column_selector, make_column_transformer
from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.preprocessing import OneHotEncoder, SimpleImputer, StandardScaler

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income",
]  # fmt: skip


def read_adult(path: str, *, skiprows: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Features and the 0/1 income label of a UCI adult file ('?' is a missing value; the test file's labels
    end with a dot)."""
    raw = pd.read_csv(path, names=COLUMNS, skipinitialspace=True, na_values="?", skiprows=skiprows)
    label = raw.pop("income").str.rstrip(".").eq(">50K").astype(int)
    return raw, label


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("train", help="adult.data.gz")
    parser.add_argument("test", help="adult.test.gz")
    parser.add_argument("--partitions", type=int, default=4, help="row blocks of the training table")
    args = parser.parse_args()

    X_train, y_train = read_adult(args.train)
    X_test, y_test = read_adult(args.test, skiprows=1)
    numeric = make_column_selector(dtype_include="number")
    text = make_column_selector(dtype_exclude="number")

    with daskml_lab.connect(n_workers=2, threads_per_worker=1) as client:
        print(f"training page: {client.dashboard_link.rsplit('/', 1)[0]}/daskml-training")
        # dask reads the file where the work runs: a .gz file is one block, cut into partitions after reading
        frame = dd.read_csv(
            args.train, names=COLUMNS, skipinitialspace=True, na_values="?", blocksize=None
        ).repartition(npartitions=args.partitions)
        y = frame["income"].str.rstrip(".").eq(">50K").astype(int)
        X = frame.drop(columns="income")  # a dask DataFrame and Series, lazily
        prepare = make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                text,
            ),
        )
        model = make_pipeline(prepare, LogisticRegression(C=1.0, max_iter=500))
        start = time.perf_counter()
        model.fit(X, y)
        print(
            f"fitted {len(prepare.get_feature_names_out())} features in {time.perf_counter() - start:.1f} s"
        )
        predicted = model.predict(dd.from_pandas(X_test, npartitions=2))  # lazy: a dask array
        accuracy = float((predicted.compute() == y_test.to_numpy()).mean())

        # NaN is kept for models that handle it natively: HistGradientBoosting per shard, no imputer.
        from sklearn.ensemble import HistGradientBoostingClassifier

        codes = make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=50), text),
            remainder="passthrough",
        )
        boosted = make_pipeline(
            codes,
            ShardEnsembleClassifier(
                HistGradientBoostingClassifier(random_state=0),
                n_shards=2,
                fusion="soft-voting",
                random_state=0,
            ),
        ).fit(X, y)
        boosted_accuracy = float((boosted.predict(X_test) == y_test.to_numpy()).mean())

    reference = make_pipeline(
        sk_make_column_transformer(
            (make_pipeline(SkSimpleImputer(), SkStandardScaler()), numeric),
            (
                make_pipeline(
                    SkSimpleImputer(strategy="most_frequent"), SkOneHotEncoder(handle_unknown="ignore")
                ),
                text,
            ),
        ),
        SkLogisticRegression(C=1.0, max_iter=500),
    ).fit(X_train, y_train)
    reference_accuracy = float((reference.predict(X_test) == y_test.to_numpy()).mean())
    print(
        f"logistic regression accuracy {accuracy:.4f} (scikit-learn on the same pipeline: {reference_accuracy:.4f})"
    )
    print(f"HistGradientBoosting per shard, NaN kept: accuracy {boosted_accuracy:.4f}")

    with tempfile.TemporaryDirectory() as folder:
        path = daskml_lab.save(model, Path(folder) / "adult.daskml")
        loaded = daskml_lab.load(path)  # no client needed: the raw pandas table goes straight in
        same = np.array_equal(loaded.predict(X_test), predicted.compute())
        print(f"saved and loaded: same predictions on the raw test table: {same}")
        try:
            loaded.predict(X_test[X_test.columns[::-1]].drop(columns="age"))
        except ValueError as error:
            print(f"a table without the 'age' column is refused: {str(error).splitlines()[0]}")


if __name__ == "__main__":
    main()
