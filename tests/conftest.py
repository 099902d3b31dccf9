"""Shared fixtures: small specs on data subsets, so that every test trains in about a second."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.data import MNIST, load_mnist

OLD_DATABASE = Path(__file__).parent / "fixtures" / "v0" / "runner.sql"  # made by the code at f02d618


@pytest.fixture
def restore_old_database():
    """Restore the database the code at f02d618 made (tests/fixtures/v0) from its SQL dump, at a path."""
    import sqlite3

    def restore(path: Path) -> Path:
        with sqlite3.connect(path) as db:
            db.executescript(OLD_DATABASE.read_text())
        return path
    return restore

SMALL_SPEC = """
[study]
name = "{name}"
seeds = {seeds}
metric = "test_acc"

[data]
train_limit = 600
test_limit = 300

[train]
epochs = {epochs}
batch_size = 100
lr = 0.05

[models.lenet5]
arch = "lenet5"

[models.mlp]
arch = "mlp"
hidden = [32]

[grid]
model = {models}
batch_norm = {batch_norm}
"""


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    """The packaged MNIST, full size (converted once, then read from the cache)."""
    return load_mnist()


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec file: either SMALL_SPEC with fields filled in, or the text given."""
    def write(text: str | None = None, name: str = "spec.toml", **fields) -> Path:
        if text is None:
            values = {"name": "t", "seeds": "[0]", "epochs": 1, "models": '["lenet5"]',
                      "batch_norm": "[false, true]", **fields}
            text = SMALL_SPEC.format(**values)
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write
