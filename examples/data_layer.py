"""Tour of the data layer on a real dataset: load, validate, split, shard, summarise — all lazily on a cluster.

Run it with ``python examples/data_layer.py PATH --target COLUMN`` where PATH is any file the data layer reads
(CSV/TSV(.gz), parquet, zarr, netCDF/HDF5, LIBSVM), for example::

    python examples/data_layer.py ../shared/data/letter/letter.tsv.gz --target target
    python examples/data_layer.py ../shared/data/a9a_libsvm/a9a.gz --format svmlight --n-features 123

A local cluster of two worker processes is started on 127.0.0.1, or ``--scheduler tcp://HOST:8786`` uses a
running ``dask scheduler``. Nothing but small counts is brought to this process.
"""

from __future__ import annotations

import argparse
import sys

import daskml_lab
from daskml_lab.data import read, shard, shard_summary, train_test_split


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the example."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="data file or directory")
    parser.add_argument("--target", default=None, help="target column/variable (not for LIBSVM files)")
    parser.add_argument("--format", default=None, help="file format when the extension does not tell it")
    parser.add_argument("--n-features", type=int, default=None, help="LIBSVM only: number of features")
    parser.add_argument("--n-shards", type=int, default=4, help="number of shards (default: 4)")
    parser.add_argument(
        "--strategy", default="stratified", choices=("contiguous", "shuffle", "stratified", "hash")
    )
    parser.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    parser.add_argument("--random-state", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load, split and shard the data, printing what each step produced."""
    args = parse_args(argv)
    options = {} if args.scheduler else {"n_workers": 2, "threads_per_worker": 1}
    with daskml_lab.connect(args.scheduler, **options) as client:
        print(f"dashboard: {client.dashboard_link}")
        read_options = {"n_features": args.n_features} if args.n_features else {}
        X, y = read(args.path, args.target, format=args.format, **read_options)
        print(f"loaded:  X {X.shape} {X.dtype} in {X.numblocks[0]} row blocks; y {y.shape} {y.dtype}")

        X_train, X_test, y_train, _ = train_test_split(
            X, y, test_size=0.25, random_state=args.random_state, stratify=y
        )
        print(f"split:   train {X_train.shape[0]:,} rows, test {X_test.shape[0]:,} rows (stratified)")

        X_shards, y_shards = shard(
            X_train, y_train, n_shards=args.n_shards, strategy=args.strategy, random_state=args.random_state
        )
        print(f"sharded: {X_shards.numblocks[0]} shards of {X_shards.chunks[0]} rows ({args.strategy})")
        summary = shard_summary(X_shards, y_shards)
        print("\nrows and class counts per shard:")
        print(summary.to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
