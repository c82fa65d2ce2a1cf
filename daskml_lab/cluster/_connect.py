"""Resolve where to run: an explicit scheduler, the configured one, the current client, or a new LocalCluster."""

from __future__ import annotations

import logging
import socket
from typing import Any

import dask
from distributed import Client

__all__ = ["connect"]

logger = logging.getLogger(__name__)

_DEFAULT_DASHBOARD_PORT = 8787
_LOOPBACK = "127.0.0.1"


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

    Parameters
    ----------
    address : str, default=None
        Address of a running ``dask scheduler``.
    timeout_s : float, default=10.0
        Seconds to wait for the scheduler before giving up.
    security : distributed.Security, default=None
        TLS settings for a ``tls://`` scheduler (otherwise dask's ``distributed.comm.tls`` config is used).
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
        If the scheduler cannot be reached within ``timeout_s``; the message names the address.
    ValueError
        If ``local_options`` are given together with a scheduler address.

    Examples
    --------
    >>> import daskml_lab
    >>> with daskml_lab.connect(n_workers=2, threads_per_worker=1) as client:  # doctest: +SKIP
    ...     print(client.dashboard_link)
    http://127.0.0.1:8787/status
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
        current = _current_client()
        if current is not None and not local_options:
            client = _connect_remote(current.scheduler.address, timeout_s=timeout_s, security=current.security,
                                     set_as_default=False)
        else:
            client = _start_local(local_options)
    _log_connection(client)
    return client


def _current_client() -> Client | None:
    try:
        from distributed import default_client

        return default_client()
    except ValueError:
        return None


def _connect_remote(address: str, *, timeout_s: float, security: Any, set_as_default: bool = True) -> Client:
    try:
        return Client(address, timeout=timeout_s, security=security, set_as_default=set_as_default)
    except (OSError, TimeoutError) as err:
        msg = (
            f"Could not reach the Dask scheduler at {address!r} within {timeout_s:g} s ({err}). Check that "
            "`dask scheduler` is running there, that the address and port match what it printed "
            "('Scheduler at: ...'), that tls:// is used if the scheduler requires TLS, and that no firewall "
            "blocks the port. Leave the address out to start a local cluster instead."
        )
        raise ConnectionError(msg) from err


def _start_local(options: dict[str, Any]) -> Client:
    options = dict(options)
    options.setdefault("host", _LOOPBACK)
    options.setdefault("processes", True)
    options.setdefault("dashboard_address", _free_dashboard_address())
    # A Client given LocalCluster options owns the cluster it starts and closes it with itself.
    client = Client(**options)
    _install_training_monitor(client)
    return client


def _install_training_monitor(client: Client) -> None:
    """Serve the live training page (``/daskml-training``) from the local cluster's dashboard."""
    from daskml_lab.monitoring import install_monitor

    try:
        url = install_monitor(client)
    except Exception:  # the page is a convenience: a cluster without it is still usable
        logger.warning("Could not install the daskml_lab training page on the dashboard.", exc_info=True)
        return
    if url:
        logger.info("Training page: %s", url)


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
        "Connected to %s with %d worker(s); dashboard: %s", client.scheduler.address, n_workers,
        client.dashboard_link,
    )
    if n_workers == 0:
        logger.warning("The scheduler at %s has no workers yet; computations wait until one joins.",
                       client.scheduler.address)
