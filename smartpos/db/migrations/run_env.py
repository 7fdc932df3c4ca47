"""The shared Alembic environment: the engine and which schema come from
``smartpos.db.migrate`` (no alembic.ini). Each history's ``env.py`` calls :func:`run`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, text

# Advisory lock id for smartpos migrations on PostgreSQL (any constant; 8583 = ISO 8583).
LOCK_KEY = 8583


def _metadata(which: str) -> MetaData:
    if which == "host":
        from smartpos.host.tables import metadata
    elif which == "pos":
        from smartpos.db.pos import pos_metadata

        return pos_metadata()
    else:
        from smartpos.terminal.tables import metadata
    return metadata


def run() -> None:
    config = context.config
    engine = config.attributes["engine"]
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Serializes concurrent first starts; released when this transaction ends.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        context.configure(
            connection=connection,
            target_metadata=_metadata(config.attributes["which"]),
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
