"""runner/weights.py: the weights file a trial keeps, fetched and checked: a tampered or missing
artifact, or a user's module that changed, is one line naming the trial and the artifact; a user's module
is found again where runner grid found it, from any folder, and in --module-dir when it moved."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

import runner
from runner.data import load_mnist
from runner.errors import RunnerError

from tests.helpers import STUDENT, STUDENT_SPEC, URL, invoke, one_line_error as _one_line_error
from tests.helpers import kept_project, kept_trained  # noqa: F401 - fixtures


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


def test_a_tampered_artifact_is_refused(project):
    t = optuna.load_study(study_name="k", storage=URL).get_trials()[0]
    path = project / "db" / "artifacts" / t.user_attrs["weights"]["artifact_id"]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    _one_line_error(invoke("export", "--study", "k", "0", "--out", "x.pt"), "the file changed since it was kept")
    assert not Path("x.pt").exists()


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
    (tmp_path / "mynet.py").rename(tmp_path / "mynet.py.moved")  # gone from where runner grid found it
    moved = invoke("predict", "--study", "u", "0", "x.png", "--storage", f"sqlite:///{tmp_path}/db/runner.sqlite")
    _one_line_error(moved, f"its model is mynet:Net, from mynet.py, which is not in {tmp_path} (where runner grid "
                           "found it), nor in the current folder, nor on the Python path: give the folder that "
                           "holds mynet.py with --module-dir DIR")
    assert "/tmp" not in moved.output.replace(str(tmp_path), "")
    with pytest.raises(RunnerError, match="give the folder that holds mynet.py with module_dir="):
        runner.load_model(tmp_path / "m.pt")
    (tmp_path / "mynet.py.moved").rename(tmp_path / "mynet.py")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mynet.py").write_text(MODULE + "# edited\n")
    assert invoke("export", "--study", "u", "0", "--out", "m3.pt").exit_code == 0  # a comment: the same code
    (tmp_path / "mynet.py").write_text(MODULE.replace("nn.ReLU()", "nn.Tanh()"))
    _one_line_error(invoke("export", "--study", "u", "0", "--out", "m4.pt"), "is not the code these weights")
    assert not (tmp_path / "m4.pt").exists()


@pytest.fixture(scope="module")
def student_study(tmp_path_factory):
    """A student's LeNet-5 whose forward ends in softmax, in a folder of its own with its spec, trained by
    `runner grid` run from another folder; (root, storage URL)."""
    root = tmp_path_factory.mktemp("student")
    (root / "student").mkdir()
    (root / "student" / "model.py").write_text(STUDENT.format(last="F.softmax(self.fc3(x), dim=1)"))
    spec = STUDENT_SPEC.format(input="input = { pad = 2 }").replace("train_limit = 300", "train_limit = 2000")
    recipe = 'epochs = 1\nbatch_size = 32\noptimizer = "adam"\nlr = 0.003'  # about 68% in one epoch, softmax and all
    (root / "student" / "spec.toml").write_text(spec.replace("epochs = 1", recipe))
    (root / "run").mkdir()
    url = f"sqlite:///{root}/run/db.sqlite"
    with pytest.MonkeyPatch.context() as m:
        m.chdir(root / "run")
        result = invoke("grid", "../student/spec.toml", "--storage", url)
    assert result.exit_code == 0 and "returns probabilities" in result.output, result.output
    sys.modules.pop("model", None)  # as in a new process: imported from nowhere yet
    return root, url


def test_export_and_predict_find_the_module_where_grid_found_it(student_study, tmp_path, monkeypatch):
    root, url = student_study
    monkeypatch.chdir(tmp_path)  # a third folder: neither the spec's nor the one grid ran in
    monkeypatch.delitem(sys.modules, "model", raising=False)
    Image.fromarray(load_mnist("", 0, 1).test.images[0].numpy()).save("digit.png")
    exported = invoke("export", "--study", "student", "--best", "--out", "m.pt", "--storage", url)
    assert exported.exit_code == 0, exported.output
    assert exported.output.startswith("wrote m.pt: trial 0 of student (lenet") and "61,706 parameters" in exported.output
    monkeypatch.delitem(sys.modules, "model")
    assert isinstance(runner.load_model("m.pt"), torch.nn.Module)  # the exported file knows the folder too
    monkeypatch.delitem(sys.modules, "model")
    predicted = invoke("predict", "--study", "student", "--best", "digit.png", "--storage", url, "--format", "json")
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.output)[0]["input"] == "digit.png"


def test_a_moved_module_folder_is_named_and_given_with_module_dir(student_study, tmp_path, monkeypatch):
    root, url = student_study
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "model", raising=False)
    Image.fromarray(load_mnist("", 0, 1).test.images[0].numpy()).save("digit.png")
    (root / "student").rename(root / "moved")
    try:
        lost = invoke("predict", "--study", "student", "0", "digit.png", "--storage", url)
        _one_line_error(lost, f"its model is model:LeNet5, from model.py, which is not in {root}/student (where "
                              "runner grid found it), nor in the current folder, nor on the Python path: give the "
                              "folder that holds model.py with --module-dir DIR")
        found = invoke("predict", "--study", "student", "0", "digit.png", "--storage", url,
                       "--module-dir", root / "moved", "--format", "json")
        assert found.exit_code == 0, found.output
        assert invoke("export", "--study", "student", "0", "--out", "m.pt", "--storage", url,
                      "--module-dir", root / "moved").exit_code == 0
    finally:
        (root / "moved").rename(root / "student")


def test_predict_reads_a_softmax_model_as_probabilities(student_study, tmp_path, monkeypatch):
    """A model whose forward ends in softmax: the probability predict gives is the model's own, not the softmax
    of it (which is at most e / (e + 9) = 0.232 over 10 classes)."""
    root, url = student_study
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "model", raising=False)
    images = load_mnist("", 0, 20).test.images.numpy()
    np.save("digits.npy", images)
    result = invoke("predict", "--study", "student", "0", "digits.npy", "--storage", url, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert invoke("export", "--study", "student", "0", "--out", "m.pt", "--storage", url).exit_code == 0
    with torch.inference_mode():
        own = runner.load_model("m.pt")(torch.from_numpy(images).unsqueeze(1))  # (20, 10), rows summing to 1
    assert torch.allclose(own.sum(1), torch.ones(20), atol=1e-4)
    assert [r["predicted"] for r in rows] == own.argmax(1).tolist()
    assert [r["probability"] for r in rows] == [round(float(p), 4) for p in own.max(1).values]
    assert max(r["probability"] for r in rows) > 0.3  # softmaxed twice, none would be
