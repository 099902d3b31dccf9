"""runner/data/__init__.py: load_data and load_mnist: MNIST from a folder (the course's files or
IDX), the first N images, a stratified validation split (`[data].val_fraction`) and "auto" normalization,
computed from the training images used (the validation images left out)."""
from __future__ import annotations

import gzip
import struct
import sys
import textwrap
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch

import runner.data.user as user_data
from runner.data import MNIST, DataSource, load_data, load_mnist, pixel_stats, stratified_split
from runner.data.base import Split
from runner.errors import DataError

from tests.helpers import MNIST_500, validation_trials as trials
from tests.helpers import run, validation_write  # noqa: F401 - fixtures


# ---------------------------------------------------------------- MNIST from a folder, and the first N images


def test_limits_take_the_first_images(mnist: MNIST):
    small = load_mnist(train_limit=100, test_limit=50)
    assert torch.equal(small.train.images, mnist.train.images[:100])
    assert torch.equal(small.test.labels, mnist.test.labels[:50])
    assert small.checksum != mnist.checksum


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


def test_missing_data_says_what_was_expected(tmp_path):
    with pytest.raises(DataError, match=r"no train data: expected train\.tar"):
        load_mnist(str(tmp_path))
    with pytest.raises(DataError, match="is not a folder"):
        load_mnist(str(tmp_path / "absent"))


# The user's data: 300 train / 100 test 12x12 images of 4 classes, each brightening its band of columns.
MYDATA = '''
import numpy as np


def load(root="data"):
    rng = np.random.default_rng(0)
    out = []
    for n in (300, 100):
        y = np.arange(n) % 4
        x = rng.integers(0, 70, size=(n, 12, 12))
        for c in range(4):
            x[y == c, :, 3 * c:3 * c + 3] += 40 * c + 60  # classes differ in brightness too
        out += [x.astype(np.uint8), y]
    return tuple(out)
'''


@pytest.fixture
def mydata(tmp_path, monkeypatch):
    """mydata.py beside the specs; nothing of it left in this process afterwards."""
    (tmp_path / "mydata.py").write_text(textwrap.dedent(MYDATA))
    monkeypatch.setattr(user_data, "_LOADED", {})
    before = set(sys.modules)
    yield tmp_path / "mydata.py"
    for name in set(sys.modules) - before:
        if name == "mydata":
            del sys.modules[name]


# ---------------------------------------------------------------- stratified_split


def _split() -> Split:
    """340 images of 5 classes in unequal numbers, shuffled; each image holds its own index."""
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 17 + [3] * 3 + [4] * 240)
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]
    index = torch.arange(len(labels))
    images = torch.zeros(len(labels), 4, 4, dtype=torch.uint8)
    images[:, 0, 0], images[:, 0, 1] = index // 256, index % 256
    return Split(images, labels)


def _index(split: Split) -> list[int]:
    return (split.images[:, 0, 0].long() * 256 + split.images[:, 0, 1].long()).tolist()


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.25, 0.5])
def test_stratified_split_keeps_each_classs_proportion(fraction):
    split = _split()
    rest, val = stratified_split(split, fraction, seed=0)
    whole = Counter(split.labels.tolist())
    held = Counter(val.labels.tolist())
    for c, n in whole.items():
        assert held[c] == round(fraction * n), (c, n, held[c])
        assert Counter(rest.labels.tolist())[c] == n - round(fraction * n)
    assert len(rest) + len(val) == len(split)


def test_stratified_split_is_the_same_for_a_seed_and_another_for_another_seed():
    split = _split()
    a_rest, a_val = stratified_split(split, 0.2, seed=0)
    b_rest, b_val = stratified_split(split, 0.2, seed=0)
    c_rest, c_val = stratified_split(split, 0.2, seed=1)
    assert _index(a_val) == _index(b_val) and _index(a_rest) == _index(b_rest)
    assert torch.equal(a_val.labels, b_val.labels) and torch.equal(a_val.images, b_val.images)
    assert _index(a_val) != _index(c_val)
    assert Counter(a_val.labels.tolist()) == Counter(c_val.labels.tolist())  # the same counts, other images


def test_stratified_split_parts_make_up_the_original_without_overlap():
    split = _split()
    rest, val = stratified_split(split, 0.2, seed=3)
    r, v = _index(rest), _index(val)
    assert not set(r) & set(v)
    assert sorted(r + v) == list(range(len(split)))
    assert r == sorted(r) and v == sorted(v)  # the original order kept in each part
    for part, idx in ((rest, r), (val, v)):  # each image keeps its own label
        assert torch.equal(part.labels, split.labels[torch.tensor(idx)])


def test_a_fraction_that_holds_out_nothing_is_refused():
    split = Split(torch.zeros(8, 4, 4, dtype=torch.uint8), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    with pytest.raises(DataError, match="leaves no validation images of 8"):
        stratified_split(split, 0.1, seed=0)


# ---------------------------------------------------------------- "auto" normalization


def test_auto_normalization_is_computed_from_the_training_images_used_and_reported(run, write, mydata, tmp_path):
    # user data defaults to mean = std = "auto"
    spec = write(data='target = "mydata:load"\nval_fraction = 0.2\nval_seed = 5', epochs=1)
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    (t,) = trials()
    data = t.user_attrs["config"]["data"]
    assert t.user_attrs["normalization_auto"] == ["mean", "std"]
    loaded = load_data(DataSource(target="mydata:load", folder=str(tmp_path), args={}))
    used, held = stratified_split(loaded.train, 0.2, 5)
    assert t.user_attrs["train_size"] == len(used) and t.user_attrs["val_size"] == len(held) == 60
    assert (data["mean"], data["std"]) == pixel_stats(used)  # the validation images left out
    assert (data["mean"], data["std"]) != pixel_stats(loaded.train)
    for k in ("mean", "std"):
        assert data[k] == round(data[k], 4) and 0 < data[k] < 1

    out = tmp_path / "report"
    reported = run("report", spec, "--out", out)
    assert reported.exit_code == 0, reported.output
    text = (out / "report.md").read_text()
    assert f"| normalization mean | {data['mean']:g} (auto: computed from the training images) |" in text
    assert f"| normalization std | {data['std']:g} (auto: computed from the training images) |" in text
    assert "| validation images | 60 (val_fraction 0.2, stratified, held out of the training images) |" in text
    assert "| train images | 240 |" in text
    assert "final val acc (%)" in text


def test_mean_auto_written_in_the_spec_stores_the_computed_numbers(run, write):
    spec = write(data=MNIST_500 + '\nval_fraction = 0.2\nmean = "auto"\nstd = "auto"', epochs=1)
    result = run("grid", spec)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    (t,) = trials()
    data = t.user_attrs["config"]["data"]
    used, _ = stratified_split(load_data(DataSource("mnist"), train_limit=500).train, 0.2, 0)
    assert (data["mean"], data["std"]) == pixel_stats(used)
    assert t.user_attrs["normalization_auto"] == ["mean", "std"]
