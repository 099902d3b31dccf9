"""Databases made by earlier versions keep working (tests/fixtures/v0: made by the code at f02d618)."""
from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.grid import run_grid
from runner.spec import load_spec
from runner.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "v0"


@pytest.fixture
def old_db(tmp_path, monkeypatch, restore_old_database) -> tuple[Path, str]:
    """A copy of the old database and its spec, in a folder of their own."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(FIXTURE / "spec.toml", tmp_path / "spec.toml")
    restore_old_database(tmp_path / "runner.sqlite")
    return tmp_path / "spec.toml", f"sqlite:///{tmp_path / 'runner.sqlite'}"


def test_an_unchanged_spec_finds_every_old_trial_complete_and_trains_nothing(old_db):
    spec, url = old_db
    result = CliRunner().invoke(cli, ["grid", str(spec), "--storage", url])
    assert result.exit_code == 0, result.output
    assert "v0: 5 of 5 trials complete" in result.output
    assert len(optuna.load_study(study_name="v0", storage=url).get_trials()) == 5  # no new trial


def test_the_presets_train_to_the_values_the_old_code_stored(old_db, tmp_path):
    spec_path, url = old_db
    old = {t.user_attrs["config_hash"]: t for t in optuna.load_study(study_name="v0", storage=url).get_trials()}
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    run_grid(load_spec(spec_path), fresh)
    store = Store(fresh)
    new = {t.user_attrs["config_hash"]: t for t in optuna.load_study(study_name="v0", storage=fresh).get_trials()}
    assert set(new) == set(old)
    old_store = Store(url, create=False)
    for h, t in new.items():
        assert t.user_attrs["param_count"] == old[h].user_attrs["param_count"]
        e_new = store.epochs([t._trial_id])[t._trial_id][-1]
        e_old = old_store.epochs([old[h]._trial_id])[old[h]._trial_id][-1]
        for m in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert getattr(e_new, m) == pytest.approx(getattr(e_old, m), rel=1e-5, abs=1e-6), (t.params, m)


def test_read_commands_and_the_report_work_on_the_old_database(old_db, tmp_path):
    spec, url = old_db
    runner = CliRunner()
    result = runner.invoke(cli, ["report", str(spec), "--storage", url, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r" / "report.md").read_text()
    assert "Total: **61,706** parameters." in text and "| peak MB |" in text
    assert (tmp_path / "r" / "model-lenet5-lenet5.png").exists()
    result = runner.invoke(cli, ["trials", "--study", "v0", "--storage", url, "--format", "csv"])
    assert result.exit_code == 0 and result.output.count("\n") == 6  # header and 5 trials
