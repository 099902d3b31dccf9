"""Format 5 (distillation): no table changed (a distilled trial's config and record name its teacher; see
runner.formats.FORMATS). A database of format 4 reads as it is."""
from __future__ import annotations

revision = "5"
down_revision = "4"


def upgrade() -> None:
    pass
