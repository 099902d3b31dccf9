"""runner/trials/confirm.py: a search's confirmation: no winner from an unfinished selection, and
the winner refit and tested on test."""
from __future__ import annotations

from tests.helpers import TUNE_SPEC as SPEC, load_spec_text


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
