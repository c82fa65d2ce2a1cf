"""connect(): address resolution, local clusters on 127.0.0.1, external schedulers, unreachable addresses."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client

import daskml_lab


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_address_fails_fast_naming_it():
    address = f"tcp://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(
        ConnectionError, match=rf"Could not reach the Dask scheduler at '{address}' within 1 s"
    ):
        daskml_lab.connect(address, timeout_s=1)
    # Bounded wait: the timeout plus connection set-up, not a hang.
    assert time.monotonic() - start < 30


def test_unreachable_configured_address_is_used(monkeypatch):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with dask.config.set({"scheduler-address": address}), pytest.raises(ConnectionError, match=address):
        daskml_lab.connect(timeout_s=1)


def test_local_options_with_address_are_rejected():
    with pytest.raises(ValueError, match=r"Options for a local cluster \(\['n_workers'\]\)"):
        daskml_lab.connect("tcp://127.0.0.1:1", n_workers=2)


@pytest.mark.cluster
def test_local_cluster_binds_loopback_and_closes_what_it_started():
    with daskml_lab.connect(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as client:
        info = client.scheduler_info()
        assert len(info["workers"]) == 2
        assert urlparse(client.scheduler.address).hostname == "127.0.0.1"
        assert all(urlparse(addr).hostname == "127.0.0.1" for addr in info["workers"])
        assert urlparse(client.dashboard_link).hostname == "127.0.0.1"
        cluster = client.cluster
        x = da.arange(1000, chunks=100)
        assert int(x.sum().compute()) == 499500
    assert cluster.status.name == "closed"


@pytest.mark.cluster
def test_existing_client_is_reused_but_not_closed(client):
    with daskml_lab.connect() as second:
        assert second.scheduler.address == client.scheduler.address
        assert second is not client
    assert client.status == "running"
    assert int(da.ones(10, chunks=5).sum().compute()) == 10


@pytest.mark.cluster
def test_external_scheduler_runs_data_layer(external_scheduler):
    """`dask scheduler` + two `dask worker` subprocesses on 127.0.0.1, reached by address."""
    from daskml_lab.data import check_X_y

    with daskml_lab.connect(external_scheduler, timeout_s=30) as client:
        assert isinstance(client, Client)
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        rng = np.random.default_rng(0)
        X = rng.normal(size=(2_000, 5))
        y = (X[:, 0] > 0).astype(int)
        data = check_X_y(da.from_array(X, chunks=(250, 5)), da.from_array(y, chunks=250))
        # The finiteness check and the reduction run on the external workers.
        assert np.allclose(data.X.sum(axis=0).compute(), X.sum(axis=0))
        Xbad = X.copy()
        Xbad[1_700, 3] = np.inf
        bad = check_X_y(da.from_array(Xbad, chunks=(250, 5)), y)
        with pytest.raises(
            ValueError, match=r"Input X contains infinity .* \(row block 6, rows 1500 to 1749\)"
        ):
            bad.X.sum().compute()


@pytest.mark.cluster
def test_external_scheduler_via_environment(external_scheduler, monkeypatch):
    with (
        dask.config.set({"scheduler-address": external_scheduler}),
        daskml_lab.connect(timeout_s=30) as client,
    ):
        assert client.scheduler.address == external_scheduler
