"""Hot-path SQL on the DB-API cursor beneath a SQLAlchemy connection.

The host's writer runs about ten statements per purchase. Through SQLAlchemy Core each costs
~36 µs of Python even when prebuilt; on the driver's cursor ~5 µs (SQLite, measured in
docs/benchmarks.md). So the purchase path uses fixed SQL text here, inside the same
transaction as everything else; the rest of the code keeps SQLAlchemy.

SQL is written once with ``?`` placeholders and column lists; PostgreSQL (psycopg) gets
``%s``. Rows come back as named tuples. Datetimes are stored as SQLAlchemy stores them, so
rows written here read back through SQLAlchemy unchanged.

On PostgreSQL every statement is a network round trip. Inside a request's savepoint, writes
whose outcome the code does not read (:meth:`Raw.defer`) are held back and sent together
with the next statement that needs an answer, or with the savepoint's release, in one
psycopg pipeline: one round trip instead of several. An error in one of them surfaces there
and undoes the request like any other (docs/architecture.md, "Writes in a pipeline").
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, event

_CURSOR_KEY = "smartpos_raw_cursor"


class Query:
    """One statement: SQL with ``?`` placeholders and, for a SELECT, its column names."""

    __slots__ = ("pg_sql", "row", "sql")

    def __init__(self, sql: str, columns: tuple[str, ...] = ()) -> None:
        self.sql = " ".join(sql.split())
        self.pg_sql = self.sql.replace("?", "%s")
        self.row = namedtuple("Row", columns) if columns else None


_HOOKED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _send_held_before_sqlalchemy(engine: Engine) -> None:
    """Statements run through SQLAlchemy on a connection with held writes send those first,
    so that everything reaches the database in the order the code ran it."""
    if engine in _HOOKED:
        return
    _HOOKED.add(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _flush(conn: Connection, *_: Any) -> None:
        raw: Raw | None = conn.info.get(_CURSOR_KEY)
        if raw is not None and raw._held:
            raw._send_held()


class Raw:
    """Runs :class:`Query` objects in ``conn``'s current transaction."""

    def __init__(self, conn: Connection) -> None:
        self.pg = conn.dialect.name == "postgresql"
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        self.dbapi: Any = dbapi
        self.cur = dbapi.cursor()
        self._in_request = False  # between savepoint() and its release / rollback
        self._held: list[tuple[str, tuple[Any, ...]]] = []
        self._second: Any = None  # a second cursor, for two reads in one pipeline

    @classmethod
    def of(cls, conn: Connection) -> Raw:
        """The cursor wrapper for this connection, made once per connection."""
        raw: Raw | None = conn.info.get(_CURSOR_KEY)
        if raw is None:
            raw = conn.info[_CURSOR_KEY] = cls(conn)
            if raw.pg:
                _send_held_before_sqlalchemy(conn.engine)
        return raw

    # -- one request's savepoint inside the batch transaction --------------------------------

    def savepoint(self) -> None:
        """Mark the start of one request's changes inside the current transaction.

        On SQLite the transaction is opened first: Python's sqlite3 driver starts one only
        before the first write, so a leading SAVEPOINT would itself become the transaction
        and releasing it would commit — mid-batch, before the durable commit point."""
        if self.pg:
            # Sent with the request's first read. Anything still held belongs to a request
            # whose handling broke off (its transaction was rolled back): never sent now.
            self._held = [("SAVEPOINT smartpos_request", ())]
        else:
            if not self.dbapi.in_transaction:
                self.cur.execute("BEGIN")
            self.cur.execute("SAVEPOINT smartpos_request")
        self._in_request = True

    def release(self) -> None:
        """Keep the request's changes (they commit with the batch)."""
        self._in_request = False
        if self.pg:
            self._held.append(("RELEASE SAVEPOINT smartpos_request", ()))
            self._send_held()
        else:
            self.cur.execute("RELEASE SAVEPOINT smartpos_request")

    def rollback_to_savepoint(self) -> None:
        """Undo everything the request changed since :meth:`savepoint`; the rest of the
        batch is untouched."""
        self._in_request = False
        held, self._held = self._held, []
        if held and held[0][0].startswith("SAVEPOINT"):
            return  # nothing of the request reached the database
        self.cur.execute("ROLLBACK TO SAVEPOINT smartpos_request")
        self.cur.execute("RELEASE SAVEPOINT smartpos_request")

    def defer(self, q: Query, params: tuple[Any, ...]) -> None:
        """A write whose result is not read: on PostgreSQL, inside a request, it goes out
        with the next statement that needs an answer (one round trip for all)."""
        if self.pg and self._in_request:
            self._held.append((q.pg_sql, params))
        else:
            self.run(q, params)

    def _send_held(self, *then: tuple[Any, str, tuple[Any, ...]]) -> None:
        """Send the held writes, then the ``(cursor, sql, params)`` statements whose results
        stay on their cursors, in one pipeline. The held list is emptied first: on an error
        nothing is sent twice."""
        held, self._held = self._held, []
        with self.dbapi.pipeline():
            for sql, params in held:
                self.cur.execute(sql, params)
            for cursor, sql, params in then:
                cursor.execute(sql, params)

    def run(self, q: Query, params: tuple[Any, ...]) -> None:
        if self._held:
            self._send_held((self.cur, q.pg_sql, params))
            return
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

    def all_and_first(
        self, q_all: Query, p_all: tuple[Any, ...], q_first: Query, p_first: tuple[Any, ...]
    ) -> tuple[list[Any], Any]:
        """Two independent reads: every row of ``q_all`` and the first of ``q_first``. On
        PostgreSQL both go out in one pipeline (with anything held): one round trip."""
        if not self.pg:
            return self.all(q_all, p_all), self.first(q_first, p_first)
        if self._second is None:
            self._second = self.dbapi.cursor()
        self._send_held((self.cur, q_all.pg_sql, p_all), (self._second, q_first.pg_sql, p_first))
        assert q_all.row is not None and q_first.row is not None
        found = self._second.fetchone()
        rows = [q_all.row(*r) for r in self.cur.fetchall()]
        return rows, None if found is None else q_first.row(*found)

    def stamp(self, when: datetime) -> Any:
        """A datetime as the DateTime column stores it (SQLite: SQLAlchemy's text form)."""
        if self.pg:
            return when
        return when.replace(tzinfo=None).isoformat(" ", "microseconds")
