"""The cheap schema check of ``smartpos.db.migrate.upgrade``: a current database is left
alone without Alembic; a new one or one behind is migrated by Alembic, as before.

The head comes from reading the histories' scripts, not from Alembic: held here to the head
Alembic's own ScriptDirectory finds, so a new migration cannot slip past the check.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from smartpos.db import migrate
from smartpos.db.engine import make_engine
from smartpos.db.migrate import MIGRATIONS, head_revisions, stored_revisions, upgrade
from smartpos.host.tables import metadata as host_metadata
from smartpos.terminal.tables import metadata as terminal_metadata
from tests.pg import fresh_database

HISTORIES = ("host", "terminal")
SCHEMAS = {"host": host_metadata, "terminal": terminal_metadata}


def alembic_heads(name: str) -> frozenset[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / name))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def revisions_in_order(name: str) -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / name))
    return [
        s.revision for s in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))
    ]


@pytest.mark.parametrize("name", HISTORIES)
def test_the_head_read_from_the_scripts_is_alembics(name: str) -> None:
    heads = head_revisions(name)
    assert heads is not None and heads == alembic_heads(name)
    assert len(revisions_in_order(name)) >= 4  # a real history was read


@contextlib.contextmanager
def sqlite(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", durable=False)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def postgres() -> Iterator[Engine]:
    with fresh_database("smartpos_schema") as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sqlite(tmp_path) if request.param == "sqlite" else postgres() as engine:
        yield engine


class AlembicRuns:
    """Counts the runs of Alembic's ``upgrade`` (they still happen, for real)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = command.upgrade

        def counted(*args: object, **kwargs: object) -> None:
            self.count += 1
            real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(command, "upgrade", counted)


@pytest.mark.parametrize("name", HISTORIES)
def test_a_new_database_is_migrated_then_left_alone(
    engine: Engine, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = AlembicRuns(monkeypatch)
    assert stored_revisions(engine) is None
    upgrade(engine, name)
    assert runs.count == 1 and stored_revisions(engine) == alembic_heads(name)
    upgrade(engine, name)
    upgrade(engine, name)
    assert runs.count == 1  # current: no Alembic


@pytest.mark.parametrize("name", HISTORIES)
def test_a_database_behind_is_brought_to_the_head(
    engine: Engine, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = revisions_in_order(name)[0]
    command.upgrade(migrate.alembic_config(engine, name), first)  # an old installation
    assert stored_revisions(engine) == {first}
    runs = AlembicRuns(monkeypatch)
    upgrade(engine, name)
    assert runs.count == 1 and stored_revisions(engine) == alembic_heads(name)
    with engine.connect() as conn:  # the later revisions' changes are really there
        assert compare_metadata(MigrationContext.configure(conn), SCHEMAS[name]) == []


def test_a_database_the_check_cannot_read_goes_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite(tmp_path) as engine:
        upgrade(engine, "terminal")
        with engine.begin() as conn:  # a revision this code does not know (a newer smartpos)
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        runs = AlembicRuns(monkeypatch)
        with pytest.raises(Exception, match="ffff"):  # Alembic's refusal, as before
            upgrade(engine, "terminal")
        assert runs.count == 1


def test_scripts_the_reading_is_not_sure_of_go_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS / "terminal", copy / "terminal")
    monkeypatch.setattr(migrate, "MIGRATIONS", copy)
    assert head_revisions("terminal") == alembic_heads("terminal")
    merge = copy / "terminal" / "versions" / "9999_merge.py"
    head = sorted(alembic_heads("terminal"))[0]
    merge.write_text(
        f'revision = "9999"\ndown_revision = (\n    "{head}",\n)\n'
        "def upgrade() -> None:\n    pass\n"
    )
    assert head_revisions("terminal") is None  # a tuple over lines: Alembic decides
    merge.write_text(f'revision = "9999"\ndown_revision = ("{head}",)\n')
    assert head_revisions("terminal") == {"9999"}
    merge.write_text('revision = "9999"\n')  # no down_revision line
    assert head_revisions("terminal") is None
    (copy / "terminal" / "versions" / "__init__.py").write_text('revision = "x"\n')
    merge.write_text(f'revision: str = "9999"  # note\ndown_revision: str | None = "{head}"\n')
    assert head_revisions("terminal") == {"9999"}


def test_processes_that_find_a_database_behind_still_take_turns(tmp_path: Path) -> None:
    """The check does not replace the lock: a database behind is migrated under it (the
    lock file is there), and a current one is not touched (no lock taken)."""
    path = tmp_path / "db.sqlite"
    with sqlite(tmp_path) as engine:
        upgrade(engine, "host")
        lock = Path(f"{path}.migrate-lock")
        assert lock.exists()
        lock.unlink()
        upgrade(engine, "host")
        assert not lock.exists()
