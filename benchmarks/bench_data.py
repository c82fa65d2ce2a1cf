"""Benchmark: synthetic data, sharding and splitting on a 2-process LocalCluster against numpy/scikit-learn.

Times, in one run on the same machine:

- ``daskml_lab.data.make_classification`` of ``--n-samples`` x ``--n-features`` (default 2,000,000 x 50,
  800 MB of float64) + ``persist`` on a LocalCluster of 2 single-threaded worker processes on 127.0.0.1,
  against ``sklearn.datasets.make_classification`` in this process;
- ``daskml_lab.data.shard`` of the persisted data into 16 shards with each strategy (+ ``persist``), against
  the in-memory equivalent on numpy (a slice copy for ``contiguous``, a fancy-index gather of all rows in
  shard order for the others: what a single process must do to build the same shards);
- ``daskml_lab.data.train_test_split`` (+ ``persist``), plain and stratified, against
  ``sklearn.model_selection.train_test_split`` on the numpy arrays;

and prints a table of seconds and the ratio (daskml_lab time / baseline time; below 1 means faster). Run from
the repository root::

    .venv/bin/python benchmarks/bench_data.py                      # about a minute
    .venv/bin/python benchmarks/bench_data.py --n-samples 500000   # quicker

Timings on a shared 2-core machine are noisy; compare ratios and rerun before drawing conclusions. The cluster
numbers include moving rows between the two worker processes (shuffle, stratified and hash move about half of
the data) and the scheduler's overhead; the baselines run in one process with no data movement.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import dask
import numpy as np
from _cluster import bench_client
from distributed import wait
from sklearn.datasets import make_classification as sk_make_classification
from sklearn.model_selection import train_test_split as sk_train_test_split

from daskml_lab.data import make_classification, shard, train_test_split

N_SHARDS = 16


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def persist(*arrays: Any) -> list[Any]:
    """Persist on the cluster and wait until every block is in worker memory."""
    persisted = dask.persist(*arrays)
    wait(list(persisted))
    return list(persisted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=2_000_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=100_000, help="rows per block")
    args = parser.parse_args()
    n, d = args.n_samples, args.n_features
    params = {"n_informative": 10, "n_redundant": 5, "n_classes": 3, "random_state": 0}
    rows = []

    with bench_client() as client:
        print(f"cluster: {len(client.scheduler_info()['workers'])} workers x 1 thread, data {n:,} x {d}")

        seconds, (X, y) = timed(lambda: persist(*make_classification(n, d, chunks=args.chunks, **params)))
        base, (X_np, y_np) = timed(lambda: sk_make_classification(n, d, **params))
        rows.append(("make_classification + persist", seconds, "sklearn make_classification", base))

        for strategy in ("contiguous", "shuffle", "stratified", "hash"):
            key = 0 if strategy == "hash" else None
            seconds, sharded = timed(
                lambda s=strategy, k=key: persist(
                    *shard(X, y, n_shards=N_SHARDS, strategy=s, key=k, random_state=0)
                )
            )
            sizes = sharded[0].chunks[0]
            del sharded
            if strategy == "contiguous":
                baseline = "numpy slice copies"
                base, _ = timed(
                    lambda: [X_np[i : i + n // N_SHARDS].copy() for i in range(0, n, n // N_SHARDS)]
                )
            else:
                baseline = "numpy gather X[perm], y[perm]"
                perm = np.random.default_rng(0).permutation(n)
                base, _ = timed(lambda p=perm: (X_np[p], y_np[p]))
            label = f"shard {strategy} ({N_SHARDS}; sizes {min(sizes):,}-{max(sizes):,})"
            rows.append((label + " + persist", seconds, baseline, base))
            gc.collect()

        for stratify in (None, y):
            name = "train_test_split" + (" stratified" if stratify is not None else "")
            seconds, parts = timed(
                lambda s=stratify: persist(
                    *train_test_split(X, y, test_size=0.25, random_state=0, stratify=s)
                )
            )
            del parts
            ref_stratify = None if stratify is None else y_np
            base, _ = timed(
                lambda s=ref_stratify: sk_train_test_split(
                    X_np, y_np, test_size=0.25, random_state=0, stratify=s
                )
            )
            rows.append((name + " + persist", seconds, "sklearn " + name, base))
            gc.collect()

    width = max(len(r[0]) for r in rows)
    base_width = max(len(r[2]) for r in rows)
    header = ("operation", "daskml_lab s", "baseline", "baseline s", "ratio")
    print(
        f"{header[0]:<{width}}  {header[1]:>12}  {header[2]:<{base_width}}  {header[3]:>10}  {header[4]:>5}"
    )
    for label, seconds, baseline, base in rows:
        ratio = seconds / base
        print(f"{label:<{width}}  {seconds:12.2f}  {baseline:<{base_width}}  {base:10.2f}  {ratio:5.2f}")


if __name__ == "__main__":
    main()
