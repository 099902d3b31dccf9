"""`runner watch`: one view of a study from the storage alone; reading never writes."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import optuna
import sqlalchemy as sa
from click.testing import CliRunner

from runner.cli import cli
from runner.store import ClaimRow, Store


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_watch_shows_counts_rate_time_left_and_each_running_trials_worker_and_device(write_spec, tmp_path):
    spec = write_spec(seeds="[0, 1]")  # 4 points: 2 settings x 2 seeds, 1 epoch each
    db = tmp_path / "db.sqlite"
    url = f"sqlite:///{db}"
    runner = CliRunner()
    assert runner.invoke(cli, ["grid", str(spec), "--storage", url, "-q"]).exit_code == 0
    # one trial left as a worker on another machine's GPU would leave it: running, its claim's heartbeat old
    store = Store(url)
    study = optuna.load_study(study_name="t", storage=url)
    done = study.get_trials()[0]
    trial = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=done.params,
                                      distributions=done.distributions, intermediate_values={1: 97.5},
                                      user_attrs={**done.user_attrs, "worker": "node7:4242", "device": "cuda",
                                                  "device_index": 1, "device_name": "NVIDIA H200"})
    study.add_trial(trial)
    running = study.get_trials()[-1]
    with store.session() as s:  # its point, as claimed by that worker 10 minutes ago
        claim = s.get(ClaimRow, ("t", done.user_attrs["config_hash"]))
        claim.state, claim.trial_id, claim.worker = "running", running._trial_id, "node7:4242"
        claim.heartbeat = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=10)
    store.dispose()
    before = _digest(db)

    result = runner.invoke(cli, ["watch", str(spec), "--storage", url, "--once"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"t on {url}")
    assert lines[1] == "4 of 4 complete, 1 running, 0 failed, 0 to go"
    # the grid ran for seconds: the rate divides its 4 epochs by those seconds, not by the 10-minute window
    assert re.fullmatch(r"\d+\.\d trial-epochs a minute, measured over the \d+\.\d min since the run began",
                        lines[2]) and float(lines[2].split()[0]) > 4 / 10
    [row] = [x for x in lines[3:] if x.split()[:1] == [str(running.number)]]
    assert "node7:4242" in row and " node7 " in row and "cuda:1 NVIDIA H200" in row and "1/1" in row
    assert "(stopped? the next run takes it over)" in row
    assert _digest(db) == before  # reading never writes

    by_name = runner.invoke(cli, ["watch", "--study", "t", "--storage", url])  # piped: one snapshot
    assert by_name.exit_code == 0 and "to go: not known from the study's name alone (give SPEC)" in by_name.output


def test_watch_of_a_study_not_there_is_one_line(write_spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert CliRunner().invoke(cli, ["grid", str(write_spec()), "--storage", url, "-q"]).exit_code == 0
    result = CliRunner().invoke(cli, ["watch", "--study", "nope", "--storage", url])
    assert result.exit_code == 1 and result.output == f"Error: {url}: no study 'nope'; it has t\n"
    both = CliRunner().invoke(cli, ["watch", str(write_spec()), "--study", "t", "--storage", url])
    assert both.exit_code == 2 and "give SPEC or --study NAME" in both.output


def test_watch_reads_a_database_of_the_code_before_without_changing_it(tmp_path, restore_old_database):
    db = restore_old_database(tmp_path / "runner.sqlite")  # made by the code at f02d618: epochs without a time
    before = _digest(db)
    result = CliRunner().invoke(cli, ["watch", "--study", "v0", "--storage", str(db)])
    assert result.exit_code == 0, result.output
    assert "5 complete, 0 running, 0 failed" in result.output
    assert "rate: not known (this database's epochs carry no time, and no trial ended in the last 10 min)" in result.output
    assert _digest(db) == before


def test_the_rate_divides_by_the_time_the_window_covers(write_spec, tmp_path):
    from runner.watch import progress

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert CliRunner().invoke(cli, ["grid", str(write_spec(seeds="[0, 1]")), "--storage", url, "-q"]).exit_code == 0
    p = progress(url, "t")
    assert 0 < p.covered_min < 10 and abs(p.rate * p.covered_min - 4) < 1e-9  # 4 epochs over the run's minutes
    study = optuna.load_study(study_name="t", storage=url)
    early = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=study.trials[0].params,
                                      distributions=study.trials[0].distributions)
    study.add_trial(early)  # a trial running since 30 minutes ago: the window is covered whole
    with Store(url).session() as s:
        s.execute(sa.text("UPDATE trials SET datetime_start = :t WHERE state = 'RUNNING'"),
                  {"t": dt.datetime.now() - dt.timedelta(minutes=30)})
    p = progress(url, "t")
    assert p.covered_min == 10 and abs(p.rate * 10 - 4) < 1e-9
    assert "trial-epochs a minute, measured over the last 10 min\n" in CliRunner().invoke(cli, ["watch", "--study", "t", "--storage", url]).output


LOCKED_SPEC = """
[study]
name = "lk"
seeds = [0]
metric = "val_acc"
test = "locked"
[data]
train_limit = 300
test_limit = 100
val_fraction = 0.2
[train]
epochs = 2
batch_size = 100
[models.mlp]
arch = "mlp"
hidden = [16]
[grid]
model = ["mlp"]
lr = [0.01, 0.05]
"""


def test_watch_of_a_locked_study_shows_the_validation_metric_and_counts_its_epochs(write_spec, tmp_path):
    spec = write_spec(LOCKED_SPEC)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert CliRunner().invoke(cli, ["grid", str(spec), "--storage", url, "-q"]).exit_code == 0
    study = optuna.load_study(study_name="lk", storage=url)
    done = study.get_trials()[0]
    kept = [{"epoch": 1, "train_loss": 2.1, "train_acc": 30.0, "val_loss": 1.9, "val_acc": 41.25, "lr": 0.05,
             "seconds": 0.1}]  # as a locked trial keeps its epochs: no test key, no runner_epochs row
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.RUNNING, params=done.params, distributions=done.distributions,
        intermediate_values={1: 41.25}, user_attrs={**done.user_attrs, "worker": "node7:4242", "epochs": kept}))

    result = CliRunner().invoke(cli, ["watch", str(spec), "--storage", url, "--once"])
    assert result.exit_code == 0, result.output
    assert "test" not in result.output.split("\n", 1)[1]  # below the line naming the storage's path
    [row] = [x for x in result.output.splitlines() if "node7:4242" in x]
    assert "1/2" in row and "val acc 41.25%" in row
    # its 4 epochs are kept with its trials, not in runner_epochs: counted from the trials that ended, not as 0
    rate = [x for x in result.output.splitlines() if "trial-epochs a minute" in x][0]
    assert float(rate.split()[0]) > 0 and rate.endswith("(from the trials that ended)"), rate
