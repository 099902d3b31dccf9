"""Alembic's environment for runner's own tables: runner.migrations.upgrade passes the connection (in
config.attributes), already in its transaction and holding the lock; the version table is runner's own."""
from __future__ import annotations

from alembic import context

from runner.migrations import VERSION_TABLE

context.configure(connection=context.config.attributes["connection"], version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
