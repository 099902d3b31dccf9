"""runner/cli/results.py: the commands that read stored results have help with examples."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import help_examples


@pytest.mark.parametrize("command", ["studies", "trials", "show"])
def test_query_commands_have_help_with_examples(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Example" in result.output
    examples = help_examples(command)  # each on its line, each parses
    assert all(e.split()[:2] == ["runner", command] for e in examples), examples


def test_report_help_has_examples():
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    assert "runner report specs/regularization.toml --readme README.md" in result.output
    assert "--storage" in result.output and "--out" in result.output and "--readme" in result.output
