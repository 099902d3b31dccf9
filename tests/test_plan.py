"""runner/plan.py: the plan stored before the first trial, its changes recorded, and the verdicts confirmatory only
while the plan stood before any test result; a study stored locked stays locked."""
from __future__ import annotations

import shutil
import sqlite3

import optuna
import pytest

from runner import plan, record
from runner.spec import load_spec

from tests.helpers import V1, explore_spec, invoke

OPEN = """
[study]
name = "{name}"
seeds = {seeds}
metric = "test_acc"

[data]
train_limit = 300
test_limit = 100

[train]
epochs = 1

[models.lenet5]
arch = "lenet5"

[grid]
design = "one-at-a-time"
batch_norm = [false, true]
"""


def _attrs(url: str, name: str) -> dict:
    return optuna.load_study(study_name=name, storage=url).user_attrs


def test_the_plan_is_stored_before_the_first_trial_and_its_verdicts_are_confirmatory(tmp_path):
    spec_path, url = explore_spec(tmp_path, "open", seeds="[0]", text=OPEN), f"sqlite:///{tmp_path / 'p.sqlite'}"
    assert invoke("grid", spec_path, "--storage", url).exit_code == 0
    attrs = _attrs(url, "open")
    stored = attrs[record.PLAN]
    assert stored["test_results"] == 0 and stored["hash"] == plan.plan_hash(plan.plan_of(load_spec(spec_path)))
    assert stored["plan"]["comparisons"] == ["batch_norm: true vs false"] and stored["plan"]["test"] == "open"
    status = plan.status(attrs, locked=False)
    assert status.confirmatory and status.why.startswith("confirmatory: the plan (hash ")


def test_a_plan_changed_after_test_results_makes_the_verdicts_exploratory_and_says_what_changed(tmp_path):
    spec_path, url = explore_spec(tmp_path, "open", seeds="[0]", text=OPEN), f"sqlite:///{tmp_path / 'p.sqlite'}"
    assert invoke("grid", spec_path, "--storage", url).exit_code == 0
    spec_path.write_text(spec_path.read_text().replace("seeds = [0]", "seeds = [0, 1]"))
    dry = invoke("grid", spec_path, "--storage", url, "--dry-run")
    assert ("open: this spec changes the stored plan" in dry.output and "seeds: [0, 1] (stored: [0])" in dry.output
            and "2 test results exist, so the report's verdicts would become exploratory" in dry.output)
    ran = invoke("grid", spec_path, "--storage", url)
    assert "open: the plan changed (seeds: [0, 1] (stored: [0])), after 2 test results" in ran.output
    status = plan.status(_attrs(url, "open"), locked=False)
    assert not status.confirmatory and "after 2 test results existed (seeds: [0, 1] (stored: [0])" in status.why
    report = invoke("report", spec_path, "--storage", url, "--out", tmp_path / "r")
    assert report.exit_code == 0, report.output
    assert "**Exploratory.** The plan changed on " in (tmp_path / "r" / "report.md").read_text()


def test_a_plan_changed_before_any_test_result_stays_confirmatory(tmp_path):
    spec = load_spec(explore_spec(tmp_path, "open", seeds="[0]", text=OPEN))
    study = optuna.create_study(study_name="open", storage=f"sqlite:///{tmp_path / 'p.sqlite'}")
    assert plan.store_plan(study, spec, test_results=0, trials=0) == []
    wider = load_spec(explore_spec(tmp_path, "open", seeds="[0, 1]", text=OPEN))
    assert plan.store_plan(study, wider, test_results=0, trials=0) == [
        "open: the plan changed (seeds: [0, 1] (stored: [0])), before any test result"]
    assert plan.status(study.user_attrs, locked=False).confirmatory


def test_a_locked_study_is_exploratory_and_stays_locked(tmp_path):
    spec_path, url = explore_spec(tmp_path, "x", seeds="[0]"), f"sqlite:///{tmp_path / 'x.sqlite'}"
    assert invoke("grid", spec_path, "--storage", url).exit_code == 0
    attrs = _attrs(url, "x")
    assert attrs[record.TEST_LOCKED] is True
    assert plan.status(attrs, locked=True).why.startswith('exploratory: the test set is locked')
    spec_path.write_text(spec_path.read_text().replace('test = "locked"\n', ""))
    dry = invoke("grid", spec_path, "--storage", url, "--dry-run")
    assert "runner grid would refuse it:" in dry.output and "give it a new [study].name (e.g. \"x-confirm\")" in dry.output
    ran = invoke("grid", spec_path, "--storage", url)
    assert ran.exit_code == 1 and "study 'x' is stored with its test set locked" in ran.output
    assert "Traceback" not in ran.output and len(ran.output.strip().splitlines()) == 1


def test_a_study_stored_before_plans_is_exploratory_and_is_left_as_it_was(tmp_path):
    db = tmp_path / "v1.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript((V1.parent / "v3" / "ema.sql").read_text())
    shutil.copy(V1.parent / "v3" / "ema.toml", tmp_path / "ema.toml")
    url = f"sqlite:///{db}"
    assert invoke("grid", tmp_path / "ema.toml", "--storage", url).exit_code == 0  # it has trials: no plan is stored
    attrs = _attrs(url, "v3ema")
    assert record.PLAN not in attrs
    status = plan.status(attrs, locked=False)
    assert not status.confirmatory and status.why.startswith("exploratory: the study predates analysis plans")
    assert invoke("report", tmp_path / "ema.toml", "--storage", url, "--out", tmp_path / "r").exit_code == 0
    text = (tmp_path / "r" / "report.md").read_text().splitlines()
    assert text[2].startswith("**Exploratory.** The study predates analysis plans")


@pytest.mark.parametrize("old, new, words", [
    ({"metric": "val_acc"}, {"metric": "test_acc"}, ["metric: test_acc (stored: val_acc)"]),
    ({"settings": ["a", "b"]}, {"settings": ["a", "c"]}, ["settings: 1 added (c), 1 removed (b)"]),
    ({"configs": ["1"]}, {"configs": ["1", "2"]}, ["configurations: 1 of 2 not in the stored plan"]),
])
def test_changes_name_each_field(old, new, words):
    assert plan.changes(old, new) == words
