"""runner/results/counted.py: trials counted by state as runner counts them, and the one line that says why a study
has nothing to report and what to run."""
from __future__ import annotations

from datetime import datetime

from optuna.trial import FrozenTrial, TrialState

from runner.record import StopReason
from runner.results.counted import count_states, nothing_to_report

from tests.helpers import VALID_SPEC, load_spec_text


def trial(number: int, state: TrialState, **attrs) -> FrozenTrial:
    return FrozenTrial(number=number, state=state, value=None, datetime_start=datetime(2024, 1, 1),
                       datetime_complete=None, params={}, distributions={}, user_attrs=attrs, system_attrs={},
                       intermediate_values={}, trial_id=number)


def test_an_interrupted_trial_is_counted_apart_from_a_failed_one():
    trials = [trial(0, TrialState.COMPLETE), trial(1, TrialState.FAIL, fail_reason="loss is NaN"),
              trial(2, TrialState.FAIL, fail_reason=StopReason.INTERRUPTED), trial(3, TrialState.RUNNING),
              trial(4, TrialState.COMPLETE)]
    assert count_states(trials) == {"complete": 2, "fail": 1, "interrupted": 1, "running": 1}
    assert count_states([]) == {}


def test_nothing_to_report_says_what_is_stored_and_what_to_run():
    spec = load_spec_text(VALID_SPEC)
    line = nothing_to_report("sqlite:///db.sqlite", spec, [trial(0, TrialState.FAIL), trial(1, TrialState.RUNNING)])
    assert line == (f"sqlite:///db.sqlite: study 's' has no complete trials (1 fail, 1 running); run `runner grid "
                    f"{spec.path}` first")
    assert "(no trials)" in nothing_to_report("sqlite:///db.sqlite", spec, [])
