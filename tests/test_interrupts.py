"""Ctrl-C at any moment of a grid's life (starting, loading, claiming, training, recording) leaves no
trial RUNNING and no claim held once the process has exited; the same command then finishes the grid,
every point complete exactly once."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

SPEC = """
[study]
name = "intr"
seeds = [0, 1]
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 2
batch_size = 50
threads = 1
[models.lenet5]
arch = "lenet5"
[grid]
batch_norm = [false, true]
"""


def _states(db) -> tuple[Counter, Counter, Counter]:
    if not db.exists():
        return Counter(), Counter(), Counter()
    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}
        trials = Counter(r[0] for r in con.execute("select state from trials")) if "trials" in tables else Counter()
        claims = Counter(r[0] for r in con.execute("select state from runner_claims")) \
            if "runner_claims" in tables else Counter()
        done = Counter(r[0] for r in con.execute(
            "select a.value_json from trial_user_attributes a join trials t on t.trial_id = a.trial_id "
            "where a.key = 'config_hash' and t.state = 'COMPLETE'")) if "trials" in tables else Counter()
    return trials, claims, done


@pytest.mark.slow
def test_an_interrupt_at_any_moment_leaves_nothing_running_and_the_same_command_finishes(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC)
    db = tmp_path / "db" / "runner.sqlite"
    command = [sys.executable, "-c", "from runner.cli import main; main()", "grid", "spec.toml", "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    delays = [1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0]
    for delay in delays:
        p = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        out = p.communicate(timeout=120)[0].decode()
        trials, claims, done = _states(db)
        assert trials["RUNNING"] == 0, (delay, trials, out[-500:])
        assert claims["running"] == 0, (delay, claims, out[-500:])
        assert all(n == 1 for n in done.values()), (delay, done)  # never a point complete twice
        if p.returncode == 0 or "4 of 4 trials complete" in out:  # done before the signal came (or while exiting)
            break
        assert p.returncode in (1, 130), (delay, p.returncode, out[-500:])
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    trials, claims, done = _states(db)
    assert len(done) == 4 and all(n == 1 for n in done.values()), done
    assert trials["RUNNING"] == 0 and set(claims) == {"complete"}
