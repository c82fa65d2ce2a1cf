"""Resolve where to run: an explicit scheduler, the configured one, the current client, or a new LocalCluster."""

from __future__ import annotations

import logging
import socket
from typing import Any

import dask
from distributed import Client

from daskml_lab._runtime.client import current_client
from daskml_lab.cluster._allocator import worker_allocator
from daskml_lab.cluster._tls import certificate_rejection, rejection_message
from daskml_lab.monitoring import install_monitor

__all__ = ["connect"]

logger = logging.getLogger(__name__)

_DEFAULT_DASHBOARD_PORT = 8787
_LOOPBACK = "127.0.0.1"
#: Address schemes of distributed's encrypted transports.
_TLS_SCHEMES = ("tls", "wss")


def connect(
    address: str | None = None,
    *,
    timeout_s: float = 10.0,
    security: Any = None,
    **local_options: Any,
) -> Client:
    """Return a :class:`distributed.Client` for the cluster the package should run on.

    The scheduler is chosen in this order:

    1. ``address``, when given (``"tcp://host:8786"``, ``"tls://host:8786"``);
    2. the ``scheduler-address`` dask setting, which the ``DASK_SCHEDULER_ADDRESS`` environment variable sets;
    3. the current default client, if one exists (a new client to the same scheduler is returned, so that
       closing it leaves yours open);
    4. otherwise a new :class:`distributed.LocalCluster` of worker processes bound to 127.0.0.1, with its
       dashboard on 127.0.0.1 (port 8787, or a free port when 8787 is taken) serving the live training page
       ``/daskml-training`` (see :func:`daskml_lab.monitoring.install_monitor`).

    Nothing is exposed beyond the machine unless asked: a ``dashboard_address`` without a host (``":0"``,
    ``":8787"``, ``8787``) binds to the cluster's ``host`` (127.0.0.1 by default), not to every interface as
    Dask would. Give a host explicitly (``host="0.0.0.0"``, ``dashboard_address="0.0.0.0:8787"``) to expose them.
    ``processes=False`` runs the workers as threads of this process (useful for debugging, or to share memory
    with the client); they still talk over TCP on 127.0.0.1, so the dashboard link works. Add
    ``protocol="inproc://"`` for Dask's in-process transport, which opens no port besides the dashboards.

    Parameters
    ----------
    address : str, default=None
        Address of a running ``dask scheduler``.
    timeout_s : float, default=10.0
        Seconds to wait for the scheduler before giving up.
    security : distributed.Security or dict, default=None
        TLS settings for a ``tls://`` scheduler: the CA file and the client's certificate and key, e.g.
        ``Security(tls_ca_file="ca.pem", tls_client_cert="cert.pem", tls_client_key="key.pem",
        require_encryption=True)`` (a dict is passed to ``Security(**dict)``). ``None`` uses Dask's
        configuration (``distributed.comm.tls.ca-file``, ``distributed.comm.tls.client.cert`` and
        ``distributed.comm.tls.client.key``, or the ``DASK_DISTRIBUTED__COMM__TLS__...`` environment variables),
        or the configured ``distributed.client.security-loader``.
    **local_options
        Passed to :class:`distributed.LocalCluster` when a local cluster is started, e.g. ``n_workers=2``,
        ``threads_per_worker=1``, ``memory_limit="4GiB"``, ``dashboard_address=":0"``. Giving them together
        with a remote address is an error.

    Returns
    -------
    distributed.Client
        The client. It is also a context manager: leaving the ``with`` block closes the client, and the local
        cluster only if this call started it.

    Raises
    ------
    ConnectionError
        If the scheduler cannot be reached within ``timeout_s``, or a TLS certificate is rejected: the message
        names the address and, for a rejected certificate ("TLS certificate rejected by the scheduler" or "by
        this client"), which side rejected it, the certificate or CA file involved and how to fix it.
    ValueError
        If ``local_options`` are given together with a scheduler address, if a ``tls://`` address comes
        without TLS settings (in ``security`` or the configuration), if ``security`` requires encryption and
        the address is not ``tls://``, or if ``security`` is given without any address.
    TypeError
        If ``security`` is not a :class:`distributed.Security`, a dict or ``None``.

    Examples
    --------
    >>> import daskml_lab
    >>> with daskml_lab.connect(n_workers=2, threads_per_worker=1) as client:  # doctest: +SKIP
    ...     print(client.dashboard_link)
    http://127.0.0.1:8787/status

    A TLS-secured scheduler:

    >>> from distributed import Security
    >>> security = Security(tls_ca_file="ca.pem", tls_client_cert="cert.pem", tls_client_key="key.pem",
    ...                     require_encryption=True)  # doctest: +SKIP
    >>> client = daskml_lab.connect("tls://10.0.0.5:8786", security=security)  # doctest: +SKIP
    """
    resolved = address or dask.config.get("scheduler-address", None)
    if resolved:
        if local_options:
            msg = (
                f"Options for a local cluster ({sorted(local_options)}) were given together with the scheduler "
                f"address {resolved!r}. Configure the workers where the scheduler runs, or drop the address "
                "to start a local cluster."
            )
            raise ValueError(msg)
        client = _connect_remote(str(resolved), timeout_s=timeout_s, security=security)
    else:
        current = current_client()
        if current is not None and not local_options:
            client = _connect_remote(
                current.scheduler.address,
                timeout_s=timeout_s,
                security=current.security,
                set_as_default=False,
            )
        elif security is not None:
            msg = (
                "security= was given but no scheduler address: it holds the TLS settings of a remote tls:// "
                "scheduler. Pass the address (or set DASK_SCHEDULER_ADDRESS); the local cluster started "
                "without one listens on 127.0.0.1 only."
            )
            raise ValueError(msg)
        else:
            client = _start_local(local_options)
    _log_connection(client)
    return client


def _connect_remote(address: str, *, timeout_s: float, security: Any, set_as_default: bool = True) -> Client:
    security = _check_security(address, security)
    try:
        return Client(address, timeout=timeout_s, security=security, set_as_default=set_as_default)
    except (OSError, TimeoutError) as err:
        settings = _settings_used(security)
        rejection = certificate_rejection(address, settings, err, timeout_s)
        if rejection is not None:
            raise ConnectionError(rejection_message(address, rejection, settings)) from err
        if _is_tls_failure(err):
            msg = (
                f"The Dask scheduler at {address!r} refused the TLS connection ({err}). Check that the CA file "
                "is the one that signed the scheduler's certificate, and that the client certificate and key "
                "are signed by that CA."
            )
            raise ConnectionError(msg) from err
        msg = (
            f"Could not reach the Dask scheduler at {address!r} within {timeout_s:g} s ({err}). Check that "
            "`dask scheduler` is running there, that the address and port match what it printed "
            "('Scheduler at: ...'), that tls:// is used if the scheduler requires TLS, and that no firewall "
            "blocks the port. Leave the address out to start a local cluster instead."
        )
        raise ConnectionError(msg) from err


def _settings_used(security: Any) -> Any:
    """The TLS settings the client used: ``security``, else Dask's configuration (``None`` with a loader)."""
    from distributed.security import Security

    if security is not None:
        return security
    if dask.config.get("distributed.client.security-loader", None):
        return None  # the loader's settings are not known here
    return Security()


def _is_tls_failure(err: BaseException) -> bool:
    """Whether a connection failed on the TLS handshake rather than on the network.

    Called once :func:`~daskml_lab.cluster._tls.certificate_rejection` found no rejected certificate: what is
    left is another handshake failure (e.g. a protocol or cipher mismatch).
    """
    import ssl

    current: BaseException | None = err
    visited: set[int] = set()
    while current is not None and id(current) not in visited:
        if isinstance(current, ssl.SSLError) or "TLS certificate" in str(current):
            return True
        visited.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _as_security(security: Any) -> Any:
    """``security`` as a :class:`distributed.Security` (a dict holds its arguments), or ``None``."""
    from distributed.security import Security

    if security is None or isinstance(security, Security):
        return security
    if isinstance(security, dict):
        return Security(**security)
    msg = (
        "security must be a distributed.Security (or a dict of its arguments, or None for Dask's "
        f"configuration); got {type(security).__name__}."
    )
    raise TypeError(msg)


def _check_security(address: str, security: Any) -> Any:
    """Check that ``security`` and the address agree, before any connection attempt (which would fail late).

    Returns the ``security`` to give :class:`distributed.Client`.
    """
    from distributed.security import Security

    security = _as_security(security)
    scheme = address.split("://", 1)[0].lower() if "://" in address else "tcp"
    if scheme not in _TLS_SCHEMES:
        if security is not None and security.require_encryption:
            msg = (
                f"The given security requires encryption, but the scheduler address {address!r} is not TLS. "
                f"Use its tls:// address (e.g. {'tls://' + address.split('://', 1)[-1]!r})."
            )
            raise ValueError(msg)
        return security
    if security is None and dask.config.get("distributed.client.security-loader", None):
        return security  # the configured loader supplies the settings for this address
    # Security() reads Dask's distributed.comm.tls.* configuration (and its environment variables).
    settings = security if security is not None else Security()
    if not (settings.tls_ca_file and settings.tls_client_cert):
        msg = (
            f"The scheduler address {address!r} uses TLS, but no TLS settings were given: the CA file and a "
            "client certificate (and key) are needed. Pass security=distributed.Security(tls_ca_file=..., "
            "tls_client_cert=..., tls_client_key=..., require_encryption=True), or set Dask's configuration "
            "distributed.comm.tls.ca-file, distributed.comm.tls.client.cert and "
            "distributed.comm.tls.client.key (on the command line: --tls-ca-file, --tls-cert, --tls-key)."
        )
        raise ValueError(msg)
    return security


def _start_local(options: dict[str, Any]) -> Client:
    options = dict(options)
    options.setdefault("processes", True)
    if not options["processes"]:
        # Dask would pick its in-process transport, which refuses a host and names the machine's public IP in
        # the dashboard link; TCP on the loopback keeps the link right and every listener private.
        options.setdefault("protocol", "tcp://")
    if str(options.get("protocol", "tcp://")).startswith("inproc"):
        # Asked for by name: it listens on no network interface (and takes no host); the dashboards do.
        options.setdefault("worker_dashboard_address", f"{_LOOPBACK}:0")
    else:
        options.setdefault("host", _LOOPBACK)
    options.setdefault("dashboard_address", _free_dashboard_address())
    options["dashboard_address"] = _with_host(options["dashboard_address"], options.get("host", _LOOPBACK))
    # A Client given LocalCluster options owns the cluster it starts and closes it with itself.
    with worker_allocator():
        client = Client(**options)
    _install_training_monitor(client)
    return client


def _install_training_monitor(client: Client) -> None:
    """Serve the live training page (``/daskml-training``) from the local cluster's dashboard."""
    try:
        url = install_monitor(client)
    except Exception:  # the page is a convenience: a cluster without it is still usable
        logger.warning("Could not install the daskml_lab training page on the dashboard.", exc_info=True)
        return
    if url:
        logger.info("Training page: %s", url)


def _with_host(dashboard_address: Any, host: Any) -> Any:
    """A dashboard address without a host (``":0"``, ``8787``) on ``host``: Dask would bind it to every interface."""
    if not isinstance(host, str) or not host:
        return dashboard_address
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address, e.g. ::1
    if isinstance(dashboard_address, int) and not isinstance(dashboard_address, bool):
        return f"{host}:{dashboard_address}"
    if isinstance(dashboard_address, str) and dashboard_address.startswith(":"):
        return f"{host}{dashboard_address}"
    return dashboard_address


def _free_dashboard_address() -> str:
    """127.0.0.1:8787 when that port is free, otherwise 127.0.0.1 with a port chosen by the OS."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((_LOOPBACK, _DEFAULT_DASHBOARD_PORT))
        except OSError:
            return f"{_LOOPBACK}:0"
    return f"{_LOOPBACK}:{_DEFAULT_DASHBOARD_PORT}"


def _log_connection(client: Client) -> None:
    n_workers = len(client.scheduler_info().get("workers", {}))
    logger.info(
        "Connected to %s with %d worker(s); dashboard: %s",
        client.scheduler.address,
        n_workers,
        client.dashboard_link,
    )
    if n_workers == 0:
        logger.warning(
            "The scheduler at %s has no workers yet; computations wait until one joins.",
            client.scheduler.address,
        )
