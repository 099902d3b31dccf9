"""`runner predict`: what a trial's kept model predicts for the user's own images.

An input that cannot be read is reported in one line and the others go on; the model's failures are
those of runner.export.find_trial and runner.weights.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optuna.trial import FrozenTrial

from runner import record
from runner.export import find_trial
from runner.store import Store
from runner.weights import ExportedModel, fetch_weights, load_model

__all__ = ["Prediction", "read_inputs", "predict_images", "prediction_rows", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Prediction:
    input: str  # the file (and index, for an array)
    predicted: int | None  # None: the input could not be read
    name: str  # the class's name ("Sneaker"), or its number
    probability: float | None
    note: str  # resized, inverted, or why it could not be read


def read_inputs(inputs: list[str], shape: tuple[int, int, int]) -> list[tuple[str, torch.Tensor | None, str]]:
    """(name, image as uint8 (C, H, W) or None, note) for every image of `inputs` (files, folders, .npy)."""
    out: list[tuple[str, torch.Tensor | None, str]] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + (".npy",))
            if not files:
                out.append((given, None, f"a folder with no {', '.join(IMAGE_SUFFIXES)} or .npy file"))
            for f in files:
                out += _read(f, shape)
        else:
            out += _read(path, shape)
    return out


def _read(path: Path, shape: tuple[int, int, int]) -> list[tuple[str, torch.Tensor | None, str]]:
    if not path.is_file():
        return [(str(path), None, "no such file")]
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            return [(str(path), None, f"not a numpy array ({str(e).splitlines()[0]})")]
        if array.ndim not in (2, 3, 4):
            return [(str(path), None, f"an array of shape {array.shape}: give (H, W), (N, H, W) or (N, C, H, W)")]
        array = array[None] if array.ndim == 2 else array
        return [(f"{path}[{i}]", *_prepare(_as_uint8(a), shape)) for i, a in enumerate(array)]
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            grey = np.array(img.convert("L"))
    except (OSError, UnidentifiedImageError, ValueError):
        return [(str(path), None, "not an image runner can read (PNG or JPEG)")]
    return [(str(path), *_prepare(grey, shape))]


def _as_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float64)
    return np.clip(np.round(a * 255 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)


def _prepare(image: np.ndarray, shape: tuple[int, int, int]) -> tuple[torch.Tensor, str]:
    """An image as the dataset has them: greyscale uint8 (C, H, W) of its size, a light digit on dark."""
    notes = []
    x = torch.from_numpy(np.ascontiguousarray(image))
    x = x[None] if x.dim() == 2 else x  # (C, H, W)
    if x.shape[0] != shape[0]:
        x = x.float().mean(0, keepdim=True).round().to(torch.uint8)
    if tuple(x.shape[1:]) != tuple(shape[1:]):
        from torchvision.transforms.v2.functional import resize

        notes.append(f"resized from {x.shape[2]}x{x.shape[1]} to {shape[2]}x{shape[1]}")
        x = resize(x, list(shape[1:]), antialias=True)
    if x.float().mean() > 127:  # a dark digit on a light page: the dataset's are light on dark
        x = 255 - x
        notes.append("inverted (light background)")
    return x, "; ".join(notes)


def predict_images(store: Store, study: str, number: int | None, inputs: list[str], artifacts: str | None = None,
                   module_dir: str = ".") -> tuple[FrozenTrial, list[Prediction]]:
    """What trial `number` (the best when None) predicts for every image of `inputs`."""
    trial = find_trial(store, study, number)
    with tempfile.TemporaryDirectory() as tmp:
        model: ExportedModel = load_model(fetch_weights(store, trial, Path(tmp), artifacts), module_dir,
                                          record.of(trial).weights.sha256)
    out = []
    for name, image, note in read_inputs(inputs, model.input_shape):
        if image is None:
            out.append(Prediction(name, None, "", None, note))
            continue
        with torch.inference_mode():
            p = torch.softmax(model(image[None]), 1)[0]
        k = int(p.argmax())
        out.append(Prediction(name, k, model.class_names[k], float(p[k]), note))
    return trial, out


def prediction_rows(predictions: list[Prediction]) -> list[dict[str, Any]]:
    """The predictions as flat rows (for a table, CSV or JSON)."""
    return [{"input": p.input, "predicted": p.predicted, "class": p.name,
             "probability": None if p.probability is None else round(p.probability, 4), "note": p.note}
            for p in predictions]
