"""Validation accuracy after epoch 1 of the LeNet search's recipe (specs/tune_lenet.toml: its LeNet with batch
norm, affine augmentation, 20 epochs of cosine SGD, 54,000 training and 6,000 validation images), without EMA
and with ema = 0.999, the decay warmed up or not, at three learning rates of its space, seed 0.

    python reports/bench/ema_warmup/measure.py > reports/bench/ema_warmup/epoch1.json
"""
import json
import sys
from dataclasses import replace

import torch

from runner.spec import load_spec
from runner.trials.lifecycle import load
from runner.trials.lifecycle import StopTrial
from runner.train import train_point

spec = load_spec("specs/tune_lenet.toml")
data = load(spec)
out = []


class _Once(StopTrial):
    pass


for lr in (0.03, 0.08, 0.2):
    for ema, warmup in ((0.0, True), (0.999, False), (0.999, True)):
        setting = {"lr": lr, "augment": "affine", "ema": ema, "ema_warmup": warmup}
        point = spec.point(setting, 0)
        seen = {}

        def first(m):
            seen.update(val_acc=m.val_acc, seconds=m.seconds)
            raise _Once

        try:
            train_point(point, data, torch.device("cpu"), first, evaluate_test=False)
        except _Once:
            pass
        row = {"lr": lr, "ema": ema, "ema_warmup": warmup if ema else None, **seen}
        out.append(row)
        print(row, file=sys.stderr, flush=True)
print(json.dumps(out, indent=1))
