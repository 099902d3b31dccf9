"""runner/trials/trial.py: one trial's life, the same code for a grid point, a search's draw and a selection's seed."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from runner.cli import cli
from runner.spec import load_spec
from runner.spec.stages import selection_spec
from runner.store import Store
from runner.trials.grid import GridWorker, run_grid
from runner.trials.trial import TrialWorker
from runner.trials.tune import SearchWorker

from tests.helpers import URL, tune_trials as trials
from tests.helpers import tune_project  # noqa: F401 - fixtures

TRIALS = Path(__file__).parents[2] / "runner" / "trials"
# What a trial does between its creation and its end: only trial.py does it (lifecycle.py holds the claims and the
# writer it does it with). A second copy of a step in a worker is what this module replaced.
STEPS = {"trains": r"\brun\.train\(", "stores an epoch": r"add_epoch\(|record\.EPOCHS",
         "keeps its predictions": r"split_predictions\(", "keeps its weights": r"keep_weights\(",
         "stores its outcome": r"outcome_record\(", "reports to Optuna": r"set_trial_intermediate_value\(|\.report\("}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_only_the_trial_module_and_the_kinds_hooks_take_a_trials_steps(step):
    found = {p.name for p in TRIALS.glob("*.py") if re.search(STEPS[step], _calls(p))}
    # the value reported to Optuna differs by kind: each worker's `open` says what it reports (its one line)
    allowed = {"trial.py", "grid.py", "tune.py"} if step == "reports to Optuna" else {"trial.py"}
    assert found <= allowed, f"{step}: {sorted(found - allowed)}"
    assert found, f"nothing {step}"


def _calls(path: Path) -> str:
    """The file's text without its `def` lines (a step's definition is not a step taken)."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("def "))


def test_every_kind_of_worker_lives_its_trials_through_the_one_module():
    for kind in (GridWorker, SearchWorker):
        assert issubclass(kind, TrialWorker)
        assert "live" not in vars(kind) and "_train" not in vars(kind)


def test_a_point_trained_as_a_search_draw_and_as_a_selection_seed_stores_the_same(project):
    """The same configuration, split and seed, trained once by a search worker and once by a grid worker (a
    selection trial, not reused): the same record, epochs, values, predictions and weights."""
    result = CliRunner().invoke(cli, ["tune", "spec.toml", "--no-confirm"])
    assert result.exit_code == 0, result.output
    searched = next(t for t in trials("tu-search") if t.state == TrialState.COMPLETE)
    spec = load_spec(project / "spec.toml")
    select = selection_spec(spec, [{k: v for k, v in searched.params.items()}])
    run_grid(select, URL)  # trains seed 0 itself: the reuse of search trials is the confirmation's, not run_grid's
    mine = next(t for t in trials("tu-select") if t.params["seed"] == spec.study.seeds[0])
    assert mine.user_attrs["config_hash"] == searched.user_attrs["config_hash"] and "reused_from" not in mine.user_attrs
    assert (mine.state, mine.value, mine.intermediate_values) == (searched.state, searched.value,
                                                                  searched.intermediate_values)
    assert mine.user_attrs["epochs"] == [{**e, "seconds": m["seconds"]} for e, m in zip(
        searched.user_attrs["epochs"], mine.user_attrs["epochs"])]
    assert set(mine.user_attrs["weights"]) == set(searched.user_attrs["weights"])  # each file names its own trial
    differ = {"slot", "worker", "weights", "epochs", "wall_seconds", "peak_memory_mb"}  # a search's record names its slot
    assert {k: v for k, v in mine.user_attrs.items() if k not in differ} == {
        k: v for k, v in searched.user_attrs.items() if k not in differ}
    store = Store(URL)
    try:
        a, b = (store.predictions([i], "val")[i] for i in (store.trial_ids("tu-search", [searched.number])[searched.number],
                                                            store.trial_ids("tu-select", [mine.number])[mine.number]))
    finally:
        store.dispose()
    assert (a.predicted == b.predicted).all() and (a.labels == b.labels).all()
