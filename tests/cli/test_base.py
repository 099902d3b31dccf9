"""runner/cli/base.py: the options several commands share, as the user typed them."""
from __future__ import annotations

from click.testing import CliRunner

import runner.trials.lifecycle as lifecycle_module
from runner.cli import cli

from tests.helpers import spec_project  # noqa: F401 - fixtures


def test_the_continue_hint_repeats_every_option_as_typed(project, monkeypatch):
    spec = project(batch_norm="[false]")
    monkeypatch.setattr(lifecycle_module, "train_point", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    result = CliRunner().invoke(cli, ["grid", str(spec), "--storage", "other.sqlite", "--stale-after", "60", "-q",
                                      "--retry-failed"])
    assert result.exit_code == 130
    assert (f"run the same command again to continue: runner grid {spec} --storage other.sqlite --retry-failed "
            "--stale-after 60.0 --quiet") in result.output
