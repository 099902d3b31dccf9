"""The README's quick start runs as written: its first block, parsed from the README so that the two cannot
drift, run command by command in a folder of its own, every exit code 0 (the install line aside: the suite
runs inside the installed environment). About the repository, not one module of runner/."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def quick_start() -> list[str]:
    """The commands of the README's first code block after "Start here", comments cut off."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"Start here:.*?```\n(.*?)```", text, re.S)
    assert block, "the README needs its 'Start here' block"
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def test_the_quick_start_names_the_smoke_study_only():
    commands = quick_start()
    assert commands[0].startswith("python3 -m venv .venv") and 'pip install -e ".[dev]"' in commands[0]
    verbs = [c.split()[1] for c in commands if c.startswith("runner ")]
    assert {"grid", "trials", "report", "export", "predict", "watch"} <= set(verbs)
    assert not any("regularization" in c or "--readme" in c for c in commands)  # no 53-minute job, no README rewrite
    png = next(c for c in commands if c.startswith("runner digit"))
    assert "digit.png" in png and any("predict" in c and "digit.png" in c for c in commands)


@pytest.mark.slow
def test_the_quick_start_runs_top_to_bottom(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in quick_start()[1:]:  # the install line: this suite runs in the installed environment
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        if command.startswith("runner predict"):
            assert "digit.png" in done.stdout and "inverted" not in done.stdout
    assert (tmp_path / "my_report" / "report.md").is_file() and (tmp_path / "smoke.pt").is_file()
