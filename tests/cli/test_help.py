"""runner/cli/base.py: `runner --help` lists every command with the first sentence of its help, whole at any
terminal width (click would cut it to one line: "bench  Time the runner against a bare loop, the course...")."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from runner.cli import cli


def listed(width: int) -> dict[str, str]:
    """The Commands section of `runner --help` on a terminal `width` columns wide: name -> its text, unwrapped."""
    result = CliRunner(env={"COLUMNS": str(width)}).invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    entries: dict[str, str] = {}
    name = ""
    for line in result.output.split("Commands:\n")[1].splitlines():
        if m := re.match(r"  (\S+)\s+(.*)", line):
            name, entries[m[1]] = m[1], m[2]
        else:
            entries[name] += " " + line.strip()
    return entries


@pytest.mark.parametrize("width", [60, 80, 120])
def test_every_command_is_listed_with_its_first_sentence_whole(width):
    entries = listed(width)
    assert set(entries) == set(cli.commands)
    for name, text in entries.items():
        assert not text.endswith("..."), (name, text)
        assert text.endswith("."), (name, text)
        sentence = " ".join(cli.commands[name].help.split("\n\n")[0].split()).split(". ")[0]
        # wrapping may break a hyphenated word ("per-epoch"): compare without spaces
        assert "".join(text.split()) == "".join(sentence.split()).rstrip(".") + ".", name
    assert "the clock to 99%." in entries["bench"]


def test_no_listed_sentence_runs_past_two_lines_at_80_columns():
    """A listing is a glance: a first sentence that needs more says its details after its first sentence."""
    for name, text in listed(80).items():
        assert len(text) <= 2 * (78 - 16), (name, text)
