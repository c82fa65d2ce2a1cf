"""Benchmark: fitting zarr data larger than the workers' memory, at 1x, 2x and 4x rows (issue 6).

One run, on a LocalCluster of 2 single-threaded worker processes with ``memory_limit=500MiB`` each (1000 MiB in
all; a worker process holds about 300 MiB of libraries before any data):

1. Three zarr stores are written to a temporary directory (removed at the end): 1x = 2,359,296 x 64 float64
   rows (1.2 GB, already more than the whole cluster's memory limit), 2x and 4x (4.8 GB), in row chunks of
   16,384 rows (8 MiB), uncompressed. The rows come from one logistic model (per-chunk seeded generator); a
   held-out store of 196,608 rows gives the accuracy (predicted lazily, block by block, like the fit).
2. On each store, read with :func:`daskml_lab.data.read_zarr`:

   - ``LogisticRegression`` (lbfgs, ``max_iter`` fixed, so that the work is proportional to the rows):
     ``persist="auto"`` chooses to stream the blocks from the store at every pass;
   - ``ShardEnsembleClassifier(SGDClassifier(loss="log_loss", max_iter=5, tol=None))``, one shard per
     chunk, soft voting: each shard fit reads its own chunk;
   - the scikit-learn baseline: ``SGDClassifier(loss="log_loss").partial_fit`` over the same zarr chunks, one
     epoch, in this process (the out-of-core way of fitting such data with scikit-learn alone).

   For each: fit time, time per row relative to 1x, peak RSS of the worker processes (sampled every 0.2 s
   with ``client.run``), workers restarted by their nanny (process ids before and after), accuracy on the
   held-out rows, and the time ratio against the scikit-learn baseline on the same store.

The stores live on disk, but this machine's page cache is larger than them: passes read from the cache, not
the device. The memory that matters, and is bounded, is that of the worker processes. Timings depend on what
else runs on the machine: rerun on an idle machine for the figures that count.

Usage::

    python benchmarks/bench_larger_than_memory.py             # full run (a few minutes, 8.4 GB written)
    python benchmarks/bench_larger_than_memory.py --quick     # 1x = 300 MB: smoke test, not larger than memory
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import psutil
import zarr
from _cluster import bench_client
from distributed import Client
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
from sklearn.linear_model import SGDClassifier

from daskml_lab.data import read_zarr
from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.testing import PeakMemory, process_rss

N_FEATURES = 64
CHUNK_ROWS = 16_384
SEED = 0


def _coef() -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal(N_FEATURES) * 3 / np.sqrt(N_FEATURES)


def _chunk(index: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([SEED, 1, index])
    X = rng.standard_normal((rows, N_FEATURES))
    y = (X @ _coef() + rng.logistic(size=rows) > 0).astype(np.int64)
    return X, y


def write_stores(root: Path, n_chunks: list[int], first: int = 0) -> list[Path]:
    """One zarr group (``X``, ``y``) per size; the smaller ones hold the first chunks of the largest.

    Chunk ``i`` of every store comes from the generator of chunk ``first + i``.
    """
    groups, paths = [], []
    for count in n_chunks:
        path = root / f"data_{count}.zarr"
        group = zarr.open_group(str(path), mode="w")
        group.create_array(
            "X",
            shape=(count * CHUNK_ROWS, N_FEATURES),
            chunks=(CHUNK_ROWS, N_FEATURES),
            dtype="f8",
            compressors=None,
        )
        group.create_array(
            "y", shape=(count * CHUNK_ROWS,), chunks=(CHUNK_ROWS,), dtype="i8", compressors=None
        )
        groups.append(group)
        paths.append(path)
    for index in range(max(n_chunks)):
        X, y = _chunk(first + index, CHUNK_ROWS)
        rows = slice(index * CHUNK_ROWS, (index + 1) * CHUNK_ROWS)
        for group, count in zip(groups, n_chunks, strict=True):
            if index < count:
                group["X"][rows] = X
                group["y"][rows] = y
    return paths


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class _Choices(logging.Handler):
    """Collects what the package logged about persisting or streaming."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "engine" in message or "persist" in message.lower() or "stream" in message:
            self.messages.append(message)


def _fit_on_cluster(client: Client, make_model, X, y) -> dict:
    pids = client.run(os.getpid)
    before = max(client.run(process_rss).values()) / 2**20
    with PeakMemory(client) as memory, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model = make_model().fit(X, y)
        elapsed = time.perf_counter() - start
    after = client.run(os.getpid)
    restarted = len(set(pids.values()) - set(after.values()))
    return {
        "model": model,
        "time": elapsed,
        "before_mib": before,
        "peak_mib": memory.max_mib,
        "restarts": restarted,
    }


def _sklearn_partial_fit(path: Path) -> dict:
    """One epoch of SGDClassifier.partial_fit over the zarr chunks, read one at a time in this process."""
    group = zarr.open_group(str(path), mode="r")
    X_array, y_array = group["X"], group["y"]
    model = SGDClassifier(loss="log_loss", random_state=0)
    process = psutil.Process()
    peak = before = process.memory_info().rss
    start = time.perf_counter()
    for begin in range(0, X_array.shape[0], CHUNK_ROWS):
        X = X_array[begin : begin + CHUNK_ROWS]
        y = y_array[begin : begin + CHUNK_ROWS]
        model.partial_fit(X, y, classes=np.array([0, 1]))
        peak = max(peak, process.memory_info().rss)
    elapsed = time.perf_counter() - start
    return {
        "model": model,
        "time": elapsed,
        "before_mib": before / 2**20,
        "peak_mib": peak / 2**20,
        "restarts": 0,
    }


def _sklearn_accuracy(model: SGDClassifier, path: Path) -> float:
    group = zarr.open_group(str(path), mode="r")
    correct = 0
    for begin in range(0, group["y"].shape[0], CHUNK_ROWS):
        y = group["y"][begin : begin + CHUNK_ROWS]
        correct += int(np.sum(model.predict(group["X"][begin : begin + CHUNK_ROWS]) == y))
    return correct / group["y"].shape[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks-1x", type=int, default=144, help="row chunks of 16,384 rows at 1x")
    parser.add_argument("--memory-limit-mib", type=int, default=500)
    parser.add_argument("--max-iter", type=int, default=4, help="lbfgs iterations (fixed work per row)")
    parser.add_argument("--quick", action="store_true", help="1x = 36 chunks (300 MB)")
    parser.add_argument("--tmpdir", default=None, help="where to write the stores (default: system temp)")
    args = parser.parse_args(argv)
    if args.quick:
        args.chunks_1x = 36
    n_chunks = [args.chunks_1x, 2 * args.chunks_1x, 4 * args.chunks_1x]
    choices = _Choices()
    for name in ("daskml_lab.solvers._problem", "daskml_lab.ensemble"):
        logging.getLogger(name).addHandler(choices)
        logging.getLogger(name).setLevel(logging.DEBUG)
    root = Path(tempfile.mkdtemp(prefix="daskml-lab-bench-ltm-", dir=args.tmpdir))
    try:
        start = time.perf_counter()
        paths = write_stores(root, n_chunks)
        (test_path,) = write_stores(root / "test", [12], first=10**6)
        print(
            f"wrote {sum(_disk_bytes(p) for p in paths) / 1e9:.1f} GB of zarr in {time.perf_counter() - start:.0f} s "
            f"(free disk left: {shutil.disk_usage(root).free / 1e9:.0f} GB)",
            flush=True,
        )
        with bench_client(dashboard_address=":0", memory_limit=f"{args.memory_limit_mib}MiB") as client:
            # warm-up, not timed: imports and first reads of zarr on the workers
            X_test, y_test = read_zarr(test_path, target="y")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                LogisticRegression(max_iter=1).fit(X_test, y_test)
            time.sleep(2)  # a heartbeat, so that the scheduler knows the workers' memory in use
            baseline = client.run(process_rss)
            total_limit = 2 * args.memory_limit_mib * 2**20
            print(
                f"cluster: 2 workers x 1 thread, memory_limit {args.memory_limit_mib} MiB each "
                f"({total_limit / 2**30:.2f} GiB in all); worker RSS before any data: "
                f"{', '.join(f'{v / 2**20:.0f}' for v in baseline.values())} MiB",
                flush=True,
            )
            rows = []
            for path, count in zip(paths, n_chunks, strict=True):
                X, y = read_zarr(path, target="y")
                size = {
                    "rows": X.shape[0],
                    "disk_gb": _disk_bytes(path) / 1e9,
                    "x_limit": X.nbytes / total_limit,
                }
                print(
                    f"\n{X.shape[0]:,} rows ({size['disk_gb']:.2f} GB on disk, {size['x_limit']:.1f}x the "
                    "cluster's memory limit)",
                    flush=True,
                )
                choices.messages.clear()
                linear = _fit_on_cluster(
                    client, lambda: LogisticRegression(max_iter=args.max_iter, tol=0.0), X, y
                )
                linear["passes"] = int(linear["model"].history_["n_evals"].sum()) + 2
                print(
                    f"  LogisticRegression (lbfgs, {args.max_iter} iterations): {linear['time']:.1f} s; "
                    f"{' | '.join(choices.messages)}",
                    flush=True,
                )
                choices.messages.clear()
                ensemble = _fit_on_cluster(
                    client,
                    lambda: ShardEnsembleClassifier(
                        SGDClassifier(loss="log_loss", max_iter=5, tol=None), random_state=0
                    ),
                    X,
                    y,
                )
                print(
                    f"  ShardEnsembleClassifier (SGDClassifier, {count} shards): {ensemble['time']:.1f} s; "
                    f"{' | '.join(m for m in choices.messages if 'shard' in m.lower())}",
                    flush=True,
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SkConvergenceWarning)
                    sklearn = _sklearn_partial_fit(path)
                print(
                    f"  scikit-learn SGDClassifier.partial_fit, 1 epoch: {sklearn['time']:.1f} s", flush=True
                )
                for result in (linear, ensemble):
                    # compute: one scalar; the held-out rows are predicted block by block on the workers
                    result["accuracy"] = float((result["model"].predict(X_test) == y_test).mean().compute())
                sklearn["accuracy"] = _sklearn_accuracy(sklearn["model"], test_path)
                rows.append({**size, "linear": linear, "ensemble": ensemble, "sklearn": sklearn})
        report(rows, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def report(rows: list[dict], args: argparse.Namespace) -> None:
    print()
    print(
        f"memory_limit {args.memory_limit_mib} MiB x 2 workers; before / peak = largest RSS of a worker process "
        "before / during the fit (of this process for scikit-learn)"
    )
    header = (
        f"{'method':<34}{'rows':>11}{'GB disk':>9}{'x limit':>8}{'fit s':>9}{'s/row vs 1x':>13}"
        f"{'before MiB':>11}{'peak MiB':>10}{'restarts':>10}{'accuracy':>10}{'vs sklearn':>12}"
    )
    print(header)
    print("-" * len(header))
    for key, label in (
        ("linear", f"LogisticRegression lbfgs x{args.max_iter}"),
        ("ensemble", "ShardEnsemble(SGDClassifier)"),
        ("sklearn", "sklearn SGD partial_fit, 1 epoch"),
    ):
        base = rows[0][key]["time"] / rows[0]["rows"]
        for row in rows:
            result = row[key]
            ratio = result["time"] / row["sklearn"]["time"]
            print(
                f"{label:<34}{row['rows']:>11,}{row['disk_gb']:>9.2f}{row['x_limit']:>8.1f}"
                f"{result['time']:>9.1f}{result['time'] / row['rows'] / base:>13.2f}{result['before_mib']:>11.0f}"
                f"{result['peak_mib']:>10.0f}"
                f"{result['restarts']:>10d}{result['accuracy']:>10.4f}{ratio:>11.2f}x"
            )
    passes = [row["linear"]["passes"] for row in rows]
    print(
        f"\nLogisticRegression: passes per fit: {passes} (X once per evaluation, plus 2 passes over y alone)"
    )
    print(
        "target: fit time linear in the rows (s/row vs 1x close to 1.00) and the peak worker memory flat, "
        "no restart"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
