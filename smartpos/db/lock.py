"""A lock that one process holds on a database for as long as it runs.

The host's writer allocates request ids and RRNs from an in-process counter and decides
every batch alone; a second writer on the same database would hand out the same RRNs and
interleave decisions. :class:`ProcessLock` makes that impossible instead of merely
unsupported: the second ``smartpos host serve`` (or ``demo``) on one database stops at start
with a clear message.

* SQLite: an exclusive ``flock`` on a file beside the database (released by the kernel when
  the process dies, even by SIGKILL).
* PostgreSQL: a session-level advisory lock on a connection kept open for the purpose
  (released when that connection closes, also when the process dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text

from smartpos.files import open_private

__all__ = ["AlreadyLocked", "ProcessLock"]


class AlreadyLocked(RuntimeError):
    """Another process holds the lock."""


class ProcessLock:
    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._file: IO[str] | None = None
        self._conn: Any = None
        self._key = 0

    def acquire(self) -> ProcessLock:
        """Take the lock or raise :class:`AlreadyLocked` at once (never waits)."""
        if self.engine.dialect.name == "postgresql":
            digest = hashlib.sha256(self.name.encode()).digest()
            key = int.from_bytes(digest[:8], "big", signed=True)
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            if not got:
                conn.close()
                raise AlreadyLocked(self._message())
            self._conn, self._key = conn, key
            return self
        database = self.engine.url.database
        if not database or database == ":memory:":
            return self  # a private in-memory database: nobody else can open it
        path = Path(f"{database}.{self.name}.lock")
        lock = os.fdopen(open_private(path), "a")  # held until release
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise AlreadyLocked(self._message()) from None
        self._file = lock
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            # Unlock first: the server ends a closed session's locks only once it has seen
            # the disconnect, so a writer started right after could still find it taken.
            with contextlib.suppress(Exception):  # a broken session: closing it unlocks
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._conn.commit()
            # Close the session itself (not back into the pool): the advisory lock goes with it.
            self._conn.invalidate()
            self._conn.close()
            self._conn = None

    def _message(self) -> str:
        return (
            f"another process already holds the {self.name} lock of this database "
            f"({self.engine.url.render_as_string(hide_password=True)})"
        )
