"""A throwaway PostgreSQL database: created empty on a server, dropped afterwards. Used by the
benchmark (`smartpos bench host --db …`) and the PostgreSQL-backed tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
from sqlalchemy.engine import make_url


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "smartpos_scratch") -> Iterator[str]:
    """Create an empty database on the server of ``server_url`` (a SQLAlchemy PostgreSQL URL;
    its database, default ``postgres``, is only used to create and drop the new one), yield
    the new database's SQLAlchemy URL, drop it afterwards (even if still connected)."""
    url = make_url(server_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url.render_as_string(hide_password=True)}")
    admin = url.set(drivername="postgresql", database=url.database or "postgres")
    admin_dsn = admin.render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
