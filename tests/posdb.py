"""A migrated POS database for the store and security tests: SQLite in the test's directory,
or a throwaway PostgreSQL database on the local server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from smartpos.config import Settings
from smartpos.db.engine import make_engine
from smartpos.db.migrate import upgrade
from smartpos.db.pos import open_pos_db
from tests.pg import fresh_database


@contextlib.contextmanager
def pos_database(backend: str, tmp_path: Path, prefix: str = "smartpos_pos") -> Iterator[Engine]:
    """``backend`` "sqlite" (``tmp_path/pos.db``, not durable: speed) or "postgres"."""
    if backend == "sqlite":
        engine = open_pos_db(Settings(home=tmp_path), durable=False)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with fresh_database(prefix) as url:
        engine = make_engine(url)
        try:
            upgrade(engine, "pos")
            yield engine
        finally:
            engine.dispose()
