"""A worker paused (SIGSTOP) before the fit starts: the pre-fit label count is recomputed elsewhere."""

from __future__ import annotations

import os
import signal
import sys

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

from daskml_lab.data import make_classification
from daskml_lab.linear_model import LogisticRegression

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX")


def _fit(X, y):
    return LogisticRegression(random_state=0, max_iter=30).fit(X, y)


@pytest.mark.skip(
    reason="label count now recovers (logged re-run), but a later pre-fit pass still hangs: unfinished"
)
def test_lbfgs_completes_with_a_worker_paused_before_fit():
    with (
        LocalCluster(n_workers=3, threads_per_worker=1, processes=True, host="127.0.0.1") as cluster,
        Client(cluster) as client,
    ):
        X, y = make_classification(12_000, 10, chunks=1_000, random_state=0)
        reference = _fit(X, y).coef_
        pid = next(iter(client.run(os.getpid).values()))
        os.kill(pid, signal.SIGSTOP)
        try:
            with dask.config.set({"daskml_lab.ensemble.speculation.unresponsive_s": 3.0}):
                coef = _fit(X, y).coef_
        finally:
            os.kill(pid, signal.SIGCONT)
        np.testing.assert_array_equal(coef, reference)
