"""Alembic migrations, run programmatically: ``upgrade(engine, "host" | "terminal")``.

The host and the terminal keep separate databases, so each has its own migration history
(``smartpos/db/migrations/<name>``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine, name: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS / name))
    cfg.attributes["engine"] = engine
    cfg.attributes["which"] = name
    return cfg


def upgrade(engine: Engine, name: str) -> None:
    """Bring the database to the latest revision (idempotent)."""
    command.upgrade(alembic_config(engine, name), "head")
