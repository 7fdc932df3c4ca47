"""Alembic environment: the engine comes from ``smartpos.db.migrate`` (no alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData


def _metadata(which: str) -> MetaData:
    if which == "host":
        from smartpos.host.tables import metadata
    else:
        from smartpos.terminal.tables import metadata
    return metadata


config = context.config
engine = config.attributes["engine"]
target_metadata = _metadata(config.attributes["which"])

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
