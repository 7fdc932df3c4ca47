"""What the link says when the host fails: what happened, in words a cashier can act on —
not asyncio's "0 bytes read on a total of 2 expected bytes"."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from smartpos.protocol.profiles import get_profile
from smartpos.terminal.link import HostLink, LinkError

PROFILE = replace(get_profile("sandbox"), tls=False, response_timeout_ms=300)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _exchange_with(handler: Handler) -> LinkError:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = HostLink("127.0.0.1", port, PROFILE, None)
    try:
        with pytest.raises(LinkError) as failed:
            await link.exchange(b"\x02\x00" + b"\x00" * 20)
        return failed.value
    finally:
        await link.close()
        server.close()
        await server.wait_closed()


async def _read_then(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, send: bytes
) -> None:
    await reader.read(100)
    if send:
        writer.write(send)
        await writer.drain()
    writer.close()


def test_a_host_that_closes_without_answering() -> None:
    error = asyncio.run(_exchange_with(lambda r, w: _read_then(r, w, b"")))
    assert str(error) == "the host closed the link before answering"
    assert error.sent


def test_a_host_that_closes_in_the_middle_of_its_answer() -> None:
    error = asyncio.run(_exchange_with(lambda r, w: _read_then(r, w, b"\x00\x30\x60\x00")))
    assert str(error) == "the host closed the link in the middle of its answer"
    assert error.sent


def test_a_host_that_sends_a_broken_frame() -> None:
    error = asyncio.run(_exchange_with(lambda r, w: _read_then(r, w, b"\x00\x01")))
    assert str(error).startswith("the host's answer is not a valid frame: frame length 1")


def test_a_host_that_does_not_answer_in_time() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)

    error = asyncio.run(_exchange_with(silent))
    assert str(error) == "no answer from the host within 0.3 s"


def test_no_host_listening() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused

        async def go() -> LinkError:
            link = HostLink("127.0.0.1", port, PROFILE, None)
            with pytest.raises(LinkError) as failed:
                await link.exchange(b"\x02\x00")
            return failed.value

        error = asyncio.run(go())
    assert str(error) == f"cannot reach the host at 127.0.0.1:{port}: connection refused"
    assert not error.sent
