"""The user's own data: `[data] target = "mydata:load"`, a function returning four arrays.

    load(**args) -> (train_images, train_labels, test_images, test_labels)

Images as numpy arrays or tensors, uint8 in 0..255 or float in [0, 1], shaped (N, H, W) or
(N, C, H, W); labels integers 0..K-1. Everything is checked before the database is touched, each
problem in one line. The function runs once per process (its result is kept for the next trial).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from runner.data.base import Raw, Split, split_checksum
from runner.errors import DataError, RunnerError
from runner.machine import available_bytes, mib
from runner.usercode import load_target, locate

__all__ = ["load_user"]

_LOADED: dict[tuple[str, str, str, str], Raw] = {}  # (target, args, folder, source sha256) -> result


def load_user(target: str, args: dict[str, Any], folder: str, sha256: str = "") -> Raw:
    """Call the user's function (once per process for the same file and args) and check what it gives."""
    key = (target, json.dumps(args, sort_keys=True, default=str), folder, sha256)
    if key not in _LOADED:
        _LOADED[key] = _call(target, args, folder)
    return _LOADED[key]


def _call(target: str, args: dict[str, Any], folder: str) -> Raw:
    where = f"[data].target {target}"
    try:
        function = load_target(target, folder)
    except RunnerError as e:
        raise DataError(f"{where}: {e}") from None
    try:
        out = function(**args)
    except Exception as e:  # noqa: BLE001 - any error in the user's function is theirs to see, in one line
        text = str(e).strip().splitlines()
        raise DataError(f"{where}: {target}(**args) raised {type(e).__name__}: {text[0] if text else ''}") from None
    if not isinstance(out, (tuple, list)) or len(out) != 4:
        got = f"{len(out)} values" if isinstance(out, (tuple, list)) else f"a {type(out).__name__}"
        raise DataError(f"{where}: must return (train_images, train_labels, test_images, test_labels); it returned {got}")
    train = _split(where, "train", out[0], out[1])
    test = _split(where, "test", out[2], out[3])
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(f"{where}: train images are {tuple(train.images.shape[1:])}, test images "
                        f"{tuple(test.images.shape[1:])}: they must have one shape")
    classes = int(train.labels.max()) + 1
    if int(test.labels.max()) >= classes:
        raise DataError(f"{where}: test labels go up to {int(test.labels.max())}, but the train labels "
                        f"only to {classes - 1}: labels are 0..K-1 with every class in the training split")
    path = locate(target, folder)
    source = f"{target} ({path.name if path else 'user function'})"
    return Raw(train, test, source, {n: split_checksum(s) for n, s in (("train", train), ("test", test))}, None)


def _array(where: str, what: str, x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)):
        try:
            return np.asarray(x)
        except ValueError as e:
            raise DataError(f"{where}: {what} is a ragged list ({e})") from None
    raise DataError(f"{where}: {what} is a {type(x).__name__}; give a numpy array or a tensor")


def _split(where: str, name: str, images: Any, labels: Any) -> Split:
    x, y = _array(where, f"{name} images", images), _array(where, f"{name} labels", labels)
    if (x.ndim and len(x) == 0) or (y.ndim and len(y) == 0):  # len() of a 0-d array (one number) raises
        raise DataError(f"{where}: the {name} split is empty")
    if x.ndim not in (3, 4):
        raise DataError(f"{where}: {name} images are shaped {x.shape}; expected (N, H, W) or (N, C, H, W)")
    if 0 in x.shape[1:]:
        raise DataError(f"{where}: {name} images are shaped {x.shape}: each image is empty")
    if y.ndim != 1:
        raise DataError(f"{where}: {name} labels are shaped {y.shape}; expected (N,)")
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x):,} {name} images but {len(y):,} labels")
    return Split(torch.from_numpy(_pixels(where, name, x)), torch.from_numpy(_labels(where, name, y)))


CHUNK_BYTES = 64 * 2**20  # converted at once: a float array becomes uint8 without a float64 copy of it all


def _pixels(where: str, name: str, x: np.ndarray) -> np.ndarray:
    in_place = x.dtype == np.uint8 and x.flags.writeable and x.flags.c_contiguous
    need = 0 if in_place else x.size * (1 if x.dtype == np.uint8 else 2)  # the uint8 copy (and a float check's)
    have, there = available_bytes() if need else (0, "")  # no copy to make: nothing to ask the machine
    if need > have:
        raise DataError(f"{where}: {name} images {tuple(x.shape)} ({x.dtype}) would take about {mib(need)} once "
                        f"converted to uint8, more than the {mib(have)} {there}")
    if x.dtype == np.uint8:  # a copy if read-only (np.load with mmap_mode="r"): torch warns of such an array
        return np.ascontiguousarray(x) if x.flags.writeable else np.array(x, order="C")
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            bad = "NaN" if np.isnan(x).any() else "an infinite value"
            raise DataError(f"{where}: {name} images hold {bad}")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise DataError(f"{where}: float {name} images must lie in [0, 1]; they span [{lo:g}, {hi:g}] "
                            "(give uint8 0..255 for raw pixels)")
        out = np.empty(x.shape, np.uint8)
        step = max(1, CHUNK_BYTES // max(1, 8 * x[0].size))  # images per float64 chunk
        for i in range(0, len(x), step):
            out[i:i + step] = np.rint(x[i:i + step].astype(np.float64) * 255)
        return out
    raise DataError(f"{where}: {name} images are {x.dtype}; give uint8 in 0..255 or float in [0, 1]")


def _labels(where: str, name: str, y: np.ndarray) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not (y == np.round(y)).all():
            raise DataError(f"{where}: {name} labels must be integers 0..K-1; some are not whole numbers")
        y = y.astype(np.int64)
    elif not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        raise DataError(f"{where}: {name} labels are {y.dtype}; give integers 0..K-1")
    if int(y.min()) < 0:
        raise DataError(f"{where}: {name} labels must be integers 0..K-1; the smallest is {int(y.min())}")
    if int(y.max()) > 10_000:
        raise DataError(f"{where}: {name} labels go up to {int(y.max())}: more classes than the runner takes (10,000)")
    return y.astype(np.int64)

