"""runner/trials/pool.py: a worker of `--workers N` killed by a signal (the OOM killer's SIGKILL)
is noticed at once: its trial fails with that reason, its point is trained by a live worker in the same
run, and the command ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from runner.trials.pool import death

RUNNER = str(Path(sys.executable).with_name("runner"))


GRID = """
[study]
name = "die"
seeds = [0, 1, 2]

[data]
train_limit = 3000
test_limit = 300

[train]
epochs = 4
batch_size = 100
lr = 0.05
threads = 1

[models.lenet5]
arch = "lenet5"

[grid]
model = ["lenet5"]
"""


SEARCH = """
[study]
name = "dies"
seeds = [0]

[data]
train_limit = 3000
test_limit = 300
val_fraction = 0.2

[train]
epochs = 4
batch_size = 100
threads = 1

[models.lenet5]
arch = "lenet5"

[search]
metric = "val_acc"
trials = 4
top = 1
pruner = "none"

[search.space]
lr = { low = 0.01, high = 0.1, log = true }
"""


def _kill_a_worker_mid_trial(url: str, study: str, proc: subprocess.Popen, timeout: float = 120) -> int:
    """SIGKILL the worker of a trial that has stored an epoch and is not done; its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            trials = optuna.load_study(study_name=study, storage=url).get_trials()
        except KeyError:
            trials = []
        for t in trials:
            if t.state.name == "RUNNING" and 1 <= len(t.intermediate_values) < 4:
                pid = int(t.user_attrs["worker"].rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.1)
    pytest.fail("no trial was seen mid-way")


@pytest.mark.parametrize("command, text, study", [("grid", GRID, "die"), ("tune", SEARCH, "dies-search")])
def test_a_worker_killed_mid_trial_is_reported_and_its_point_trained_by_a_live_worker(tmp_path, command, text,
                                                                                       study):
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    proc = subprocess.Popen([RUNNER, command, str(spec), "--storage", url, "--workers", "2", "--quiet"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = _kill_a_worker_mid_trial(url, study, proc)
    try:
        out, err = proc.communicate(timeout=300)  # the command ends: it does not wait on a dead worker
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the command did not end after a worker died")
    assert proc.returncode == 1, out + err
    assert f"(pid {pid}) was killed by SIGKILL (out of memory? the kernel's OOM killer sends SIGKILL)" in err, err
    trials = optuna.load_study(study_name=study, storage=url).get_trials()
    killed = [t for t in trials if t.user_attrs.get("worker", "").endswith(f":{pid}") and t.state.name == "FAIL"]
    assert killed and "was killed by SIGKILL" in killed[0].user_attrs["fail_reason"]
    assert not [t for t in trials if t.state.name == "RUNNING"]
    if command == "grid":
        complete = Counter(t.user_attrs["config_hash"] for t in trials if t.state.name == "COMPLETE")
        assert len(complete) == 3 and set(complete.values()) == {1}  # every point once, the killed one too
        point = killed[0].user_attrs["config_hash"]
        [after] = [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs["config_hash"] == point]
        assert all(after.intermediate_values[e] == v for e, v in killed[0].intermediate_values.items())
    else:
        assert sum(t.state.name == "COMPLETE" for t in trials) == 4  # exactly the budget


def test_a_death_is_one_line_with_the_signal():
    assert death(1, 42, -signal.SIGKILL) == ("worker w1 (pid 42) was killed by SIGKILL (out of memory? the kernel's "
                                             "OOM killer sends SIGKILL)")
    assert death(0, 7, -signal.SIGSEGV) == "worker w0 (pid 7) was killed by SIGSEGV"
    assert death(2, 9, 3) == "worker w2 (pid 9) exited with code 3 without finishing"
