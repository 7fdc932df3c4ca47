"""Live updates for the customer display (server-sent events): each terminal screen
publishes what the customer should see; every open display page receives it.

Bounded: a display that stops reading loses old updates (each queue keeps the newest
:data:`QUEUE_MAX`), never the server's memory; at most :data:`LISTENERS_MAX` displays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["EventHub"]

QUEUE_MAX = 16
LISTENERS_MAX = 32
KEEPALIVE_S = 15.0


class EventHub:
    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[str]] = set()
        self.last: dict[str, Any] = {"state": "idle"}

    def publish(self, event: dict[str, Any]) -> None:
        self.last = event
        data = json.dumps(event, ensure_ascii=False)
        for queue in list(self._listeners):
            if queue.full():
                queue.get_nowait()  # drop the oldest: the newest state is what matters
            queue.put_nowait(data)

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events: the current state first, then every update."""
        if len(self._listeners) >= LISTENERS_MAX:
            raise RuntimeError("too many customer displays are connected")
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_MAX)
        self._listeners.add(queue)
        try:
            yield f"data: {json.dumps(self.last, ensure_ascii=False)}\n\n"
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {data}\n\n"
        finally:
            self._listeners.discard(queue)
