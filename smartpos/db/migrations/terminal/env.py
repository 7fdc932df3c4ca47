"""Alembic environment of the terminal database."""

from smartpos.db.migrations.run_env import run

run()
