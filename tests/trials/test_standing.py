"""runner/trials/standing.py: what the storage holds of a spec, said before a run (--dry-run), at its end (the
storage's count, every process's; the best so far; what to run next) and by a report of changed points
(issue 35 point 7)."""
from __future__ import annotations

import optuna

import runner.trials.lifecycle as lifecycle_module
from runner.store import Store
from runner.trials.standing import Change, field_changes

from tests.helpers import grid_trials as trials
from tests.helpers import run  # noqa: F401 - fixtures


def test_field_changes_name_each_leaf_and_take_auto_as_the_stored_number():
    stored = {"train": {"lr": 0.05, "epochs": 1}, "data": {"mean": 0.1307}, "regularizers": {"dropout": 0.0}}
    now = {"train": {"lr": 0.1, "epochs": 1}, "data": {"mean": "auto"}, "regularizers": {"dropout": 0.0,
                                                                                          "ema_warmup": False}}
    assert field_changes(stored, now) == [Change("regularizers.ema_warmup", False, None), Change("train.lr", 0.1, 0.05)]
    assert Change("train.lr", 0.1, 0.05).text() == "train.lr is 0.1 in the spec, 0.05 in the storage"


def test_dry_run_says_what_is_stored_and_which_field_changed(run, write_spec):
    spec = write_spec()
    assert "2 points: 0 complete in the storage (no study 't' there yet), 2 to run" in run("grid", spec, "--dry-run").output
    assert run("grid", spec, "-q").exit_code == 0
    assert "2 points: 2 complete in the storage, 0 to run" in run("grid", spec, "--dry-run").output
    spec.write_text(spec.read_text().replace("lr = 0.05", "lr = 0.1"))
    out = run("grid", spec, "--dry-run").output
    assert "2 points: 0 complete in the storage, 2 to run" in out
    assert ("2 points changed since their trials were stored: train.lr is 0.1 in the spec, 0.05 in the storage "
            "(e.g. lenet5 dropout=0.0 batch_norm=false") in out, out
    assert "they train again, and the stored trials stay as another configuration's" in out


def test_a_report_of_changed_points_names_the_field_and_the_option(run, write_spec, tmp_path):
    spec = write_spec()
    assert run("grid", spec, "-q").exit_code == 0
    spec.write_text(spec.read_text().replace("lr = 0.05", "lr = 0.1"))
    refused = run("report", spec)
    assert refused.exit_code == 1
    assert "train.lr is 0.1 in the spec, 0.05 in the storage" in refused.output
    assert "--stored-config" in refused.output
    made = run("report", spec, "--stored-config", "--out", tmp_path / "r")
    assert made.exit_code == 0, made.output
    assert "t: 2 trials in 2 configurations" in made.output
    assert "train.lr is 0.1 in the spec, 0.05 in the storage" in made.output  # its note says what it reports
    assert "| lr | 0.05 |" in (tmp_path / "r" / "report.md").read_text()  # the setup as the trials ran


def test_grid_ends_with_the_storages_count_the_best_and_what_to_run_next(run, write_spec, monkeypatch):
    """Another process completes the second point while this one trains the first: this one ends with the
    storage's 2 of 2, not its own 1 of 2."""
    from runner.spec import load_spec

    spec = write_spec()
    real = lifecycle_module.train_point

    def another_process_meanwhile(point, *args, **kwargs):
        study = optuna.load_study(study_name="t", storage="sqlite:///db/runner.sqlite")
        mine = study.get_trials()[-1]  # this process's trial, running
        [theirs] = [p for p in load_spec(spec).points() if p.config_hash != point.config_hash]
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE, value=99.5, params=theirs.params, distributions=mine.distributions,
            user_attrs={**mine.user_attrs, "config_hash": theirs.config_hash, "label": theirs.label()}))
        store = Store("sqlite:///db/runner.sqlite")
        assert store.claim("t", theirs.config_hash, "elsewhere:1", 60) is not None
        assert store.complete_claim("t", theirs.config_hash, "elsewhere:1")
        store.dispose()
        monkeypatch.setattr(lifecycle_module, "train_point", real)
        return real(point, *args, **kwargs)

    monkeypatch.setattr(lifecycle_module, "train_point", another_process_meanwhile)
    result = run("grid", spec, "-q")
    assert result.exit_code == 0, result.output
    assert len([t for t in trials() if t.state.name == "COMPLETE"]) == 2
    lines = result.output.splitlines()
    assert lines[0] == "t: 2 of 2 trials complete"  # this process trained 1 of them
    assert lines[1].startswith("best so far: trial 1, lenet5 ") and lines[1].endswith(" seed 0: test_acc 99.5"), lines
    assert "batch_norm=true" in lines[1]  # the other process's point, the best
    assert lines[2:] == [f"next: runner report {spec}", "      runner trials --study t --sort -test_acc"]
