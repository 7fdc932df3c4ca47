"""TLS trust per profile: a chain to the profile's CA and the host name, or a pinned
fingerprint — the terminal's or the profile's, never two that disagree. Every refusal comes
before a byte of the request is sent."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smartpos.protocol.profiles import AcquirerProfile, ProfileError, TlsTrust
from smartpos.terminal.link import HostLink, LinkError

MESSAGE = b"\x08\x20" + bytes(8)


@dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path
    fingerprint: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a host certificate it issued for acq.test and 127.0.0.1."""
    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test acquirer CA"))
        .issuer_name(_name("test acquirer CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("acq.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("acq.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(d / "ca.pem", d / "host.pem", d / "host-key.pem", "")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return pki


def _exchange(pki: Pki, profile: AcquirerProfile, fingerprint: str | None = None) -> bytes:
    """One exchange with a TLS host that answers each frame with its own message."""
    received: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            parts = profile.framing.split(await profile.framing.read_body(reader))
            received.append(parts.message)
            writer.write(profile.framing.answer(parts, parts.message))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def go() -> bytes:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.cert_file, pki.key_file)
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ctx)
        link = HostLink("127.0.0.1", server.sockets[0].getsockname()[1], profile, fingerprint)
        try:
            return await link.exchange(MESSAGE)
        finally:
            await link.close()
            server.close()
            await server.wait_closed()

    try:
        return asyncio.run(go())
    except LinkError as exc:
        assert not exc.sent and not received  # refused before sending
        raise


def _ca_profile(pki: Pki, server_name: str | None = "acq.test") -> AcquirerProfile:
    return AcquirerProfile(
        "ca",
        tls_trust=TlsTrust.CA,
        tls_ca_file=str(pki.ca_file),
        tls_server_name=server_name,
        response_timeout_ms=2000,
    )


def test_a_host_whose_certificate_chains_to_the_profiles_ca(pki: Pki) -> None:
    assert _exchange(pki, _ca_profile(pki)) == MESSAGE
    assert _exchange(pki, _ca_profile(pki, None)) == MESSAGE  # 127.0.0.1 is in its names


def test_a_host_under_another_name_is_refused(pki: Pki) -> None:
    with pytest.raises(LinkError, match="TLS failed"):
        _exchange(pki, _ca_profile(pki, "other.test"))


def test_a_host_the_ca_did_not_issue_is_refused(pki: Pki, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    other = (
        x509.CertificateBuilder()
        .subject_name(_name("another CA"))
        .issuer_name(_name("another CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(LinkError, match="TLS failed"):
        _exchange(pki, replace(_ca_profile(pki), tls_ca_file=str(other_ca)))


def test_a_fingerprint_pinned_by_the_profile(pki: Pki) -> None:
    pinned = AcquirerProfile("pinned", tls_fingerprint=pki.fingerprint)
    assert _exchange(pki, pinned) == MESSAGE  # the terminal's own pin not needed
    assert _exchange(pki, pinned, pki.fingerprint.upper()) == MESSAGE  # the same, agreeing
    with pytest.raises(LinkError, match="does not match the pinned fingerprint"):
        _exchange(pki, replace(pinned, tls_fingerprint="0" * 64))
    with pytest.raises(LinkError, match="profile 'pinned' pins"):
        _exchange(pki, pinned, "1" * 64)


def test_no_pin_at_all_fails_closed(pki: Pki) -> None:
    with pytest.raises(LinkError, match="no host certificate is pinned"):
        _exchange(pki, AcquirerProfile("nothing"))


def test_contradicting_tls_settings_are_refused() -> None:
    with pytest.raises(ProfileError, match=r"tls\.fingerprint: a fingerprint is for"):
        AcquirerProfile("x", tls_trust=TlsTrust.CA, tls_ca_file="/x", tls_fingerprint="a" * 64)
    with pytest.raises(ProfileError, match=r"tls\.ca_file"):
        AcquirerProfile("x", tls_ca_file="/x")
