"""Format 1 (a1cb093, tests/fixtures/v1): runner_epochs.val_loss and val_acc (NULL without a validation split)."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1"
down_revision = "0"


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runner_epochs")}
    for name in ("val_loss", "val_acc"):
        if name not in present:
            op.add_column("runner_epochs", sa.Column(name, sa.Double, nullable=True))
