"""The MNIST family from IDX files, read with torchvision's own dataset classes and readers.

A dataset's four files (`train-images-idx3-ubyte` ..., optionally `.gz`) are looked for in
torchvision's layout, `<root>/<ClassName>/raw/`, then directly in `<root>`. Files in
torchvision's layout, uncompressed, are read by torchvision's class itself (`FashionMNIST(root,
download=False)`); any other copy by its readers (`read_image_file`, `read_label_file`). Nothing
is downloaded. A copy that differs from the pinned official one loads with a warning.
"""
from __future__ import annotations

import gzip
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from runner.data.base import Raw, Split, split_checksum
from runner.data.packaged import OFFICIAL as MNIST_OFFICIAL
from runner.errors import DataError

__all__ = ["Family", "FAMILY", "EMNIST_SPLITS", "find_idx", "read_idx", "load_idx"]

STANDARD_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass(frozen=True)
class Family:
    """One dataset of the MNIST family: where its files are, what they hold, what is official."""

    name: str  # the spec's [data].dataset
    title: str  # as the report names it
    folder: str  # torchvision's class name: files under <root>/<folder>/raw/
    classes: int
    files: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(STANDARD_FILES))
    mean: float | None = None  # the default normalization, from the official training split; None: "auto"
    std: float | None = None
    official: dict[str, str] | None = None  # split_checksum of the official splits
    default_root: str = ""  # where the files are when [data].root is ""
    label_offset: int = 0  # subtracted from the stored labels (EMNIST letters store 1..26)
    transpose: bool = False  # EMNIST stores each image transposed
    emnist_split: str = ""

    def torchvision_dataset(self, root: Path, train: bool) -> Any:
        """torchvision's dataset class over `root`, never downloading."""
        from torchvision import datasets

        if self.emnist_split:
            return datasets.EMNIST(str(root), split=self.emnist_split, train=train, download=False)
        return getattr(datasets, self.folder)(str(root), train=train, download=False)


EMNIST_SPLITS = {"digits": 10, "letters": 26, "balanced": 47, "byclass": 62, "bymerge": 47, "mnist": 10}


def _emnist(split: str) -> Family:
    files = {s: (f"emnist-{split}-{s}-images-idx3-ubyte", f"emnist-{split}-{s}-labels-idx1-ubyte")
             for s in ("train", "test")}
    return Family(f"emnist_{split}", f"EMNIST ({split})", "EMNIST", EMNIST_SPLITS[split], files,
                  label_offset=1 if split == "letters" else 0, transpose=True, emnist_split=split)


FAMILY: dict[str, Family] = {
    "mnist": Family("mnist", "MNIST", "MNIST", 10, mean=0.1307, std=0.3081, official=MNIST_OFFICIAL),
    # mean and std of the official 60,000 training images (0.286041, 0.353024), as for MNIST's
    "fashion_mnist": Family("fashion_mnist", "Fashion-MNIST", "FashionMNIST", 10, mean=0.2860, std=0.3530,
                            official={"train": "16d82e2b505296aa2b78bd5ea0992634f30419a4c97def7c907d154a35ac6157",
                                      "test": "9f1ec356a747bfe4ebab3cfb722d3694c9ca737e2570f6f90cf31d7b6fd689d4"},
                            default_root="/usr/share/datasets/fashion-mnist"),  # Debian: dataset-fashion-mnist
    # No offline copy to compute defaults from: normalization is "auto" unless the spec gives it.
    "kmnist": Family("kmnist", "KMNIST", "KMNIST", 10),
    **{f"emnist_{s}": _emnist(s) for s in EMNIST_SPLITS},
}


def find_idx(root: Path, family: Family, split: str) -> tuple[Path, Path, bool] | None:
    """(images, labels, in torchvision's layout uncompressed) of one split, or None."""
    for folder, layout in ((root / family.folder / "raw", True), (root, False)):
        found = []
        for base in family.files[split]:
            path = next((folder / f"{base}{ext}" for ext in ("", ".gz") if (folder / f"{base}{ext}").is_file()), None)
            if path is None:
                break
            found.append(path)
        else:
            return found[0], found[1], layout and all(p.suffix != ".gz" for p in found)
    return None


def load_idx(family: Family, root: Path) -> Raw:
    """Both splits of a family member from `root`, checked against its official checksums."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder for {family.title}; {_expected(family, root)}")
    splits = {}
    for name in ("train", "test"):
        found = find_idx(root, family, name)
        if found is None:
            raise DataError(f"{root}: no {family.title} {name} files; {_expected(family, root, name)}")
        images_path, labels_path, torchvision_layout = found
        split = (_from_torchvision(family, root, name == "train") if torchvision_layout
                 else read_idx(images_path, labels_path))
        splits[name] = _prepare(family, split, images_path)
    sums = {n: split_checksum(s) for n, s in splits.items()}
    official = None if family.official is None else sums == family.official
    if official is False:
        for n, s in splits.items():
            if sums[n] != family.official[n]:  # type: ignore[index]
                warnings.warn(f"{root}: the {n} split ({len(s):,} images) differs from official {family.title}; "
                              "results are not comparable to published ones", stacklevel=3)
    return Raw(splits["train"], splits["test"], f"{family.title} IDX files ({root.name or root})", sums, official)


def _expected(family: Family, root: Path, split: str | None = None) -> str:
    names = [f for s in (split,) if s for f in family.files[s]] if split else \
        [f for s in ("train", "test") for f in family.files[s]]
    hint = " (Debian: apt-get install dataset-fashion-mnist)" if family.name == "fashion_mnist" else ""
    return (f"expected {', '.join(n + '[.gz]' for n in names)} in {root} or in {root / family.folder / 'raw'}; "
            f"nothing is downloaded{hint}")


def _from_torchvision(family: Family, root: Path, train: bool) -> Split:
    try:
        d = family.torchvision_dataset(root, train)
    except Exception as e:  # noqa: BLE001 - torchvision raises RuntimeError or asserts on a bad file
        raise DataError(f"{root / family.folder / 'raw'}: torchvision's {family.folder} cannot read it "
                        f"({type(e).__name__}: {e})") from None
    return Split(d.data.to(torch.uint8).contiguous(), d.targets.to(torch.int64))


def _prepare(family: Family, split: Split, where: Path) -> Split:
    images, labels = split.images, split.labels - family.label_offset
    if family.transpose:
        images = images.transpose(1, 2).contiguous()  # stored column-major: upright, as MNIST's digits
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= family.classes):
        raise DataError(f"{where}: labels {int(labels.min()) + family.label_offset}.."
                        f"{int(labels.max()) + family.label_offset} do not fit {family.title}'s {family.classes} classes")
    return Split(images, labels)


def read_idx(images_path: Path, labels_path: Path) -> Split:
    """One split from an image and a label IDX file (either may be .gz), by torchvision's readers."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    with tempfile.TemporaryDirectory() as tmp:  # torchvision's readers take an uncompressed file
        paths = []
        for p in (images_path, labels_path):
            if p.suffix == ".gz":
                raw = Path(tmp) / p.stem
                try:
                    raw.write_bytes(gzip.decompress(p.read_bytes()))
                except (OSError, EOFError, gzip.BadGzipFile) as e:
                    raise DataError(f"{p}: corrupt gzip ({e})") from None
                p = raw
            paths.append(p)
        images = _read_one(read_image_file, paths[0], images_path, "an IDX image file (magic 2051)")
        labels = _read_one(read_label_file, paths[1], labels_path, "an IDX label file (magic 2049)")
    if images.dim() != 3 or len(images) != len(labels):
        raise DataError(f"{images_path}: {tuple(images.shape)} images for {len(labels)} labels; expected (N, H, W)")
    return Split(images.to(torch.uint8).contiguous(), labels.to(torch.int64))


def _read_one(reader: Callable[[str], torch.Tensor], path: Path, shown: Path, expected: str) -> torch.Tensor:
    try:
        return reader(str(path))
    except Exception as e:  # noqa: BLE001 - torchvision asserts, numpy raises ValueError on short files
        raise DataError(f"{shown}: corrupt or truncated, expected {expected} ({type(e).__name__}: {e})") from None
