"""The client side of the link's TLS, shared by the terminal and the benchmarks: a context
for a host whose self-signed certificate is pinned, and the fingerprint a terminal checks
(the host's side, its certificate and server context, is :mod:`smartpos.host.tls`)."""

from __future__ import annotations

import hashlib
import ssl
from datetime import datetime


def pinned_client_context() -> ssl.SSLContext:
    """Client context for a pinned self-signed host: chain validation is replaced by the
    fingerprint check the link does right after the handshake (and before sending)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def peer_not_after(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> datetime | None:
    """When the certificate the peer presented expires (UTC), None if it presented none."""
    from cryptography import x509

    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        return None
    return x509.load_der_x509_certificate(der).not_valid_after_utc


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> str:
    """SHA-256 of the certificate the peer presented (DER), hex: what a terminal pins."""
    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("host presented no certificate")
    return hashlib.sha256(der).hexdigest()
