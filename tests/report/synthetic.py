"""The synthetic study the report's tests read: trials written straight into storage, nothing trained.

The study is LeNet-5 on a 2 x 2 grid (batch_norm x augment) plus an MLP run, 3 seeds each.
batch_norm adds 0.5 points of test accuracy, augment adds nothing; the noise is small and fixed.
One trial failed and one is still running: both must be listed and left out of the statistics.
"""
from __future__ import annotations

from datetime import datetime

from optuna.trial import FrozenTrial, TrialState

from runner.spec import Point
from runner.spec.tables import point_table
from runner.store import Store
from runner.train import EpochMetrics
from runner.trials.grid import distributions

SPEC = """
[study]
name = "t"
description = "Does batch norm help?"
seeds = [0, 1, 2]
metric = "test_acc"

[data]
train_limit = 600
test_limit = 300

[train]
epochs = 3
lr = 0.05

[models.lenet5]
arch = "lenet5"

[models.mlp]
arch = "mlp"

[grid]
model = ["lenet5"]
batch_norm = [false, true]
augment = ["none", "affine"]

[[runs]]
model = "mlp"
"""


BN_EFFECT = 0.5  # points of final test accuracy that batch_norm adds


# Fixed noise per LeNet-5 trial, in spec order (seed-major); augment's paired differences
# average 0 with this noise, batch_norm's vary by a few hundredths around +0.5.
NOISE = [0.03, -0.02, 0.01, -0.04, 0.02, 0.00, -0.01, 0.04, -0.03, 0.02, 0.01, -0.02]


MLP_ACC = 97.0


def final(point: Point, i: int) -> float:
    if point.model.name == "mlp":
        return MLP_ACC + 0.1 * point.seed
    return 98.0 + BN_EFFECT * point.reg("batch_norm") + NOISE[i]


def add_trial(store: Store, study, point: Point, state: TrialState, final: float | None,
               epochs: int = 3, reason: str = "") -> int:
    attrs = {"config_hash": point.config_hash, "config": point.resolved(), "label": point.label(),
             "param_count": point_table(point).total, "data_checksum": "abc123", "data_source": "synthetic",
             "data_official": False, "train_size": 600, "test_size": 300, "worker": "test:1",
             "code_version": "test", "device": "cpu", "threads": 1, "cpu": "x86_64", "python": "3.11",
             "versions": {"torch": "t", "torchvision": "tv", "optuna": "o", "sqlalchemy": "s"}}
    template = FrozenTrial(number=0, state=TrialState.RUNNING, value=None, datetime_start=datetime(2024, 1, 1),
                           datetime_complete=None, params=point.params,
                           distributions=distributions(point, ("lenet5", "mlp")), user_attrs=attrs,
                           system_attrs={}, intermediate_values={}, trial_id=0)
    trial_id = store.optuna.create_new_trial(study._study_id, template)
    number = store.optuna.get_trial_number_from_id(trial_id)
    accs = [(final or 90.0) - 2.0 * (epochs - e) for e in range(1, epochs + 1)]
    for e, acc in enumerate(accs, 1):
        m = EpochMetrics(epoch=e, train_loss=0.5 / e, train_acc=acc + 0.5, test_loss=0.4 / e, test_acc=acc,
                         lr=0.05, seconds=1.0 + 0.1 * e)
        store.add_epoch(study.study_name, trial_id, number, m)
        store.optuna.set_trial_intermediate_value(trial_id, e, acc)
    if state == TrialState.COMPLETE:
        store.optuna.set_trial_user_attr(trial_id, "wall_seconds", 3.3)
        store.optuna.set_trial_user_attr(trial_id, "best_test_acc", max(accs))
        store.optuna.set_trial_state_values(trial_id, TrialState.COMPLETE, [final])
    elif state == TrialState.FAIL:
        store.optuna.set_trial_user_attr(trial_id, "fail_reason", reason)
        store.optuna.set_trial_state_values(trial_id, TrialState.FAIL)
    return number
