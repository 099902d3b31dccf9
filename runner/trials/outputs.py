"""What a complete trial keeps besides its metrics: what it predicted for every image, and its weights.

- Predictions: the predicted class of every test image (and validation image), in order, with its
  probability and the image's label, in `runner_predictions` (a few bytes an image).
- Weights: one self-contained file (runner.weights), unless `[study].keep = "none"`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from runner.data import Data, Split
from runner.spec import Point
from runner.store import Predictions, Store
from runner.train import batches_for, predict
from runner.weights import keep_weights

__all__ = ["keep_outputs", "split_predictions"]


def split_predictions(model: nn.Module, point: Point, split: Split, data: Data, device: torch.device) -> Predictions:
    """What the model predicts for every image of `split`, prepared as in training."""
    classes, confidence = predict(model, batches_for(point, split, data, device))
    return Predictions(classes.numpy().astype(np.int16), split.labels.numpy().astype(np.int16),
                       confidence.numpy().astype(np.float16))


def keep_outputs(store: Store, artifacts: Path | None, study: str, trial_id: int, number: int, model: nn.Module,
                 point: Point, data: Data, device: torch.device) -> None:
    """Store a trial's predictions (every split it evaluates) and, unless `artifacts` is None, its weights
    in the FileSystemArtifactStore at that folder (while the trial is still RUNNING)."""
    for name, split in (("test", data.test), ("val", data.val)):
        if split is not None and len(split):
            store.add_predictions(study, trial_id, name, split_predictions(model, point, split, data, device))
    if artifacts is not None:
        keep_weights(store, artifacts, study, trial_id, number, model, point, data)
