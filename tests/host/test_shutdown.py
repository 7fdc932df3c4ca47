"""Stopping the host (SIGTERM: systemd, an update) answers every request already taken
before it closes, so a restart costs the terminals no reversals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smartpos.bench.host import prepare_host
from smartpos.config import Settings
from smartpos.host.context import Context
from smartpos.host.pipeline import BatchWriter, HostService
from smartpos.host.sandbox import open_host
from smartpos.host.server import HostServer
from smartpos.protocol import codec
from smartpos.protocol.framing import Frame, Tpdu, encode_frame, read_body
from smartpos.protocol.messages import F60, NET_ECHO, TYPE_NETWORK
from smartpos.protocol.profiles import get_profile

pytestmark = pytest.mark.integration
PROFILE = get_profile("sandbox")
SMARTPOS = [sys.executable, "-c", "from smartpos.cli import app; app()"]


class SlowWriter:
    """The real writer, 0.3 s slower: a request is surely in flight when the drain starts."""

    def __init__(self, inner: BatchWriter) -> None:
        self.inner = inner
        self.taken = asyncio.Event()

    def start(self) -> None:
        self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def decide(self, ctx: Context) -> None:
        self.taken.set()
        await asyncio.sleep(0.3)
        await self.inner.decide(ctx)


def test_drain_answers_the_request_in_flight_and_refuses_new_ones(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (setup,) = prepare_host(home, 1)

    async def go() -> None:
        rt = open_host(Settings(home=home), durable=False)
        slow = SlowWriter(BatchWriter(rt.engine, rt.processor()))
        service = HostService(rt.engine, rt.processor(), rt.hsm, PROFILE, writer=slow)
        server = HostServer(service, ssl_context=None)
        await server.start("127.0.0.1", 0)
        port = server.port
        echo = {
            "t": "0820",
            "11": "000001",
            "12": "101010",
            "13": "1123",
            "41": setup.tid,
            "42": setup.mid,
            "60": F60(TYPE_NETWORK, "000001", NET_ECHO).encode(),
        }
        wire = encode_frame(Frame(Tpdu(1, 0), PROFILE.app_header, codec.encode(echo)))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire)
        await writer.drain()
        await slow.taken.wait()
        drained = asyncio.ensure_future(server.drain(timeout=5))
        await asyncio.sleep(0.05)
        with pytest.raises(OSError):  # no new connections while draining
            await asyncio.open_connection("127.0.0.1", port)
        body = await asyncio.wait_for(read_body(reader), 5)
        answer = codec.decode(body[5 + PROFILE.header_len :])
        assert (answer["t"], answer["39"]) == ("0830", "00")
        await drained
        writer.close()
        rt.engine.dispose()

    asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_stops_the_host_cleanly(tmp_path: Path, workers: int) -> None:
    home = tmp_path / "home"
    prepare_host(home, 1)
    env = {**os.environ, "SMARTPOS_HOME": str(home)}
    port = str(_free_port())
    args = [*SMARTPOS, "host", "serve", "--port", port, "--no-tls", "--workers", str(workers)]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert "host listening" in proc.stdout.readline()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, errors = proc.communicate(timeout=30)
        if not workers:
            assert "every request taken was answered" in out, out
        assert proc.returncode == 0, errors
        # The writer lock went with it: another host starts on the same data.
        again = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
        assert again.stdout is not None
        assert "host listening" in again.stdout.readline()
        again.send_signal(signal.SIGTERM)
        assert again.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
