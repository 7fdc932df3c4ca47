"""Engine creation for SQLite (WAL, the embedded default) and PostgreSQL (psycopg)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from smartpos.files import check_private, make_private_dirs, open_private

_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """Create an engine. SQLite gets WAL, a busy timeout and foreign keys.

    ``durable`` picks ``synchronous=FULL`` (every commit reaches the disk before it returns);
    tests that do not test durability may turn it off for speed.
    """
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            _private_database_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = str(parsed.set(drivername="postgresql+psycopg"))
    return create_engine(url, pool_pre_ping=True)


def _private_database_file(path: Path) -> None:
    """Create the database file 0600 (in 0700 directories) before SQLite does: SQLite gives
    a new database the umask's mode (usually 0644) and its -wal/-shm/-journal files the
    database's mode, so this keeps all of them private. Existing ones are checked."""
    make_private_dirs(path.parent)
    os.close(open_private(path, os.O_RDONLY))
    for suffix in _SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            check_private(side)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
