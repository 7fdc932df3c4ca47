"""The terminal service on a local socket, so a command need not start the terminal itself.

A `smartpos terminal sale` used to be a new Python process that opened the terminal's
database, loaded the engine and its libraries and only then sold: ~0.5 s, nearly all of it
imports (docs/benchmarks.md). When a long-running process already holds the terminal service
(`smartpos demo`, later the cashier app), the command hands it the request over a Unix
socket in the data directory and prints the answer; it loads neither the engine nor
SQLAlchemy. Without one it opens the service in its own process, as before. Both paths run
the same :func:`dispatch`, so they answer alike.

The socket is ``$SMARTPOS_HOME/terminal.sock``, created 0600 inside the 0700 data
directory: only the user who runs smartpos can connect — the same boundary as the data
directory's keys and journal. A request is one JSON object on one line, its answer too. The
card and the PIN come with the request, as they would to the command's own process; the
terminal turns the PIN into its PIN block at once and neither is logged or kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smartpos.services.terminal import TerminalService

__all__ = ["SOCKET_NAME", "LocalServer", "ask", "dispatch", "socket_path"]

log = logging.getLogger("smartpos.terminal")

SOCKET_NAME = "terminal.sock"
_REQUEST_MAX = 8192  # a request is a few hundred bytes
_READ_TIMEOUT_S = 600  # a cashier may take a while to enter the card and PIN
_ANSWER_TIMEOUT_S = 300  # settling a full batch, at worst


# What each request must carry (the rest is optional).
_NEEDS = {
    "sale": ("amount_minor", "card", "order_ref"),
    "balance": ("card",),
    "void": ("order_ref",),
    "refund": ("amount_minor", "card", "rrn", "order_ref"),
}


def socket_path(home: Path) -> Path:
    return home / SOCKET_NAME


def ask(home: Path, build: Any) -> dict[str, Any] | None:
    """Send the request ``build()`` makes to the terminal service listening in ``home`` and
    return its answer; None when none listens there (no socket, or a stale one). ``build``
    is called once connected, so the card is asked for only when a terminal is there."""
    path = socket_path(home)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:  # left behind by a process that was killed: nobody listens
        sock.close()
        return None
    with sock:
        request = json.dumps(build(), separators=(",", ":")).encode() + b"\n"
        sock.sendall(request)
        sock.settimeout(_ANSWER_TIMEOUT_S)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    if not answer.endswith(b"\n"):
        return {
            "ok": False,
            "code": "incomplete",
            "message": "the terminal service closed the connection before answering: check"
            " the journal (`smartpos terminal reversals`) before trying again",
        }
    return dict(json.loads(answer))


async def dispatch(service: TerminalService, req: dict[str, Any]) -> dict[str, Any]:
    """Run one request on the terminal service; the answer as the socket carries it:
    ``{"ok": true, "result": …}`` or ``{"ok": false, "code": …, "message": …}``."""
    from smartpos.terminal.engine import TerminalError, card_or_error

    def card() -> Any:
        return card_or_error(
            str(req["card"]),
            req.get("expiry"),
            chip=bool(req.get("chip")),
            tap=bool(req.get("tap")),
            fallback=bool(req.get("fallback")),
        )

    op = req.get("op")
    missing = [k for k in _NEEDS.get(str(op), ()) if req.get(k) is None]
    if missing:
        return {"ok": False, "code": "usage", "message": f"{op} request without {missing}"}
    try:
        match op:
            case "sale":
                done: Any = await service.sale(
                    int(req["amount_minor"]), card(), req.get("pin"), order_ref=req["order_ref"]
                )
            case "balance":
                done = await service.balance(card(), req.get("pin"))
            case "void":
                done = await service.void(
                    stan=req.get("stan"), invoice_no=req.get("invoice"), order_ref=req["order_ref"]
                )
            case "refund":
                done = await service.refund(
                    int(req["amount_minor"]), card(), rrn=req["rrn"], order_ref=req["order_ref"]
                )
            case "sign_on":
                done = await service.sign_on()
            case "echo":
                done = await service.echo()
            case "settle":
                done = await service.settle()
            case "selftest":
                from smartpos.config import load_settings
                from smartpos.services.selftest import run_selftest

                done = await run_selftest(load_settings(), service)
            case "reversals":
                return {"ok": True, "result": {"pending": await service.send_reversals()}}
            case _:
                return {"ok": False, "code": "usage", "message": f"unknown request {op!r}"}
    except TerminalError as exc:
        return {"ok": False, "code": str(exc.code), "message": str(exc)}
    except ValueError as exc:  # a card, PIN or amount the domain refuses (no PIN in it)
        return {"ok": False, "code": "refused", "message": str(exc)}
    return {"ok": True, "result": done.to_dict()}


class LocalServer:
    """The socket in the data directory, answering with :func:`dispatch`."""

    def __init__(self, service: TerminalService, home: Path) -> None:
        self.service = service
        self.path = socket_path(home)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> LocalServer:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale one (its process is gone: we hold the terminal)
        old = os.umask(0o177)  # the socket file is created 0600
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, str(self.path), limit=_REQUEST_MAX
            )
        finally:
            os.umask(old)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                line = await reader.readline()
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("not an object")
            except ValueError:
                answer: dict[str, Any] = {
                    "ok": False,
                    "code": "usage",
                    "message": "a request is one JSON object on one line",
                }
            else:
                answer = await dispatch(self.service, req)
            writer.write(json.dumps(answer, separators=(",", ":")).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass  # the client gave up or sent too much: nothing was done for it
        except Exception:
            log.exception("terminal socket request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
