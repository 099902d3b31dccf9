"""What a complete trial keeps besides its metrics: what it predicted for every image, and its weights.

- Predictions: the predicted class of every test image (and validation image), in order, with its
  probability and the image's label, in `runner_predictions` (a few bytes an image).
- Weights: one self-contained file, stored through Optuna's artifact API
  (`optuna.artifacts.upload_artifact`, a `FileSystemArtifactStore`): the `state_dict`, what rebuilds
  the model without its spec (the model config, the normalization, the input transform, the class
  count and names), loadable with `torch.load(weights_only=True)`. Its SHA-256 is a user attr of the
  trial, so a file that changed since is refused. `[study].keep = "none"` keeps no weights.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial
from torch import nn

from runner.data import Data, Split, class_names
from runner.spec import Point
from runner.errors import RunnerError
from runner.store import Predictions, Store, artifacts_dir
from runner.train import batches_for, predict

__all__ = ["WEIGHTS_FORMAT", "WEIGHTS_FILE", "KeptError", "model_file", "keep_outputs", "split_predictions", "fetch_weights",
           "exported_accuracy"]

WEIGHTS_FORMAT = 1  # the layout of the file below; a later one will say what changed
WEIGHTS_FILE = "model.pt"  # the artifact's file name, as optuna-dashboard lists it


def split_predictions(model: nn.Module, point: Point, split: Split, data: Data, device: torch.device) -> Predictions:
    """What the model predicts for every image of `split`, prepared as in training."""
    classes, confidence = predict(model, batches_for(point, split, data, device))
    return Predictions(classes.numpy().astype(np.int16), split.labels.numpy().astype(np.int16),
                       confidence.numpy().astype(np.float16))


def model_file(model: nn.Module, point: Point, data: Data, study: str, number: int) -> dict[str, Any]:
    """The self-contained weights file of a trial, as a plain dict of tensors and JSON values."""
    m = point.model
    return {
        "format": WEIGHTS_FORMAT,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "model": point.model_config().to_dict(),  # rebuilds it: runner.load_model
        "module": ({"target": m.target, "file": Path(m.source).name, "source_sha256": m.source_sha256}
                   if m.target else None),  # a user's module: found again by name, checked by its SHA-256
        "normalization": {"mean": data.mean, "std": data.std},  # x / 255 -> (x - mean) / std
        "input_shape": list(data.shape),  # (C, H, W) of the data's images, before the model's input transform
        "classes": data.classes, "class_names": list(class_names(data.dataset, data.classes)),
        "dataset": data.dataset, "study": study, "trial": number, "config_hash": point.config_hash,
        "label": point.label(), "seed": point.seed,
    }


def keep_outputs(store: Store, artifacts: Path | None, study: str, trial_id: int, number: int, model: nn.Module,
                 point: Point, data: Data, device: torch.device) -> None:
    """Store a trial's predictions (every split it evaluates) and, unless `artifacts` is None, its weights
    in the FileSystemArtifactStore at that folder.

    Called while the trial is still RUNNING: Optuna records an artifact in the trial's system attrs,
    and a finished trial cannot be changed.
    """
    for name, split in (("test", data.test), ("val", data.val)):
        if split is not None and len(split):
            store.add_predictions(study, trial_id, name, split_predictions(model, point, split, data, device))
    if artifacts is None:
        return
    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / WEIGHTS_FILE  # the name optuna-dashboard shows
        torch.save(model_file(model, point, data, study, number), path)
        weights = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}
        weights["artifact_id"] = optuna.artifacts.upload_artifact(
            artifact_store=optuna.artifacts.FileSystemArtifactStore(str(artifacts)), file_path=str(path),
            study_or_trial=store.optuna.get_trial(trial_id), storage=store.optuna,
            mimetype="application/octet-stream")
    store.optuna.set_trial_user_attr(trial_id, "weights", weights)


class KeptError(RunnerError):
    """A trial whose model cannot be had, or an output that cannot be written."""


def fetch_weights(store: Store, trial: FrozenTrial, folder: Path, artifacts: str | None = None) -> Path:
    """The trial's weights file, downloaded into `folder` through Optuna's artifact API and checked."""
    weights = trial.user_attrs["weights"]
    where = artifacts_dir(store.url, artifacts)
    path = folder / "model.pt"
    try:
        optuna.artifacts.download_artifact(artifact_store=optuna.artifacts.FileSystemArtifactStore(str(where)),
                                           artifact_id=weights["artifact_id"], file_path=str(path))
    except (OSError, optuna.artifacts.exceptions.ArtifactNotFound):
        raise KeptError(f"trial {trial.number}: its weights ({weights['artifact_id']}) are not in {where}; "
                        "give the folder they were kept in with --artifacts") from None
    return path


def exported_accuracy(model: nn.Module, split: Split, batch: int = 2000) -> float:
    """Percent accuracy on `split` of a model that takes the uint8 images as stored (runner.load_model's)."""
    images = split.images.unsqueeze(1) if split.images.dim() == 3 else split.images  # (N, C, H, W) uint8
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            correct += int((model(images[i:i + batch]).argmax(1) == split.labels[i:i + batch]).sum())
    return 100.0 * correct / max(1, len(images))
