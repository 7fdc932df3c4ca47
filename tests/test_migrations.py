"""The Alembic histories build exactly the schema the code declares (no drift)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from smartpos.db.engine import make_engine
from smartpos.db.migrate import upgrade
from smartpos.db.pos import pos_metadata
from smartpos.host.tables import metadata as host_metadata
from smartpos.terminal.tables import metadata as terminal_metadata
from tests.pg import fresh_database

SCHEMAS = {"host": host_metadata, "terminal": terminal_metadata, "pos": pos_metadata()}


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
    with fresh_database("smartpos_mig") as url:
        assert _diff(url, which) == []


def _migrate_in_child(url: str, which: str) -> None:
    upgrade(make_engine(url), which)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_concurrent_first_starts_do_not_collide(tmp_path: Path, backend: str) -> None:
    """Several processes opening one new database at once (e.g. the demo starting while a
    terminal command runs) all succeed and leave one schema."""
    import multiprocessing

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'race.db'}"
        else:
            url = stack.enter_context(fresh_database("smartpos_race"))
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_migrate_in_child, args=(url, "terminal")) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        assert _diff(url, "terminal") == []
