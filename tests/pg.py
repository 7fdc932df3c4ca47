"""A throwaway PostgreSQL database on the local server, for the PostgreSQL-backed tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from smartpos.db.scratch import scratch_database

SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def fresh_database(prefix: str = "smartpos_test") -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    with scratch_database(SERVER_URL, prefix) as url:
        yield url
