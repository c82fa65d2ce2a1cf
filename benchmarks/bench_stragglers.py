"""Benchmark: a straggler during a shard-wise fit, undisturbed against one of three workers paused (SIGSTOP).

One run, on a LocalCluster of 3 single-threaded worker processes on 127.0.0.1:

- **shard ensemble**: ``ShardEnsembleClassifier(ExtraTreesClassifier(n_estimators=50), fusion="forest-union")``
  on 12 shards of 5,000 x 20 rows (:func:`daskml_lab.data.make_classification`, lazy: every block has a
  lineage);
- **cascade**: ``CascadeSVC(sharding="contiguous")`` on 6 shards of 1,000 x 20 rows.

Each model is fitted undisturbed, then again with one worker stopped (SIGSTOP) just before ``fit`` and
resumed (SIGCONT) after it: the fit must not wait for the paused worker. The straggler rule runs with its
defaults (:mod:`daskml_lab.ensemble._speculation`: a worker without heartbeat for 10 s is a straggler), so the
paused run pays that detection delay. Printed: both wall times, their ratio, the ratio after subtracting the
detection delay, and whether the predictions are identical.

Timings depend on what else runs on the machine: rerun on an idle machine for the figures that count.

Usage::

    python benchmarks/bench_stragglers.py            # about 1-2 minutes on an idle machine
    python benchmarks/bench_stragglers.py --quick    # smaller shards (smoke test)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import Any

import dask
import numpy as np
from distributed import Client, LocalCluster
from sklearn.ensemble import ExtraTreesClassifier

from daskml_lab.data import make_classification
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.ensemble._speculation import CONFIG_PREFIX, DEFAULTS


def _timed_fit(make: Any, X: Any, y: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    model = make().fit(X, y)
    return model, time.perf_counter() - started


def _paused_fit(client: Client, make: Any, X: Any, y: Any) -> tuple[Any, float]:
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGSTOP)
    try:
        return _timed_fit(make, X, y)
    finally:
        os.kill(pids[victim], signal.SIGCONT)


def run(client: Client, args: argparse.Namespace) -> list[tuple[str, float, float, bool]]:
    rows = 1_000 if args.quick else 5_000
    # separate arrays, never slices of one array: two different slicings of the same lazy array can give
    # the scheduler one key with two different tasks (dask/dask#9888)
    X_train, y_train = make_classification(12 * rows, 20, n_informative=10, chunks=rows, random_state=0)
    cascade_X, cascade_y = make_classification(6_000, 20, n_informative=10, chunks=1_000, random_state=1)
    X_test = make_classification(1_000, 20, n_informative=10, chunks=1_000, random_state=2)[0].compute()
    cases = {
        "shard ensemble (forest-union, 12 shards)": (
            lambda: ShardEnsembleClassifier(
                ExtraTreesClassifier(n_estimators=50), fusion="forest-union", random_state=0
            ),
            X_train,
            y_train,
            "predict_proba",
        ),
        "CascadeSVC (6 shards)": (
            lambda: CascadeSVC(C=1.0, sharding="contiguous", random_state=0),
            cascade_X,
            cascade_y,
            "predict",
        ),
    }
    results = []
    for name, (make, X_fit, y_fit, method) in cases.items():
        client.wait_for_workers(3, timeout=60)
        reference, undisturbed = _timed_fit(make, X_fit, y_fit)
        model, paused = _paused_fit(client, make, X_fit, y_fit)
        same = bool(np.array_equal(getattr(model, method)(X_test), getattr(reference, method)(X_test)))
        results.append((name, undisturbed, paused, same))
        print(f"{name}: undisturbed {undisturbed:.1f} s, one worker paused {paused:.1f} s", flush=True)
    return results


def report(results: list[tuple[str, float, float, bool]]) -> None:
    delay = float(dask.config.get(f"{CONFIG_PREFIX}.unresponsive_s", DEFAULTS["unresponsive_s"]))
    print()
    print(
        f"| fit | undisturbed (s) | 1 of 3 paused (s) | ratio | ratio without the {delay:g} s detection | same result |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, undisturbed, paused, same in results:
        print(
            f"| {name} | {undisturbed:.1f} | {paused:.1f} | {paused / undisturbed:.2f} | "
            f"{max(paused - delay, 0.0) / undisturbed:.2f} | {'yes' if same else 'NO'} |"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller shards (smoke test)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    with (
        LocalCluster(
            n_workers=3, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        report(run(client, args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
