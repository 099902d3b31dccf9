"""The course's PNG archives: `train.tar` / `test.tar` of `{index}_{label}.png`, or their folders.

The course ships MNIST as two tar archives of 28x28 grey PNGs named `{index}_{label}.png` (by
default under /data/MNIST_assignment/); their extracted `train/` and `test/` folders load too.
Images are sorted by index, so the order is the archive's numbering, not its member order.
"""
from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import numpy as np
import torch

from runner.data.base import Split
from runner.errors import DataError

__all__ = ["PNG_NAME", "has_course_split", "load_course_split"]

PNG_NAME = re.compile(r"(?:.*/)?(\d+)_(\d)\.png$")


def has_course_split(root: Path, name: str) -> bool:
    """Whether `root` holds the course's `name`.tar or `name`/ folder of PNGs."""
    return (root / f"{name}.tar").is_file() or (root / name).is_dir()


def load_course_split(root: Path, name: str) -> Split:
    """One split from `root/name.tar`, else from the folder `root/name/`."""
    tar = root / f"{name}.tar"
    if tar.is_file():
        return _read_tar(tar)
    return _read_png_folder(root / name)


def _decode_png(data: bytes, where: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.mode != "L":
                im = im.convert("L")
            pixels = np.asarray(im, dtype=np.uint8)
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds for a bad file
        raise DataError(f"{where}: not a readable PNG ({e})") from None
    if pixels.shape != (28, 28):
        raise DataError(f"{where}: image is {pixels.shape[1]}x{pixels.shape[0]}, expected 28x28 grey")
    return pixels


def _assemble(items: list[tuple[int, int, np.ndarray]], where: str) -> Split:
    """(index, label, pixels) in any order -> a Split sorted by index."""
    if not items:
        raise DataError(f"{where}: no {{index}}_{{label}}.png images found")
    items.sort(key=lambda t: t[0])
    indices = [t[0] for t in items]
    if len(set(indices)) != len(indices):
        dup = next(i for a, i in zip(indices, indices[1:]) if a == i)
        raise DataError(f"{where}: index {dup} appears twice")
    images = torch.from_numpy(np.stack([t[2] for t in items]))
    labels = torch.tensor([t[1] for t in items], dtype=torch.int64)
    return Split(images, labels)


def _read_tar(path: Path) -> Split:
    items = []
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                m = PNG_NAME.match(member.name)
                if not member.isfile() or not m:
                    continue
                data = tar.extractfile(member).read()
                if len(data) != member.size:
                    raise EOFError(f"{member.name} has {len(data)} of its {member.size} bytes")
                items.append((int(m[1]), int(m[2]), _decode_png(data, f"{path}:{member.name}")))
            end = tar.offset  # tarfile stops quietly where a cut archive ends: check for the end marker
        with open(path, "rb") as f:
            f.seek(end)
            if f.read(1024) != bytes(1024):
                raise EOFError(f"no end-of-archive marker after byte {end}")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{path}: corrupt or truncated tar archive ({e}); expected PNGs named "
                        "{index}_{label}.png") from None
    return _assemble(items, str(path))


def _read_png_folder(folder: Path) -> Split:
    items = []
    for path in folder.rglob("*.png"):
        m = PNG_NAME.match(path.name)
        if m:
            items.append((int(m[1]), int(m[2]), _decode_png(path.read_bytes(), str(path))))
    return _assemble(items, str(folder))
