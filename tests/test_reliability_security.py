"""Security: what the package starts listens on 127.0.0.1 only; TLS schedulers; model files never unpickled.

The TLS tests generate a throw-away certificate authority and a certificate signed by it (``cryptography``), start
``dask scheduler --protocol tls`` and a ``dask worker`` process on 127.0.0.1 with them, and fit through
:func:`daskml_lab.connect` and the ``daskml-lab`` command line.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pickle
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from distributed import Client
from distributed.security import Security
from sklearn import linear_model as sk
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

import daskml_lab
from daskml_lab.cli import main
from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression

from .conftest import REPO_ROOT, _dask_command, _free_port

x509 = pytest.importorskip(
    "cryptography.x509", reason="the TLS tests generate certificates with cryptography"
)

LOOPBACK = "127.0.0.1"
RTOL, ATOL = 1e-3, 1e-4

#: A hang shows as a timeout: no test here should come near it (the TLS cluster starts in a few seconds).
pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------------------------------------------------
# binding


def _listening(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of the TCP sockets process ``pid`` listens on."""
    import psutil

    return [
        (conn.laddr.ip, conn.laddr.port)
        for conn in psutil.Process(pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1].split("/", 1)[0])


@pytest.mark.cluster
def test_embedded_local_cluster_listens_only_on_loopback():
    # ":0" is the address the docs suggest for "any free port"; Dask alone would bind it to every interface.
    with daskml_lab.connect(n_workers=2, threads_per_worker=1, dashboard_address=":0") as client:
        info = client.scheduler_info()
        workers = info["workers"]
        assert len(workers) == 2
        # Ports served from this process: the scheduler, its dashboard and the nannies.
        ours = {_port(client.scheduler.address), _port(client.dashboard_link)}
        ours |= {_port(worker["nanny"]) for worker in workers.values()}
        here = [(ip, port) for ip, port in _listening(os.getpid()) if port in ours]
        assert {port for _, port in here} == ours  # every server of the cluster was found...
        assert {ip for ip, _ in here} == {LOOPBACK}  # ...and listens on 127.0.0.1 only
        # The worker processes: every socket they listen on (worker and worker dashboard).
        for address, pid in client.run(os.getpid).items():
            sockets = _listening(pid)
            expected = {_port(address), workers[address]["services"]["dashboard"]}
            assert expected <= {port for _, port in sockets}
            assert {ip for ip, _ in sockets} == {LOOPBACK}, (address, sockets)
        assert client.dashboard_link.startswith(f"http://{LOOPBACK}:")


def test_cli_local_cluster_options_bind_loopback(monkeypatch):
    """The command line starts its local cluster through connect() with no host: 127.0.0.1 applies."""
    from daskml_lab.cli import _data

    seen = {}

    def fake_connect(address=None, **options):
        seen.update(options, address=address)
        msg = "stop here"
        raise RuntimeError(msg)

    monkeypatch.setattr(daskml_lab, "connect", fake_connect)
    with (
        pytest.raises(RuntimeError, match="stop here"),
        _data.cluster({"scheduler": None, "workers": 1, "timeout_s": 1.0}, verbose=False),
    ):
        pass
    assert seen["address"] is None
    assert not {"host", "dashboard_address", "security"} & set(seen), seen


def test_security_without_address_is_refused():
    with pytest.raises(ValueError, match=r"security= was given but no scheduler address"):
        daskml_lab.connect(security=Security())


# ---------------------------------------------------------------------------------------------------------
# certificates and a TLS cluster


def _name(common_name: str):
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path, prefix: str = "") -> dict[str, Path]:
    """A self-signed CA and a certificate it signs for 127.0.0.1 (used by scheduler, workers and client)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = datetime.datetime.now(datetime.UTC)
    valid = {
        "not_valid_before": now - datetime.timedelta(minutes=5),
        "not_valid_after": now + datetime.timedelta(1),
    }
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"daskml-lab test CA {prefix}")
    ca = (
        x509.CertificateBuilder(subject_name=ca_name, issuer_name=ca_name, **valid)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder(subject_name=_name(LOOPBACK), issuer_name=ca_name, **valid)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {name: folder / f"{prefix}{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def client_security(certs: dict[str, Path]) -> Security:
    return Security(
        tls_ca_file=str(certs["ca"]),
        tls_client_cert=str(certs["cert"]),
        tls_client_key=str(certs["key"]),
        require_encryption=True,
    )


def _tls_flags(certs: dict[str, Path]) -> list[str]:
    return [
        "--tls-ca-file",
        str(certs["ca"]),
        "--tls-cert",
        str(certs["cert"]),
        "--tls-key",
        str(certs["key"]),
    ]


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Path]]]:
    """`dask scheduler --protocol tls` and a `dask worker` process on 127.0.0.1, with generated certificates.

    One worker process keeps the start-up cheap (importing the package and scikit-learn in a fresh process takes
    seconds on 2 shared cores); several workers are tested with plain TCP elsewhere.

    Yields the address ``tls://127.0.0.1:PORT`` and the certificate files.
    """
    folder = tmp_path_factory.mktemp("tls-cluster")
    certs = make_certificates(folder)
    port = _free_port()
    address = f"tls://{LOOPBACK}:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    processes = []
    try:
        processes.append(
            subprocess.Popen(
                [
                    *_dask_command("scheduler"),
                    "--protocol",
                    "tls",
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(port),
                    "--dashboard-address",
                    f"{LOOPBACK}:0",
                    *_tls_flags(certs),
                ],
                stdout=(folder / "scheduler.log").open("w"),
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        worker = [*_dask_command("worker"), address, "--host", LOOPBACK, "--nthreads", "1"]
        worker += ["--memory-limit", "2GiB", "--name", "tls-0", "--no-dashboard", *_tls_flags(certs)]
        processes.append(
            subprocess.Popen(
                worker, stdout=(folder / "worker.log").open("w"), stderr=subprocess.STDOUT, env=env
            )
        )
        with Client(address, timeout=30, security=client_security(certs)) as probe:
            probe.wait_for_workers(1, timeout=60)
        yield address, certs
    finally:
        for process in reversed(processes):
            process.terminate()
        deadline = time.monotonic() + 20
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(
        n_samples=400, n_features=5, n_informative=3, flip_y=0.1, class_sep=0.8, random_state=0
    )
    return StandardScaler().fit_transform(X), y


# ---------------------------------------------------------------------------------------------------------
# TLS from Python


@pytest.mark.cluster
def test_tls_fit_through_security_matches_sklearn(tls_cluster, binary):
    address, certs = tls_cluster
    X, y = binary
    Xd, yd = da.from_array(X, chunks=(200, -1)), da.from_array(y, chunks=200)
    with daskml_lab.connect(address, security=client_security(certs), timeout_s=30) as client:
        assert client.scheduler.address == address
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 1
        assert all(w.startswith("tls://127.0.0.1:") for w in workers)

        ours = LogisticRegression(C=0.5, tol=1e-8, max_iter=500).fit(Xd, yd)
        theirs = sk.LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X, y)
        np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=RTOL, atol=ATOL)

        # One scikit-learn model per row block (the default shards), fused by soft voting.
        ensemble = ShardEnsembleClassifier(sk.LogisticRegression()).fit(Xd, yd)
        proba = ensemble.predict_proba(Xd).compute()
    members = [sk.LogisticRegression().fit(X[rows], y[rows]) for rows in (slice(0, 200), slice(200, 400))]
    expected = np.mean([member.predict_proba(X) for member in members], axis=0)
    np.testing.assert_allclose(proba, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(ensemble.predict(X), expected.argmax(axis=1))


@pytest.mark.cluster
def test_tls_settings_from_dask_config(tls_cluster):
    address, certs = tls_cluster
    config = {
        "distributed.comm.tls.ca-file": str(certs["ca"]),
        "distributed.comm.tls.client.cert": str(certs["cert"]),
        "distributed.comm.tls.client.key": str(certs["key"]),
    }
    with dask.config.set(config), daskml_lab.connect(address, timeout_s=30) as client:
        assert int(da.arange(100, chunks=10).sum().compute()) == 4950
        assert client.security.tls_client_cert == str(certs["cert"])


@pytest.mark.cluster
@pytest.mark.timeout(60)  # fails in well under a second; setup may start the TLS cluster
def test_tls_without_settings_fails_fast_and_says_what_is_missing(tls_cluster):
    address, _ = tls_cluster
    with pytest.raises(
        ValueError, match=rf"'{address}' uses TLS, but no TLS settings were given.*tls_ca_file"
    ):
        daskml_lab.connect(address, timeout_s=5)


@pytest.mark.cluster
@pytest.mark.timeout(60)  # fails in well under a second; setup may start the TLS cluster
def test_tls_scheduler_reached_over_tcp_fails_fast(tls_cluster):
    address, certs = tls_cluster
    plain = address.replace("tls://", "tcp://")
    with pytest.raises(ConnectionError, match=rf"Could not reach the Dask scheduler at '{plain}'.*tls://"):
        daskml_lab.connect(plain, timeout_s=5)
    with pytest.raises(
        ValueError, match=rf"requires encryption, but the scheduler address '{plain}' is not TLS"
    ):
        daskml_lab.connect(plain, security=client_security(certs), timeout_s=5)


def _mixed_security(ca_from: dict[str, Path], cert_from: dict[str, Path]) -> Security:
    """The CA file of one authority with the client certificate and key of another."""
    return Security(
        tls_ca_file=str(ca_from["ca"]),
        tls_client_cert=str(cert_from["cert"]),
        tls_client_key=str(cert_from["key"]),
        require_encryption=True,
    )


@pytest.mark.cluster
@pytest.mark.timeout(60)  # fails in well under a second; setup may start the TLS cluster
def test_client_certificate_of_another_ca_is_rejected_by_the_scheduler(tls_cluster, tmp_path, capsys):
    """The client trusts the scheduler, the scheduler does not trust the client (TLS 1.3: an alert after the
    handshake, which distributed reports as a closed comm). Today's main said "could not reach the scheduler"."""
    address, certs = tls_cluster
    stranger = make_certificates(tmp_path, prefix="other-")
    with pytest.raises(ConnectionError) as info:
        daskml_lab.connect(address, security=_mixed_security(certs, stranger), timeout_s=5)
    message = str(info.value)
    assert message.startswith(f"TLS certificate rejected by the scheduler at '{address}'"), message
    assert f"the client certificate '{stranger['cert']}' (key '{stranger['key']}')" in message
    assert "not signed by a CA the scheduler trusts" in message
    assert "unknown ca" in message  # OpenSSL's words
    assert "tls_client_cert=..., tls_client_key=..." in message
    assert "--tls-cert and --tls-key" in message
    assert "Could not reach" not in message

    # The command line prints the same, as one line.
    flags = [
        "--tls-ca-file",
        str(certs["ca"]),
        "--tls-cert",
        str(stranger["cert"]),
        "--tls-key",
        str(stranger["key"]),
    ]
    assert main(["info", "--scheduler", address, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"daskml-lab info: error: TLS certificate rejected by the scheduler at '{address}'"
    ), err
    assert err.count("\n") == 1, err


@pytest.mark.cluster
@pytest.mark.timeout(60)  # fails in well under a second; setup may start the TLS cluster
@pytest.mark.parametrize("client_cert", ["ours", "theirs"])
def test_scheduler_certificate_of_another_ca_is_rejected_by_the_client(tls_cluster, tmp_path, client_cert):
    """The client's CA file is another authority's: the client rejects the scheduler's certificate first."""
    address, certs = tls_cluster
    stranger = make_certificates(tmp_path, prefix="other-")
    security = _mixed_security(stranger, certs if client_cert == "theirs" else stranger)
    with pytest.raises(ConnectionError) as info:
        daskml_lab.connect(address, security=security, timeout_s=5)
    message = str(info.value)
    assert message.startswith(
        f"TLS certificate rejected by this client: the certificate of the scheduler at '{address}' could not be "
        f"verified against the CA file '{stranger['ca']}' ("
    ), message
    assert "certificate chain" in message  # OpenSSL's words: self-signed certificate in certificate chain
    assert "security=Security(tls_ca_file=...)" in message
    assert "--tls-ca-file" in message


@pytest.mark.cluster
@pytest.mark.timeout(60)  # a few seconds at most; setup may start the TLS cluster
def test_certificate_rejection_probe(tls_cluster, tmp_path):
    """When the connection error names no certificate (the scheduler's alert lost to a reset), one probe tells."""
    from distributed.comm import CommClosedError

    from daskml_lab.cluster._tls import Rejection, certificate_rejection

    address, certs = tls_cluster
    stranger = make_certificates(tmp_path, prefix="other-")
    silent = CommClosedError("in <TLS (closed)>: Stream is closed")
    assert certificate_rejection(address, _mixed_security(certs, stranger), silent) == Rejection(
        "scheduler", "tlsv1 alert unknown ca"
    )
    rejected_here = certificate_rejection(address, _mixed_security(stranger, certs), silent)
    assert rejected_here is not None
    assert rejected_here.by == "client"
    # The scheduler accepts our certificates: no rejection to report (the error was something else).
    assert certificate_rejection(address, client_security(certs), silent) is None
    # Nothing listens there, or the address is not TLS: not a certificate problem.
    assert certificate_rejection(f"tls://{LOOPBACK}:{_free_port()}", client_security(certs), silent) is None
    assert certificate_rejection(address.replace("tls://", "tcp://"), client_security(certs), silent) is None


@pytest.mark.cluster
@pytest.mark.timeout(60)
def test_unreachable_tls_scheduler_is_not_a_certificate_problem(tmp_path):
    certs = make_certificates(tmp_path)
    address = f"tls://{LOOPBACK}:{_free_port()}"
    with pytest.raises(ConnectionError) as info:
        daskml_lab.connect(address, security=client_security(certs), timeout_s=2)
    assert str(info.value).startswith(f"Could not reach the Dask scheduler at '{address}' within 2 s")
    assert "certificate rejected" not in str(info.value)


def test_wrong_security_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"security must be a distributed.Security .*got str"):
        daskml_lab.connect("tls://127.0.0.1:1", security="ca.pem")


# ---------------------------------------------------------------------------------------------------------
# TLS from the command line


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory, binary) -> Path:
    X, y = binary
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(label=y)
    path = tmp_path_factory.mktemp("tls-data") / "table.parquet"
    frame.to_parquet(path, row_group_size=100)
    return path


@pytest.mark.cluster
def test_cli_fit_and_evaluate_on_a_tls_scheduler(tls_cluster, table, binary, tmp_path, capsys):
    address, certs = tls_cluster
    X, y = binary
    model_path = tmp_path / "model.daskml"
    tls = [*_tls_flags(certs), "--scheduler", address]
    argv = ["fit", str(table), "-t", "label", "-m", "logistic-regression", "-p", "C=0.5", "-p", "tol=1e-8"]
    argv += ["-p", "max_iter=500"]
    assert main([*argv, *tls, "-o", str(model_path)]) == 0, capsys.readouterr().err
    assert "on 1 worker(s)" in capsys.readouterr().out
    model = daskml_lab.load(model_path)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # the command line standardises the columns of linear models (inside the saved model)
    theirs = make_pipeline(StandardScaler(), sk.LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000)).fit(
        X, y
    )
    np.testing.assert_allclose(model[-1].coef_, theirs[-1].coef_, rtol=RTOL, atol=ATOL)
    assert main(["evaluate", str(model_path), str(table), "--json", *tls]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["accuracy"] == pytest.approx(np.mean(model.predict(X) == y), abs=1e-12)


@pytest.mark.cluster
def test_cli_without_tls_options_is_one_clear_line(tls_cluster, table, tmp_path, capsys):
    address, _ = tls_cluster
    model_path = tmp_path / "model.daskml"
    assert main(["fit", str(table), "-t", "label", "--scheduler", address, "-o", str(model_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"daskml-lab fit: error: The scheduler address '{address}' uses TLS")
    assert "--tls-ca-file, --tls-cert, --tls-key" in err
    assert not model_path.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "c.pem"], r"--tls-cert applies to a tls:// --scheduler; the local cluster"),
        (
            ["--scheduler", "tls://127.0.0.1:1", "--tls-key", "k.pem"],
            r"needs --tls-ca-file .* and --tls-cert .*; missing --tls-ca-file, --tls-cert",
        ),
        (
            [
                "--scheduler",
                "tls://127.0.0.1:1",
                "--tls-ca-file",
                "absent-ca.pem",
                "--tls-cert",
                "absent.pem",
            ],
            r"No such file for --tls-ca-file: '.*absent-ca.pem'",
        ),
    ],
    ids=["without-scheduler", "incomplete", "missing-file"],
)
def test_cli_tls_option_errors(args, message, table, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model_path = tmp_path / "model.daskml"
    assert main(["fit", str(table), "-t", "label", *args, "-o", str(model_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not model_path.exists()


@pytest.mark.cluster
def test_cli_info_honours_dask_tls_config(tls_cluster, capsys):
    """Without --tls-* options the command line uses Dask's configuration (or DASK_DISTRIBUTED__COMM__TLS__...)."""
    address, certs = tls_cluster
    config = {
        "distributed.comm.tls.ca-file": str(certs["ca"]),
        "distributed.comm.tls.client.cert": str(certs["cert"]),
        "distributed.comm.tls.client.key": str(certs["key"]),
    }
    with dask.config.set(config):
        assert main(["info", "--scheduler", address]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"scheduler    {address}" in out
    assert "workers      1 (1 threads)" in out


# ---------------------------------------------------------------------------------------------------------
# model files


def test_loading_never_unpickles(tmp_path, binary, monkeypatch):
    """Neither a valid model file nor one whose payload is a pickle makes load() call the unpickler.

    (tests/test_persistence.py also checks that such files are refused without running their code.)
    """
    X, y = binary
    fitted = LogisticRegression().fit(X, y)
    good = daskml_lab.save(fitted, tmp_path / "good.daskml")
    calls = []

    class Recording(pickle.Unpickler):
        def __init__(self, *args, **kwargs):
            calls.append("Unpickler")
            super().__init__(*args, **kwargs)

    def recording(name, original):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(pickle, "Unpickler", Recording)
    monkeypatch.setattr(pickle, "load", recording("load", pickle.load))
    monkeypatch.setattr(pickle, "loads", recording("loads", pickle.loads))
    np.testing.assert_array_equal(daskml_lab.load(good).coef_, fitted.coef_)

    from daskml_lab.persistence._container import read_model_file, write_model_file

    # A pickle in place of the payload, with a matching checksum (as a forger would write it: with the
    # container's own writer).
    info, _, _ = read_model_file(good)
    evil = tmp_path / "evil.daskml"
    write_model_file(evil, info, pickle.dumps({"coef_": np.ones(3)}))
    with pytest.raises(ValueError, match=r"has an invalid structure .*the file is corrupt or was modified"):
        daskml_lab.load(evil)
    assert calls == []


def test_no_unpickling_call_in_the_package():
    """Source audit: the package has no call that would unpickle a file (distributed's own transport aside)."""
    forbidden = (
        "pickle.load(",
        "pickle.loads(",
        "Unpickler(",
        "joblib.load(",
        "allow_pickle=True",
        "trusted=True",
    )
    offenders = []
    for path in (REPO_ROOT / "daskml_lab").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(REPO_ROOT)}: {word}" for word in forbidden if word in text]
    assert offenders == []
