"""`runner predict`: what a trial's kept model predicts for the user's own images.

An input that cannot be read is reported in one line and the others go on; the model's failures are
those of runner.export.find_trial and runner.weights.
"""
from __future__ import annotations

import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optuna.trial import FrozenTrial

from runner.export import find_trial
from runner.store import Store
from runner.weights import load_kept

__all__ = ["Prediction", "read_inputs", "predict_images", "prediction_rows", "IMAGE_SUFFIXES", "MAX_PIXELS"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PIXELS = 50_000_000  # pixels one input may have (a 50-megapixel photo); a larger one is refused unread


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
    """The images of one input file, or one line saying why it cannot be read (the other inputs go on)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return [(str(path), None, "no such file")]
    except OSError as e:  # a symlink loop: "Too many levels of symbolic links"
        return [(str(path), None, f"cannot be read: {e.strerror or e}")]
    if not stat.S_ISREG(st.st_mode):
        return [(str(path), None, "not a file")]
    if st.st_size == 0:
        return [(str(path), None, "an empty file (0 bytes)")]
    try:
        return _read_npy(path, shape) if path.suffix.lower() == ".npy" else _read_image(path, shape)
    except Exception as e:  # noqa: BLE001 - whatever a hostile file does, it is one line and the others go on
        return [(str(path), None, f"cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")]


def _read_npy(path: Path, shape: tuple[int, int, int]) -> list[tuple[str, torch.Tensor | None, str]]:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")  # its header read; the data only as needed
    except (OSError, ValueError, EOFError) as e:
        return [(str(path), None, f"not a numpy array ({str(e).splitlines()[0]})")]
    if array.ndim not in (2, 3, 4):
        return [(str(path), None, f"an array of shape {array.shape}: give (H, W), (N, H, W) or (N, C, H, W)")]
    if array.size > MAX_PIXELS:
        return [(str(path), None, f"an array of {array.size:,} values, over the {MAX_PIXELS:,} pixels runner "
                                  "reads from one input")]
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        return [(str(path), None, f"an array of {array.dtype}: give numbers (uint8, or floats in [0, 1])")]
    array = np.array(array)  # read now, and writable (a memory map is not)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        return [(str(path), None, f"an array with {bad:,} NaN or infinite value{'s' if bad != 1 else ''}: "
                                  "nothing to predict from")]
    array = array[None] if array.ndim == 2 else array
    return [(f"{path}[{i}]", *_prepare(_as_uint8(a), shape)) for i, a in enumerate(array)]


def _read_image(path: Path, shape: tuple[int, int, int]) -> list[tuple[str, torch.Tensor | None, str]]:
    from PIL import Image, UnidentifiedImageError

    bomb = f"over the {MAX_PIXELS:,} pixels runner reads (a decompression bomb, or a photo to scale down first)"
    try:
        with warnings.catch_warnings():  # PIL's own bomb warning: the size is checked here, below its limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only: the size is known before any pixel is decoded
                width, height = img.size
                if width * height > MAX_PIXELS:
                    return [(str(path), None, f"an image of {width:,} x {height:,} pixels, {bomb}")]
                grey = np.array(img.convert("L"))
    except Image.DecompressionBombError:  # so large that PIL refused even its header
        return [(str(path), None, f"an image {bomb}")]
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
        _, model = load_kept(store, study, trial, Path(tmp), artifacts, module_dir)
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
