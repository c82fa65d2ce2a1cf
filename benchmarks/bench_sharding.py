"""Benchmark: time of sharding against the number of row blocks, per strategy.

One LocalCluster of 2 single-threaded worker processes for the whole run:

- **Data**: 10,000 rows of MAGIC gamma telescope drawn at random (``../shared/data/magic_gamma_telescope``;
  10 features, 2 classes; ``--rows`` changes the count, up to 19,020), cut into 25, 50, 100, 200 and 400 row
  blocks and persisted on the workers (not timed).
- **Timed**: ``ShardEnsembleClassifier(DecisionTreeClassifier(max_depth=5), sharding=strategy).fit(X, y)`` with
  one shard per block (``n_shards=None``): validation, sharding (:func:`daskml_lab.data.shard`), persisting the
  shards on the workers, one tree per shard and the soft-voting fusion.
- **Baseline**: ``contiguous``, which keeps the row blocks as they are: the same fit without moving rows. The
  ratio column is the strategy's time over contiguous's for the same number of blocks.
- **keys**: tasks in the graph of the sharded ``X`` and ``y`` that are new (the sharding's own tasks), a
  deterministic measure of the work the scheduler does.

Issue 17 (10,000 MAGIC rows): shuffle and stratified took 2.1 / 7.9 / 24.9 / 92 s at 25 / 50 / 100 / 200 blocks,
growing with the square of the number of blocks. Timings depend on what else runs on the machine.

Usage::

    python benchmarks/bench_sharding.py                 # 25 to 400 blocks, best of 2 (a minute or two)
    python benchmarks/bench_sharding.py --quick         # 25 and 100 blocks, one run each
    python benchmarks/bench_sharding.py --blocks 25 50  # chosen block counts
    python benchmarks/bench_sharding.py --strategies shuffle hash
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from _cluster import bench_client
from distributed import wait
from sklearn.tree import DecisionTreeClassifier

from daskml_lab.data import shard
from daskml_lab.ensemble import ShardEnsembleClassifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "magic_gamma_telescope" / "magic.tsv.gz"
STRATEGIES = ("contiguous", "shuffle", "stratified", "hash")
BLOCKS = (25, 50, 100, 200, 400)
#: The issue's figures for shuffle and stratified (seconds; 10,000 rows).
ISSUE = {25: 2.1, 50: 7.9, 100: 24.9, 200: 92.0}


def load(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_rows`` rows of MAGIC drawn at random (seed 0), features as float64 and 0/1 labels.

    The file lists the 12,332 gamma events before the hadrons: a contiguous prefix would hold one class.
    """
    frame = pd.read_csv(DATA, sep="\t")
    rows = np.random.default_rng(0).permutation(len(frame))[:n_rows]
    X = frame.drop(columns="target").to_numpy(dtype=np.float64)[rows]
    y = frame["target"].to_numpy()[rows]
    return X, y


def new_keys(sharded: tuple[Any, ...], inputs: tuple[Any, ...]) -> int:
    """Keys of the sharded arrays' graphs that are not keys of the inputs' graphs."""
    old = set().union(*(dict(a.__dask_graph__()).keys() for a in inputs))
    new = set().union(*(dict(a.__dask_graph__()).keys() for a in sharded))
    return len(new - old)


def time_one(X: da.Array, y: da.Array, strategy: str, repeat: int) -> tuple[float, int]:
    """Best fit time over ``repeat`` runs, and the number of tasks the sharding adds to the graph."""
    key = 0 if strategy == "hash" else None  # FLength: nearly unique values, rows spread over all shards
    model = ShardEnsembleClassifier(
        DecisionTreeClassifier(max_depth=5, random_state=0), sharding=strategy, shard_key=key, random_state=0
    )
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        model.fit(X, y)
        best = min(best, time.perf_counter() - start)
    keys = 0
    if strategy != "contiguous":
        options = {"random_state": 0} if key is None else {"key": key}
        keys = new_keys(shard(X, y, strategy=strategy, check_input=False, **options), (X, y))
    return best, keys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="25 and 100 blocks, one run each")
    parser.add_argument("--rows", type=int, default=10_000, help="rows of MAGIC (at most 19,020)")
    parser.add_argument("--blocks", type=int, nargs="+", default=None, help="row-block counts")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--repeat", type=int, default=None, help="runs per timing (best kept; default 2)")
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"MAGIC not found at {DATA}: nothing to run", flush=True)
        return 0
    blocks = args.blocks or ([25, 100] if args.quick else list(BLOCKS))
    repeat = args.repeat or (1 if args.quick else 2)
    X_np, y_np = load(args.rows)
    print(f"data: MAGIC, {X_np.shape[0]:,} x {X_np.shape[1]}; best of {repeat}", flush=True)
    rows = []
    with bench_client(memory_limit="2GiB") as client:
        for n_blocks in blocks:
            chunk = -(-X_np.shape[0] // n_blocks)
            X = da.from_array(X_np, chunks=(chunk, -1))
            y = da.from_array(y_np, chunks=chunk)
            X, y = client.persist([X, y])
            wait([X, y])
            times = {}
            for strategy in args.strategies:
                seconds, keys = time_one(X, y, strategy, repeat)
                times[strategy] = seconds
                base = times.get("contiguous")
                ratio = f"{seconds / base:6.1f}x" if base else "      -"
                rows.append((X.numblocks[0], strategy, seconds, keys, ratio))
                print(
                    f"{X.numblocks[0]:>6} {strategy:<11} {seconds:8.2f} s {keys:>8} keys {ratio}", flush=True
                )
            del X, y
    print()
    header = f"{'blocks':>6} {'strategy':<11} {'time':>10} {'keys':>13} {'vs contig':>9} {'issue 17':>9}"
    print(header)
    print("-" * len(header))
    for n_blocks, strategy, seconds, keys, ratio in rows:
        issue = ISSUE.get(n_blocks) if strategy in ("shuffle", "stratified") and args.rows == 10_000 else None
        quoted = f"{issue:8.1f}s" if issue else "        -"
        print(f"{n_blocks:>6} {strategy:<11} {seconds:8.2f} s {keys:>8} keys {ratio:>9} {quoted}")
    return 0


if __name__ == "__main__":
    logging.getLogger("distributed").setLevel(logging.ERROR)
    sys.exit(main(sys.argv[1:]))
