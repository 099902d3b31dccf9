"""runner/spec/stages.py: a search's confirmation as specs: `<name>-select` ranks the candidates over seeds on the
search's metric and is never tested; `<name>` tests the winners, refit on train + validation by default."""
from __future__ import annotations

from runner.spec.stages import confirm_spec, selection_spec

from tests.helpers import TUNE_SPEC, load_spec_text

SETTINGS = [{"model": "small", "lr": 0.05, "batch_norm": True}, {"model": "small", "lr": 0.1, "batch_norm": False}]
RUNS = (tuple(SETTINGS[0].items()), tuple(SETTINGS[1].items()))


def test_the_selection_ranks_the_candidates_on_the_searchs_metric_and_is_never_tested():
    spec = load_spec_text(TUNE_SPEC)
    select = selection_spec(spec, SETTINGS)
    assert select.study.name == "tu-select" and select.study.metric == spec.search.metric == "val_acc"
    assert not select.tested and select.grid == () and select.runs == RUNS
    assert select.study.seeds == spec.study.seeds and select.data == spec.data  # on the search's split
    assert spec.study.name == "tu"  # the search's spec is left as it was


def test_a_refit_confirmation_trains_on_train_and_validation_and_is_tested():
    spec = load_spec_text(TUNE_SPEC)
    assert spec.search.refit and spec.data.val_fraction == 0.2
    confirm = confirm_spec(spec, SETTINGS)
    assert confirm.study.name == "tu" and confirm.study.metric == "test_acc" and confirm.tested
    assert confirm.data.val_fraction == 0.0 and confirm.grid == () and confirm.runs == RUNS


def test_a_refit_confirmation_ranks_a_validation_metric_by_its_test_counterpart():
    spec = load_spec_text(TUNE_SPEC.replace("seeds = [0, 1]", 'seeds = [0, 1]\nmetric = "val_loss"'))
    assert confirm_spec(spec, SETTINGS).study.metric == "test_loss"


def test_without_refit_the_validation_split_stays_held_out():
    spec = load_spec_text(TUNE_SPEC.replace("top = 2", "top = 2\nrefit = false")
                          .replace("seeds = [0, 1]", 'seeds = [0, 1]\nmetric = "val_loss"'))
    confirm = confirm_spec(spec, SETTINGS)
    assert confirm.data.val_fraction == 0.2 and confirm.study.metric == "val_loss" and confirm.runs == RUNS
