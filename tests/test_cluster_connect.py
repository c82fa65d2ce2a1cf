"""connect(): address resolution, local clusters on 127.0.0.1, external schedulers, unreachable addresses."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import dask
import dask.array as da
import numpy as np
import psutil
import pytest
from distributed import Client
from sklearn import linear_model as sk

import daskml_lab
from daskml_lab.linear_model import LogisticRegression


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
@pytest.mark.parametrize("protocol", [None, "inproc://"])
def test_threads_in_this_process(protocol):
    # connect(processes=False) used to fail: the in-process transport refuses host="127.0.0.1".
    options = {"protocol": protocol} if protocol else {}
    with daskml_lab.connect(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0", **options
    ) as client:
        info = client.scheduler_info()
        assert len(info["workers"]) == 2
        scheme = "inproc" if protocol else "tcp"
        assert urlparse(client.scheduler.address).scheme == scheme
        if not protocol:
            assert urlparse(client.scheduler.address).hostname == "127.0.0.1"
            assert urlparse(client.dashboard_link).hostname == "127.0.0.1"
        listening = {conn.laddr.ip for conn in psutil.Process().net_connections() if conn.status == "LISTEN"}
        assert listening <= {"127.0.0.1"}, listening
        X = np.random.default_rng(0).normal(size=(400, 3))
        y = (X[:, 0] > 0).astype(int)
        ours = LogisticRegression().fit(da.from_array(X, chunks=100), y)
        reference = sk.LogisticRegression().fit(X, y)
        np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-3, atol=1e-4)


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


@pytest.mark.cluster
def test_external_scheduler_runs_generate_split_shard_read(external_scheduler, tmp_path):
    """The data layer end to end on `dask scheduler` + `dask worker` subprocesses, compared with the local result."""
    import pandas as pd
    from sklearn.datasets import dump_svmlight_file

    from daskml_lab.data import make_classification, read, shard, shard_summary, train_test_split

    def pipeline():
        X, y = make_classification(6_000, 5, chunks=1_000, random_state=3)
        X_tr, X_te, y_tr, _ = train_test_split(X, y, test_size=0.25, random_state=3)
        X_sh, y_sh = shard(X_tr, y_tr, n_shards=3, strategy="stratified", random_state=3)
        return X_sh.compute(), y_sh.compute(), shard_summary(X_sh, y_sh), X_te.shape[0]

    with dask.config.set(scheduler="sync"):
        local = pipeline()
    rng = np.random.default_rng(1)
    X_file = rng.normal(size=(500, 4))
    y_file = (X_file[:, 0] > 0).astype(int)
    pd.DataFrame(np.c_[X_file, y_file], columns=["a", "b", "c", "d", "label"]).to_csv(
        tmp_path / "d.csv", index=False
    )
    dump_svmlight_file(X_file, y_file, str(tmp_path / "d.svm"))

    with daskml_lab.connect(external_scheduler, timeout_s=30):
        remote = pipeline()
        X_csv, y_csv = read(tmp_path / "d.csv", "label")
        np.testing.assert_array_equal(y_csv.compute(), y_file)
        X_svm, y_svm = read(tmp_path / "d.svm", n_features=4)
        np.testing.assert_allclose(X_csv.compute(), X_file)
        np.testing.assert_allclose(X_svm.compute().toarray(), X_file)
        np.testing.assert_array_equal(y_svm.compute(), y_file)
    # Results do not depend on where the blocks were computed.
    np.testing.assert_array_equal(remote[0], local[0])
    np.testing.assert_array_equal(remote[1], local[1])
    pd.testing.assert_frame_equal(remote[2], local[2])
    assert remote[3] == local[3] == 1_500
    assert list(remote[2]["n_rows"]) == [1_500, 1_500, 1_500]
