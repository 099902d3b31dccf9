"""What a complete trial keeps: its predictions for every test and validation image, and its weights
as an Optuna artifact that loads with torch.load(weights_only=True) and matches its stored SHA-256."""
from __future__ import annotations

import hashlib
from pathlib import Path

import optuna
import pytest
import torch
from click.testing import CliRunner

from runner.cli import cli
from runner.store import Store, study_folder

URL = "sqlite:///db/runner.sqlite"


@pytest.fixture
def project(tmp_path, monkeypatch, write_spec):
    monkeypatch.chdir(tmp_path)
    return write_spec


def _run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_a_complete_trial_keeps_its_predictions_and_its_weights(project, tmp_path):
    spec = project(models='["lenet5", "mlp"]', batch_norm="[false]")
    spec.write_text(spec.read_text().replace("test_limit = 300", "test_limit = 300\nval_fraction = 0.1"))
    _run("grid", str(spec))
    store = Store(URL, create=False)
    trials = optuna.load_study(study_name="t", storage=URL).get_trials()
    assert len(trials) == 2
    for t in trials:
        last = store.epochs([t._trial_id])[t._trial_id][-1]
        test = store.predictions([t._trial_id])[t._trial_id]
        val = store.predictions([t._trial_id], "val")[t._trial_id]
        assert len(test.predicted) == 300 and len(val.predicted) == t.user_attrs["val_size"] > 0  # every image
        assert 100 * test.correct.mean() == pytest.approx(last.test_acc)  # the stored accuracy, image by image
        assert 100 * val.correct.mean() == pytest.approx(last.val_acc)
        assert ((test.confidence >= 0.0999) & (test.confidence <= 1.0)).all()  # a softmax maximum over 10 classes
        weights = t.user_attrs["weights"]
        [meta] = optuna.artifacts.get_all_artifact_meta(t, storage=store.optuna)  # what optuna-dashboard lists
        assert meta.artifact_id == weights["artifact_id"] and meta.filename == "model.pt"
        path = tmp_path / "db" / "artifacts" / weights["artifact_id"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == weights["sha256"]
        assert path.stat().st_size == weights["bytes"]
        doc = torch.load(path, weights_only=True)
        assert doc["model"]["classes"] == 10 and doc["normalization"] == {"mean": 0.1307, "std": 0.3081}
        assert sum(v.numel() for k, v in doc["state_dict"].items() if "running" not in k and "num_batches" not in k) \
            == t.user_attrs["param_count"]


def test_keep_none_keeps_predictions_but_no_weights_and_artifacts_go_where_asked(project, tmp_path):
    spec = project(batch_norm="[false]")
    spec.write_text(spec.read_text().replace('metric = "test_acc"', 'metric = "test_acc"\nkeep = "none"'))
    _run("grid", str(spec))
    [t] = optuna.load_study(study_name="t", storage=URL).get_trials()
    assert "weights" not in t.user_attrs and not (tmp_path / "db" / "artifacts").exists()
    assert Store(URL, create=False).predictions([t._trial_id])
    other = tmp_path / "b.toml"
    other.write_text(spec.read_text().replace('name = "t"', 'name = "t2"').replace('keep = "none"', 'keep = "all"'))
    _run("grid", str(other), "--artifacts", str(tmp_path / "shared"))
    [t] = optuna.load_study(study_name="t2", storage=URL).get_trials()
    assert (tmp_path / "shared" / t.user_attrs["weights"]["artifact_id"]).exists()


@pytest.mark.parametrize("name", ["/srv/x", "../x", "a/b", "..", "x" * 300])
def test_a_study_name_never_directs_files_outside_their_folders(name):
    folder = study_folder(name)
    assert "/" not in folder and folder not in ("", ".", "..") and len(folder) < 100
    assert (Path("db/checkpoints") / folder).resolve().parent == Path("db/checkpoints").resolve()


def test_a_study_named_to_climb_out_keeps_its_checkpoints_and_report_in_their_folders(project, tmp_path):
    spec = project(batch_norm="[false]")
    spec.write_text(spec.read_text().replace('name = "t"', 'name = "../../x"').replace("epochs = 1", "epochs = 2"))
    import runner.trials.checkpoints as checkpoints

    seen = []
    real = checkpoints.Checkpoints.save
    with pytest.MonkeyPatch.context() as m:  # where the epoch checkpoints go while the trial runs
        m.setattr(checkpoints.Checkpoints, "save", lambda self, h, state: seen.append(self.path(h)) or real(self, h, state))
        _run("grid", str(spec))
    _run("report", str(spec), "--out", str(tmp_path / "r"))
    _run("report", str(spec))
    assert seen and all(p.resolve().is_relative_to(tmp_path / "db" / "checkpoints") for p in seen)
    assert (tmp_path / "reports" / study_folder("../../x") / "report.md").exists()
    assert not (tmp_path.parent / "x").exists() and not (tmp_path.parent.parent / "x").exists()


def test_the_names_that_worked_keep_their_folders():
    for name in ("regularization", "tune_mlp-search", "my study (v2)", "v0", "é"):
        assert study_folder(name) == name
