"""Format 4: the format is recorded in runner_alembic_version (Alembic writes it), so that a runner that knows
fewer formats refuses the database. No table of runner's changes."""
from __future__ import annotations

revision = "4"
down_revision = "3"


def upgrade() -> None:
    pass
