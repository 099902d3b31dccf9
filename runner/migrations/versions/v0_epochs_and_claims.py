"""Format 0 (f02d618, tests/fixtures/v0): runner_epochs and runner_claims, as that code created them.

Each migration adds only what is missing: a database whose creation another worker left half done (on a server
without the lock runner.migrations takes) ends complete.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0"
down_revision = None


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "runner_epochs" not in tables:
        op.create_table(
            "runner_epochs",
            sa.Column("trial_id", sa.Integer, primary_key=True),
            sa.Column("epoch", sa.Integer, primary_key=True),
            sa.Column("study_name", sa.String(512), nullable=False, index=True),
            sa.Column("trial_number", sa.Integer, nullable=False),
            *[sa.Column(name, sa.Double, nullable=False)
              for name in ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")])
    if "runner_claims" not in tables:
        op.create_table(
            "runner_claims",
            sa.Column("study_name", sa.String(512), primary_key=True),
            sa.Column("config_hash", sa.String(64), primary_key=True),
            sa.Column("trial_id", sa.Integer, nullable=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("worker", sa.String(256), nullable=False),
            sa.Column("heartbeat", sa.DateTime, nullable=False))
