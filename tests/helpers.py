"""What tests in several files share: fixtures they import by name, specs, and small checks.

A fixture declared here with name="project" (or "write", "trained") is imported under its own function
name (`from tests.helpers import tune_project`) and asked for by that name, so that each test reads as it
did when the fixture was defined beside it; a function with a name of its own here is imported under the
name its tests use (`grid_trials as trials`)."""
from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import tempfile
import textwrap
from pathlib import Path

import click
import numpy as np
import optuna
import pytest
import torch
from click.testing import CliRunner

from runner.cli import cli
from runner.data import MNIST
from runner.spec import load_spec, parse_spec
from runner.store import Store


# ---------------------------------------------------------------- running the CLI in a folder of its own


@pytest.fixture
def run(tmp_path, monkeypatch):
    """The CLI, run with tmp_path as the current folder: run("grid", spec) gives click's Result."""
    monkeypatch.chdir(tmp_path)  # the default storage is db/runner.sqlite under the current folder

    def invoke(*args: str):
        return CliRunner().invoke(cli, [str(a) for a in args])
    return invoke


@pytest.fixture
def here(tmp_path, monkeypatch):
    """tmp_path, made the current folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str):
    """The CLI on these arguments (each made a string), in the current folder."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def invoke_ok(*args: str):
    """The CLI on these arguments; it must succeed."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def refused(result, *parts: str) -> str:
    """A refusal: exit code 1, one "Error:" line holding every part, no traceback; that line."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    [line] = [x for x in result.output.splitlines() if x.startswith("Error:")]
    for part in parts:
        assert part in line, (part, line)
    assert "Traceback" not in result.output
    return line


def untouched(folder: Path, before: set[str]) -> None:
    """The folder holds what it held: no database, no folder made."""
    assert {p.name for p in folder.iterdir()} == before  # no database, no folder


def one_line_error(result, text: str) -> None:
    """A failure in one line that holds text, without a traceback."""
    assert result.exit_code != 0
    assert text in result.output, result.output
    assert result.output.strip().count("\n") == 0 and "Traceback" not in result.output, result.output


def help_examples(*words: str) -> list[str]:
    """The examples of `runner WORDS --help`, checked: each on a line of its own, as its docstring writes it
    (a lost \\b runs them together into one paragraph), and each a command line click's parser takes:
    every option of it exists and every value is valid (nothing runs)."""
    result = invoke_ok(*words, "--help")
    command = cli
    for word in words:
        command = command.commands[word]
    written = [line.strip() for line in command.help.splitlines() if line.strip().startswith("runner ")]
    shown = [line.strip() for line in result.output.splitlines() if line.startswith("    runner ")]
    assert written and shown == written, (shown, written)
    for line in shown:
        tokens = shlex.split(line, comments=True)
        tokens = tokens[:next((i for i, t in enumerate(tokens) if t in {">", ">>", "|"}), len(tokens))]
        command, name, rest = cli, "runner", tokens[1:]
        while isinstance(command, click.Group) and rest and rest[0] in command.commands:
            name, command, rest = rest[0], command.commands[rest[0]], rest[1:]
        try:
            command.make_context(name, rest)
        except click.UsageError as e:
            pytest.fail(f"the example {line!r} of `runner {' '.join(words)} --help` does not parse: {e}")
    return shown


DB = Path("db") / "runner.sqlite"  # the default storage, under the current folder


URL = "sqlite:///db/runner.sqlite"


def grid_trials(url: str = "sqlite:///db/runner.sqlite", name: str = "t") -> list[optuna.trial.FrozenTrial]:
    """The trials of a grid's study, by default "t" of db/runner.sqlite (write_spec's)."""
    return optuna.load_study(study_name=name, storage=url).get_trials()


# ---------------------------------------------------------------- specs


@pytest.fixture(name="project")
def spec_project(tmp_path, monkeypatch, write_spec):
    """write_spec, with tmp_path as the current folder."""
    monkeypatch.chdir(tmp_path)
    return write_spec


VALID_SPEC = """
[study]
name = "s"
seeds = [0, 1]
[models.lenet5]
arch = "lenet5"
[models.mlp]
arch = "mlp"
hidden = [74, 40]
dropout = 0.1
[grid]
model = ["lenet5"]
dropout = [0.0, 0.5]
lr = [0.01, 0.05]
[[runs]]
model = "mlp"
"""


# A grid of four two-valued axes (and a constant lr), for [grid].design's fractions (tests/spec/test_designs.py,
# tests/test_schema.py).
FRACTION_SPEC = """
[study]
name = "d"
seeds = [0, 1, 2]
[models.lenet5]
arch = "lenet5"
[models.mlp]
arch = "mlp"
[grid]
model = ["lenet5"]
dropout = [0.0, 0.5]
batch_norm = [false, true]
weight_decay = [0.0, 0.0005]
augment = ["none", "affine"]
lr = [0.05]
"""


TYPO = """
[study]
name = "typo"
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 1
[models.big]
layers = [ { fc = 100000000 }, { fc = 10 } ]
[grid]
model = ["big"]
"""


def one_model_spec(grid: dict | None = None, model: dict | None = None, epochs: int = 1, runs: list | None = None):
    """A one-model spec on 600 training images, batch 100 (6 steps an epoch)."""
    raw = {"study": {"name": "levers"}, "data": {"train_limit": 600, "test_limit": 300},
           "train": {"epochs": epochs, "batch_size": 100, "lr": 0.05},
           "models": {"m": model or {"arch": "mlp", "hidden": [32]}}, "grid": {"model": ["m"], **(grid or {})}}
    if runs:
        raw["runs"] = runs
    return parse_spec(raw, "levers.toml")


def load_spec_text(text: str):
    """load_spec of a spec given as text."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "spec.toml").write_text(text)
        return load_spec(Path(tmp) / "spec.toml")


# ---------------------------------------------------------------- a search (runner tune)


TUNE_SPEC = """
[study]
name = "tu"
seeds = [0, 1]
[data]
train_limit = 600
test_limit = 200
val_fraction = 0.2
[train]
epochs = 3
batch_size = 100
threads = 1
[models.small]
layers = [{ conv = 4, k = 5, name = "c1" }, { pool = "max", k = 2 }, { fc = 10, name = "output" }]
[search]
trials = 6
top = 2
pruner = "median"
[search.space]
lr = { low = 0.01, high = 0.2, log = true }
batch_norm = [false, true]
"small.c1.conv" = { low = 2, high = 8, step = 2 }
"""


@pytest.fixture(name="project")
def tune_project(tmp_path, monkeypatch):
    """tmp_path as the current folder, TUNE_SPEC in it as spec.toml."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text(TUNE_SPEC)
    return tmp_path


def tune_trials(name: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of a study in db/runner.sqlite ("tu-search", "tu-select", "tu")."""
    return optuna.load_study(study_name=name, storage=URL).get_trials()


# ---------------------------------------------------------------- a validation split


VALIDATION_SPEC = '''
[study]
name = "{name}"
seeds = [0]
metric = "{metric}"

[data]
{data}

[train]
epochs = {epochs}
batch_size = 100
lr = 0.05

[models.mlp]
arch = "mlp"
hidden = [16]

[grid]
model = ["mlp"]
'''


MNIST_500 = "train_limit = 500\ntest_limit = 200"


@pytest.fixture(name="write")
def validation_write(tmp_path):
    """Write VALIDATION_SPEC, its [data] and metric filled in, into tmp_path."""
    def write_spec(data: str = MNIST_500, metric: str = "test_acc", name: str = "v", epochs: int = 2,
                   file: str = "spec.toml") -> Path:
        path = tmp_path / file
        path.write_text(VALIDATION_SPEC.format(name=name, metric=metric, data=data, epochs=epochs))
        return path
    return write_spec


def validation_trials(name: str = "v") -> list[optuna.trial.FrozenTrial]:
    """The trials of VALIDATION_SPEC's study in db/runner.sqlite."""
    return optuna.load_study(study_name=name, storage=f"sqlite:///{DB}").get_trials()


def epoch_rows(number: int = 0) -> list[tuple]:
    """(epoch, val_loss, val_acc, test_acc) of a trial, as runner_epochs stores them."""
    with sqlite3.connect(DB) as db:
        return db.execute("select epoch, val_loss, val_acc, test_acc from runner_epochs where trial_number = ? "
                          "order by epoch", (number,)).fetchall()


def header(output: str) -> list[str]:
    """The column names of the first table in a command's output."""
    return output.strip().splitlines()[0].split()


# ---------------------------------------------------------------- training


CPU = torch.device("cpu")


def small(mnist: MNIST, n_train: int = 600, n_test: int = 300) -> MNIST:
    """The first n_train training and n_test test images of MNIST."""
    return MNIST(mnist.train.head(n_train), mnist.test.head(n_test), "test", "x", False)


# ---------------------------------------------------------------- a student's module


STUDENT = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return {last}
"""


# Modules as students write them: LeNet-5 with padding=2 on 28x28 (61,706 parameters), the same ending in softmax,
# an MLP of other widths than the preset's, and a small net with its own batch norm and dropout; none takes an
# argument the runner passes.
STUDENTS = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class SoftLeNet(LeNet5):
    def forward(self, x):
        return F.softmax(super().forward(x), dim=1)


class MLP(nn.Module):
    def __init__(self, hidden=100):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 50), nn.ReLU(),
                                 nn.Linear(50, 10))

    def forward(self, x):
        return self.net(x)


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(8 * 14 * 14, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(self.drop(torch.flatten(x, 1)))
"""


STUDENT_SPEC = """
[study]
name = "student"
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 1
threads = 1
[models.lenet]
target = "model:LeNet5"
{input}
[grid]
model = ["lenet"]
"""


# ---------------------------------------------------------------- a trained project whose weights are kept


@pytest.fixture(scope="module", name="trained")
def kept_trained(tmp_path_factory):
    """A LeNet-5 and an MLP trained on 600 images for 2 epochs, their weights kept."""
    folder = tmp_path_factory.mktemp("kept")
    spec = folder / "spec.toml"
    spec.write_text(textwrap.dedent("""
        [study]
        name = "k"
        [data]
        train_limit = 600
        test_limit = 200
        [train]
        epochs = 2
        batch_size = 50
        lr = 0.05
        threads = 1
        [models.lenet5]
        arch = "lenet5"
        [models.mlp]
        arch = "mlp"
        hidden = [32]
        [grid]
        model = ["lenet5", "mlp"]
        """))
    with pytest.MonkeyPatch.context() as m:
        m.chdir(folder)
        result = invoke("grid", spec)
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(name="project")
def kept_project(trained, tmp_path, monkeypatch):
    """A copy of the trained project, to change as a test likes."""
    shutil.copytree(trained, tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def stored(number: int) -> np.ndarray:
    """The classes a trial of the kept study "k" stored for the test images."""
    store = Store(URL, create=False)
    t = [t for t in optuna.load_study(study_name="k", storage=URL).get_trials() if t.number == number][0]
    return store.predictions([t._trial_id])[t._trial_id].predicted


# ---------------------------------------------------------------- databases and data of other versions and sources


V0 = Path(__file__).parent / "fixtures" / "v0"


@pytest.fixture
def old_db(tmp_path, monkeypatch, restore_old_database) -> tuple[Path, str]:
    """A copy of the old database and its spec, in a folder of their own."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(V0 / "spec.toml", tmp_path / "spec.toml")
    restore_old_database(tmp_path / "runner.sqlite")
    return tmp_path / "spec.toml", f"sqlite:///{tmp_path / 'runner.sqlite'}"


V1 = Path(__file__).parent / "fixtures" / "v1"


FASHION = Path("/usr/share/datasets/fashion-mnist")


needs_fashion = pytest.mark.skipif(not FASHION.is_dir() and os.environ.get("CI") != "true",
                                   reason="apt-get install dataset-fashion-mnist (CI installs it and fails without)")


# ---------------------------------------------------------------- one factor at a time, the test set locked

EXPLORE_SPEC = """
[study]
name = "{name}"
seeds = {seeds}
metric = "val_acc"
test = "locked"

[data]
train_limit = 400
test_limit = 200
val_fraction = 0.25

[train]
epochs = 1
lr = 0.05

[models.lenet5]
arch = "lenet5"

[models.mlp]
arch = "mlp"

[grid]
design = "one-at-a-time"
model = ["lenet5"]
batch_norm = [false, true]
augment = ["none", "affine"]
across = {{ epochs = [1, 2] }}

[[runs]]
model = "mlp"
"""


def explore_spec(tmp_path: Path, name: str = "explore", seeds: str = "[0, 1]", text: str = EXPLORE_SPEC) -> Path:
    """A small exploration: test locked, batch_norm and affine one at a time against plain LeNet-5 at 1 and 2
    epochs, the MLP at both; 2 seeds, 400 training images: 12 trials, a few seconds."""
    path = tmp_path / f"{name}.toml"
    path.write_text(text.format(name=name, seeds=seeds))
    return path


def shipped_spec(path: Path):
    """A spec of specs/ as a fresh clone reads it: a teacher's study (runner/spec/teacher.py) not in any storage, so
    its points' hashes do not depend on what this machine has trained."""
    return load_spec(path, missing_code_ok=True, storage=str(Path(tempfile.gettempdir()) / "runner-no-such.sqlite"))
