"""Serving the cashier app inside a running event loop (the demo's, or ``smartpos pos``'s):
uvicorn without its own signal handling — the command that runs it stops it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

__all__ = ["PosServer", "listen"]


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Ctrl-C belongs to the command (it stops the host, the terminal and this server).
        yield


def listen(bind: str, port: int) -> socket.socket:
    """The app's listening socket, made before anything starts (a port already in use is
    reported at once, and changes nothing)."""
    sock = socket.create_server((bind, port), backlog=128)
    sock.setblocking(False)
    return sock


class PosServer:
    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self._server = _Server(config)
        self._sock = sock
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}/"

    async def start(self) -> PosServer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise RuntimeError("the cashier app stopped while starting")
            await asyncio.sleep(0.01)
        return self

    async def close(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
