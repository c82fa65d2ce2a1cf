"""Benchmark: hash_features against scikit-learn's FeatureHasher on the same table, rows per second.

A click-log-like table (a high-cardinality user column, sites and apps with Zipf-distributed values, device,
hour) is hashed with 2**20 features and one cross (site x app):

- ``FeatureHasher(input_type="string")`` on the rows' token lists ``"col=value"`` (the token lists are built
  first and not timed: that is the input FeatureHasher needs), one process;
- ``hash_features`` on the same pandas table with the synchronous scheduler (one process, one thread): the
  same matrix (checked), from the table itself;
- optionally (``--cluster``) ``hash_features`` on a dask DataFrame on a LocalCluster of 2 single-threaded
  worker processes, persisted on the workers.

Prints rows/s and the ratio over FeatureHasher. Run from the repository root::

    .venv/bin/python benchmarks/bench_hashing.py --quick      # 100,000 rows, a few seconds
    .venv/bin/python benchmarks/bench_hashing.py              # 1,000,000 rows
    .venv/bin/python benchmarks/bench_hashing.py --cluster

Timings on a shared 2-core machine are noisy; compare ratios, and rerun before drawing conclusions.
"""

from __future__ import annotations

import argparse
import time

import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.feature_extraction import FeatureHasher

from daskml_lab.data import hash_features

N_FEATURES = 2**20
CROSS = ("site", "app")


def click_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Categorical columns of different cardinalities, values Zipf-distributed like a click log's."""
    rng = np.random.default_rng(seed)

    def zipf(n_values: int, prefix: str) -> np.ndarray:
        ranks = np.minimum(rng.zipf(1.3, size=n_rows), n_values) - 1
        return np.asarray([f"{prefix}{r}" for r in range(n_values)], dtype=object)[ranks]

    return pd.DataFrame(
        {
            "user": zipf(100_000, "u"),
            "site": zipf(2_000, "s"),
            "app": zipf(500, "a"),
            "device": rng.choice(["ios", "android", "web", "tv"], size=n_rows).astype(object),
            "hour": rng.integers(0, 24, size=n_rows),
        }
    )


def tokens_of(table: pd.DataFrame) -> list[list[str]]:
    a, b = CROSS
    columns = list(table.columns)
    values = table.astype(str).to_numpy()
    cross_a, cross_b = columns.index(a), columns.index(b)
    return [
        [f"{c}={v}" for c, v in zip(columns, row, strict=True)] + [f"{a}={row[cross_a]}^{b}={row[cross_b]}"]
        for row in values
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--cluster", action="store_true", help="also hash a dask DataFrame on 2 workers")
    args = parser.parse_args()
    n_rows = 100_000 if args.quick else args.rows

    table = click_table(n_rows)
    tokens = tokens_of(table)
    start = time.perf_counter()
    expected = FeatureHasher(N_FEATURES, input_type="string").transform(tokens)
    sklearn_s = time.perf_counter() - start

    start = time.perf_counter()
    X = hash_features(
        table, n_features=N_FEATURES, columns=list(table.columns), crosses=[CROSS], chunks=n_rows
    )
    ours = X.compute(scheduler="sync")
    ours_s = time.perf_counter() - start
    same = (ours != expected).nnz == 0

    print(f"{n_rows:,} rows, {table.shape[1]} columns + 1 cross, {N_FEATURES:,} features")
    print(f"{'method':<44}{'seconds':>9}{'rows/s':>14}{'ratio':>8}")
    print(
        f"{'sklearn FeatureHasher (tokens given)':<44}{sklearn_s:>9.2f}{n_rows / sklearn_s:>14,.0f}{1.0:>8.2f}"
    )
    print(
        f"{'hash_features, pandas, 1 thread':<44}{ours_s:>9.2f}{n_rows / ours_s:>14,.0f}"
        f"{sklearn_s / ours_s:>8.2f}"
    )
    print(f"same matrix: {same}")
    if not same:
        msg = "hash_features and FeatureHasher disagree on the same tokens"
        raise SystemExit(msg)

    if args.cluster:
        from distributed import Client, LocalCluster, wait

        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            frame = client.persist(dd.from_pandas(table, npartitions=8))
            wait(frame)
            start = time.perf_counter()
            X = hash_features(frame, n_features=N_FEATURES, columns=list(table.columns), crosses=[CROSS])
            X = client.persist(X)
            wait(X)
            cluster_s = time.perf_counter() - start
            print(
                f"{'hash_features, dask, 2 worker processes':<44}{cluster_s:>9.2f}{n_rows / cluster_s:>14,.0f}"
                f"{sklearn_s / cluster_s:>8.2f}"
            )


if __name__ == "__main__":
    main()
