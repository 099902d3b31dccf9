"""runner/trials/heartbeat.py: a claim whose heartbeat stopped is taken over after the grace
period, and not before."""
from __future__ import annotations

import datetime as dt

import optuna
from click.testing import CliRunner

from runner.cli import cli
from runner.spec import load_spec
from runner.store import ClaimRow, Store


def test_a_claim_without_heartbeat_is_taken_over_after_the_grace_period(write_spec, tmp_path):
    spec_path = write_spec(batch_norm="[false]")
    spec = load_spec(spec_path)
    url = f"sqlite:///{tmp_path}/s.sqlite"
    store = Store(url)
    study = store.open_study("t", "maximize")
    dead_trial = study.ask()  # the trial the dead machine was running
    old = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=120)
    with store.session() as s:
        s.add(ClaimRow(study_name="t", config_hash=spec.points()[0].config_hash, trial_id=dead_trial._trial_id,
                       state="running", worker="other-machine:1234", heartbeat=old))
    store.dispose()
    wait = CliRunner().invoke(cli, ["grid", str(spec_path), "--storage", url, "--stale-after", "600"])
    assert "0 of 1 trials complete" in wait.output  # still within its grace period: left alone
    took = CliRunner().invoke(cli, ["grid", str(spec_path), "--storage", url, "--stale-after", "60"])
    assert took.exit_code == 0 and "1 of 1 trials complete" in took.output
    trials = optuna.load_study(study_name="t", storage=url).get_trials()
    assert trials[0].state.name == "FAIL" and "taken over" in trials[0].user_attrs["fail_reason"]
    assert trials[1].state.name == "COMPLETE"
