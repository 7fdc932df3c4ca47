"""The Alembic histories build exactly the schema the code declares (no drift)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from smartpos.db.engine import make_engine
from smartpos.db.migrate import upgrade
from smartpos.host.tables import metadata as host_metadata
from smartpos.terminal.tables import metadata as terminal_metadata

SCHEMAS = {"host": host_metadata, "terminal": terminal_metadata}


def _diff(url: str, which: str) -> list[object]:
    engine = make_engine(url)
    try:
        upgrade(engine, which)
        upgrade(engine, which)  # idempotent
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SCHEMAS[which]))
    finally:
        engine.dispose()


@pytest.mark.parametrize("which", sorted(SCHEMAS))
def test_sqlite_schema_matches_tables(tmp_path: Path, which: str) -> None:
    assert _diff(f"sqlite:///{tmp_path / 'db.sqlite'}", which) == []


@pytest.mark.postgres
@pytest.mark.parametrize("which", sorted(SCHEMAS))
def test_postgres_schema_matches_tables(which: str) -> None:
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    name = f"smartpos_mig_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        assert _diff(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", which) == []
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
