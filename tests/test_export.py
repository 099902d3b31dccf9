"""`runner export`, `runner.load_model` and `runner predict`: a kept model gives the predictions its trial
stored, on its own and on PNGs of the test images; every bad input is one line and writes nothing."""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import runner
from runner.cli import cli
from runner.data import load_mnist
from runner.errors import RunnerError
from runner.store import Store

URL = "sqlite:///db/runner.sqlite"


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
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


@pytest.fixture
def project(trained, tmp_path, monkeypatch):
    """A copy of the trained project, to change as a test likes."""
    shutil.copytree(trained, tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def stored(number: int) -> np.ndarray:
    store = Store(URL, create=False)
    t = [t for t in optuna.load_study(study_name="k", storage=URL).get_trials() if t.number == number][0]
    return store.predictions([t._trial_id])[t._trial_id].predicted


@pytest.mark.parametrize("number", [0, 1])
def test_an_exported_model_gives_the_predictions_its_trial_stored(project, number):
    result = invoke("export", "--study", "k", number, "--out", "m.pt")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote m.pt: trial {number} of k")
    model = runner.load_model("m.pt")
    assert not model.training
    images = load_mnist("", 0, 200).test.images.unsqueeze(1)  # (200, 1, 28, 28) uint8, as the dataset has them
    with torch.inference_mode():
        assert (model(images).argmax(1).numpy() == stored(number)).all()
        assert (model(images.float() / 255).argmax(1).numpy() == stored(number)).all()  # floats in [0, 1] too
    result = invoke("export", "--study", "k", number, "--out", "m.ts", "--format", "torchscript")
    assert result.exit_code == 0, result.output
    with pytest.warns(FutureWarning):  # torch 2.14 deprecates TorchScript, and still loads it
        scripted = torch.jit.load("m.ts")
    with torch.inference_mode():
        assert (scripted(images).argmax(1).numpy() == stored(number)).all()


def test_best_is_the_best_trial_by_the_study_metric(project):
    best = optuna.load_study(study_name="k", storage=URL).best_trial.number
    result = invoke("export", "--study", "k", "--best", "--out", "b.pt")
    assert result.exit_code == 0 and f"trial {best} of k" in result.output


def test_predict_on_pngs_of_the_test_images_gives_the_stored_classes(project):
    test = load_mnist("", 0, 200).test
    Path("pngs").mkdir()
    for i in range(20):
        Image.fromarray(test.images[i].numpy()).save(f"pngs/{i:03d}.png")
    np.save("more.npy", test.images[20:30].numpy())
    result = invoke("predict", "--study", "k", "0", "pngs", "more.npy", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["predicted"] for r in rows] == stored(0)[:30].tolist()
    assert all(0 < r["probability"] <= 1 and r["note"] == "" for r in rows)
    table = invoke("predict", "--study", "k", "--best", "pngs/000.png")
    assert table.exit_code == 0 and "pngs/000.png" in table.output


def test_a_digit_of_another_size_on_a_light_page_is_resized_and_inverted_with_a_note(project):
    digit = load_mnist("", 0, 1).test.images[0].numpy()
    Image.fromarray(255 - digit).resize((56, 56), Image.BILINEAR).save("mine.png")
    result = invoke("predict", "--study", "k", "0", "mine.png", "--format", "json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["note"] == "resized from 56x56 to 28x28; inverted (light background)"
    assert row["predicted"] == stored(0)[0]


def test_an_unreadable_input_is_one_line_and_the_others_go_on(project):
    Path("bad.png").write_text("not an image")
    Image.fromarray(load_mnist("", 0, 1).test.images[0].numpy()).save("ok.png")
    result = invoke("predict", "--study", "k", "0", "bad.png", "missing.png", "ok.png", "--format", "csv")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "input,predicted,class,probability,note" and len(lines) == 4
    assert "not an image runner can read" in lines[1] and "no such file" in lines[2] and lines[3].startswith("ok.png,")


def _bomb(path: str, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height pixels (as a decompression bomb's does)."""
    import struct
    import zlib

    Image.new("L", (1, 1)).save(path)
    data = bytearray(Path(path).read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    Path(path).write_bytes(bytes(data))


def test_hostile_inputs_are_one_line_each_and_the_others_go_on(project):
    """A decompression bomb, NaN and infinite arrays, an empty file and a symlink loop: one line naming each."""
    import os

    _bomb("bomb.png", 20_000, 20_000)  # 400 megapixels: PIL itself refuses its header
    _bomb("big.png", 8_000, 8_000)  # 64 megapixels: over runner's limit, under PIL's
    np.save("nan.npy", np.full((2, 28, 28), np.nan, dtype=np.float32))
    inf = np.zeros((28, 28), dtype=np.float64)
    inf[3, 4] = np.inf
    np.save("inf.npy", inf)
    Path("empty.png").write_bytes(b"")
    Path("empty.npy").write_bytes(b"")
    os.symlink("loop.png", "loop.png")
    Image.fromarray(load_mnist("", 0, 1).test.images[0].numpy()).save("ok.png")
    names = ["bomb.png", "big.png", "nan.npy", "inf.npy", "empty.png", "empty.npy", "loop.png", "ok.png"]
    result = invoke("predict", "--study", "k", "0", *names, "--format", "json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    rows = {r["input"]: r for r in json.loads(result.output)}
    assert set(rows) == set(names)
    assert "over the 50,000,000 pixels runner reads (a decompression bomb" in rows["bomb.png"]["note"]
    assert rows["big.png"]["note"].startswith("an image of 8,000 x 8,000 pixels, over the 50,000,000 pixels")
    assert rows["nan.npy"]["note"] == "an array with 1,568 NaN or infinite values: nothing to predict from"
    assert rows["inf.npy"]["note"] == "an array with 1 NaN or infinite value: nothing to predict from"
    assert rows["empty.png"]["note"] == rows["empty.npy"]["note"] == "an empty file (0 bytes)"
    assert "symbolic links" in rows["loop.png"]["note"]
    assert all(rows[n]["predicted"] is None for n in names[:-1]) and rows["ok.png"]["predicted"] == stored(0)[0]


def test_a_tampered_or_missing_artifact_names_the_trial_and_the_artifact(project):
    t = optuna.load_study(study_name="k", storage=URL).get_trials()[1]
    artifact = t.user_attrs["weights"]["artifact_id"]
    path = project / "db" / "artifacts" / artifact
    path.write_bytes(path.read_bytes()[:-10])
    result = invoke("predict", "--study", "k", "1", "x.png")
    _one_line_error(result, f"trial 1 of 'k' (artifact {artifact}): its SHA-256 is ")
    assert "/tmp" not in result.output
    path.unlink()
    _one_line_error(invoke("export", "--study", "k", "1", "--out", "x.pt"), f"trial 1: its weights ({artifact})")


def _one_line_error(result, text: str) -> None:
    assert result.exit_code != 0
    assert text in result.output, result.output
    assert result.output.strip().count("\n") == 0 and "Traceback" not in result.output, result.output


def test_a_trial_that_does_not_exist_is_not_complete_or_kept_nothing_is_one_line(project):
    _one_line_error(invoke("export", "--study", "k", "7", "--out", "x.pt"), "study 'k' has no trial 7")
    store = Store(URL)
    study = optuna.load_study(study_name="k", storage=URL)
    failed = study.ask()
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    _one_line_error(invoke("export", "--study", "k", str(failed.number), "--out", "x.pt"), "is fail, not complete")
    t = optuna.load_study(study_name="k", storage=URL).get_trials()[0]
    with store.session() as s:  # as an older database has it: no weights attr
        s.execute(optuna.storages._rdb.models.TrialUserAttributeModel.__table__.delete().where(
            optuna.storages._rdb.models.TrialUserAttributeModel.trial_id == t._trial_id,
            optuna.storages._rdb.models.TrialUserAttributeModel.key == "weights"))
    _one_line_error(invoke("predict", "--study", "k", "0", "x.png"), "its weights were not kept")
    assert not Path("x.pt").exists()


def test_a_tampered_artifact_is_refused(project):
    t = optuna.load_study(study_name="k", storage=URL).get_trials()[0]
    path = project / "db" / "artifacts" / t.user_attrs["weights"]["artifact_id"]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    _one_line_error(invoke("export", "--study", "k", "0", "--out", "x.pt"), "the file changed since it was kept")
    assert not Path("x.pt").exists()


def test_weights_in_another_folder_and_an_unwritable_out_are_one_line(project):
    shutil.move("db/artifacts", "moved")
    _one_line_error(invoke("export", "--study", "k", "0", "--out", "x.pt"), "give the folder they were kept in")
    assert invoke("export", "--study", "k", "0", "--out", "x.pt", "--artifacts", "moved").exit_code == 0
    Path("afile").write_text("")
    _one_line_error(invoke("export", "--study", "k", "0", "--out", "afile/x.pt", "--artifacts", "moved"),
                    "cannot write it")
    usage = invoke("export", "--study", "k", "--out", "x.pt")  # neither NUMBER nor --best: click's usage error
    assert usage.exit_code == 2 and "give a trial NUMBER or --best" in usage.output


def test_the_old_database_says_its_weights_were_not_kept(tmp_path, monkeypatch, restore_old_database):
    monkeypatch.chdir(tmp_path)
    restore_old_database(tmp_path / "runner.sqlite")
    result = invoke("export", "--study", "v0", "--best", "--out", "x.pt", "--storage", f"sqlite:///{tmp_path}/runner.sqlite")
    _one_line_error(result, "its weights were not kept")


MODULE = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.ReLU(), nn.Linear(width, 10))

    def forward(self, x):
        return self.body(x)
"""


def test_a_user_module_trial_needs_its_module_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mynet.py").write_text(MODULE)
    (tmp_path / "spec.toml").write_text(textwrap.dedent("""
        [study]
        name = "u"
        [data]
        train_limit = 300
        test_limit = 100
        [train]
        epochs = 1
        threads = 1
        [models.mine]
        target = "mynet:Net"
        [grid]
        model = ["mine"]
        """))
    assert invoke("grid", "spec.toml").exit_code == 0
    assert invoke("export", "--study", "u", "0", "--out", "m.pt").exit_code == 0
    assert isinstance(runner.load_model("m.pt"), torch.nn.Module)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delitem(sys.modules, "mynet", raising=False)  # as in a new process: imported from nowhere yet
    _one_line_error(invoke("export", "--study", "u", "0", "--out", "m2.pt", "--storage",
                           f"sqlite:///{tmp_path}/db/runner.sqlite", "--module-dir", str(elsewhere)),
                    "trial 0 of 'u' (artifact ")
    moved = invoke("predict", "--study", "u", "0", "x.png", "--storage", f"sqlite:///{tmp_path}/db/runner.sqlite")
    _one_line_error(moved, "its model is mynet:Net, from mynet.py, which is not in . nor on the Python path: give "
                           "the folder that holds mynet.py with --module-dir DIR")
    assert "/tmp" not in moved.output.replace(str(tmp_path), "")
    with pytest.raises(RunnerError, match="give the folder that holds mynet.py with module_dir="):
        runner.load_model(tmp_path / "m.pt")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mynet.py").write_text(MODULE + "# edited\n")
    assert invoke("export", "--study", "u", "0", "--out", "m3.pt").exit_code == 0  # a comment: the same code
    (tmp_path / "mynet.py").write_text(MODULE.replace("nn.ReLU()", "nn.Tanh()"))
    _one_line_error(invoke("export", "--study", "u", "0", "--out", "m4.pt"), "is not the code these weights")
    assert not (tmp_path / "m4.pt").exists()
