"""runner/cli/run.py: `runner grid` and `runner models`: help with examples, the models' formulas
and totals, and SIGTERM stopping as Ctrl-C does."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli

from tests.helpers import grid_trials as trials
from tests.helpers import run  # noqa: F401 - fixtures


def test_models_command_prints_formulas_and_totals(run):
    spec = Path(__file__).parents[2] / "specs" / "regularization.toml"
    result = run("models", spec)
    assert result.exit_code == 0
    assert "(5*5*1+1)*6" in result.output and "156" in result.output
    assert "total: 61,706 parameters" in result.output and "total: 61,500 parameters" in result.output


@pytest.mark.parametrize("command", [[], ["grid"], ["models"]])
def test_every_command_has_help_with_examples(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output or "runner grid" in result.output


def test_sigterm_stops_like_ctrl_c(tmp_path, write_spec):
    import signal
    spec = write_spec(text=write_spec().read_text().replace("epochs = 1", "epochs = 50"))
    proc = subprocess.Popen([str(Path(sys.executable).with_name("runner")), "grid", str(spec)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # wait until it trains
        lines.append(line)
        if "epoch 1/50" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out = "".join(lines) + proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, out
    assert "run the same command again to continue" in out
    ts = trials(f"sqlite:///{tmp_path}/db/runner.sqlite")
    assert [t.state.name for t in ts] == ["FAIL"] and ts[0].user_attrs["fail_reason"] == "interrupted"
