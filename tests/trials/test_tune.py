"""runner/trials/tune.py: `runner tune`: a search that never sees test, a global budget shared by
workers, confirmation on test as a grid study, and a search of the code before (tests/fixtures/v1)
finished as it was begun."""
from __future__ import annotations

import os

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

import runner.train as train_module
from runner.cli import cli
from runner.spec import load_spec
from runner.store import Store
from runner.trials.tune import run_tune

from tests.helpers import TUNE_SPEC as SPEC, URL, V1, tune_trials as trials
from tests.helpers import tune_project  # noqa: F401 - fixtures


def test_the_search_never_evaluates_the_test_split_and_confirms_the_top_on_test(project, monkeypatch):
    built = []  # every split the trainer turned into batches for a model, by its size
    real = train_module.Batches.__init__

    def spy(self, split, *args, **kwargs):
        built.append(len(split))
        real(self, split, *args, **kwargs)

    monkeypatch.setattr(train_module.Batches, "__init__", spy)
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code == 0, result.output
    assert "tu-search: 6 of 6 trials finished" in result.output
    assert 200 not in built and sum(set(built)) == 600 and len(set(built)) == 2  # train and validation only; test has 200
    search = trials("tu-search")
    finished = [t for t in search if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6
    for t in finished:
        assert set(t.params) <= {"lr", "batch_norm", "small.c1.conv"} and "lr" in t.params
        epochs = t.user_attrs["epochs"]
        assert [e["val_acc"] for e in epochs] == [t.intermediate_values[e["epoch"]] for e in epochs]
        assert not any(k.startswith("test_") for e in epochs for k in e)  # no test metric at all
        if t.state == TrialState.PRUNED:
            assert 0 < len(epochs) < 3  # stopped early, its epochs kept
    assert "tu" not in [s.study_name for s in optuna.get_all_study_summaries(URL)]  # --no-confirm
    built.clear()
    again = CliRunner().invoke(cli, ["tune", "spec.toml"])  # the budget is spent: only the confirmation runs
    assert again.exit_code == 0, again.output
    assert "tu-search: 6 of 6 trials finished; 0 to run" in again.output
    assert len(trials("tu-search")) == len(search)
    # selection over seeds: the top 2 by the search trained again with seeds 0 and 1 on the same split, never tested
    select = trials("tu-select")
    assert len(select) == 2 * 2 and all(t.state == TrialState.COMPLETE for t in select)
    ranked = sorted((t for t in finished if t.state == TrialState.COMPLETE), key=lambda t: (-t.value, t.number))
    top = [ranked[0].params] + [next(t.params for t in ranked if t.params != ranked[0].params)]
    assert sorted(map(str, top)) == sorted({str({k: t.params[k] for k in top[0]}) for t in select})
    for t in select:
        assert t.user_attrs["test_size"] == 0 and not any(k.startswith("test_") for e in t.user_attrs["epochs"] for k in e)
    # each candidate's search trial is its seed-0 selection trial (same configuration, split and seed): reused
    reused = [t for t in select if "reused_from" in t.user_attrs]
    assert sorted(t.params["seed"] for t in reused) == [0, 0] and again.output.count("reused, not trained again") == 2
    for t in reused:
        source = search[int(t.user_attrs["reused_from"].removeprefix("tu-search trial "))]
        assert (t.value, t.user_attrs["config_hash"], t.user_attrs["epochs"]) == (
            source.value, source.user_attrs["config_hash"], source.user_attrs["epochs"])
    assert "tu-select: 2 of 4 trials complete; 2 to run" in again.output  # it trains seed 1 only
    means = {}
    for t in select:
        means.setdefault(str({k: v for k, v in t.params.items() if k != "seed"}), []).append(t.value)
    win = max(means, key=lambda k: sum(means[k]) / 2)
    # only the winner is refit (train + validation: 600 images) with each seed, and only then tested
    confirm = trials("tu")
    assert len(confirm) == 2 and all(t.state == TrialState.COMPLETE for t in confirm)
    assert {str({k: v for k, v in t.params.items() if k != "seed"}) for t in confirm} == {win}
    assert all(t.user_attrs["train_size"] == 600 and t.user_attrs["val_size"] == 0 for t in confirm)
    first = built.index(600)
    assert sum(set(built[:first])) == 600 and set(built[first:]) == {600, 200}  # test only after the choice
    info = optuna.load_study(study_name="tu-select", storage=URL).user_attrs["test_information"]
    assert sorted(map(int, info)) == sorted(t.number for t in select) and all(0 <= v <= 100 for v in info.values())
    report = CliRunner().invoke(cli, ["report", "spec.toml", "--out", "rep"])  # the report says which were reused
    assert report.exit_code == 0, report.output
    cands = __import__("json").loads(open("rep/summary.json").read())["search"]["selection"]["candidates"]
    assert [[r["seed"] for r in c["reused"]] for c in cands] == [[0], [0]]
    assert "Reused, not trained again: candidate 1's seed 0 is tu-search trial " in open("rep/report.md").read()


def test_refit_false_keeps_the_validation_split_out_of_the_confirmation(project):
    (project / "spec.toml").write_text(SPEC.replace("top = 2", "top = 1\nrefit = false").replace("trials = 6", "trials = 2"))
    result = CliRunner().invoke(cli, ["tune", "spec.toml"])
    assert result.exit_code == 0, result.output
    confirm = trials("tu")
    assert len(confirm) == 2 and all(t.user_attrs["train_size"] + t.user_attrs["val_size"] == 600 for t in confirm)
    assert all(t.user_attrs["val_size"] > 100 for t in confirm)  # the validation split stays held out


def test_two_workers_finish_exactly_the_budget_and_a_dead_workers_slot_is_taken_over(project):
    spec = (project / "spec.toml")
    spec.write_text(SPEC.replace("trials = 6", "trials = 5"))
    store = Store(URL)  # a worker that died mid-trial: its slot claimed, its trial RUNNING
    study = store.open_study("tu-search", "maximize")
    dead = study.ask()
    store.claim("tu-search", "slot-00000", f"{os.uname().nodename}:999999", 300)
    store.update_claim("tu-search", "slot-00000", f"{os.uname().nodename}:999999", trial_id=dead._trial_id)
    store.dispose()
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm", "--workers", "2"])
    assert result.exit_code == 0, result.output
    search = trials("tu-search")
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in search) == 5  # exactly, not 6
    taken = [t for t in search if t.number == dead.number][0]
    assert taken.state == TrialState.FAIL and "taken over" in taken.user_attrs["fail_reason"]


def test_a_configuration_over_the_parameter_cap_is_refused_not_trained(project):
    (project / "spec.toml").write_text(SPEC.replace("top = 2", "top = 2\nmax_params = 4000").replace(
        "trials = 6", "trials = 3"))
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code == 0, result.output
    search = trials("tu-search")
    refused = [t for t in search if "over_cap" in t.user_attrs]
    assert refused and sum(t.state == TrialState.COMPLETE for t in search) == 3  # the budget: trained trials only
    for t in search:
        [(key, over)] = [(k, v) for k, v in t.system_attrs.items() if k.startswith("constraints")]
        assert key.endswith("parameters_over_cap") and over == t.user_attrs["param_count"] - 4000  # the sampler's
        if t in refused:  # ended PRUNED, the state Optuna's samplers learn a constraint from, never trained
            assert t.state == TrialState.PRUNED and over > 0 and "epochs" not in t.user_attrs
            assert "[search].max_params 4,000: not trained" in t.user_attrs["over_cap"]
        else:
            assert t.user_attrs["param_count"] <= 4000 and over <= 0
    assert f"tu-search: 3 of 3 trials finished, {len(refused)} refused (over the cap)" in result.output
    watch = CliRunner().invoke(cli, ["watch", "--study", "tu-search", "--once"])
    assert f"3 complete, 0 running, 0 failed, {len(refused)} refused (over the cap)" in watch.output, watch.output
    studies = CliRunner().invoke(cli, ["studies", "--format", "json"])
    [row] = [r for r in __import__("json").loads(studies.output) if r["study"] == "tu-search"]
    assert (row["complete"], row["fail"], row["refused"]) == (3, 0, len(refused))
    # a search of the code before ended such a draw FAIL with its reason: it resumes, kept and counted as refused
    import json
    from sqlalchemy import text

    store = Store(URL)
    old = refused[0]
    with store.session() as session:  # as the previous code left it: FAIL with its reason, no over_cap, no constraint
        session.execute(text("UPDATE trials SET state = 'FAIL' WHERE trial_id = :i"), {"i": old._trial_id})
        session.execute(text("UPDATE trial_user_attributes SET key = 'fail_reason' WHERE trial_id = :i AND "
                             "key = 'over_cap'"), {"i": old._trial_id})
        session.execute(text("DELETE FROM trial_system_attributes WHERE trial_id = :i"), {"i": old._trial_id})
    store.dispose()
    assert json.loads(json.dumps(trials("tu-search")[old.number].user_attrs))["fail_reason"].endswith("not trained")
    (project / "spec.toml").write_text(SPEC.replace("top = 2", "top = 2\nmax_params = 4000").replace(
        "trials = 6", "trials = 4"))
    again = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert again.exit_code == 0, again.output
    after = trials("tu-search")
    assert after[old.number].state == TrialState.FAIL and sum(t.state == TrialState.COMPLETE for t in after) == 4
    assert "tu-search: 4 of 4 trials finished" in again.output and "failed" not in again.output.splitlines()[-1]


def test_ctrl_c_marks_the_trial_failed_gives_its_slot_back_and_the_same_command_continues(project, monkeypatch):
    import runner.trials.lifecycle as lifecycle_module

    real, calls = lifecycle_module.train_point, []

    def interrupted_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle_module, "train_point", interrupted_second)
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code == 130 and "run the same command again to continue" in result.output
    search = trials("tu-search")
    assert [t.state for t in search] == [TrialState.COMPLETE, TrialState.FAIL]
    assert search[1].user_attrs["fail_reason"] == "interrupted"
    monkeypatch.setattr(lifecycle_module, "train_point", real)
    again = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert again.exit_code == 0 and "tu-search: 1 of 6 trials finished; 5 to run" in again.output
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials("tu-search")) == 6


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_configuration_is_never_trained_twice(project, monkeypatch, workers):
    """A space of one configuration: one trial trains it, the others take its result."""
    (project / "spec.toml").write_text(SPEC.replace("trials = 6", "trials = 3").replace(
        'lr = { low = 0.01, high = 0.2, log = true }\nbatch_norm = [false, true]\n"small.c1.conv" = { low = 2, high = 8, step = 2 }',
        "batch_norm = [true]"))
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm", "--workers", workers])
    assert result.exit_code == 0, result.output
    search = trials("tu-search")
    trained = [t for t in search if "epochs" in t.user_attrs]
    copies = [t for t in search if "copy_of" in t.user_attrs]
    assert len(trained) == 1 and len(copies) == 2
    assert all(t.state == trained[0].state and t.value == trained[0].value for t in copies)
    assert all("being evaluated now" in t.user_attrs["fail_reason"] for t in search if t.state == TrialState.FAIL)


# ---------------------------------------------------------------- a search of the code before (tests/fixtures/v1)


def test_an_unfinished_search_of_the_code_before_finishes_its_budget_and_retrains_nothing(tmp_path):
    import sqlite3

    db = tmp_path / "search.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript((V1 / "search.sql").read_text())
    url = f"sqlite:///{db}"
    before = optuna.load_study(study_name="v1tune-search", storage=url).get_trials()
    finished = {t.user_attrs["config_hash"] for t in before if t.state.is_finished()}
    assert len(before) == 3 and len(finished) >= 1
    result = run_tune(load_spec(V1 / "search.toml"), url, confirm=False)
    assert result.finished == 5 and result.failed == 0
    after = optuna.load_study(study_name="v1tune-search", storage=url).get_trials()
    assert [t.number for t in after[:3]] == [0, 1, 2]  # the old trials are kept as they were
    store = Store(url, create=False)
    for t in after[3:]:
        trained = bool(store.epochs([t._trial_id])[t._trial_id]) or "epochs" in t.user_attrs
        if t.user_attrs["config_hash"] in finished:  # a finished configuration is never trained again
            assert not trained and "copy_of" in t.user_attrs, t.number
    assert any("copy_of" in t.user_attrs for t in after[3:])  # the seeded sampler draws them again
