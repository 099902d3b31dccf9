"""`runner predict`: what a trial's kept model predicts for the user's own images; `runner digit`: a test
image of MNIST as a PNG to try it on.

An input that cannot be read is reported in one line and the others go on; the model's failures are
those of runner.export.find_trial and runner.weights. An image that carries no digit-like content (see
`degenerate`) still gets the model's best guess, with a note saying so. A model whose forward ends in
softmax is read as giving probabilities (runner.models.user.probabilities), never softmaxed twice.
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

from runner.data import load_mnist
from runner.errors import DataError
from runner.export import find_trial
from runner.models.user import probabilities
from runner.store import Store
from runner.weights import KeptError, load_kept

__all__ = ["Prediction", "read_inputs", "degenerate", "predict_images", "prediction_rows", "write_test_digit",
           "IMAGE_SUFFIXES", "MAX_PIXELS", "MIN_SIDE", "MAX_ASPECT", "MIN_CONTRAST"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PIXELS = 50_000_000  # pixels one input may have (a 50-megapixel photo); a larger one is refused unread
# An image with no digit-like content (predicted all the same, with a note): any one of these, as given, before
# it is resized. MNIST's digits are 28x28 with their grey levels spanning 0 to 255.
MIN_SIDE = 8  # pixels: a side shorter than this holds no digit (a 1x1 image)
MAX_ASPECT = 4  # a side over 4 times the other is a line or a strip, not a digit (200x5)
MIN_CONTRAST = 32  # grey levels: brightest minus darkest under 32 of 255 is blank or constant (a white page)


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


def degenerate(image: torch.Tensor) -> str:
    """Why a greyscale image (1, H, W) uint8, as given, carries no digit-like content; "" when it may hold one.

    Any of: a side under MIN_SIDE pixels, a side over MAX_ASPECT times the other, or its grey levels spanning
    fewer than MIN_CONTRAST (blank or constant).
    """
    h, w = image.shape[-2:]
    reasons = []
    if min(h, w) < MIN_SIDE:
        reasons.append(f"{w}x{h}, a side under {MIN_SIDE} pixels")
    elif max(h, w) > MAX_ASPECT * min(h, w):
        reasons.append(f"{w}x{h}, a side over {MAX_ASPECT} times the other")
    lo, hi = int(image.min()), int(image.max())
    if hi - lo < MIN_CONTRAST:
        reasons.append(f"nearly constant: grey levels {lo} to {hi}" if hi > lo else f"constant: every pixel {lo}")
    return f"no digit-like content ({'; '.join(reasons)}): the class is a best guess" if reasons else ""


def _prepare(image: np.ndarray, shape: tuple[int, int, int]) -> tuple[torch.Tensor, str]:
    """An image as the dataset has them: greyscale uint8 (C, H, W) of its size, a light digit on dark."""
    x = torch.from_numpy(np.ascontiguousarray(image))
    x = x[None] if x.dim() == 2 else x  # (C, H, W)
    if x.shape[0] != shape[0]:
        x = x.float().mean(0, keepdim=True).round().to(torch.uint8)
    notes = [note] if (note := degenerate(x)) else []
    if tuple(x.shape[1:]) != tuple(shape[1:]):
        from torchvision.transforms.v2.functional import resize

        notes.append(f"resized from {x.shape[2]}x{x.shape[1]} to {shape[2]}x{shape[1]}")
        x = resize(x, list(shape[1:]), antialias=True)
    if x.float().mean() > 127:  # a dark digit on a light page: the dataset's are light on dark
        x = 255 - x
        notes.append("inverted (light background)")
    return x, "; ".join(notes)


def predict_images(store: Store, study: str, number: int | None, inputs: list[str], artifacts: str | None = None,
                   module_dir: str | None = None) -> tuple[FrozenTrial, list[Prediction]]:
    """What trial `number` (the best when None) predicts for every image of `inputs`.

    A trial of the user's own module finds it where `runner grid` did, unless `module_dir` is given."""
    trial = find_trial(store, study, number)
    with tempfile.TemporaryDirectory() as tmp:
        _, model = load_kept(store, study, trial, Path(tmp), artifacts, module_dir)
    out = []
    for name, image, note in read_inputs(inputs, model.input_shape):
        if image is None:
            out.append(Prediction(name, None, "", None, note))
            continue
        with torch.inference_mode():
            p = probabilities(model(image[None]))[0]  # as they are, from a model that ends in softmax
        k = int(p.argmax())
        out.append(Prediction(name, k, model.class_names[k], float(p[k]), note))
    return trial, out


def prediction_rows(predictions: list[Prediction]) -> list[dict[str, Any]]:
    """The predictions as flat rows (for a table, CSV or JSON)."""
    return [{"input": p.input, "predicted": p.predicted, "class": p.name,
             "probability": None if p.probability is None else round(p.probability, 4), "note": p.note}
            for p in predictions]


def write_test_digit(index: int, out: str | Path) -> int:
    """Write test image `index` of MNIST (the packaged copy) to `out` as a 28x28 greyscale PNG; its label."""
    from PIL import Image

    test = load_mnist("", 1, 0).test
    if not 0 <= index < len(test):
        raise DataError(f"--index {index}: MNIST's test set has {len(test):,} images, 0 to {len(test) - 1:,}")
    out = Path(out)
    if out.is_dir():
        raise KeptError(f"--out {out}: is a folder; give a file name, e.g. {out / 'digit.png'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.images[index].numpy()).save(out, format="PNG")
    except OSError as e:
        raise KeptError(f"--out {out}: cannot write it: {e.strerror or e}") from None
    return int(test.labels[index])
