"""Format 3 (43d90da, tests/fixtures/v3): no table changed (its changes were to config hashes and trial states;
see runner.formats.FORMATS). Its databases read as format 2's."""
from __future__ import annotations

revision = "3"
down_revision = "2"


def upgrade() -> None:
    pass
