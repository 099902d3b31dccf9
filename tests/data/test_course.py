from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from runner.data import packaged as data_module
from runner.data import OFFICIAL, MNIST, load_mnist, split_checksum
from runner.errors import DataError


def test_packaged_copy_is_official_mnist(mnist: MNIST):
    assert (len(mnist.train), len(mnist.test)) == (60_000, 10_000)
    assert mnist.train.images.dtype == torch.uint8 and mnist.train.images.shape == (60_000, 28, 28)
    assert mnist.train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the official order
    assert mnist.test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist.official
    assert split_checksum(mnist.train) == OFFICIAL["train"]
    # the course's normalization constants are the statistics of this training set
    x = mnist.train.images.float() / 255
    assert x.mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert x.std().item() == pytest.approx(0.3081, abs=1e-4)


def test_limits_take_the_first_images(mnist: MNIST):
    small = load_mnist(train_limit=100, test_limit=50)
    assert torch.equal(small.train.images, mnist.train.images[:100])
    assert torch.equal(small.test.labels, mnist.test.labels[:50])
    assert small.checksum != mnist.checksum


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def write_course_tar(path: Path, images: torch.Tensor, labels: torch.Tensor, shuffle: bool = True) -> None:
    order = list(range(len(labels)))
    if shuffle:
        order.reverse()  # the archive's order must not matter: images are sorted by index
    with tarfile.open(path, "w") as tar:
        for i in order:
            blob = _png(images[i].numpy())
            info = tarfile.TarInfo(f"{path.stem}/{i}_{int(labels[i])}.png")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_course_tars_load_to_the_same_tensors_with_a_warning_for_a_subset(tmp_path, mnist):
    write_course_tar(tmp_path / "train.tar", mnist.train.images[:300], mnist.train.labels[:300])
    write_course_tar(tmp_path / "test.tar", mnist.test.images[:100], mnist.test.labels[:100])
    with pytest.warns(UserWarning, match="differs from official MNIST"):
        got = load_mnist(str(tmp_path))
    assert torch.equal(got.train.images, mnist.train.images[:300])
    assert torch.equal(got.train.labels, mnist.train.labels[:300])
    assert torch.equal(got.test.images, mnist.test.images[:100])
    assert not got.official


def test_test_tar_copied_as_train_tar_loads_with_a_warning(tmp_path, mnist):
    write_course_tar(tmp_path / "test.tar", mnist.test.images[:50], mnist.test.labels[:50])
    shutil.copy(tmp_path / "test.tar", tmp_path / "train.tar")
    with pytest.warns(UserWarning) as caught:
        got = load_mnist(str(tmp_path))
    messages = [str(w.message) for w in caught]
    assert any("the train split (50 images) differs from official" in m for m in messages), messages
    assert any("the test split (50 images) differs from official" in m for m in messages), messages
    assert torch.equal(got.train.images, got.test.images)


def test_extracted_png_folders_load_too(tmp_path, mnist):
    for name, split in (("train", mnist.train), ("test", mnist.test)):
        (tmp_path / name).mkdir()
        for i in range(20):
            (tmp_path / name / f"{i}_{int(split.labels[i])}.png").write_bytes(_png(split.images[i].numpy()))
    with pytest.warns(UserWarning):
        got = load_mnist(str(tmp_path))
    assert torch.equal(got.test.images, mnist.test.images[:20])


def write_idx(folder: Path, mnist: MNIST, compress: bool) -> None:
    for name, split in (("train", mnist.train), ("t10k", mnist.test)):
        n = len(split)
        files = {f"{name}-images-idx3-ubyte": struct.pack(">IIII", 2051, n, 28, 28) + split.images.numpy().tobytes(),
                 f"{name}-labels-idx1-ubyte": struct.pack(">II", 2049, n) + split.labels.to(torch.uint8).numpy().tobytes()}
        for fname, blob in files.items():
            if compress:
                (folder / f"{fname}.gz").write_bytes(gzip.compress(blob, compresslevel=1))
            else:
                (folder / fname).write_bytes(blob)


def test_full_idx_files_are_recognised_as_official(tmp_path, mnist):
    raw = tmp_path / "MNIST" / "raw"  # torchvision's layout
    raw.mkdir(parents=True)
    write_idx(raw, mnist, compress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = load_mnist(str(tmp_path))
    assert got.official and got.checksum == mnist.checksum


def test_truncated_idx_names_the_file(tmp_path, mnist):
    write_idx(tmp_path, mnist, compress=False)
    images = tmp_path / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: corrupt or truncated, expected an IDX image file"):
        load_mnist(str(tmp_path))


@pytest.mark.parametrize("cut", ["mid-member", "between-members"])
def test_truncated_tar_names_the_file(tmp_path, mnist, cut):
    write_course_tar(tmp_path / "train.tar", mnist.train.images[:50], mnist.train.labels[:50])
    write_course_tar(tmp_path / "test.tar", mnist.test.images[:50], mnist.test.labels[:50])
    blob = (tmp_path / "test.tar").read_bytes()
    if cut == "mid-member":
        blob = blob[: len(blob) // 2]
    else:  # every member whole, the end-of-archive blocks gone
        blob = blob[: -(-len(blob.rstrip(b"\0")) // 512) * 512]
    (tmp_path / "test.tar").write_bytes(blob)
    with pytest.raises(DataError, match=r"test\.tar"):
        load_mnist(str(tmp_path))


def test_corrupt_png_names_the_member(tmp_path, mnist):
    write_course_tar(tmp_path / "train.tar", mnist.train.images[:5], mnist.train.labels[:5])
    with tarfile.open(tmp_path / "test.tar", "w") as tar:
        info = tarfile.TarInfo("test/0_7.png")
        info.size = 10
        tar.addfile(info, io.BytesIO(b"not a png!"))
    with pytest.raises(DataError, match=r"test\.tar:test/0_7\.png: not a readable PNG"):
        load_mnist(str(tmp_path))


def test_missing_data_says_what_was_expected(tmp_path):
    with pytest.raises(DataError, match=r"no train data: expected train\.tar"):
        load_mnist(str(tmp_path))
    with pytest.raises(DataError, match="is not a folder"):
        load_mnist(str(tmp_path / "absent"))


class _Evil:
    def __reduce__(self):
        return (print, ("owned",))


def test_the_pickle_reader_refuses_anything_but_arrays(tmp_path, monkeypatch):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump((_Evil(),), f)
    monkeypatch.setattr(data_module, "PACKAGE_SHA256", data_module._sha256_file(path))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        data_module._convert_pickle(path)


def test_a_pickle_with_another_checksum_is_not_opened(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump((_Evil(),), f)
    with pytest.raises(DataError, match="is not the pinned"):
        data_module._convert_pickle(path)


def test_a_corrupt_cache_is_rebuilt(tmp_path, monkeypatch, mnist):
    monkeypatch.setenv("RUNNER_CACHE", str(tmp_path))
    (tmp_path / data_module.CACHE_NAME).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt cache .*converting again"):
        rebuilt = load_mnist()
    assert rebuilt.official and torch.equal(rebuilt.test.images, mnist.test.images)
    assert load_mnist().source.startswith("runner cache")  # and the cache is whole again
