"""Connection exhaustion (issue 7, item 16), over real TLS sockets: links still in the
handshake count and time out, unauthenticated links get a share of the table and a short
idle timeout, a peer that stops reading is dropped, and a terminal gets in throughout.

Attackers connect from other loopback addresses (127.0.0.2…) than the terminal
(127.0.0.1), as they would from other hosts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest

from smartpos.cards.reading import CardInput
from smartpos.host.links import LinkLimits
from smartpos.protocol import codec
from smartpos.protocol.framing import Frame, Tpdu, encode_frame, read_body
from smartpos.protocol.messages import F60, NET_ECHO, TYPE_NETWORK
from smartpos.protocol.tls import pinned_client_context
from tests.host.test_bad_input import GOOD
from tests.sandbox import TID, running_sandbox

pytestmark = pytest.mark.integration

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def raw_link(port: int, source: str) -> Stream:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def tls_link(port: int, source: str) -> Stream:
    ctx = pinned_client_context()
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, local_addr=(source, 0))


async def closed_by_host(stream: Stream, within_s: float) -> bool:
    """True if the host closes the link within ``within_s`` (EOF or reset)."""
    try:
        data = await asyncio.wait_for(stream[0].read(1), within_s)
    except TimeoutError:
        return False
    except (ConnectionError, OSError):
        return True
    return data == b""


async def count_closed(streams: list[Stream], within_s: float) -> int:
    results = await asyncio.gather(*(closed_by_host(s, within_s) for s in streams))
    return sum(results)


def close_all(streams: list[Stream]) -> None:
    for _, w in streams:
        w.close()


async def approved_sale(sale: Awaitable[object]) -> None:
    result = await sale
    assert getattr(result, "result", None) == "approved", result


def test_links_stuck_before_the_handshake_count_and_time_out(tmp_path: Path) -> None:
    limits = LinkLimits(
        max_links=64, max_untrusted=24, max_untrusted_per_source=8, handshake_timeout_s=0.5
    )

    async def go() -> None:
        async with running_sandbox(tmp_path, limits=limits) as sb:
            port = sb.server.port
            held = [await raw_link(port, "127.0.0.2") for _ in range(30)]  # no ClientHello
            # All but the per-address limit are dropped as they come...
            assert await count_closed(held[:22], 2.0) == 22
            assert sb.server.links.untrusted_from("127.0.0.2") == 8
            # ...a terminal connects, signs on and sells while the rest are held...
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            await approved_sale(t.sale(1000, CardInput.parse(GOOD.pan), GOOD.pin))
            # ...and the rest go when their handshake time is up.
            started = time.monotonic()
            assert await count_closed(held[22:], 3.0) == 8
            assert time.monotonic() - started < 2.0
            assert sb.server.links.untrusted_count == 0
            assert sb.server.links.trusted_count == 1  # the terminal's
            assert sb.server.open_links == 1
            close_all(held)
            await t.link.close()

    asyncio.run(go())


def test_idle_tls_links_get_a_share_and_a_short_idle_time_terminals_keep_theirs(
    tmp_path: Path,
) -> None:
    limits = LinkLimits(
        max_links=32,
        max_untrusted=8,
        max_untrusted_per_source=4,
        untrusted_idle_timeout_s=1.0,
        idle_timeout_s=30.0,
    )

    async def go() -> None:
        async with running_sandbox(tmp_path, limits=limits) as sb:
            port = sb.server.port
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            flood = [
                await tls_link(port, f"127.0.0.{10 + i % 6}") for i in range(36)
            ]  # 36 finished handshakes from 6 addresses, none sends a request
            await asyncio.sleep(0.2)
            assert sb.server.links.untrusted_count <= 8
            assert await count_closed(flood, 0.1) >= 28
            # A second terminal's new link gets in (the oldest idle link makes room).
            t2 = sb.terminal("10000002")
            assert (await t2.sign_on()).result == "approved"
            await approved_sale(t2.sale(1000, CardInput.parse(GOOD.pan), GOOD.pin))
            # The untrusted ones are gone after their short idle time; the terminals'
            # links, idle as long, stay: the next sale goes on the same link.
            await asyncio.sleep(1.5)
            assert await count_closed(flood, 0.5) == 36
            assert sb.server.links.untrusted_count == 0
            assert sb.server.links.trusted_count == 2
            writer = t.link._writer
            await approved_sale(t.sale(1000, CardInput.parse(GOOD.pan), GOOD.pin))
            assert t.link._writer is writer
            close_all(flood)
            await t.link.close()
            await t2.link.close()

    asyncio.run(go())


def echo_frame(tid: str, mid: str, stan: int) -> bytes:
    fields = {
        "t": "0820",
        "11": f"{stan % 999_999 + 1:06d}",
        "12": "101010",
        "13": "1123",
        "41": tid,
        "42": mid,
        "60": F60(TYPE_NETWORK, "000001", NET_ECHO).encode(),
    }
    return encode_frame(Frame(Tpdu(1, 0), bytes.fromhex("603100000000"), codec.encode(fields)))


def slow_reader(port: int, frames: bytes, pause_s: float) -> tuple[str, int, float]:
    """A TLS client (blocking, in a thread) that sends ``frames``, reads nothing for
    ``pause_s``, then reads until the host closes. Returns how the reading ended (EOF,
    reset, or TimeoutError after 10 s), the answers it got, and when it ended."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.4", 0))
    sock.settimeout(10.0)
    sock.connect(("127.0.0.1", port))
    started = time.monotonic()
    with pinned_client_context().wrap_socket(sock) as tls:
        with contextlib.suppress(OSError):  # the host may drop it before reading all
            tls.sendall(frames)
        time.sleep(pause_s)
        answers, end = 0, "EOF"
        try:
            while data := tls.recv(65536):
                answers += data.count(bytes.fromhex("0830"))
        except OSError as exc:
            end = type(exc).__name__
    return end, answers, time.monotonic() - started


def test_a_peer_that_stops_reading_is_dropped_after_the_write_timeout(tmp_path: Path) -> None:
    limits = LinkLimits(write_timeout_s=0.5)
    requests = 20_000  # more answers than the link's buffers hold

    async def go() -> None:
        async with running_sandbox(tmp_path, limits=limits) as sb:
            t = sb.terminal()
            frames = b"".join(echo_frame(t.tid, t.mid, i) for i in range(requests))
            reading = asyncio.ensure_future(
                asyncio.to_thread(slow_reader, sb.server.port, frames, 4.0)
            )
            # While the peer still reads nothing, the host has dropped the link — its
            # transport too, not only its table entry: it does not linger trying to flush
            # answers (or a TLS close) to a peer that will not read them.
            await asyncio.sleep(2.5)
            assert sb.server.links.untrusted_count == 0
            assert sb.server.open_links == 0
            end, answers, ended_s = await reading
            # The host answered what fit into the buffers, then dropped the link. It stopped
            # taking requests once a few kilobytes of answers lay unread, rather than
            # queueing answer after answer for a peer that does not read.
            assert end in ("EOF", "ConnectionResetError"), (end, answers)
            assert answers < requests and ended_s < 6.0, (answers, ended_s)
            assert sb.service.stats.requests < 1_000, sb.service.stats.requests
            # The host still serves.
            assert (await t.echo()).result == "approved"

    asyncio.run(go())


def test_one_terminal_holds_at_most_its_share_of_links(tmp_path: Path) -> None:
    limits = LinkLimits(max_links_per_tid=2)

    async def go() -> None:
        async with running_sandbox(tmp_path, limits=limits) as sb:
            t = sb.terminal()
            assert (await t.sign_on()).result == "approved"
            await t.link.close()
            links = []
            for i in range(4):
                link = await tls_link(sb.server.port, "127.0.0.5")
                fields = {
                    "t": "0200",
                    "3": "310000",
                    "11": f"{100 + i:06d}",
                    "12": "101010",
                    "13": "1123",
                    "22": "012",
                    "25": "00",
                    "2": GOOD.pan,
                    "41": TID,
                    "42": t.mid,
                    "60": "01000001000",
                }
                message = codec.encode(fields, mac=t._mac)  # a MAC under its TAK: trusted
                link[1].write(encode_frame(Frame(Tpdu(1, 0), sb.profile.app_header, message)))
                answer = codec.decode((await read_body(link[0]))[11:])
                assert answer["39"] == "55"  # no PIN; but the MAC verified (not A0)
                links.append(link)
            await asyncio.sleep(0.1)
            assert sb.server.links.trusted_count == 2
            assert await count_closed(links[:2], 1.0) == 2  # the oldest two went
            assert await count_closed(links[2:], 0.2) == 0
            close_all(links)

    asyncio.run(go())


def test_a_peer_that_pipelines_frames_does_not_hold_the_host(tmp_path: Path) -> None:
    """Links take turns: a peer that sends thousands of frames at once gets them answered
    one by one, while a terminal connects, signs on and sells in the meantime."""

    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            frames = b"".join(echo_frame("ZZ999999", t.mid, i) for i in range(30_000))
            floods = [await tls_link(sb.server.port, f"127.0.0.{20 + i}") for i in range(4)]
            for _, w in floods:
                w.write(frames)  # unknown terminal: each is answered 97 before any MAC
            await asyncio.sleep(0.3)
            started = time.monotonic()
            assert (await t.sign_on()).result == "approved"
            await approved_sale(t.sale(1000, CardInput.parse(GOOD.pan), GOOD.pin))
            took_s = time.monotonic() - started
            assert sb.server.links.untrusted_count == 4  # still being answered
            assert took_s < 2.0, took_s
            close_all(floods)
            await t.link.close()

    asyncio.run(go())
