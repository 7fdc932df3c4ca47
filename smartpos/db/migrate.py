"""Alembic migrations, run programmatically: ``upgrade(engine, "host" | "terminal")``.

The host and the terminal keep separate databases, so each has its own migration history
(``smartpos/db/migrations/<name>``).

Every command opens its database through :func:`upgrade`, and nearly always the database is
current already. Finding that out through Alembic meant importing it (with Mako and every
dialect's DDL module) and loading the history's scripts: ~150 ms of a 0.8–1 s
``terminal sale`` (docs/benchmarks.md, "CLI start-up"). So the
revision the database holds is read with one ``SELECT`` and compared with the head of the
history, read from its scripts' ``revision`` / ``down_revision`` lines without running
them (tests/test_schema_check.py holds that reading to Alembic's own). Only a database that
is new or behind — or anything this check cannot read — goes to Alembic, under the same
lock as before.
"""

from __future__ import annotations

import ast
import fcntl
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from smartpos.files import open_private

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MIGRATIONS", "alembic_config", "head_revisions", "stored_revisions", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"
# Module-level `revision = "…"` / `down_revision = …` lines of a migration script, with or
# without a type annotation (as Alembic's template writes them).
_ASSIGNMENT = re.compile(
    r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*(?:#.*)?$", re.MULTILINE
)


def alembic_config(engine: Engine, name: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS / name))
    cfg.attributes["engine"] = engine
    cfg.attributes["which"] = name
    return cfg


def head_revisions(name: str) -> frozenset[str] | None:
    """The head revision(s) of history ``name``: those no script revises. None if a script
    does not say its revisions in a way this reading is sure of (then Alembic decides)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in (MIGRATIONS / name / "versions").glob("*.py"):
        if script.name.startswith(("_", ".#")):
            continue  # not a migration to Alembic either
        found: dict[str, object] = {}
        for key, value in _ASSIGNMENT.findall(script.read_text(encoding="utf-8")):
            if key in found:
                return None
            try:
                found[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return None
        revision, down = found.get("revision"), found.get("down_revision", ...)
        downs = () if down is None else (down,) if isinstance(down, str) else down
        if not isinstance(revision, str) or not isinstance(downs, tuple | list):
            return None
        if not all(isinstance(d, str) for d in downs):
            return None
        revisions.add(revision)
        revised.update(downs)
    heads = frozenset(revisions - revised)
    return heads or None


def stored_revisions(engine: Engine) -> frozenset[str] | None:
    """The revision(s) the database is at (Alembic's ``alembic_version`` table); None if it
    has none (a new database) or the table cannot be read. Errors reaching the database
    itself are raised."""
    with engine.connect() as conn:
        try:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except DBAPIError:
            return None
    return frozenset(str(row[0]) for row in rows) or None


def upgrade(engine: Engine, name: str) -> None:
    """Bring the database to the latest revision (idempotent, and safe when several processes
    open a new database at once: a demo starting while a terminal command runs).

    A database already at the head is left alone without Alembic (see the module doc).
    Otherwise — SQLite: an exclusive lock on a file beside the database serializes the
    migrations; PostgreSQL: the migration transaction takes an advisory lock (see
    ``run_env``). Alembic reads the revision again under the lock, so a process that waited
    for another's migration finds nothing left to do."""
    heads = head_revisions(name)
    if heads is not None and stored_revisions(engine) == heads:
        return
    from alembic import command

    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        command.upgrade(alembic_config(engine, name), "head")
        return
    with os.fdopen(open_private(Path(f"{database}.migrate-lock")), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(engine, name), "head")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
