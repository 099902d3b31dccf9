"""runner/results/reading.py: each trial left out of the statistics says why: its stored reason, else what its
state says."""
from __future__ import annotations

from datetime import datetime

import pytest
from optuna.trial import FrozenTrial, TrialState


@pytest.mark.parametrize("state, attrs, steps, reason", [
    (TrialState.PRUNED, {}, {1: 90.0, 2: 91.0}, "pruned after epoch 2 by the search's pruner"),
    (TrialState.FAIL, {}, {}, "failed; no reason stored"),
    (TrialState.FAIL, {"fail_reason": "loss is NaN"}, {1: 9.0}, "loss is NaN"),
    (TrialState.WAITING, {}, {}, "enqueued, never started"),
])
def test_every_trial_left_out_has_a_reason(state, attrs, steps, reason):
    from runner.results import reading

    trial = FrozenTrial(number=3, state=state, value=None, datetime_start=datetime(2024, 1, 1), datetime_complete=None,
                        params={}, distributions={}, user_attrs=attrs, system_attrs={}, intermediate_values=steps,
                        trial_id=3)
    assert reading.why_not_complete(trial).startswith(reason)
