"""runner/trials/lifecycle.py: one trial's life. Ctrl-C at any moment of a grid's life
(importing, loading, claiming, training, recording) ends in one line and exit 130, never a traceback,
and leaves no trial RUNNING and no claim held once the process has exited; the same command then
finishes the grid, every point complete exactly once. A dry run does every check that needs no
training; a trial's value is the study's metric, a validation one included."""
from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
import torch
from click.testing import CliRunner

from runner.cli import cli
from runner.data import DataSource, load_data

from tests.helpers import DB, MNIST_500, STUDENT, STUDENT_SPEC, epoch_rows, header, validation_trials as trials
from tests.helpers import run, validation_write  # noqa: F401 - fixtures


# ---------------------------------------------------------------- Ctrl-C at any moment


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


# The child says when Python has started running its code: before that, a SIGINT meets the interpreter's own
# start-up (its first ~10 ms it dies of the signal, then importing site it prints a traceback), which no code
# of runner's can reach; the lines of the test measure from there, on any machine however busy.
STARTED = "import sys; print('started', flush=True); from runner.cli import main; main()"


KEPT = "interrupted: nothing incomplete was marked complete; run the same command again to continue: " \
       "runner grid spec.toml --quiet"


def _interrupt(tmp_path, delay: float) -> tuple[int, str, str]:
    """Start `runner grid spec.toml --quiet`, send SIGINT `delay` s after its code starts; exit code, out, err."""
    # SIGINT as a terminal leaves it: a suite run in the background (nohup, &) passes it on ignored, and Python
    # then installs no KeyboardInterrupt for it
    p = subprocess.Popen([sys.executable, "-c", STARTED, "grid", "spec.toml", "--quiet"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdout.readline() == "started\n"
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err


@pytest.mark.slow
def test_an_interrupt_at_any_moment_leaves_nothing_running_and_the_same_command_finishes(tmp_path):
    """Ctrl-C while the imports run (click, SQLAlchemy, Optuna, torch), while the spec and the data load,
    and while it trains: each time one line on stderr, exit 130, nothing left running. On a busy machine
    training starts later: past 6 s the interrupts go on, a second later each time, until one has come
    while it trained."""
    (tmp_path / "spec.toml").write_text(SPEC)
    db = tmp_path / "db" / "runner.sqlite"
    said = Counter()
    for delay in itertools.chain([0.05, 0.2, 0.5, 1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0], range(7, 61)):
        code, out, err = _interrupt(tmp_path, delay)
        trials, claims, done = _states(db)
        assert trials["RUNNING"] == 0, (delay, trials, err[-500:])
        assert claims["running"] == 0, (delay, claims, err[-500:])
        assert all(n == 1 for n in done.values()), (delay, done)  # never a point complete twice
        if "4 of 4 trials complete" in out:  # done before the signal came (or while exiting)
            break
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 130 and "Traceback" not in err and len(lines) == 1, (delay, code, err[-2000:])
        assert lines[0] in ("interrupted", KEPT), (delay, lines)
        said[lines[0]] += 1
        if delay > 6 and said[KEPT]:  # later ones are as the last: the command then runs to the end
            break
    else:
        pytest.fail(f"no interrupt came while it trained, the last 60 s in: {said}")
    assert said["interrupted"] >= 3 and said[KEPT] >= 1, said  # it was interrupted starting, and training
    result = subprocess.run([sys.executable, "-c", STARTED, "grid", "spec.toml", "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    trials, claims, done = _states(db)
    assert len(done) == 4 and all(n == 1 for n in done.values()), done
    assert trials["RUNNING"] == 0 and set(claims) == {"complete"}


# ---------------------------------------------------------------- a dry run: every check that needs no training


@pytest.mark.parametrize("models, message", [
    ('target = "model:LeNet5"\nargs = { widht = 8 }', "[models.lenet].args: got an unexpected keyword argument 'widht'"),
    ('target = "model:LeNet6"', "model has no attribute 'LeNet6'; did you mean \"LeNet5\"?; it has nn.Module classes "
                                "LeNet5\n"),  # not nn or F, which it imports
    ('target = "model:LeNet5"\ninput = { pad = 2 }\ndropout = 0.5', "cannot take dropout = 0.5"),
])
def test_dry_run_does_every_check_that_needs_no_training(tmp_path, monkeypatch, models, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)"))
    spec = STUDENT_SPEC.format(input="").replace('target = "model:LeNet5"\n', models + "\n")
    (tmp_path / "spec.toml").write_text(spec)
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "db").exists()  # nothing touched


def test_dry_run_says_what_it_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)"))
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input="input = { pad = 2 }"))
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "checked the data: mnist" in result.output and "300 training and 100 test images" in result.output
    assert "your module lenet: imported, args against the signature" in result.output
    assert not (tmp_path / "db").exists()


def test_a_limit_above_the_images_there_are_is_said_in_one_line_and_the_spec_still_runs(tmp_path, monkeypatch):
    """train_limit = 100000 trains on MNIST's 60,000: the dry run (and runner grid, through the same prepare) says
    so once, and goes on; a limit under the split's size is not mentioned."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)"))
    spec = STUDENT_SPEC.format(input="input = { pad = 2 }")
    (tmp_path / "spec.toml").write_text(spec.replace("train_limit = 300", "train_limit = 100000\nval_fraction = 0.1")
                                        .replace("test_limit = 100", "test_limit = 20000"))
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert result.exit_code == 0, result.output
    warned = [x for x in result.output.splitlines() if x.startswith("warning: ")]
    assert warned == ["warning: spec.toml: [data].train_limit = 100000 is more than the 60,000 training images mnist "
                      "has: all 60,000 are used, as with train_limit = 0",
                      "warning: spec.toml: [data].test_limit = 20000 is more than the 10,000 test images mnist has: "
                      "all 10,000 are used, as with test_limit = 0"], result.output
    assert "54,001 training, 5,999 validation and 10,000 test images" in result.output  # all, stratified as ever
    (tmp_path / "spec.toml").write_text(spec)
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert result.exit_code == 0 and "warning: " not in result.output, result.output


CRASHING = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.training and self.calls > 3:  # past the forward check, in the first epoch
            raise RuntimeError("boom in forward")
        return self.fc(x.flatten(1))
"""


def test_a_module_that_crashes_while_training_fails_its_trial_and_is_not_called_interrupted(tmp_path, monkeypatch):
    """A bug that raises inside training is a failure to look into, with its error as the reason: not "interrupted"
    (runner studies and --where state = fail find it)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(CRASHING)
    (tmp_path / "spec.toml").write_text(SPEC.replace('[models.lenet5]\narch = "lenet5"\n[grid]\nbatch_norm = [false, true]\n',
                                                     '[models.net]\ntarget = "model:Net"\n[[runs]]\nmodel = "net"\n')
                                        .replace("seeds = [0, 1]", "seeds = [0]"))
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--quiet"])
    assert isinstance(result.exception, RuntimeError), result.output
    out = CliRunner().invoke(cli, ["trials", "--study", "intr", "--where", "state = fail", "--format", "json"]).output
    [trial] = json.loads(out)
    assert trial["fail_reason"] == "error: RuntimeError: boom in forward"
    assert "interrupted" not in CliRunner().invoke(cli, ["studies"]).output


# ---------------------------------------------------------------- a trial's value and epochs, with a validation split


def expected_val_size(labels: torch.Tensor, fraction: float) -> int:
    return sum(round(fraction * n) for n in Counter(labels.tolist()).values())


def test_grid_with_a_validation_split_stores_val_metrics_each_epoch_and_trains_on_the_rest(run, write):
    spec = write(data=MNIST_500 + "\nval_fraction = 0.2")
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    (t,) = trials()
    a = t.user_attrs
    labels = load_data(DataSource("mnist"), train_limit=500).train.labels
    assert a["val_size"] == expected_val_size(labels, 0.2) and 80 <= a["val_size"] <= 120
    assert a["train_size"] + a["val_size"] == 500
    assert a["config"]["data"]["val_fraction"] == 0.2 and a["config"]["data"]["val_seed"] == 0
    rows = epoch_rows()
    assert [r[0] for r in rows] == [1, 2]
    for _, val_loss, val_acc, _ in rows:
        assert val_loss is not None and val_loss > 0 and 0 <= val_acc <= 100
    assert t.value == rows[-1][3]  # metric test_acc: the value is still the test accuracy

    listed = run("trials", "--study", "v")
    assert listed.exit_code == 0, listed.output
    assert {"val_acc", "val_loss", "test_acc"} <= set(header(listed.output))
    cells = dict(zip(header(listed.output), listed.output.strip().splitlines()[2].split()))
    assert cells["val_acc"] == f"{rows[-1][2]:.2f}" and cells["val_loss"] == f"{rows[-1][1]:.4f}"

    shown = run("show", "--study", "v", "0")
    assert shown.exit_code == 0, shown.output
    epochs = shown.output.split("\nepochs:\n")[1].strip().splitlines()
    assert epochs[0].split()[:5] == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    for line, (epoch, val_loss, val_acc, _) in zip(epochs[2:], rows):
        cells = line.split()
        assert cells[0] == str(epoch) and f"{val_loss:.4f}" in cells and f"{val_acc:.2f}" in cells
    assert len(epochs) == 2 + len(rows)


def test_a_study_ranked_by_val_acc_stores_it_as_value_and_intermediate_values(run, write):
    spec = write(data=MNIST_500 + "\nval_fraction = 0.2", metric="val_acc")
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    (t,) = trials()
    rows = epoch_rows()
    assert t.value == rows[-1][2]
    assert t.intermediate_values == {epoch: val_acc for epoch, _, val_acc, _ in rows}
    assert any(val_acc != test_acc for _, _, val_acc, test_acc in rows)  # not the test accuracy
    assert optuna.load_study(study_name="v", storage=f"sqlite:///{DB}").direction == \
        optuna.study.StudyDirection.MAXIMIZE


def test_a_study_ranked_by_val_loss_stores_the_final_val_loss_and_minimizes(run, write):
    result = run("grid", write(data=MNIST_500 + "\nval_fraction = 0.2", metric="val_loss", epochs=1))
    assert result.exit_code == 0, result.output
    (t,) = trials()
    assert t.value == epoch_rows()[-1][1]
    assert optuna.load_study(study_name="v", storage=f"sqlite:///{DB}").direction == \
        optuna.study.StudyDirection.MINIMIZE
