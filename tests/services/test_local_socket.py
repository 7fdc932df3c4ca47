"""The terminal service on the data directory's socket: a command hands its request to the
process that holds the terminal and gets the same answer it would have made itself; only the
user can reach the socket; a stale one is not mistaken for a terminal; bad requests get a
clear answer and change nothing."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from smartpos.config import Settings
from smartpos.host.testcards import CATALOGUE
from smartpos.services.local import LocalServer, ask, socket_path
from smartpos.services.terminal import TerminalService
from tests.integration.test_card_flows import balance_of
from tests.sandbox import running_sandbox

pytestmark = pytest.mark.integration

GOOD = CATALOGUE[0]


def _raw(path: Path, line: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return dict(json.loads(data))


def test_requests_over_the_socket(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_sandbox(tmp_path) as sb:
            t = sb.terminal()
            service = TerminalService.open(Settings(), factory=lambda: t)
            home = tmp_path / "home"
            home.mkdir(mode=0o700)
            server = await LocalServer(service, home).start()
            try:
                path = socket_path(home)
                assert stat.S_ISSOCK(os.stat(path).st_mode)
                assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
                signed = await asyncio.to_thread(ask, home, lambda: {"op": "sign_on"})
                assert signed is not None and signed["ok"], signed
                before = balance_of(sb, GOOD)
                sale = {
                    "op": "sale",
                    "amount_minor": 1234,
                    "card": GOOD.pan,
                    "pin": GOOD.pin,
                    "order_ref": "S-1",
                }
                first = await asyncio.to_thread(ask, home, lambda: sale)
                again = await asyncio.to_thread(ask, home, lambda: sale)
                assert first is not None and again is not None
                assert first["ok"] and first["result"]["result"] == "approved", first
                assert (
                    again["result"]["repeated"] and again["result"]["rrn"] == first["result"]["rrn"]
                )
                assert balance_of(sb, GOOD) == before - 1234
                # Refusals carry the engine's code; bad requests a usage answer.
                other = await asyncio.to_thread(ask, home, lambda: {**sale, "amount_minor": 1})
                assert other is not None and other["code"] == "key_reused", other
                for line in (b"not json\n", b"[1]\n", b'{"op": "sell"}\n', b'{"op": "sale"}\n'):
                    answer = await asyncio.to_thread(_raw, path, line)
                    assert (answer["ok"], answer["code"]) == (False, "usage"), (line, answer)
                bad_card = {**sale, "card": "1234", "order_ref": "S-2"}
                refused = await asyncio.to_thread(ask, home, lambda: bad_card)
                assert refused is not None and refused["code"] == "card_not_accepted"
                assert balance_of(sb, GOOD) == before - 1234
            finally:
                await server.close()
                await service.close()
            assert not path.exists()

    asyncio.run(go())


def test_a_stale_socket_is_not_a_terminal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX) as s:  # bound, never listening: its process is gone
        s.bind(str(socket_path(home)))
    assert ask(home, lambda: {"op": "echo"}) is None
    assert ask(tmp_path / "nowhere", lambda: {"op": "echo"}) is None
