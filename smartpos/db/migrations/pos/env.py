"""Alembic environment of the POS database (store, staff, orders, shifts)."""

from smartpos.db.migrations.run_env import run

run()
