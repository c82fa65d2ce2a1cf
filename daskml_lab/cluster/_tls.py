"""Why a TLS connection to a scheduler failed: which side rejected which certificate, and what to fix.

Dask's TLS is mutual, and the two rejections look different from the client:

- *this client* rejects the scheduler's certificate during the handshake (``ssl.SSLCertVerificationError``,
  "certificate verify failed: ..."), when the certificate is not signed by the CA of the client's CA file;
- *the scheduler* rejects the client's certificate with a TLS alert ("tlsv1 alert unknown ca", "... bad
  certificate", "... certificate expired"). With TLS 1.3 the client's handshake has already finished when the
  alert comes: distributed sees it as a closed comm, whose message holds the alert only as text, or not at all
  when the connection was reset before the alert was read.

:func:`certificate_rejection` reads the error first and, when it says nothing about certificates, probes the
scheduler once with the same TLS settings: a plain handshake that sends no data and waits (a few seconds at
most) for the scheduler to speak first, as an accepting Dask scheduler does, or to send its alert.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any

__all__ = ["Rejection", "certificate_rejection", "probe_rejection", "rejection_in_error", "rejection_message"]

#: TLS alerts by which a server refuses the client's certificate (RFC 8446, section 6.2).
_CERTIFICATE_ALERTS = frozenset(
    {
        "UNKNOWN_CA",
        "BAD_CERTIFICATE",
        "CERTIFICATE_REQUIRED",
        "CERTIFICATE_EXPIRED",
        "CERTIFICATE_UNKNOWN",
        "CERTIFICATE_REVOKED",
        "UNSUPPORTED_CERTIFICATE",
        "ACCESS_DENIED",
    }
)
#: OpenSSL's name of an alert received from the peer, e.g. "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca".
_ALERT = re.compile(r"\b(?:SSLV3|TLSV1|TLSV13)_ALERT_([A-Z_]+)\]\s*([^(]*)")
#: The local verification failure, e.g. "certificate verify failed: self-signed certificate in certificate chain".
_VERIFY = re.compile(r"certificate verify failed:?\s*([^(]*)")
#: Longest wait of the probe, in seconds (it answers in milliseconds on a reachable scheduler).
_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Rejection:
    """A certificate rejected during a TLS connection.

    Attributes
    ----------
    by : {"scheduler", "client"}
        Who rejected: the scheduler rejected this client's certificate, or this client the scheduler's.
    reason : str
        OpenSSL's words ("tlsv1 alert unknown ca", "self-signed certificate in certificate chain", ...).
    """

    by: str
    reason: str


def _from_exception(exc: BaseException) -> Rejection | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Rejection("client", str(exc.verify_message or exc.reason or exc).strip())
    text = str(exc)
    alert = _ALERT.search(text)
    if alert is not None and alert.group(1) in _CERTIFICATE_ALERTS:
        return Rejection("scheduler", alert.group(2).strip() or alert.group(1).lower().replace("_", " "))
    verify = _VERIFY.search(text)
    if verify is not None:
        return Rejection("client", verify.group(1).strip() or "certificate verify failed")
    return None


def rejection_in_error(err: BaseException) -> Rejection | None:
    """The certificate rejection named anywhere in ``err``'s chain of causes, or ``None``."""
    current: BaseException | None = err
    visited: set[int] = set()
    while current is not None and id(current) not in visited:
        visited.add(id(current))
        found = _from_exception(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def probe_rejection(address: str, security: Any, timeout_s: float = _PROBE_TIMEOUT_S) -> Rejection | None:
    """Connect once to ``address`` with ``security``'s TLS settings; the certificate rejection seen, or ``None``.

    ``None`` also when the scheduler cannot be reached, is not TLS, or accepts the certificates.
    """
    from distributed.comm import get_address_host_port

    try:
        host, port = get_address_host_port(address)
        context = security.get_connection_args("client")["ssl_context"]
    except Exception:  # a malformed address or unusable settings: the connection error already says so
        return None
    if context is None:
        return None
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            context.wrap_socket(raw) as tls,
        ):
            # TLS 1.3: the scheduler checks the client's certificate after the handshake and answers with an
            # alert; an accepting Dask scheduler speaks first (its comm handshake), so one byte settles it.
            tls.recv(1)
    except (ssl.SSLError, OSError) as exc:
        return _from_exception(exc)
    return None


def certificate_rejection(
    address: str, security: Any, err: BaseException, timeout_s: float = _PROBE_TIMEOUT_S
) -> Rejection | None:
    """Whether connecting to ``address`` failed because a certificate was rejected, and by whom.

    Parameters
    ----------
    address : str
        The scheduler's address; only ``tls://`` and ``wss://`` addresses are examined.
    security : distributed.Security or None
        The TLS settings used (``None``: none known, only ``err`` is read).
    err : BaseException
        The connection error.
    timeout_s : float, default=5.0
        Longest wait of the probe (capped at 5 seconds).

    Returns
    -------
    Rejection or None
    """
    if address.split("://", 1)[0].lower() not in ("tls", "wss"):
        return None
    found = rejection_in_error(err)
    if found is None and security is not None:
        found = probe_rejection(address, security, min(timeout_s, _PROBE_TIMEOUT_S))
    return found


def _named(value: Any) -> str:
    """A certificate setting as the messages name it (Security also takes PEM text instead of a file path)."""
    text = str(value)
    return "(given as PEM text)" if "-----BEGIN" in text else repr(text)


def _scheduler_gloss(reason: str) -> str:
    if "unknown ca" in reason:
        return "not signed by a CA the scheduler trusts"
    if "expired" in reason:
        return "expired"
    if "required" in reason:
        return "the scheduler requires a client certificate"
    return "refused"


def rejection_message(address: str, rejection: Rejection, security: Any) -> str:
    """The error message of a rejected certificate: which side rejected which files, and the fix."""
    ca_file = getattr(security, "tls_ca_file", None)
    cert = getattr(security, "tls_client_cert", None)
    key = getattr(security, "tls_client_key", None)
    expired = "expired" in rejection.reason
    if rejection.by == "scheduler":
        if cert:
            sent = f"the client certificate {_named(cert)}" + (f" (key {_named(key)})" if key else "")
        else:
            sent = "a connection without a client certificate"
        fix = (
            "Renew the client certificate and key, signed by the CA the scheduler trusts."
            if expired
            else "Use a client certificate and key signed by the CA the scheduler trusts (the --tls-ca-file it "
            "was started with, or distributed.comm.tls.ca-file where it runs): "
            "security=Security(tls_client_cert=..., tls_client_key=...), the configuration "
            "distributed.comm.tls.client.cert and .key, or --tls-cert and --tls-key; or have the scheduler's CA "
            "file extended with the CA that signed yours."
        )
        return (
            f"TLS certificate rejected by the scheduler at {address!r}: it does not accept {sent} "
            f"({_scheduler_gloss(rejection.reason)}: {rejection.reason}). {fix}"
        )
    against = f"the CA file {_named(ca_file)}" if ca_file else "the CA files of your TLS settings"
    fix = (
        "The scheduler's certificate has expired: renew it (its --tls-cert) where the scheduler runs."
        if expired
        else "Set the CA file to the CA that signed the scheduler's certificate (the --tls-ca-file the scheduler "
        "was started with): security=Security(tls_ca_file=...), the configuration distributed.comm.tls.ca-file, "
        "or --tls-ca-file."
    )
    return (
        f"TLS certificate rejected by this client: the certificate of the scheduler at {address!r} could not be "
        f"verified against {against} ({rejection.reason}). {fix}"
    )
