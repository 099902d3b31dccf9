"""runner/trials/warmstart.py: a search's first trials: [search].enqueue points and the best
configuration of [search].start_from's studies, each enqueued once."""
from __future__ import annotations

import optuna
from click.testing import CliRunner
from optuna.trial import TrialState

from runner.cli import cli
from runner.store import Store

from tests.helpers import TUNE_SPEC as SPEC, URL, load_spec_text, tune_trials as trials
from tests.helpers import tune_project  # noqa: F401 - fixtures


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
