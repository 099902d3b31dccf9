"""runner/data/idx.py: the MNIST family read the torchvision way, and Fashion-MNIST for real."""
from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from click.testing import CliRunner

from runner.cli import cli
from runner.data import FAMILY, DataSource, load_data, split_checksum
from runner.data.idx import find_idx
from runner.errors import DataError

from tests.helpers import FASHION, needs_fashion


def write_idx(folder: Path, names: tuple[str, str], images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    """An image and a label file in the IDX format (magic 2051 and 2049), as the datasets ship them."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    blobs = (struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes(),
             struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())
    for name, blob in zip(names, blobs):
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(blob) if gz else blob)


def fake_family(root: Path, dataset: str, layout: str, n_train: int = 200, n_test: int = 60, seed: int = 0):
    """Small IDX files of `dataset` under root: torchvision's layout (uncompressed) or a flat folder (.gz)."""
    family = FAMILY[dataset]
    rng = np.random.default_rng(seed)
    folder = root / family.folder / "raw" if layout == "torchvision" else root
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, family.classes, n) + family.label_offset
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        write_idx(folder, family.files[split], images, labels, gz=layout == "flat")
        arrays[split] = images, labels
    return arrays


@pytest.mark.parametrize("dataset", ["kmnist", "emnist_digits", "emnist_letters", "emnist_balanced", "fashion_mnist"])
@pytest.mark.parametrize("layout", ["torchvision", "flat"])
def test_family_members_load_from_either_layout(tmp_path, dataset, layout):
    arrays = fake_family(tmp_path, dataset, layout)
    family = FAMILY[dataset]
    assert find_idx(tmp_path, family, "train")[2] is (layout == "torchvision")  # torchvision's class reads it
    with pytest.warns(UserWarning, match="differs from official") if family.official else _no_warning():
        data = load_data(DataSource(dataset, str(tmp_path)))
    images, labels = arrays["train"]
    assert data.classes == family.classes and data.shape == (1, 28, 28)
    assert torch.equal(data.train.labels, torch.from_numpy(labels.astype(np.int64) - family.label_offset))
    expected = images.transpose(0, 2, 1) if family.transpose else images  # EMNIST is stored transposed
    assert torch.equal(data.train.images, torch.from_numpy(np.ascontiguousarray(expected)))
    assert data.official in (None, False) and data.source.endswith(f"({tmp_path.name})")
    assert str(Path.home()) not in data.source


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_missing_file_names_the_folder_and_the_files_expected(tmp_path):
    fake_family(tmp_path, "kmnist", "flat")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:
        load_data(DataSource("kmnist", str(tmp_path)))
    message = str(e.value)
    assert "\n" not in message and str(tmp_path) in message and "no KMNIST test files" in message
    assert "t10k-images-idx3-ubyte[.gz]" in message and "t10k-labels-idx1-ubyte[.gz]" in message
    assert f"{tmp_path}/KMNIST/raw" in message and "nothing is downloaded" in message
    with pytest.raises(DataError, match="KMNIST has no copy on this machine: set root"):
        load_data(DataSource("kmnist"))


def test_emnist_labels_outside_the_classes_are_refused(tmp_path):
    family = FAMILY["emnist_digits"]
    for split in ("train", "test"):
        write_idx(tmp_path, family.files[split], np.zeros((5, 28, 28)), np.array([0, 1, 2, 3, 12]), gz=False)
    with pytest.raises(DataError, match="labels 0..12 do not fit EMNIST \\(digits\\)'s 10 classes"):
        load_data(DataSource("emnist_digits", str(tmp_path)))


def test_the_data_decides_the_models_outputs(tmp_path, monkeypatch):
    """LeNet-5 on EMNIST letters ends in 26 outputs; a declared model ending in 10 is refused."""
    monkeypatch.chdir(tmp_path)
    fake_family(tmp_path / "emnist", "emnist_letters", "flat", n_train=260, n_test=52)
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[study]
name = "letters"
[data]
dataset = "emnist_letters"
root = "{tmp_path / 'emnist'}"
[train]
epochs = 1
batch_size = 100
[models.lenet5]
arch = "lenet5"
[grid]
model = ["lenet5"]
augment = ["affine"]
""")
    result = CliRunner().invoke(cli, ["grid", str(spec)])
    assert result.exit_code == 0, result.output
    trial = optuna.load_study(study_name="letters", storage="sqlite:///db/runner.sqlite").trials[0]
    assert trial.user_attrs["param_count"] == 61_706 - (84 + 1) * 10 + (84 + 1) * 26
    assert trial.user_attrs["layer_table"][-1][2] == [26] and trial.user_attrs["classes"] == 26
    assert trial.user_attrs["config"]["data"]["mean"] != "auto"  # no published normalization: computed
    declared = spec.read_text().replace('arch = "lenet5"', 'layers = [{ fc = 32 }, { fc = 10 }]').replace(
        'name = "letters"', 'name = "letters10"')
    spec.write_text(declared)
    result = CliRunner().invoke(cli, ["grid", str(spec)])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "[models.lenet5].layers[1] (fc2): the last layer gives the logits: fc = 10, but the data has 26 classes" \
        in result.output


@needs_fashion
def test_fashion_mnist_is_the_official_debian_copy():
    data = load_data(DataSource("fashion_mnist"))
    assert data.official is True and (len(data.train), len(data.test)) == (60_000, 10_000)
    assert data.classes == 10 and (data.mean, data.std) == (0.2860, 0.3530)
    assert split_checksum(data.train) == FAMILY["fashion_mnist"].official["train"]
    assert data.train.labels.bincount().tolist() == [6000] * 10
    assert data.source == "Fashion-MNIST IDX files (fashion-mnist)"


@needs_fashion
def test_a_changed_fashion_copy_loads_with_a_warning(tmp_path):
    for f in FASHION.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    family = FAMILY["fashion_mnist"]
    images, labels = np.zeros((3, 28, 28)), np.array([1, 2, 3])
    write_idx(tmp_path, family.files["test"], images, labels, gz=True)
    with pytest.warns(UserWarning, match="the test split \\(3 images\\) differs from official Fashion-MNIST"):
        data = load_data(DataSource("fashion_mnist", str(tmp_path)), train_limit=100)
    assert data.official is False
