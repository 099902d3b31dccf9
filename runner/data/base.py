"""What every data source gives: splits as uint8 tensors, where they came from, and checksums."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

__all__ = ["DataSource", "Split", "Raw", "Data", "split_checksum", "combine", "cache_dir"]


@dataclass(frozen=True)
class DataSource:
    """Where the images come from: a dataset of the MNIST family and its folder, or the user's function."""

    dataset: str = "mnist"  # a name of the MNIST family (idx.FAMILY); ignored when target is set
    root: str = ""  # "" = the copy on this machine; else a folder
    target: str = ""  # "module:function" of the user's data; "" = none
    args: dict[str, Any] = field(default_factory=dict)  # its keyword arguments
    folder: str = ""  # searched first for target's module (the spec's folder)
    sha256: str = ""  # of target's module: changed code, new data


@dataclass(frozen=True)
class Split:
    """One split held in memory."""

    images: torch.Tensor  # (N, H, W) or (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64, 0..classes-1

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int) -> Split:
        """The first n images (all of them if n is 0)."""
        return self if n <= 0 or n >= len(self) else Split(self.images[:n], self.labels[:n])

    def take(self, index: torch.Tensor) -> Split:
        """The images at `index`, in its order."""
        return Split(self.images[index], self.labels[index])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        s = tuple(self.images.shape[1:])
        return (1, *s) if len(s) == 2 else s  # type: ignore[return-value]


@dataclass(frozen=True)
class Raw:
    """What a source returns: both splits, where they came from, and what is known of them."""

    train: Split
    test: Split
    source: str  # a file or package name, never a home folder's path
    checksums: dict[str, str] = field(default_factory=dict)  # split -> split_checksum, if already known
    official: bool | None = None  # both splits equal the dataset's official files; None: no such thing


@dataclass(frozen=True)
class Data:
    """The data a trial trains on, as loaded for a spec."""

    train: Split  # what training uses (without the validation images)
    test: Split
    source: str
    checksum: str  # of train (before the validation split) and test as used: the trial's data checksum
    official: bool | None
    dataset: str = "mnist"  # the spec's [data].dataset, or "user"
    classes: int = 10
    val: Split | None = None  # held out of the training images, stratified
    mean: float = 0.1307  # normalization used (computed when the spec says "auto")
    std: float = 0.3081

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return self.train.shape

    def untested(self) -> Data:
        """The same data without its test images: what a search's trials get (they never see test)."""
        return replace(self, test=Split(self.test.images[:0], self.test.labels[:0]))


def split_checksum(split: Split) -> str:
    """SHA-256 over the uint8 images then the labels as uint8 (int64 when there are over 256 classes)."""
    h = hashlib.sha256()
    h.update(split.images.contiguous().numpy().tobytes())
    labels = split.labels.to(torch.uint8) if len(split) == 0 or int(split.labels.max()) < 256 else split.labels
    h.update(labels.contiguous().numpy().tobytes())
    return h.hexdigest()


def combine(*checksums: str) -> str:
    """One short checksum of several."""
    return hashlib.sha256("".join(checksums).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Where converted data is cached: $RUNNER_CACHE, else ~/.cache/runner."""
    return Path(os.environ.get("RUNNER_CACHE") or Path.home() / ".cache" / "runner")
