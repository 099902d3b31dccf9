"""runner/results/configs.py: a configuration's identity is its parameters as sorted JSON, and every curve drawn is
a per-epoch column the storage keeps."""
from __future__ import annotations

import json

from runner.results.configs import CURVES, config_key
from runner.store import EpochRow


def test_a_configurations_key_is_its_params_as_sorted_json():
    key = config_key({"model": "lenet5", "dropout": 0.5, "batch_norm": True})
    assert key == '{"batch_norm": true, "dropout": 0.5, "model": "lenet5"}'
    assert key == config_key({"batch_norm": True, "model": "lenet5", "dropout": 0.5})  # the order given is no part of it
    assert json.loads(key) == {"model": "lenet5", "dropout": 0.5, "batch_norm": True}


def test_every_curve_is_a_column_of_runner_epochs():
    assert set(CURVES) <= set(EpochRow.__table__.columns.keys())
    assert all(len(words) == 2 and all(words) for words in CURVES.values())  # (panel title, y label)
