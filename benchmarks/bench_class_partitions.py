"""Benchmark: a model of many classes partitioned over its classes too (``class_partitions``, issue 13).

A sparse multinomial problem with ``--classes`` classes (default 1,000) from
:func:`daskml_lab.data.make_sparse_classification` (Zipf-distributed features), split into train and test
rows. ``LogisticRegression(solver="sgd", model_partitions=2)`` on the reference cluster (2 single-threaded
worker processes), with ``solver_options={"class_partitions": c}`` for c = 1 (the shards split the features
only) and c = 2 (each shard holds every feature for half of the classes, and a step pulls and pushes one half
at a time):

- time per epoch (``history_["epoch_s"]``), keys per step and bytes pulled per step (the shards' counters;
  with c class parts a key is pulled from c shards, each with its classes);
- the model rows a worker holds at once during a step: ``keys per step x classes / c x 8`` bytes;
- each worker's peak resident memory during the fit over its resident memory before it (the kernel's
  ``VmHWM``, reset just before the fit);
- test accuracy;

next to scikit-learn's ``SGDClassifier(loss="log_loss")`` (one-vs-rest, one process, the same L2 strength and
epochs) on the same CSR rows: time per epoch and test accuracy.

Run from the repository root::

    .venv/bin/python benchmarks/bench_class_partitions.py                 # 1,000 classes, 2**14 features
    .venv/bin/python benchmarks/bench_class_partitions.py --quick         # 300 classes, 2**12 features

Timings on a shared 2-core machine are noisy; run it on an idle machine before quoting figures.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _cluster import bench_client
from sklearn.linear_model import SGDClassifier

from daskml_lab.data import make_sparse_classification
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression


def _reset_peak_rss() -> int:
    """Reset this process's ``VmHWM`` to its current resident size; return that size (bytes)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return _status_bytes("VmRSS")


def _peak_rss() -> int:
    return _status_bytes("VmHWM")


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def fit_partitioned(
    client, X_train, y_train, X_test, y_test, C: float, epochs: int, class_parts: int
) -> dict:
    """One partitioned SGD fit; its figures."""
    model = LogisticRegression(
        C=C,
        solver="sgd",
        model_partitions=2,
        max_iter=epochs,
        tol=1e-12,
        random_state=0,
        solver_options={"class_partitions": class_parts, "batch_size": 512},
    )
    before = client.run(_reset_peak_rss)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs, on purpose
        model.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    peaks = client.run(_peak_rss)
    history = model.history_
    steps = float(np.sum(history["n_steps"]))
    # every key of a step is pulled from one shard per class part
    keys_per_step = float(np.sum(history["keys_pulled"])) / steps / class_parts
    n_classes = len(model.classes_)
    return {
        "epoch_s": float(np.mean(history["epoch_s"])),
        "fit_s": fit_s,
        "keys_per_step": keys_per_step,
        "bytes_pulled_per_step": float(np.sum(history["bytes_pulled"])) / steps,
        "held_per_step": keys_per_step * (n_classes / class_parts) * 8,
        "growth": [(peaks[w] - before[w]) / 2**20 for w in sorted(before)],
        "accuracy": float(model.score(X_test, y_test)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 classes, 2**12 features, 10,000 rows")
    parser.add_argument("--classes", type=int, default=None, help="classes (default 1,000; quick 300)")
    parser.add_argument("--features", type=int, default=None, help="features (default 2**14; quick 2**12)")
    parser.add_argument("--rows", type=int, default=None, help="training rows (default 20,000; quick 10,000)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    n_classes, n_features, n_train = (300, 2**12, 10_000) if args.quick else (1_000, 2**14, 20_000)
    n_classes = args.classes or n_classes
    n_features = args.features or n_features
    n_train = args.rows or n_train
    n_test, C = n_train // 5, 1.0
    X, y = make_sparse_classification(
        n_train + n_test, n_features, nnz_per_row=20, n_classes=n_classes, chunks=n_train // 4, random_state=0
    )
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    X_np, y_np, X_test_np, y_test_np = (a.compute() for a in (X_train, y_train, X_test, y_test))
    model_mib = (n_features + 1) * n_classes * 8 / 2**20
    print(
        f"{n_train} train rows, {n_test} test rows, {n_features} features, {n_classes} classes "
        f"(a {model_mib:.0f} MiB float64 model), 20 draws per row, {args.epochs} epochs, 2 shards"
    )

    start = time.perf_counter()
    reference = SGDClassifier(
        loss="log_loss", alpha=1 / (C * n_train), max_iter=args.epochs, tol=None, random_state=0
    ).fit(X_np, y_np)
    sk_epoch_s = (time.perf_counter() - start) / args.epochs
    sk_accuracy = reference.score(X_test_np, y_test_np)

    with bench_client(memory_limit="6GiB") as client:
        X_train, y_train, X_test, y_test = client.persist([X_train, y_train, X_test, y_test])
        fit_partitioned(client, X_train[:2_000], y_train[:2_000], X_test, y_test, C, 1, 1)  # warm-up
        figures = {
            c: fit_partitioned(client, X_train, y_train, X_test, y_test, C, args.epochs, c) for c in (1, 2)
        }

    header = (
        "| fit | s per epoch | keys per step | MiB pulled per step | model rows a worker holds per step (MiB) "
        "| worker peak growth (MiB) | test accuracy |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|")
    print(
        f"| scikit-learn SGDClassifier (one-vs-rest, one process) | {sk_epoch_s:.2f} "
        f"| - | - | - | - | {sk_accuracy:.4f} |"
    )
    for c, f in figures.items():
        growth = ", ".join(f"{g:.0f}" for g in f["growth"])
        print(
            f"| partitioned SGD, class_partitions={c} | {f['epoch_s']:.2f} ({f['epoch_s'] / sk_epoch_s:.1f}x) "
            f"| {f['keys_per_step']:.0f} | {f['bytes_pulled_per_step'] / 2**20:.1f} "
            f"| {f['held_per_step'] / 2**20:.1f} | {growth} | {f['accuracy']:.4f} |"
        )


if __name__ == "__main__":
    main()
