"""The terminal's link to its acquirer: TCP + TLS (pinned certificate or a CA), framing,
timeouts — each as the acquirer profile says (``profile.framing``, ``profile.tls*``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from datetime import datetime
from typing import Protocol

from smartpos.protocol.framing import FramingError
from smartpos.protocol.profiles import AcquirerProfile, TlsTrust
from smartpos.protocol.tls import peer_fingerprint, peer_not_after, pinned_client_context


class LinkError(Exception):
    """The exchange failed. ``sent`` tells whether the request may have reached the host
    (then a money-moving request must be reversed)."""

    def __init__(self, message: str, *, sent: bool):
        super().__init__(message)
        self.sent = sent


class Link(Protocol):
    """What the terminal needs of its link: one request out, its answer back."""

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes: ...

    async def close(self) -> None: ...


class FrameHandler(Protocol):
    """A host in this process: a frame body in, the answer frame (or None: no answer) out
    (``smartpos.host.pipeline.HostService``)."""

    async def handle(self, body: bytes) -> bytes | None: ...


class HostLink:
    """The link over TCP and TLS: the host's certificate pinned (``fingerprint``, set up
    with the terminal, or the profile's ``tls_fingerprint``), or checked against the
    profile's CA certificates and the host name."""

    def __init__(
        self, host: str, port: int, profile: AcquirerProfile, fingerprint: str | None
    ) -> None:
        self.peer_not_after: datetime | None = None  # the host certificate's expiry
        self.host, self.port, self.profile = host, port, profile
        self.fingerprint = fingerprint
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def _pin(self) -> str | None:
        """The fingerprint to check: the terminal's, or the profile's; never two that
        disagree (which one would be the bank's?)."""
        mine, profiles = self.fingerprint, self.profile.tls_fingerprint
        if mine and profiles and mine.lower() != profiles:
            raise LinkError(
                f"the terminal is set up to pin {mine[:16]}… but profile "
                f"{self.profile.name!r} pins {profiles[:16]}…: fix one of them",
                sent=False,
            )
        return mine or profiles

    async def _connect(self) -> None:
        profile = self.profile
        ssl_ctx: ssl.SSLContext | None = None
        pin: str | None = None
        server_name: str | None = None
        if profile.tls and profile.tls_trust == TlsTrust.CA:
            assert profile.tls_ca_file is not None  # the profile checks it
            ssl_ctx = _ca_client_context(profile.tls_ca_file)
            server_name = profile.tls_server_name or self.host
        elif profile.tls:
            ssl_ctx = pinned_client_context()
            pin = self._pin()
            if not pin:
                # Fail closed: without a pinned certificate any host could answer for the bank.
                raise LinkError(
                    "no host certificate is pinned: provision the terminal with the host's "
                    "certificate fingerprint",
                    sent=False,
                )
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host, self.port, ssl=ssl_ctx, server_hostname=server_name
                ),
                profile.connect_timeout_ms / 1000,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise LinkError(
                f"cannot reach the host at {self.host}:{self.port}: {_why(exc)}", sent=False
            ) from None
        if ssl_ctx is not None and self._writer is not None:
            # When the host's certificate runs out: the power-on self-test warns ahead.
            self.peer_not_after = peer_not_after(self._writer.get_extra_info("ssl_object"))
        if pin is not None and self._writer is not None:
            ssl_obj = self._writer.get_extra_info("ssl_object")
            actual = peer_fingerprint(ssl_obj)
            if actual != pin.lower():
                await self.close()
                raise LinkError(
                    "host certificate does not match the pinned fingerprint", sent=False
                )

    async def connect(self) -> None:
        """Open the link now (it opens by itself on the first exchange otherwise)."""
        if self._writer is None or self._writer.is_closing():
            await self._connect()

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        """Send one message and return the host's answer (the ISO 8583 message bytes)."""
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        assert self._reader is not None and self._writer is not None
        framing = self.profile.framing
        frame = framing.request(message)
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise LinkError(f"the link broke while sending: {_why(exc)}", sent=True) from None
        timeout = (timeout_ms or self.profile.response_timeout_ms) / 1000
        try:
            # asyncio.timeout, not wait_for: wait_for wraps every read in a new task.
            async with asyncio.timeout(timeout):
                body = await framing.read_body(self._reader)
            reply = framing.split(body)
        except TimeoutError:
            await self.close()
            raise LinkError(f"no answer from the host within {timeout:g} s", sent=True) from None
        except asyncio.IncompleteReadError as exc:
            await self.close()
            where = "in the middle of its answer" if exc.partial else "before answering"
            raise LinkError(f"the host closed the link {where}", sent=True) from None
        except FramingError as exc:
            await self.close()
            raise LinkError(f"the host's answer is not a valid frame: {exc}", sent=True) from None
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise LinkError(
                f"the link broke while waiting for the answer: {_why(exc)}", sent=True
            ) from None
        return reply.message

    async def close(self) -> None:
        if self._writer is not None:
            # Closing a TLS transport the peer has already shut down raises RuntimeError
            # ("cannot switch state from UNWRAPPED to SHUTDOWN", CPython 3.11's sslproto):
            # the link is closed either way.
            with contextlib.suppress(RuntimeError, OSError):
                self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._reader = self._writer = None


def _ca_client_context(ca_file: str) -> ssl.SSLContext:
    """Client context for a host with a CA-issued certificate: the chain to ``ca_file``
    and the host name are verified, as a browser would."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise LinkError(
            f"cannot load the CA certificates {ca_file}: {_why(exc)}", sent=False
        ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _why(exc: BaseException) -> str:
    """A failed socket operation in words: ``connection refused``, not ``[Errno 111] Connect
    call failed ('127.0.0.1', 8583)``."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no connection in time"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


class InProcessLink:
    """The link to a host in the same process, framed as on the wire: the frames are the
    ones a TCP link carries, without TCP and TLS (tools and tests that drive a real host and
    a real terminal together). No answer is a lost answer, as on the wire."""

    def __init__(self, host: FrameHandler, profile: AcquirerProfile) -> None:
        self.host, self.profile = host, profile

    async def exchange(self, message: bytes, timeout_ms: int | None = None) -> bytes:
        framing = self.profile.framing
        answer = await self.host.handle(framing.request(message)[framing.prefix_len :])
        if answer is None:
            raise LinkError("no answer from host in time", sent=True)
        return framing.split(answer[framing.prefix_len :]).message

    async def close(self) -> None:
        return None
