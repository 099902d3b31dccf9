"""runner/trials/settings.py: how a grid or a search runs, as one frozen value whose defaults are the command
line's."""
from __future__ import annotations

import dataclasses

import pytest

from runner.cli import cli
from runner.trials.settings import DB_PATIENCE_S, GRACE_S, MAX_POINTS, RunSettings


def test_run_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunSettings().workers = 2  # type: ignore[misc]


@pytest.mark.parametrize("command", ["grid", "tune"])
def test_the_defaults_are_the_command_lines(command):
    options = {p.name: p.default for p in cli.commands[command].params}
    defaults = RunSettings()
    for field in ("workers", "stale_after", "artifacts", "checkpoints", "db_patience", "max_points"):
        if field in options:  # tune has no --max-points
            assert options[field] == getattr(defaults, field), field
    assert (defaults.stale_after, defaults.db_patience, defaults.max_points) == (GRACE_S, DB_PATIENCE_S, MAX_POINTS)
