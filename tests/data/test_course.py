"""runner/data/course.py: the course's train.tar / test.tar of {index}_{label}.png, or their
folders: the same tensors as the official MNIST, a warning for a subset, one line naming a broken file."""
from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from runner.data import load_mnist
from runner.errors import DataError


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
