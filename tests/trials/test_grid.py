"""`runner grid` end to end on a data subset, through click's CliRunner."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

import runner.trials.lifecycle as lifecycle_module
import runner.train as train_module
from runner.cli import cli


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default storage is db/runner.sqlite under the current folder

    def invoke(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args])
    return invoke


def trials(url: str = "sqlite:///db/runner.sqlite", name: str = "t") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def test_grid_stores_each_point_and_seed_as_a_complete_trial(run, write_spec):
    result = run("grid", write_spec(seeds="[0, 1]"))
    assert result.exit_code == 0, result.output
    assert "t: 4 of 4 trials complete" in result.output
    ts = trials()
    assert [t.state for t in ts] == [optuna.trial.TrialState.COMPLETE] * 4
    t = ts[0]
    assert t.params == {"model": "lenet5", "dropout": 0.0, "batch_norm": False, "weight_decay": 0.0,
                        "augment": "none", "label_smoothing": 0.0, "seed": 0}
    assert t.value == t.intermediate_values[1]  # 1 epoch: the final test accuracy
    assert 0 < t.value <= 100
    attrs = t.user_attrs
    assert attrs["param_count"] == 61_706 and attrs["config"]["seed"] == 0
    assert {"config_hash", "data_checksum", "device", "versions", "wall_seconds", "code_version"} <= set(attrs)
    assert attrs["versions"]["torch"]
    with sqlite3.connect("db/runner.sqlite") as db:
        rows = db.execute("select trial_number, epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds "
                          "from runner_epochs order by trial_number").fetchall()
    assert len(rows) == 4 and rows[0][0] == 0 and rows[0][5] == t.value


def test_running_again_trains_nothing_and_new_seeds_run_alone(run, write_spec, monkeypatch):
    assert run("grid", write_spec()).exit_code == 0
    calls = []
    real = lifecycle_module.train_point
    monkeypatch.setattr(lifecycle_module, "train_point", lambda p, *a, **k: calls.append(p.seed) or real(p, *a, **k))
    again = run("grid", write_spec())
    assert again.exit_code == 0 and calls == []
    assert "t: 2 of 2 trials complete" in again.output
    more = run("grid", write_spec(seeds="[0, 3]"))
    assert more.exit_code == 0, more.output
    assert calls == [3, 3] and "4 of 4 trials complete" in more.output
    assert len(trials()) == 4


def test_same_spec_and_seed_give_identical_stored_values(run, write_spec):
    spec = write_spec(epochs=2)
    assert run("grid", spec, "--storage", "sqlite:///a.sqlite").exit_code == 0
    assert run("grid", spec, "--storage", "sqlite:///b.sqlite").exit_code == 0
    a, b = trials("sqlite:///a.sqlite"), trials("sqlite:///b.sqlite")
    assert [(t.value, t.intermediate_values) for t in a] == [(t.value, t.intermediate_values) for t in b]


def test_dry_run_prints_the_points_and_writes_nothing(run, write_spec, tmp_path):
    result = run("grid", write_spec(seeds="[0, 1]", models='["lenet5", "mlp"]'), "--dry-run")
    assert result.exit_code == 0
    assert "8 points: 4 settings x 2 seeds" in result.output
    assert result.output.count("lenet5  ") == 4
    assert not (tmp_path / "db").exists()


def test_quiet_prints_only_the_summary(run, write_spec):
    result = run("grid", write_spec(), "--quiet")
    assert result.exit_code == 0
    assert result.output.strip() == "t: 2 of 2 trials complete"


def test_progress_shows_trials_and_epochs(run, write_spec):
    result = run("grid", write_spec())
    assert "[1/2] trial 0: lenet5" in result.output
    assert "epoch 1/1" in result.output and "test loss" in result.output


@pytest.mark.parametrize("text, message", [
    ('[study]\nname = "x"\n[models.a]\narch = "mlp"\n[grid]\ndropout = 0.5\n', "[grid].dropout: 0.5 is not a list"),
    ('[study\nname = "x"\n', "TOML syntax error"),
    ('[study]\nname = "x"\n[models.a]\narch = "mlp"\n[grid]\nmodel = ["b"]\n', 'unknown model "b"'),
])
def test_bad_spec_is_one_line_without_traceback_and_writes_nothing(run, write_spec, tmp_path, text, message):
    result = run("grid", write_spec(text))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "db").exists()


def test_a_study_with_another_direction_is_refused(run, write_spec):
    assert run("grid", write_spec()).exit_code == 0
    flipped = write_spec().read_text().replace('metric = "test_acc"', 'metric = "test_loss"')
    result = run("grid", write_spec(flipped, name="flipped.toml"))
    assert result.exit_code == 1
    assert "exists with direction maximize, the spec asks for minimize" in result.output


def test_a_failed_trial_is_marked_with_its_reason_and_the_grid_goes_on(run, write_spec, monkeypatch):
    real = lifecycle_module.train_point

    def flaky(point, *a, **k):
        if point.reg("batch_norm"):
            raise train_module.TrainingError("loss became nan in epoch 1; lower [train].lr")
        return real(point, *a, **k)
    monkeypatch.setattr(lifecycle_module, "train_point", flaky)
    result = run("grid", write_spec())
    assert result.exit_code == 1
    assert "1 of 2 trials complete, 1 failed" in result.output
    states = {t.params["batch_norm"]: t for t in trials()}
    assert states[True].state == optuna.trial.TrialState.FAIL
    assert "nan" in states[True].user_attrs["fail_reason"]
    monkeypatch.setattr(lifecycle_module, "train_point", real)
    assert "1 of 2 trials complete" in run("grid", write_spec()).output  # failed points wait for --retry-failed
    retried = run("grid", write_spec(), "--retry-failed")
    assert retried.exit_code == 0 and "2 of 2 trials complete" in retried.output


def test_interrupt_exits_130_marks_nothing_complete_and_the_rerun_continues(run, write_spec, monkeypatch):
    real = lifecycle_module.train_point

    def interrupted(point, *a, **k):
        if point.reg("batch_norm"):
            raise KeyboardInterrupt
        return real(point, *a, **k)
    monkeypatch.setattr(lifecycle_module, "train_point", interrupted)
    result = run("grid", write_spec())
    assert result.exit_code == 130
    assert "run the same command again to continue" in result.output
    ts = trials()
    assert sorted(t.state.name for t in ts) == ["COMPLETE", "FAIL"]
    monkeypatch.setattr(lifecycle_module, "train_point", real)
    again = run("grid", write_spec())
    assert again.exit_code == 0 and "2 of 2 trials complete" in again.output


def test_two_workers_run_every_point_exactly_once(run, write_spec):
    result = run("grid", write_spec(seeds="[0, 1]", models='["mlp"]'), "--workers", "2", "--quiet")
    assert result.exit_code == 0, result.output
    ts = trials()
    assert len(ts) == 4 and all(t.state.name == "COMPLETE" for t in ts)
    assert len({t.user_attrs["config_hash"] for t in ts}) == 4
    # trained by the spawned workers, not this process (which of them is up to the race)
    assert all(not t.user_attrs["worker"].endswith(f":{os.getpid()}") for t in ts)


def test_optunas_own_cli_reads_the_storage(run, write_spec):
    assert run("grid", write_spec()).exit_code == 0
    optuna_cli = Path(sys.executable).with_name("optuna")
    out = subprocess.run([str(optuna_cli), "trials", "--study-name", "t", "--storage", "sqlite:///db/runner.sqlite",
                          "-f", "json"], capture_output=True, text=True, check=True).stdout
    assert out.count('"COMPLETE"') == 2


def test_storage_that_cannot_be_opened_is_one_line(run, write_spec):
    result = run("grid", write_spec(), "--storage", "nosuchdb://x")
    assert result.exit_code == 1 and "cannot open storage" in result.output
    assert "Traceback" not in result.output


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


def test_missing_data_is_one_line_and_writes_nothing(run, write_spec, tmp_path):
    spec = write_spec().read_text().replace("[data]", f'[data]\nroot = "{tmp_path / "nodata"}"')
    result = run("grid", write_spec(spec, name="nodata.toml"))
    assert result.exit_code == 1
    assert "nodata: [data].root is not a folder" in result.output
    assert not (tmp_path / "db").exists()


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
