"""Running a command's coroutine: on uvloop where it is installed (what the host and the
terminal are measured on), else on the standard event loop."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop missing on some platforms
        import asyncio

        return asyncio.run(coro)  # type: ignore[arg-type]
