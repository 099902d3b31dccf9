"""`runner tune`: the search space in the spec, a search that never sees test, a global budget,
confirmation on test as a grid study, and the report's search section."""
from __future__ import annotations

import json
import os

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

import runner.train as train_module
from runner.cli import cli
from runner.errors import SpecError
from runner.spec import load_spec
from runner.store import Store

SPEC = """
[study]
name = "tu"
seeds = [0, 1]
[data]
train_limit = 600
test_limit = 200
val_fraction = 0.2
[train]
epochs = 3
batch_size = 100
threads = 1
[models.small]
layers = [{ conv = 4, k = 5, name = "c1" }, { pool = "max", k = 2 }, { fc = 10, name = "output" }]
[search]
trials = 6
top = 2
pruner = "median"
[search.space]
lr = { low = 0.01, high = 0.2, log = true }
batch_norm = [false, true]
"small.c1.conv" = { low = 2, high = 8, step = 2 }
"""
URL = "sqlite:///db/runner.sqlite"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(SPEC)
    return tmp_path


def trials(name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=URL).get_trials()


@pytest.mark.parametrize("old, new, message", [
    ('trials = 6', 'trials = 6\nmetric = "test_acc"', '[search].metric: "test_acc" is not "val_acc" | "val_loss"'),
    ('val_fraction = 0.2\n', '', "[search]: a search chooses on a validation split, never on test"),
    ('lr = { low', 'lrr = { low', '[search.space]: unknown key "lrr"; did you mean "lr"?'),
    ('low = 0.01, high = 0.2', 'low = 0.2, high = 0.01', "[search.space].lr: low = 0.2 is above high = 0.01"),
    ('log = true', 'log = true, step = 0.01', "log and step exclude each other"),
    ('low = 0.01, high = 0.2, log = true', 'low = 0.0, high = 0.2, log = true', "[search.space].lr.low: 0.0 is not a number > 0"),
    ('batch_norm = [false, true]', 'batch_norm = { low = 0, high = 1 }', "batch_norm takes no range"),
    ('batch_norm = [false, true]', 'batch_norm = []', "[search.space].batch_norm: is an empty list"),
    ('"small.c1.conv" = { low = 2', '"small.c9.conv" = { low = 2', 'small has no layer "c9"'),
    ('high = 8, step = 2', 'high = 8.5, step = 2', "[search.space].small.c1.conv.high: 8.5 is not an integer >= 1"),
    ('timeout', 'timeout', ''),
])
def test_a_bad_search_is_refused_in_one_line(tmp_path, old, new, message):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.replace(old, new) if old != "timeout" else SPEC.replace("top = 2", 'top = 2\ntimeout = "soon"'))
    with pytest.raises(SpecError) as e:
        load_spec(path)
    text = str(e.value)
    assert "\n" not in text and (message or '[search].timeout: "soon" is not a duration') in text


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
    for t in search:
        if t.state == TrialState.FAIL:
            assert "[search].max_params 4,000: not trained" in t.user_attrs["fail_reason"] and "epochs" not in t.user_attrs
        else:
            assert t.user_attrs["param_count"] <= 4000


def test_the_report_of_a_tuned_spec_shows_the_search(project):
    assert CliRunner().invoke(cli, ["tune", "spec.toml"]).exit_code == 0
    result = CliRunner().invoke(cli, ["report", "spec.toml", "--out", "r"])
    assert result.exit_code == 0, result.output
    text = (project / "r" / "report.md").read_text()
    assert "## The search" in text and "6 of 6 finished trials" in text and "### Parameter importances" in text
    assert "too few" in text or "rough" in text  # 6 trials: the importances carry a warning
    assert (project / "r" / "search-history.png").exists() and (project / "r" / "search-curves.png").exists()
    summary = json.loads((project / "r" / "summary.json").read_text())
    assert summary["search"]["budget"] == 6 and len(summary["search"]["top"]) == 1  # the winner, refit and tested
    selection = summary["search"]["selection"]
    assert len(selection["candidates"]) == 2 and sum(c["winner"] for c in selection["candidates"]) == 1
    assert all(len(c["val"]) == 2 and len(c["test_information"]) == 2 for c in selection["candidates"])
    assert selection["protocol"] in text and "information only" in text and "would be biased" in text
    win = next(c for c in selection["candidates"] if c["winner"])
    assert win["label"] == summary["configs"][0]["label"]
    assert max(c["val_mean_ci95"][0] for c in selection["candidates"]) == win["val_mean_ci95"][0]
    # a report that fits a search: the winner as a [[runs]] entry that parses and says what was confirmed,
    # the layer tables of the confirmed configurations, no section that does not apply
    import tomllib

    snippet = text.split("```toml\n", 1)[1].split("```", 1)[0]
    entry = tomllib.loads(snippet)["runs"][0]
    best = summary["configs"][0]
    assert entry["model"] == best["model"] and all(entry[k] == v for k, v in best["params"].items() if v is not None)
    assert "## Known accuracy" not in text and "## Do the regularizers help?" not in text
    assert "Left out, as they do not apply to this search:" in text
    counts = text.split("## Parameter counts", 1)[1].split("## Comparison", 1)[0]
    assert {f"Total: **{c['param_count']:,}** parameters." for c in summary["configs"]} <= set(counts.splitlines())
    import csv  # the search's own raw values travel with the report too

    rows = list(csv.DictReader((project / "r" / "search_trials.csv").open()))
    trials = optuna.load_study(study_name="tu-search", storage="sqlite:///db/runner.sqlite").get_trials()
    assert [int(r["number"]) for r in rows] == [t.number for t in trials]
    assert all(r["value"] == ("" if t.value is None else str(t.value)) for r, t in zip(rows, trials))
    epochs = list(csv.DictReader((project / "r" / "search_epochs.csv").open()))
    assert len(epochs) == sum(len(t.user_attrs.get("epochs", [])) for t in trials) > 0


def test_runner_trials_lists_a_search_with_its_validation_metrics_and_no_test_metric(project):
    assert CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"]).exit_code == 0
    result = CliRunner().invoke(cli, ["trials", "--study", "tu-search", "--sort", "-val_acc", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    finished = [r for r in rows if r["state"] in ("complete", "pruned")]
    assert len(finished) == 6 and all(r["val_acc"] is not None and r["test_acc"] is None for r in finished)
    vals = [r["val_acc"] for r in rows if r["val_acc"] is not None]
    assert vals == sorted(vals, reverse=True)
    shown = CliRunner().invoke(cli, ["show", "--study", "tu-search", str(finished[0]["number"]), "--format", "json"])
    detail = json.loads(shown.output)
    assert detail["epochs"] and all(e["val_acc"] is not None and e["test_acc"] is None for e in detail["epochs"])


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


def test_a_search_trial_records_what_it_trained_with_as_a_grid_trial_does(project):
    """The normalization numbers (not "auto"), the dataset, its source, the split sizes, the checksum."""
    spec = SPEC.replace("val_fraction = 0.2", 'val_fraction = 0.2\nmean = "auto"\nstd = "auto"')
    (project / "spec.toml").write_text(spec.replace("trials = 6", "trials = 1"))
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--storage", URL])
    assert result.exit_code == 0, result.output
    search = trials("tu-search")[0].user_attrs
    grid = trials("tu-select")[0].user_attrs  # a selection trial: a grid trial of the same data
    for k in ("mean", "std"):
        assert isinstance(search["config"]["data"][k], float)
        assert search["config"]["data"][k] == grid["config"]["data"][k]
    assert search["normalization_auto"] == ["mean", "std"]
    for k in ("dataset", "data_source", "data_official", "data_shape", "classes", "data_checksum", "train_size",
              "val_size"):
        assert search[k] == grid[k], k
    assert search["train_size"] + search["val_size"] == 600 and search["test_size"] == 0  # test never used
    for record in (search, grid):  # one builder: a search trial has its time and memory as a grid trial does
        assert record["wall_seconds"] > 0 and record["peak_memory_mb"] > 0


def test_sampled_floats_are_stored_rounded_to_3_significant_digits_and_trained_with_that_value(project):
    from optuna.distributions import FloatDistribution, IntDistribution

    from runner.trials.sampling import readable

    assert readable(0.07819127573796913, FloatDistribution(0.01, 0.2, log=True)) == 0.0782
    assert readable(0.0123001, FloatDistribution(0.01234, 0.2)) == 0.01234  # rounded below low: low
    assert readable(0.25, FloatDistribution(0.0, 1.0, step=0.05)) == 0.25 and readable(7, IntDistribution(1, 9)) == 7
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code == 0, result.output
    searched = [t for t in trials("tu-search") if "lr" in t.params]
    assert len(searched) == 6
    for t in searched:
        assert f"{t.params['lr']:.3g}" == repr(t.params["lr"]), t.params  # 0.0782, not 0.07819127573796913
        assert t.user_attrs["config"]["train"]["lr"] == t.params["lr"]  # the stored value is the trained one
        assert f"lr={t.params['lr']}" in t.user_attrs["label"]


def _slow_starter(patience: int, warmup: int = 1) -> bool:
    """Whether the pruner stops a trial that is below the median at epoch 2 and best by epoch 4."""
    import dataclasses

    from runner.trials.sampling import make_pruner

    search = dataclasses.replace(load_spec_text(SPEC).search, warmup_epochs=warmup, patience=patience)
    study = optuna.create_study(direction="maximize", pruner=make_pruner(search, 4))
    for _ in range(5):  # five steady trials: 80, 81, 82, 83 %
        t = study.ask()
        for epoch in range(1, 5):
            t.report(79.0 + epoch, epoch)
        study.tell(t, 83.0)
    t = study.ask()
    for epoch, value in enumerate([70.0, 75.0, 84.0, 90.0], 1):  # slow at first, then the best
        t.report(value, epoch)
        if t.should_prune():
            return True
    return False


def load_spec_text(text: str):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spec.toml").write_text(text)
        return load_spec(Path(tmp) / "spec.toml")


def test_patience_spares_a_slow_starter_that_the_plain_median_pruner_stops():
    assert _slow_starter(patience=0)  # below the median after the warm-up: stopped
    assert not _slow_starter(patience=2)  # two epochs' grace, and then it improves: kept
    assert not _slow_starter(patience=0, warmup=3)  # never judged before epoch 3: kept


def test_enqueued_points_are_the_first_trials_and_a_point_outside_the_space_is_refused(project):
    spec = SPEC.replace("top = 2", "top = 2\nenqueue = [{ lr = 0.05, batch_norm = true }, { lr = 0.1 }]")
    (project / "spec.toml").write_text(spec)
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code == 0, result.output
    first = sorted(trials("tu-search"), key=lambda t: t.number)
    assert first[0].params["lr"] == 0.05 and first[0].params["batch_norm"] is True
    assert first[1].params["lr"] == 0.1 and first[0].user_attrs["enqueued_from"] == "[search].enqueue[0]"
    again = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])  # nothing enqueued twice
    assert again.exit_code == 0 and "enqueued" not in again.output
    for bad, message in [("{ lr = 0.5 }", "[search].enqueue[0].lr: 0.5 is outside the space's range [0.01, 0.2]"),
                         ('{ batch_norm = "yes" }', '[search].enqueue[0].batch_norm: "yes" is not true or false'),
                         ('{ "small.c1.conv" = 3 }', "[search].enqueue[0].small.c1.conv: 3 is not on the space's grid"),
                         ("{ dropout = 0.1 }", '[search].enqueue[0]: unknown searched axis "dropout"')]:
        (project / "spec.toml").write_text(SPEC.replace("top = 2", f"top = 2\nenqueue = [{bad}]"))
        result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm", "--storage", "sqlite:///other.sqlite"])
        assert result.exit_code != 0 and message in result.output and len(result.output.strip().splitlines()) == 1, \
            result.output
        assert not (project / "other.sqlite").exists()


GRID = """
[study]
name = "g"
[data]
train_limit = 600
test_limit = 200
val_fraction = 0.2
[train]
epochs = 2
batch_size = 100
threads = 1
[models.small]
layers = [{ conv = 4, k = 5, name = "c1" }, { pool = "max", k = 2 }, { fc = 10, name = "output" }]
[grid]
lr = [0.02, LR]
"""


def test_start_from_enqueues_the_best_configuration_of_a_study_in_the_same_storage(project):
    (project / "grid.toml").write_text(GRID.replace("LR", "0.15"))
    assert CliRunner().invoke(cli, ["grid", "grid.toml"]).exit_code == 0
    def best_by_validation(name: str) -> optuna.trial.FrozenTrial:  # what start_from ranks by, never test
        store = Store(URL, create=False)
        epochs = store.epochs([t._trial_id for t in trials(name)])
        store.dispose()
        return max(trials(name), key=lambda t: epochs[t._trial_id][-1].val_acc)

    best = best_by_validation("g")
    (project / "spec.toml").write_text(SPEC.replace("top = 2", 'top = 2\nstart_from = ["g"]'))
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code == 0, result.output
    first = min(trials("tu-search"), key=lambda t: t.number)
    assert first.user_attrs["enqueued_from"] == f"g trial {best.number}"
    assert first.params == {"lr": best.params["lr"], "batch_norm": False, "small.c1.conv": 4}  # mapped from its layers
    (project / "grid.toml").write_text(GRID.replace("LR", "0.5").replace('name = "g"', 'name = "g2"'))
    assert CliRunner().invoke(cli, ["grid", "grid.toml"]).exit_code == 0
    if best_by_validation("g2").params["lr"] == 0.5:  # the best is outside the space: refused
        (project / "spec.toml").write_text(SPEC.replace("top = 2", 'top = 2\nstart_from = ["g2"]')
                                           .replace('name = "tu"', 'name = "tu2"'))
        result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
        assert result.exit_code != 0 and "g2 trial" in result.output and "lr: 0.5 is outside the space's range" \
            in result.output and len(result.output.strip().splitlines()) == 1, result.output
    (project / "spec.toml").write_text(SPEC.replace("top = 2", 'top = 2\nstart_from = ["nope"]')
                                       .replace('name = "tu"', 'name = "tu3"'))
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code != 0 and "no study named 'nope'" in result.output


def test_no_winner_is_chosen_from_an_unfinished_selection_and_a_val_ranked_study_is_tested_on_test():
    from runner.trials.confirm import Candidate, confirm_spec, selection_spec, winner

    spec = load_spec_text(SPEC)
    settings = [{"lr": 0.05, "batch_norm": True, "small.c1.conv": 4}, {"lr": 0.1, "batch_norm": False, "small.c1.conv": 4}]
    select = selection_spec(spec, settings)
    assert select.study.name == "tu-select" and not select.tested and select.study.metric == "val_acc"
    done = Candidate(settings[0], 1, (0, 1), (90.0, 91.0), 2)
    half = Candidate(settings[1], 2, (2,), (99.0,), 2)  # one seed still training on another machine
    assert winner(select, [done, half]) is None
    assert winner(select, [done, Candidate(settings[1], 2, (2, 3), (99.0, 80.0), 2)]).rank == 1  # mean, not best seed
    val_ranked = load_spec_text(SPEC.replace('name = "tu"', 'name = "tu"\nmetric = "val_acc"'))
    confirm = confirm_spec(val_ranked, settings[:1])
    assert confirm.data.val_fraction == 0 and confirm.study.metric == "test_acc"  # refit: no validation split left
    kept_out = confirm_spec(load_spec_text(SPEC.replace("top = 2", "top = 2\nrefit = false")), settings[:1])
    assert kept_out.data.val_fraction == 0.2 and kept_out.study.metric == "test_acc"


def test_an_enqueued_point_whose_trial_was_interrupted_is_enqueued_again_and_only_then(project):
    from runner.trials.warmstart import warm_start

    spec = load_spec_text(SPEC.replace("top = 2", "top = 2\nenqueue = [{ lr = 0.05 }]"))
    store = Store(URL)
    study = store.open_study("tu-search", "maximize")
    assert warm_start(spec, store, study, lambda s: None) == 1
    assert warm_start(spec, store, study, lambda s: None) == 0  # waiting: not again
    trial = study.ask()  # a worker takes it, and is interrupted
    assert trial.params == {} and trial.user_attrs["enqueued_from"] == "[search].enqueue[0]"
    study.tell(trial, state=TrialState.FAIL)
    assert warm_start(spec, store, study, lambda s: None) == 1  # tried again
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.WAITING]
    store.dispose()
