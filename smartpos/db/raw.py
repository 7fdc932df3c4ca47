"""Hot-path SQL on the DB-API cursor beneath a SQLAlchemy connection.

The host's writer runs about ten statements per purchase. Through SQLAlchemy Core each costs
~36 µs of Python even when prebuilt; on the driver's cursor ~5 µs (SQLite, measured in
docs/benchmarks.md). So the purchase path uses fixed SQL text here, inside the same
transaction as everything else; the rest of the code keeps SQLAlchemy.

SQL is written once with ``?`` placeholders and column lists; PostgreSQL (psycopg) gets
``%s``. Rows come back as named tuples. Datetimes are stored as SQLAlchemy stores them, so
rows written here read back through SQLAlchemy unchanged.
"""

from __future__ import annotations

from collections import namedtuple
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

_CURSOR_KEY = "smartpos_raw_cursor"


class Query:
    """One statement: SQL with ``?`` placeholders and, for a SELECT, its column names."""

    __slots__ = ("pg_sql", "row", "sql")

    def __init__(self, sql: str, columns: tuple[str, ...] = ()) -> None:
        self.sql = " ".join(sql.split())
        self.pg_sql = self.sql.replace("?", "%s")
        self.row = namedtuple("Row", columns) if columns else None


class Raw:
    """Runs :class:`Query` objects in ``conn``'s current transaction."""

    def __init__(self, conn: Connection) -> None:
        self.pg = conn.dialect.name == "postgresql"
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        self.dbapi: Any = dbapi
        self.cur = dbapi.cursor()

    @classmethod
    def of(cls, conn: Connection) -> Raw:
        """The cursor wrapper for this connection, made once per connection."""
        raw: Raw | None = conn.info.get(_CURSOR_KEY)
        if raw is None:
            raw = conn.info[_CURSOR_KEY] = cls(conn)
        return raw

    # -- one request's savepoint inside the batch transaction --------------------------------

    def savepoint(self) -> None:
        """Mark the start of one request's changes inside the current transaction.

        On SQLite the transaction is opened first: Python's sqlite3 driver starts one only
        before the first write, so a leading SAVEPOINT would itself become the transaction
        and releasing it would commit — mid-batch, before the durable commit point."""
        if not self.pg and not self.dbapi.in_transaction:
            self.cur.execute("BEGIN")
        self.cur.execute("SAVEPOINT smartpos_request")

    def release(self) -> None:
        """Keep the request's changes (they commit with the batch)."""
        self.cur.execute("RELEASE SAVEPOINT smartpos_request")

    def rollback_to_savepoint(self) -> None:
        """Undo everything the request changed since :meth:`savepoint`; the rest of the
        batch is untouched."""
        self.cur.execute("ROLLBACK TO SAVEPOINT smartpos_request")
        self.cur.execute("RELEASE SAVEPOINT smartpos_request")

    def run(self, q: Query, params: tuple[Any, ...]) -> None:
        self.cur.execute(q.pg_sql if self.pg else q.sql, params)

    def first(self, q: Query, params: tuple[Any, ...]) -> Any:
        self.run(q, params)
        found = self.cur.fetchone()
        assert q.row is not None
        return None if found is None else q.row(*found)

    def all(self, q: Query, params: tuple[Any, ...]) -> list[Any]:
        self.run(q, params)
        assert q.row is not None
        return [q.row(*r) for r in self.cur.fetchall()]

    def stamp(self, when: datetime) -> Any:
        """A datetime as the DateTime column stores it (SQLite: SQLAlchemy's text form)."""
        if self.pg:
            return when
        return when.replace(tzinfo=None).isoformat(" ", "microseconds")
