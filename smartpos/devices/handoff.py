"""A hand-off between whoever presents something (a test, the demo, a key source) and the
adapter that waits for it: ``give`` never blocks, ``take`` waits.

``asyncio.Queue`` binds itself to the first event loop that waits on it, so a simulated
reader built once and used from two ``asyncio.run`` calls (the CLI, tests) would fail; this
hand-off creates its waiter in the loop that waits, each time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

from smartpos.devices.ports import DeviceError

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items given are taken in order; at most ``limit`` wait untaken."""

    def __init__(self, limit: int, what: str) -> None:
        self._items: deque[T] = deque()
        self._limit = limit
        self._what = what
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def give(self, item: T) -> None:
        """Queue ``item``; wakes the waiting ``take``. Call it from the loop's thread (or with
        no loop running). Raises DeviceError when ``limit`` items already wait: the reader
        of them has stopped, and dropping some silently would lose input."""
        if len(self._items) >= self._limit:
            raise DeviceError(
                f"{self._what}: {self._limit} inputs wait unread — the device is not being"
                " read; restart the till"
            )
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    def clear(self) -> None:
        """Drop everything waiting."""
        self._items.clear()

    async def take(self, timeout_s: float | None = None) -> T:
        """The oldest item, waiting for one up to ``timeout_s`` (None: no limit). Raises
        TimeoutError when none came, DeviceError if another task is already waiting."""
        if self._items:
            return self._items.popleft()
        if self._waiter is not None and not self._waiter.done():
            raise DeviceError(f"{self._what}: already waited on by another task")
        async with asyncio.timeout(timeout_s):
            while not self._items:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        return self._items.popleft()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
