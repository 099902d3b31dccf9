"""runner/trials/outputs.py: what a complete trial keeps: its predictions for every test and
validation image, and its weights as an Optuna artifact that loads with torch.load(weights_only=True)
and matches its stored SHA-256."""
from __future__ import annotations

import hashlib

import optuna
import pytest
import torch

from runner.store import Store

from tests.helpers import invoke_ok as _run
from tests.helpers import spec_project  # noqa: F401 - fixtures

URL = "sqlite:///db/runner.sqlite"


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
