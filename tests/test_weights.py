"""runner/weights.py: the weights file a trial keeps, fetched and checked: a tampered or missing
artifact, or a user's module that changed, is one line naming the trial and the artifact."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import torch

import runner
from runner.errors import RunnerError

from tests.helpers import URL, invoke, one_line_error as _one_line_error
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
