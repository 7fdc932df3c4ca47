"""A throwaway PostgreSQL database on the local server, for the PostgreSQL-backed tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@contextlib.contextmanager
def fresh_database(prefix: str = "smartpos_test") -> Iterator[str]:
    """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
