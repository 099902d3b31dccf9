"""runner/cli/__init__.py: `runner.cli.main` handles Ctrl-C from its first line, because
importing the package loads nothing."""
from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_loads_nothing_so_main_handles_ctrl_c_from_its_first_line():
    code = "import sys, runner.cli; print(sorted({'click', 'sqlalchemy', 'optuna', 'torch'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout == "[]\n", done.stdout + done.stderr
