"""Alembic environment of the host database."""

from smartpos.db.migrations.run_env import run

run()
