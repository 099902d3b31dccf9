"""A validation split (`[data].val_fraction`), validation metrics, and "auto" normalization.

`stratified_split` on its own; then `runner grid` on small subsets: val_loss / val_acc stored per
epoch, the rest trained on, `[study].metric = "val_acc"` as the trial's value and Optuna's
intermediate values, `runner trials` / `runner show` / the report showing them, and the normalization
computed from the training images used (the validation images left out).
"""
from __future__ import annotations

import sqlite3
import sys
import textwrap
from collections import Counter
from pathlib import Path

import optuna
import pytest
import torch
from click.testing import CliRunner, Result

import runner.data.user as user_data
import runner.trials.lifecycle as lifecycle_module
from runner.cli import cli
from runner.data import load_data, pixel_stats, stratified_split
from runner.data.base import Split
from runner.errors import DataError

DB = Path("db") / "runner.sqlite"

SPEC = '''
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
def run(tmp_path, monkeypatch):
    """Run the CLI with tmp_path as the current folder (db/runner.sqlite is the default storage)."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args: object) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args])
    return invoke


@pytest.fixture
def write(tmp_path):
    def write_spec(data: str = MNIST_500, metric: str = "test_acc", name: str = "v", epochs: int = 2,
                   file: str = "spec.toml") -> Path:
        path = tmp_path / file
        path.write_text(SPEC.format(name=name, metric=metric, data=data, epochs=epochs))
        return path
    return write_spec


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


def trials(name: str = "v") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{DB}").get_trials()


def epoch_rows(number: int = 0) -> list[tuple]:
    with sqlite3.connect(DB) as db:
        return db.execute("select epoch, val_loss, val_acc, test_acc from runner_epochs where trial_number = ? "
                          "order by epoch", (number,)).fetchall()


def header(output: str) -> list[str]:
    """The column names of the first table in a command's output."""
    return output.strip().splitlines()[0].split()


def expected_val_size(labels: torch.Tensor, fraction: float) -> int:
    return sum(round(fraction * n) for n in Counter(labels.tolist()).values())


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


# ---------------------------------------------------------------- runner grid with a validation split


def test_grid_with_a_validation_split_stores_val_metrics_each_epoch_and_trains_on_the_rest(run, write):
    spec = write(data=MNIST_500 + "\nval_fraction = 0.2")
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    (t,) = trials()
    a = t.user_attrs
    labels = load_data("mnist", train_limit=500).train.labels
    assert a["val_size"] == expected_val_size(labels, 0.2) and 80 <= a["val_size"] <= 120
    assert a["train_size"] + a["val_size"] == 500
    assert a["config"]["data"]["val_fraction"] == 0.2 and a["config"]["data"]["val_seed"] == 0
    rows = epoch_rows()
    assert [r[0] for r in rows] == [1, 2]
    for _, val_loss, val_acc, _ in rows:
        assert val_loss is not None and val_loss > 0 and 0 <= val_acc <= 100
    assert t.value == rows[-1][3]  # metric test_acc: the value is still the test accuracy

    listed = run("trials", "--study", "v")
    assert listed.exit_code == 0, listed.output
    assert {"val_acc", "val_loss", "test_acc"} <= set(header(listed.output))
    cells = dict(zip(header(listed.output), listed.output.strip().splitlines()[2].split()))
    assert cells["val_acc"] == f"{rows[-1][2]:.2f}" and cells["val_loss"] == f"{rows[-1][1]:.4f}"

    shown = run("show", "--study", "v", "0")
    assert shown.exit_code == 0, shown.output
    epochs = shown.output.split("\nepochs:\n")[1].strip().splitlines()
    assert epochs[0].split()[:5] == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    for line, (epoch, val_loss, val_acc, _) in zip(epochs[2:], rows):
        cells = line.split()
        assert cells[0] == str(epoch) and f"{val_loss:.4f}" in cells and f"{val_acc:.2f}" in cells
    assert len(epochs) == 2 + len(rows)


def test_a_study_ranked_by_val_acc_stores_it_as_value_and_intermediate_values(run, write):
    spec = write(data=MNIST_500 + "\nval_fraction = 0.2", metric="val_acc")
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    (t,) = trials()
    rows = epoch_rows()
    assert t.value == rows[-1][2]
    assert t.intermediate_values == {epoch: val_acc for epoch, _, val_acc, _ in rows}
    assert any(val_acc != test_acc for _, _, val_acc, test_acc in rows)  # not the test accuracy
    assert optuna.load_study(study_name="v", storage=f"sqlite:///{DB}").direction == \
        optuna.study.StudyDirection.MAXIMIZE


def test_a_study_ranked_by_val_loss_stores_the_final_val_loss_and_minimizes(run, write):
    result = run("grid", write(data=MNIST_500 + "\nval_fraction = 0.2", metric="val_loss", epochs=1))
    assert result.exit_code == 0, result.output
    (t,) = trials()
    assert t.value == epoch_rows()[-1][1]
    assert optuna.load_study(study_name="v", storage=f"sqlite:///{DB}").direction == \
        optuna.study.StudyDirection.MINIMIZE


def test_the_report_of_a_study_ranked_by_val_acc(run, write, tmp_path):
    spec = write(data=MNIST_500 + "\nval_fraction = 0.2", metric="val_acc", epochs=1)
    assert run("grid", spec).exit_code == 0
    result = run("report", spec, "--out", tmp_path / "report")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "final val acc (%)" in text


@pytest.mark.parametrize("metric", ["val_acc", "val_loss"])
def test_a_validation_metric_without_val_fraction_is_refused_in_one_line(run, write, monkeypatch, metric):
    monkeypatch.setattr(lifecycle_module, "train_point", lambda *a, **k: pytest.fail("trained"))
    result = run("grid", write(metric=metric))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "[study].metric" in lines[0] and f'"{metric}" needs a validation split' in lines[0]
    assert "[data].val_fraction" in lines[0]
    assert not Path("db").exists()


# ---------------------------------------------------------------- "auto" normalization


def test_auto_normalization_is_computed_from_the_training_images_used_and_reported(run, write, mydata, tmp_path):
    # user data defaults to mean = std = "auto"
    spec = write(data='target = "mydata:load"\nval_fraction = 0.2\nval_seed = 5', epochs=1)
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    (t,) = trials()
    data = t.user_attrs["config"]["data"]
    assert t.user_attrs["normalization_auto"] == ["mean", "std"]
    loaded = load_data(target="mydata:load", folder=str(tmp_path), args={})
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
    used, _ = stratified_split(load_data("mnist", train_limit=500).train, 0.2, 0)
    assert (data["mean"], data["std"]) == pixel_stats(used)
    assert t.user_attrs["normalization_auto"] == ["mean", "std"]


# ---------------------------------------------------------------- without a validation split


def test_a_study_without_a_validation_split_shows_no_val_columns(run, write):
    result = run("grid", write(epochs=1))
    assert result.exit_code == 0, result.output
    (t,) = trials()
    assert t.user_attrs["val_size"] == 0 and t.user_attrs["train_size"] == 500
    assert "val_fraction" not in t.user_attrs["config"]["data"]
    assert all(r[1] is None and r[2] is None for r in epoch_rows())
    listed = run("trials", "--study", "v")
    assert listed.exit_code == 0, listed.output
    assert "test_acc" in header(listed.output)
    assert not {"val_acc", "val_loss"} & set(header(listed.output))
    shown = run("show", "--study", "v", "0")
    epochs = shown.output.split("\nepochs:\n")[1]
    assert "val_" not in epochs and "test_acc" in epochs
