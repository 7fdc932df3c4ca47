"""Giving memory freed by closed links back to the system (glibc only; elsewhere a no-op).

Each TLS link allocates a 256 KB read buffer in the event loop's SSL protocol, plus OpenSSL's
own state. When thousands of links come and go (a flood), glibc keeps the freed memory in
its heap instead of returning it, so the host's resident size stays at the flood's peak
long after: "it reached 675 MB and stayed there". Measured (docs/fault-injection.md):
after ``malloc_trim(0)`` the resident size goes back to what the live links need.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("smartpos.host")

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _libc.malloc_trim  # noqa: B018 - glibc has it; musl and others do not
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _libc = None


def release_free_memory() -> bool:
    """Return the heap's free memory to the system. False where that is not possible."""
    if _libc is None:  # pragma: no cover
        return False
    _libc.malloc_trim(0)
    return True
