"""Benchmark: read_svmlight on a 2-process LocalCluster against sklearn's single-process load_svmlight_file.

Writes a synthetic svmlight file of about ``--size-mb`` megabytes in a temporary directory (deleted at the
end), then times, in one run:

- ``sklearn.datasets.load_svmlight_file`` (one process, one thread);
- ``daskml_lab.data.read_svmlight`` + ``persist`` on a LocalCluster of 2 single-threaded worker processes on
  127.0.0.1, once with the index first pass (``n_features=None``, ``zero_based="auto"``: the ranges are parsed
  twice) and once with the row-count first pass (``n_features`` and ``zero_based`` given);

and prints a table of seconds, rows/s, MB/s and the speed-up over scikit-learn, then a quick check on the real
a9a files when they are present. Run from the repository root::

    .venv/bin/python benchmarks/bench_svmlight.py            # about 300 MB, well under two minutes
    .venv/bin/python benchmarks/bench_svmlight.py --size-mb 50

Timings on a shared 2-core machine are noisy; compare ratios, and rerun before drawing conclusions.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _cluster import bench_client
from distributed import Client, wait
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from daskml_lab.data import read_svmlight

N_FEATURES = 1000
NNZ_PER_ROW = 40
SHARED_A9A = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "a9a_libsvm"


def write_synthetic(path: Path, size_mb: float, seed: int = 0) -> int:
    """Write about ``size_mb`` MB of one-based svmlight text; return the number of rows.

    A piece of about 4 MB is generated once by scikit-learn's writer and repeated: the parser's work per byte
    is the same as for distinct rows, and writing stays fast.
    """
    rng = np.random.default_rng(seed)
    n_rows = 8_000
    X = sp.random(n_rows, N_FEATURES, density=NNZ_PER_ROW / N_FEATURES, random_state=seed, format="csr")
    X.data = np.round(rng.standard_normal(X.nnz), 4)
    y = rng.integers(0, 2, n_rows) * 2 - 1
    buffer = io.BytesIO()
    dump_svmlight_file(X, y, buffer, zero_based=False)
    piece = buffer.getvalue()
    repeats = max(1, round(size_mb * 1e6 / len(piece)))
    with path.open("wb") as f:
        for _ in range(repeats):
            f.write(piece)
    return n_rows * repeats


def time_sklearn(path: Path) -> tuple[float, tuple[int, int]]:
    start = time.perf_counter()
    X, _ = load_svmlight_file(str(path))
    return time.perf_counter() - start, X.shape


def time_dask(client: Client, path: Path, blocksize: str, **options) -> tuple[float, float, tuple[int, int]]:
    """Seconds for read_svmlight (its first pass) and for the whole read + persist; the shape read."""
    start = time.perf_counter()
    X, y = read_svmlight(path, blocksize=blocksize, **options)
    first_pass = time.perf_counter() - start
    X, y = client.persist([X, y])
    wait([X, y])
    total = time.perf_counter() - start
    shape = X.shape
    del X, y
    return first_pass, total, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=300.0, help="synthetic file size (default 300)")
    parser.add_argument("--blocksize", default="32MiB", help="byte range per task (default 32MiB)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-svmlight-") as tmp:
        path = Path(tmp, "synthetic.svm")
        start = time.perf_counter()
        n_rows = write_synthetic(path, args.size_mb)
        size_mb = path.stat().st_size / 1e6
        print(
            f"synthetic file: {size_mb:.0f} MB, {n_rows:,} rows, {N_FEATURES} features, {NNZ_PER_ROW} "
            f"non-zeros per row (written in {time.perf_counter() - start:.1f} s)"
        )

        t_sklearn, shape_sklearn = time_sklearn(path)
        rows = [("sklearn load_svmlight_file (1 process)", None, t_sklearn, shape_sklearn)]

        with bench_client() as client:
            first, total, shape = time_dask(client, path, args.blocksize)
            rows.append(("read_svmlight + persist, index pass", first, total, shape))
            first, total, shape = time_dask(
                client, path, args.blocksize, n_features=shape_sklearn[1], zero_based=False
            )
            rows.append(("read_svmlight + persist, count pass", first, total, shape))

            print(f"\nLocalCluster: 2 worker processes x 1 thread, 127.0.0.1; blocksize {args.blocksize}")
            header = (
                f"{'method':<42}{'first pass s':>13}{'total s':>9}{'rows/s':>12}{'MB/s':>8}{'vs sklearn':>11}"
            )
            print(header)
            print("-" * len(header))
            for name, first_pass, seconds, shape in rows:
                assert shape == shape_sklearn, (name, shape, shape_sklearn)
                first_text = "-" if first_pass is None else f"{first_pass:.2f}"
                print(
                    f"{name:<42}{first_text:>13}{seconds:>9.2f}{n_rows / seconds:>12,.0f}"
                    f"{size_mb / seconds:>8.1f}{t_sklearn / seconds:>10.2f}x"
                )

            a9a_check(client)


def a9a_check(client: Client) -> None:
    files = [SHARED_A9A / "a9a.gz", SHARED_A9A / "a9a.t.gz"]
    if not all(f.exists() for f in files):
        print(f"\na9a: skipped ({SHARED_A9A} not found)")
        return
    print("\na9a (gzip: one block per file)")
    for path in files:
        start = time.perf_counter()
        X_ref, y_ref = load_svmlight_file(str(path), n_features=123)
        t_sklearn = time.perf_counter() - start
        start = time.perf_counter()
        X, y = read_svmlight(path, n_features=123)
        X_got, y_got = client.compute([X, y], sync=True)
        t_dask = time.perf_counter() - start
        same = (X_got != X_ref).nnz == 0 and np.array_equal(y_got, y_ref)
        print(
            f"  {path.name:<9} shape {X_ref.shape}: sklearn {t_sklearn:.2f} s, read_svmlight + compute "
            f"{t_dask:.2f} s, identical: {same}"
        )


if __name__ == "__main__":
    main()
