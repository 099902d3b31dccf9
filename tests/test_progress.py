"""Progress: a bar with elapsed and remaining time on a terminal, plain lines when piped."""
from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from runner.cli import cli
from runner.progress import Progress

SPEC = """
[study]
name = "p"
seeds = [0, 1]
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 2
batch_size = 100
[models.mlp]
arch = "mlp"
hidden = [16]
[grid]
model = ["mlp"]
"""
TIMES = re.compile(r"\[\d\d:\d\d<(\d\d:\d\d|\?)")  # tqdm's [elapsed<remaining]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_counts_trial_epochs_with_time_left():
    out = FakeTerminal()
    with Progress(out) as p:
        p.start(4)
        for i in range(4):
            p.log(f"epoch {i}")
            p.advance()
    text = out.getvalue()
    assert "\r" in text and TIMES.search(text) and "4/4" in text and "trial-epoch" in text
    assert all(f"epoch {i}\n" in text for i in range(4))  # lines printed above the bar


def test_piped_there_is_no_bar_and_no_carriage_return():
    out = io.StringIO()
    with Progress(out) as p:
        p.start(4)
        p.log("epoch 1")
        p.advance()
    assert out.getvalue() == "epoch 1\n"


def test_quiet_prints_nothing():
    out = FakeTerminal()
    with Progress(out, quiet=True) as p:
        p.start(4)
        p.log("epoch 1")
        p.advance()
    assert out.getvalue() == ""


def test_grid_piped_prints_one_plain_line_per_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(SPEC)
    result = CliRunner().invoke(cli, ["grid", "spec.toml"])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    assert len(re.findall(r"^  epoch \d/2 ", result.output, re.M)) == 4


def _in_a_terminal(args: list[str], cwd: Path) -> str:
    """Run the runner with its stdout and stderr on a pseudo-terminal; everything it wrote."""
    main, child = os.openpty()
    proc = subprocess.Popen([sys.executable, "-c", "from runner.cli import main; main()", *args], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    chunks, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(main)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_grid_in_a_terminal_shows_one_bar_for_all_workers(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC)
    text = _in_a_terminal(["grid", "spec.toml", "--workers", "2"], tmp_path)
    assert TIMES.search(text) and "4/4 [" in text  # 2 trials x 2 epochs, from both workers, on one bar
    assert re.search(r"w[01] \[\d/2\] trial", text) and "p: 2 of 2 trials complete" in text  # workers log above it
