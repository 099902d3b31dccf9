"""runner/data/user.py: the user's own data (`[data] target = "mydata:load"`): it trains, its checksum,
its checks, its report, and data that would not fit once converted refused.

Every test writes the data module and the spec into a folder of their own (tmp_path/proj) and runs
from another folder (tmp_path/work), so that the spec's folder really is where the module is found.
The module makes small synthetic splits that a network can learn: each class brightens its own band
of columns (and, with three channels, its own channel).
"""
from __future__ import annotations

import json
import runpy
import sqlite3
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from click.testing import CliRunner, Result

import runner.data.user as user_data
import runner.trials.lifecycle as lifecycle_module
from runner.cli import cli
from runner.data import pixel_stats
from runner.data.base import Split, combine, split_checksum

from tests.helpers import DB, TYPO, refused as _refused
from tests.helpers import here  # noqa: F401 - fixtures


# `kind` picks how the arrays are given, `bad` one way of getting them wrong. Every call is counted
# in calls.txt beside the module.
MYDATA = '''
from pathlib import Path

import numpy as np


def arrays(n_train=300, n_test=100, k=4, size=12, channels=0):
    """uint8 images and int64 labels: class c brightens its band of columns (and channel c % channels)."""
    rng = np.random.default_rng(0)
    out = []
    for n in (n_train, n_test):
        y = np.arange(n) % k
        shape = (n, channels, size, size) if channels else (n, size, size)
        x = rng.integers(0, 70, size=shape)
        band = size // k
        for c in range(k):
            if channels:
                x[y == c, c % channels, :, c * band:(c + 1) * band] += 180
            else:
                x[y == c, :, c * band:(c + 1) * band] += 180
        out += [x.astype(np.uint8), y.astype(np.int64)]
    return tuple(out)


def load(root="data", kind="uint8", bad="", channels=0, size=12):
    with open(Path(__file__).with_name("calls.txt"), "a") as f:
        f.write(f"{root}\\n")
    x, y, xt, yt = arrays(size=size, channels=channels)
    if kind == "float":  # the same pixels as floats in [0, 1]
        x, xt = x / 255.0, (xt / 255.0).astype(np.float32)
    elif kind == "readonly":  # as np.load(..., mmap_mode="r") gives them
        x.setflags(write=False)
    elif kind == "tensor":
        import torch
        x, y, xt, yt = (torch.from_numpy(a) for a in (x, y, xt, yt))
    if bad == "lengths":
        y = y[:-1]
    elif bad == "rank2":
        x = x.reshape(len(x), -1)
    elif bad == "int64":
        x = x.astype(np.int64)
    elif bad == "nan":
        x = x / 255.0
        x[3, 2, 1] = np.nan
    elif bad == "range":
        x = x / 166.0  # up to 249 / 166 = 1.5
    elif bad == "negative":
        y = y - 1
    elif bad == "beyond":
        yt = yt.copy()
        yt[5] = 4
    elif bad == "empty":
        xt, yt = xt[:0], yt[:0]
    elif bad == "raises":
        raise RuntimeError("disk not mounted\\nsecond line")
    elif bad == "three":
        return x, y, xt
    elif bad == "scalar":
        y = np.array(7)
    elif bad == "constant":
        x, xt = np.zeros_like(x), np.zeros_like(xt)
    return x, y, xt, yt
'''


SPEC = '''
[study]
name = "{name}"
seeds = {seeds}
metric = "test_acc"

[data]
target = "mydata:load"       # module:function, the spec's folder first
args = {args}
{data}

[train]
epochs = 1
batch_size = 100
lr = 0.05

[models.lenet5]
arch = "lenet5"

[models.mlp]
arch = "mlp"
hidden = [16]

{models}

[grid]
model = {grid_models}
{grid}
'''


class _Project:
    def __init__(self, folder: Path, work: Path):
        self.folder, self.work = folder, work
        self.module = folder / "mydata.py"
        self.module.write_text(textwrap.dedent(MYDATA))

    def spec(self, name: str = "t", seeds: str = "[0]", args: str = '{ root = "data" }', data: str = "",
             models: str = "", grid_models: str = '["mlp"]', grid: str = "", file: str = "spec.toml") -> Path:
        path = self.folder / file
        path.write_text(SPEC.format(name=name, seeds=seeds, args=args, data=data, models=models,
                                    grid_models=grid_models, grid=grid))
        return path

    def calls(self) -> int:
        path = self.folder / "calls.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def arrays(self, **kwargs) -> tuple[np.ndarray, ...]:
        """The uint8 arrays the module makes, without calling (or counting) load."""
        return runpy.run_path(str(self.module))["arrays"](**kwargs)


@pytest.fixture
def proj(tmp_path, monkeypatch):
    """mydata.py in tmp_path/proj; the current folder is tmp_path/work."""
    folder, work = tmp_path / "proj", tmp_path / "work"
    folder.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(user_data, "_LOADED", {})  # this process's loaded data: none from other tests
    before = set(sys.modules)
    yield _Project(folder, work)
    for name in set(sys.modules) - before:  # the module is imported into this process: leave none behind
        if name == "mydata" or name.startswith("mydata."):
            del sys.modules[name]


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def trials(name: str = "t") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{DB}").get_trials()


def checksum(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> str:
    """What the trial's data checksum must be: of the arrays as uint8 tensors."""
    split = lambda a, b: Split(torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(b).long())  # noqa: E731
    return combine(split_checksum(split(x, y)), split_checksum(split(xt, yt)))


def assert_one_line_refusal(result: Result, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])
    assert not DB.exists() and not Path("db").exists()  # the database is untouched


def no_training(monkeypatch) -> None:
    def fail(*a, **k):
        raise AssertionError("trained, though the checks should have refused the spec")
    monkeypatch.setattr(lifecycle_module, "train_point", fail)


# ---------------------------------------------------------------- 1. it trains, and what is stored


def test_user_data_trains_presets_that_end_in_its_class_count(proj):
    result = run("grid", proj.spec(grid_models='["lenet5", "mlp"]'))
    assert result.exit_code == 0, result.output
    assert "t: 2 of 2 trials complete" in result.output
    ts = {t.params["model"]: t for t in trials()}
    assert {t.state for t in ts.values()} == {optuna.trial.TrialState.COMPLETE}
    x, y, xt, yt = proj.arrays()
    for t in ts.values():
        a = t.user_attrs
        assert a["dataset"] == "user" and a["classes"] == 4 and a["data_shape"] == [1, 12, 12]
        assert a["train_size"] == 300 and a["test_size"] == 100 and a["val_size"] == 0
        assert a["data_checksum"] == checksum(x, y, xt, yt)
        assert a["data_source"] == "mydata:load (mydata.py)" and a["data_official"] is None
        last = a["layer_table"][-1]
        assert last[0] == "output" and last[2] == [4]  # ends in K = 4 outputs
        assert sum(row[4] for row in a["layer_table"]) == a["param_count"]
        data = a["config"]["data"]
        assert data["target"] == "mydata:load" and data["args"] == {"root": "data"}
        assert data["dataset"] == "user" and len(data["source_sha256"]) == 64
        # user data defaults to "auto": the numbers computed from the training images are stored
        assert a["normalization_auto"] == ["mean", "std"]
        split = Split(torch.from_numpy(x), torch.from_numpy(y))
        assert (data["mean"], data["std"]) == pixel_stats(split)
    # LeNet-5 on 12x12: c3 leaves (16, 2, 2), s4 (16, 1, 1); f5 (16+1)*120; output (84+1)*4
    assert ts["lenet5"].user_attrs["param_count"] == 156 + 2_416 + 2_040 + 10_164 + 340
    assert ts["lenet5"].user_attrs["layer_table"][-1][3:] == ["(84+1)*4", 340]
    # the MLP 144 -> 16 -> 4
    assert ts["mlp"].user_attrs["param_count"] == (144 + 1) * 16 + (16 + 1) * 4
    assert ts["mlp"].value > 50  # the class bands are learnable (chance is 25%)


def test_float_and_read_only_images_give_the_checksum_of_their_uint8_pixels(proj):
    for name, kind in (("u8", "uint8"), ("float", "float"), ("ro", "readonly"), ("tensor", "tensor")):
        result = run("grid", proj.spec(name=name, args=f'{{ root = "data", kind = "{kind}" }}', file=f"{name}.toml"))
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output  # a read-only array is copied, not handed to torch as it is
    sums = {name: trials(name)[0].user_attrs["data_checksum"] for name in ("u8", "float", "ro", "tensor")}
    x, y, xt, yt = proj.arrays()
    assert set(sums.values()) == {checksum(x, y, xt, yt)}, sums
    # the floats themselves, x / 255 rounded back, are the same uint8 pixels
    assert np.array_equal(np.rint(x / 255.0 * 255).astype(np.uint8), x)


def test_three_channel_images_train_with_affine_augmentation(proj):
    spec = proj.spec(args='{ root = "data", channels = 3, size = 16 }', grid_models='["lenet5"]',
                     grid='augment = ["affine"]')
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    (t,) = trials()
    assert t.state == optuna.trial.TrialState.COMPLETE and t.params["augment"] == "affine"
    a = t.user_attrs
    assert a["data_shape"] == [3, 16, 16] and a["classes"] == 4
    table = {row[0]: row for row in a["layer_table"]}
    assert table["c1"][2:] == [[6, 16, 16], "(5*5*3+1)*6", 456]
    assert table["output"][2:] == [[4], "(84+1)*4", 340]
    x, y, xt, yt = proj.arrays(channels=3, size=16)
    assert a["data_checksum"] == checksum(x, y, xt, yt)


# ---------------------------------------------------------------- 2. refused before the database


BAD = [
    ("lengths", ["300 train images but 299 labels"]),
    ("rank2", ["train images are shaped (300, 144)", "expected (N, H, W) or (N, C, H, W)"]),
    ("int64", ["train images are int64", "uint8 in 0..255 or float in [0, 1]"]),
    ("nan", ["train images hold NaN"]),
    ("range", ["float train images must lie in [0, 1]", "they span [0, 1.5]"]),
    ("negative", ["train labels must be integers 0..K-1", "the smallest is -1"]),
    ("beyond", ["test labels go up to 4", "train labels only to 3"]),
    ("empty", ["the test split is empty"]),
    ("raises", ["mydata:load(**args) raised RuntimeError: disk not mounted"]),
    ("three", ["must return (train_images, train_labels, test_images, test_labels)", "it returned 3 values"]),
    ("scalar", ["train labels are shaped ()", "expected (N,)"]),
    ("constant", ['[data].std = "auto"', "300 training images", "give std as a number > 0"]),
]


@pytest.mark.parametrize("bad, parts", BAD, ids=[bad for bad, _ in BAD])
def test_bad_data_is_refused_in_one_line_before_the_database(proj, monkeypatch, bad, parts):
    no_training(monkeypatch)
    result = run("grid", proj.spec(args=f'{{ root = "data", bad = "{bad}" }}'))
    where = [] if bad == "constant" else ["[data].target mydata:load: "]
    assert_one_line_refusal(result, *where, *parts)
    assert "second line" not in result.output  # an exception's first line only
    assert proj.calls() == 1


def test_a_dataset_beside_target_is_refused_without_calling_the_function(proj, monkeypatch):
    no_training(monkeypatch)
    result = run("grid", proj.spec(data='dataset = "mnist"'))
    assert_one_line_refusal(result, "[data].dataset", "leave dataset out")
    assert proj.calls() == 0


def test_a_declared_model_whose_last_fc_disagrees_with_the_classes_is_refused(proj, monkeypatch):
    no_training(monkeypatch)
    models = '[models.small]\nlayers = [{ conv = 4, k = 3, name = "c1" }, { pool = "max", k = 2 }, ' \
             '{ fc = 10, name = "out" }]'
    result = run("grid", proj.spec(models=models, grid_models='["small"]'))
    assert_one_line_refusal(result, "[models.small].layers[2] (out)", "fc = 10", "the data has 4 classes")


# ---------------------------------------------------------------- 3. once per process


def test_the_function_is_called_once_per_process_for_several_trials(proj):
    spec = proj.spec(seeds="[0, 1]", grid_models='["lenet5", "mlp"]')
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    assert "t: 4 of 4 trials complete" in result.output
    assert len(trials()) == 4
    assert proj.calls() == 1
    # a new seed in the same process: the data loaded before serves it
    result = run("grid", proj.spec(seeds="[0, 1, 2]", grid_models='["lenet5", "mlp"]'))
    assert result.exit_code == 0, result.output
    assert "t: 6 of 6 trials complete" in result.output
    assert proj.calls() == 1
    assert len({t.user_attrs["data_checksum"] for t in trials()}) == 1


# ---------------------------------------------------------------- 4. the report


def test_the_report_names_the_user_data_compares_with_no_published_figure_and_never_calls_it(proj, monkeypatch,
                                                                                              tmp_path):
    spec = proj.spec(grid_models='["lenet5", "mlp"]')
    assert run("grid", spec).exit_code == 0
    calls = proj.calls()

    def refuse(*a, **k):
        raise AssertionError("the report called the user's data function")
    monkeypatch.setattr(user_data, "_call", refuse)
    monkeypatch.setattr(user_data, "_LOADED", {})  # nothing kept from the grid run either
    out = tmp_path / "report"
    result = run("report", spec, "--out", out)
    assert result.exit_code == 0, result.output
    assert proj.calls() == calls
    text = (out / "report.md").read_text()
    assert "| dataset | user |" in text
    assert "| classes | 4 |" in text and "| image shape (C, H, W) | (1, 12, 12) |" in text
    x, y, xt, yt = proj.arrays()
    assert f"| checksum | {checksum(x, y, xt, yt)} |" in text
    assert "(auto: computed from the training images)" in text
    assert "Nothing is compared for `user` data: it is the user's own data, for which no published figure applies." in text
    assert "LeCun" not in text.split("## Known accuracy")[1].split("\n## ")[0]
    assert json.loads((out / "summary.json").read_text())["known"] is None
    with sqlite3.connect(DB) as db:  # the report wrote nothing to the storage
        assert db.execute("select count(*) from trials").fetchone()[0] == 2


# ---------------------------------------------------------------- 5. data that would not fit


def test_user_data_that_would_not_fit_once_converted_is_refused_in_one_line(here, monkeypatch):
    import runner.data.user as user_data

    (here / "d.py").write_text("import numpy as np\n\ndef load():\n    x = np.random.default_rng(0).random((64, 28, 28))\n"
                               "    y = np.arange(64) % 10\n    return x, y, x[:16], y[:16]\n")
    (here / "spec.toml").write_text(TYPO.replace('layers = [ { fc = 100000000 }, { fc = 10 } ]', 'arch = "mlp"')
                                    .replace("train_limit = 300\ntest_limit = 100", 'target = "d:load"'))
    monkeypatch.setattr(user_data, "available_bytes", lambda device="cpu": (50_000, "available on this machine"))
    _refused(CliRunner().invoke(cli, ["grid", "spec.toml"]), "train images (64, 28, 28) (float64) would take about",
             "once converted to uint8, more than the 0 MB available on this machine")
    assert not (here / "db").exists()


def test_float_images_are_converted_in_chunks_to_the_same_pixels():
    import numpy as np

    import runner.data.user as user_data

    x = np.random.default_rng(1).random((user_data.CHUNK_BYTES // (8 * 16) + 5, 4, 4))  # one chunk and a few
    out = user_data._pixels("w", "train", x)
    assert out.dtype == np.uint8 and np.array_equal(out, np.rint(x * 255).astype(np.uint8))
