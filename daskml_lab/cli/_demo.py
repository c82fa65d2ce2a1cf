"""``daskml-lab demo``: the main job, end to end on a cluster."""

from __future__ import annotations

import time
from typing import Any

import daskml_lab
from daskml_lab.cli._data import print_dashboard
from daskml_lab.data import make_classification, shard_summary, train_test_split


def _print_table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    print("-" * (width + 2 + max(len(value) for _, value in rows)))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def run_demo(
    *,
    n_rows: int,
    n_features: int,
    chunk_rows: int,
    n_workers: int,
    scheduler: str | None,
    seed: int,
    security: Any = None,
) -> None:
    """Fit a distributed logistic regression on a lazily generated dataset and print its metrics.

    Parameters
    ----------
    n_rows, n_features, chunk_rows : int
        Size of the synthetic dataset and rows per block.
    n_workers : int
        Worker processes of the local cluster (ignored with ``scheduler``).
    scheduler : str or None
        Address of a running scheduler; ``None`` starts a local cluster on 127.0.0.1.
    seed : int
        Random seed of the data, the split and the model.
    security : distributed.Security, default=None
        TLS settings of a ``tls://`` scheduler (Dask's configuration when ``None``).
    """
    from daskml_lab.linear_model import LogisticRegression

    options = {} if scheduler else {"n_workers": n_workers, "threads_per_worker": 1}
    if scheduler:
        options["security"] = security
    with daskml_lab.connect(scheduler, **options) as client:
        print_dashboard(client, {"scheduler": scheduler})
        n_informative = max(2, n_features // 2)
        X, y = make_classification(
            n_rows,
            n_features,
            n_informative=n_informative,
            n_redundant=0,
            class_sep=0.8,
            chunks=chunk_rows,
            random_state=seed,
        )
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
        print(
            f"Data: {n_rows:,} rows x {n_features} features in {X.numblocks[0]} row blocks "
            f"({X.nbytes / 2**20:,.0f} MiB, described lazily; each block is generated on a worker)"
        )
        summary = shard_summary(X_train, y_train)
        start = time.perf_counter()
        model = LogisticRegression(C=1.0, max_iter=200).fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = model.score(X_test, y_test)
        score_s = time.perf_counter() - start
        history = model.history_
        _print_table(
            "Distributed logistic regression (L-BFGS on the blocked gradient)",
            [
                ("workers", str(len(client.scheduler_info()["workers"]))),
                ("training rows", f"{int(summary['n_rows'].sum()):,} in {len(summary)} blocks"),
                ("test rows", f"{X_test.shape[0]:,}"),
                ("iterations", str(model.n_iter_.max() if hasattr(model.n_iter_, "max") else model.n_iter_)),
                ("final objective", f"{history['objective'].iloc[-1]:.6g}"),
                ("fit time", f"{fit_s:.2f} s ({fit_s / max(len(history), 1) * 1000:.0f} ms per iteration)"),
                ("test accuracy", f"{accuracy:.4f} (scored in {score_s:.2f} s)"),
            ],
        )
        print()
        print_dashboard(client, {"scheduler": scheduler})
