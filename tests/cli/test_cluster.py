"""runner/cli/cluster.py: `runner launch slurm` and `runner watch` have help with examples, and refuse in one line,
before anything is submitted or read, a spec that does not fit the command. (What they submit and show:
tests/test_launch.py, tests/test_watch.py.)"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import TUNE_SPEC, VALID_SPEC, help_examples

URL = "postgresql+psycopg://me@head:5432/runner"  # never reached: each refusal comes first


def test_watch_has_help_with_examples():
    examples = help_examples("watch")  # each on its line, each parses
    assert all(e.split()[:2] == ["runner", "watch"] for e in examples), examples


def test_launch_slurm_has_help_with_examples():
    result = CliRunner().invoke(cli, ["launch", "slurm", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output
    assert "runner launch slurm specs/tune_lenet.toml --tune --storage" in result.output


@pytest.mark.parametrize("spec, option, message", [
    (VALID_SPEC, ["--tune"], "--tune needs a [search] section (see runner tune --help)"),
    (TUNE_SPEC, [], "no points to run (a spec of [search] only: add --tune)"),
])
def test_launch_refuses_a_spec_the_command_cannot_run(tmp_path, spec, option, message):
    path = tmp_path / "spec.toml"
    path.write_text(spec)
    result = CliRunner().invoke(cli, ["launch", "slurm", str(path), "--storage", URL, "--jobs", "2", *option])
    assert result.exit_code == 1 and result.output == f"Error: {path}: {message}\n"


def test_watch_needs_a_spec_or_a_study():
    result = CliRunner().invoke(cli, ["watch"])
    assert result.exit_code == 2 and result.output.endswith("Error: give SPEC or --study NAME (one of them)\n")
