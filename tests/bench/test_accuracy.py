"""runner/bench/accuracy.py: time to accuracy, each recipe over its seeds, with the seeds that never reached it."""
from __future__ import annotations

import math

import torch

from runner.bench.accuracy import FAST_RECIPE, time_to_accuracy
from runner.bench.common import BenchConfig
from runner.data import load_mnist


def test_each_recipe_gives_its_median_time_its_misses_and_its_final_accuracy():
    config = BenchConfig(epochs=1, train_limit=500, test_limit=200, tta_seeds=2, tta_target=20.0, quick=True)
    notes: list[str] = []
    out = time_to_accuracy(load_mnist("", 500, 200), config, torch.device("cpu"), lambda s: None, notes)
    for key in ("time_to_99", "time_to_99_fast"):
        assert out[f"{key}_missed"] in (0.0, 1.0, 2.0) and 0 <= out[f"{key}_final_acc"] <= 100
        assert math.isinf(out[f"{key}_s"]) == (out[f"{key}_missed"] == 2.0)  # no seed reached it: no median
    assert len(notes) == 2 and str(FAST_RECIPE) in notes[1] and "seeds 0-1" in notes[0]
