"""What a complete trial predicted for every image: kept besides its metrics (runner.trials.trial).

The predicted class of every test image (and validation image), in order, with its probability and the image's
label, in `runner_predictions` (a few bytes an image). Its weights are one self-contained file (runner.weights),
unless `[study].keep = "none"`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from runner.data import Data, Split
from runner.spec import Point
from runner.store import Predictions
from runner.train import batches_for, predict

__all__ = ["split_predictions"]


def split_predictions(model: nn.Module, point: Point, split: Split, data: Data, device: torch.device) -> Predictions:
    """What the model predicts for every image of `split`, prepared as in training."""
    classes, confidence = predict(model, batches_for(point, split, data, device))
    return Predictions(classes.numpy().astype(np.int16), split.labels.numpy().astype(np.int16),
                       confidence.numpy().astype(np.float16))
