"""The shared Alembic environment: the engine and which schema come from
``smartpos.db.migrate`` (no alembic.ini). Each history's ``env.py`` calls :func:`run`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData


def _metadata(which: str) -> MetaData:
    if which == "host":
        from smartpos.host.tables import metadata
    else:
        from smartpos.terminal.tables import metadata
    return metadata


def run() -> None:
    config = context.config
    engine = config.attributes["engine"]
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=_metadata(config.attributes["which"]),
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
