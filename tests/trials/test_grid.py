"""runner/trials/grid.py: `runner grid` end to end on a data subset, through click's CliRunner: each
point once, the size of a grid checked before anything is touched, and the studies of the code before
(tests/fixtures/v0) found complete."""
from __future__ import annotations

import os
import sqlite3

import optuna
import pytest
from click.testing import CliRunner

import runner.train as train_module
import runner.trials.lifecycle as lifecycle_module
from runner.cli import cli

from tests.helpers import TYPO, grid_trials as trials, refused as _refused, untouched as _untouched
from tests.helpers import here, old_db, run  # noqa: F401 - fixtures


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
    assert result.output.splitlines()[0] == "t: 2 of 2 trials complete"
    assert result.output.splitlines()[1].startswith("best so far: trial ") and len(result.output.splitlines()) == 4


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


def test_missing_data_is_one_line_and_writes_nothing(run, write_spec, tmp_path):
    spec = write_spec().read_text().replace("[data]", f'[data]\nroot = "{tmp_path / "nodata"}"')
    result = run("grid", write_spec(spec, name="nodata.toml"))
    assert result.exit_code == 1
    assert "nodata: [data].root is not a folder" in result.output
    assert not (tmp_path / "db").exists()


# ---------------------------------------------------------------- the size of a grid, checked before anything is touched


HUGE = """
[study]
name = "huge"
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
[models.m]
arch = "mlp"
[grid]
lr = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]
dropout = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
weight_decay = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
label_smoothing = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
momentum = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
batch_size = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
epochs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
"""


def test_a_grid_of_10_to_the_8_points_is_counted_not_enumerated_and_refused(here):
    (here / "spec.toml").write_text(HUGE)
    dry = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "... and 99,999,950 more" in dry.output
    assert ("100,000,000 points: 10,000,000 settings x 10 seeds (lr 10 x dropout 10 x weight_decay 10 x "
            "label_smoothing 10 x momentum 10 x batch_size 10 x epochs 10 x 10 seeds)") in dry.output
    assert "runner grid would refuse it: more than 100,000 points" in dry.output
    _refused(CliRunner().invoke(cli, ["grid", "spec.toml"]), "100,000,000 points (lr 10 x dropout 10",
             "more than the 100,000 runner grid runs at once", "--max-points 100000000")
    _untouched(here, {"spec.toml"})


def test_max_points_sets_the_limit(here, write_spec):
    spec = write_spec(seeds="[0, 1]")  # 4 points
    _refused(CliRunner().invoke(cli, ["grid", str(spec), "--max-points", "3"]), "4 points (batch_norm 2 x 2 seeds)")
    result = CliRunner().invoke(cli, ["grid", str(spec), "--max-points", "4", "-q"])
    assert result.exit_code == 0 and result.output.startswith("t: 4 of 4 trials complete\nbest so far: "), result.output


def test_a_refusal_leaves_an_existing_database_byte_identical(here, write_spec):
    import hashlib

    url = f"sqlite:///{here / 'db.sqlite'}"
    assert CliRunner().invoke(cli, ["grid", str(write_spec()), "--storage", url, "-q"]).exit_code == 0
    before = hashlib.sha256((here / "db.sqlite").read_bytes()).hexdigest()
    (here / "typo.toml").write_text(TYPO)
    (here / "huge.toml").write_text(HUGE)
    for spec in ("typo.toml", "huge.toml"):
        _refused(CliRunner().invoke(cli, ["grid", spec, "--storage", url]))
    assert hashlib.sha256((here / "db.sqlite").read_bytes()).hexdigest() == before


# ---------------------------------------------------------------- a study of the code before (tests/fixtures/v0)


def test_an_unchanged_spec_finds_every_old_trial_complete_and_trains_nothing(old_db):
    spec, url = old_db
    result = CliRunner().invoke(cli, ["grid", str(spec), "--storage", url])
    assert result.exit_code == 0, result.output
    assert "v0: 5 of 5 trials complete" in result.output
    assert len(optuna.load_study(study_name="v0", storage=url).get_trials()) == 5  # no new trial


def test_an_old_study_keeps_its_augment_choices_and_refuses_one_it_cannot_hold(old_db):
    """Optuna refuses a categorical param whose choices change within a study: a new point of a study stored
    before augment = "elastic" existed is stored with the study's own choices, and "elastic" is refused."""
    spec, url = old_db
    more = spec.with_name("more.toml")  # a second seed: three new points
    more.write_text(spec.read_text().replace("seeds = [0]", "seeds = [0, 1]").replace('["lenet5", "mlp"]', '["mlp"]'))
    result = CliRunner().invoke(cli, ["grid", str(more), "--storage", url])
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="v0", storage=url).get_trials()
    assert len(trials) > 5 and {tuple(t.distributions["augment"].choices) for t in trials} == {("none", "affine")}
    elastic = spec.with_name("elastic.toml")
    elastic.write_text(spec.read_text().replace('augment = "affine"', 'augment = "elastic"'))
    result = CliRunner().invoke(cli, ["grid", str(elastic), "--storage", url])
    assert result.exit_code != 0
    assert 'study \'v0\' was created with augment "none" | "affine"; augment = "elastic" needs a new [study].name' \
        in result.output, result.output
    assert len(optuna.load_study(study_name="v0", storage=url).get_trials()) == len(trials)
