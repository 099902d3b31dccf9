"""Format 2 (5c4409c, tests/fixtures/v2): runner_predictions, and runner_epochs.ended (when an epoch was stored,
UTC; NULL in the rows of formats 0 and 1)."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2"
down_revision = "1"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "ended" not in {c["name"] for c in inspector.get_columns("runner_epochs")}:
        op.add_column("runner_epochs", sa.Column("ended", sa.DateTime, nullable=True))
    if "runner_predictions" not in inspector.get_table_names():
        op.create_table(
            "runner_predictions",
            sa.Column("trial_id", sa.Integer, primary_key=True),
            sa.Column("split", sa.String(16), primary_key=True),
            sa.Column("study_name", sa.String(512), nullable=False, index=True),
            sa.Column("images", sa.Integer, nullable=False),
            *[sa.Column(name, sa.LargeBinary, nullable=False) for name in ("predicted", "labels", "confidence")])
