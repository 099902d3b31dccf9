"""runner/export.py: `runner export` and `runner.load_model`: a kept model gives the predictions its
trial stored; a trial that does not exist, is not complete or kept nothing is one line and writes nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
import torch

import runner
from runner.data import load_mnist
from runner.store import Store

from tests.helpers import URL, invoke, one_line_error as _one_line_error, stored
from tests.helpers import kept_project, kept_trained  # noqa: F401 - fixtures


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
