"""Alembic migrations, run programmatically: ``upgrade(engine, "host" | "terminal")``.

The host and the terminal keep separate databases, so each has its own migration history
(``smartpos/db/migrations/<name>``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from smartpos.files import open_private

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine, name: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS / name))
    cfg.attributes["engine"] = engine
    cfg.attributes["which"] = name
    return cfg


def upgrade(engine: Engine, name: str) -> None:
    """Bring the database to the latest revision (idempotent, and safe when several processes
    open a new database at once: a demo starting while a terminal command runs).

    SQLite: an exclusive lock on a file beside the database serializes the migrations.
    PostgreSQL: the migration transaction takes an advisory lock (see ``run_env``)."""
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
