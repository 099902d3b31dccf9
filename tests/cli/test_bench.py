"""runner/cli/bench.py: `runner bench` and its subcommands: help with examples, options in
their place."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import help_examples


def test_bench_help_has_examples():
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0 and "runner bench --quick" in result.output
    examples = help_examples("bench")  # each on its line, each parses
    assert {"runner bench --quick --out /tmp/quick.json", "runner bench floor", "runner bench profile"} <= set(examples)


def test_bench_options_before_a_subcommand_are_refused():
    result = CliRunner().invoke(cli, ["bench", "--quick", "floor"])
    assert result.exit_code == 2 and "--quick belongs to `runner bench` itself" in result.output


@pytest.mark.parametrize("sub", ["floor", "profile"])
def test_bench_subcommands_have_help_with_examples(sub):
    result = CliRunner().invoke(cli, ["bench", sub, "--help"])
    assert result.exit_code == 0 and f"runner bench {sub}" in result.output
