"""The POS database: the store's catalog, orders, staff and shifts (its own Alembic history,
``smartpos/db/migrations/pos``), beside the terminal's journal in ``terminal.db``.

The tables of ``smartpos.security.tables``, ``smartpos.store.catalog_tables`` and
``smartpos.store.order_tables`` share :data:`metadata`; :func:`pos_metadata` imports them
all so the schema is complete."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData

from smartpos.config import Settings

__all__ = ["metadata", "open_pos_db", "pos_metadata"]

metadata = MetaData()


def pos_metadata() -> MetaData:
    import smartpos.security.tables
    import smartpos.store.catalog_tables
    import smartpos.store.order_tables  # noqa: F401

    return metadata


def open_pos_db(settings: Settings, *, durable: bool = True) -> Engine:
    """The POS database of ``settings``, migrated to the latest revision."""
    from smartpos.db.engine import make_engine
    from smartpos.db.migrate import upgrade

    engine = make_engine(settings.resolved_pos_db_url, durable=durable)
    upgrade(engine, "pos")
    return engine
