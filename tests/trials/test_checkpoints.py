"""runner/trials/checkpoints.py: nothing lost: epoch checkpoints written atomically and read
safely, and an exact resume after SIGKILL."""
from __future__ import annotations

import copy
import errno
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from click.testing import CliRunner

from runner.cli import cli
from runner.spec import load_spec
from runner.train import train_point
from runner.trials.checkpoints import Checkpoints

from tests.helpers import small

RUNNER = str(Path(sys.executable).with_name("runner"))


def values(url: str, name: str = "t") -> list[tuple]:
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    return [(t.params["seed"], t.value, t.intermediate_values) for t in trials if t.state.name == "COMPLETE"]


def test_resuming_from_a_checkpoint_equals_an_uninterrupted_run(write_spec, mnist, tmp_path):
    point = load_spec(write_spec(epochs=3, batch_norm="[true]")).points()[0]
    data = small(mnist)
    _, full = train_point(point, data, torch.device("cpu"))
    ckpt = Checkpoints(tmp_path)
    train_point(point, data, torch.device("cpu"),  # keep the checkpoint written after epoch 1
                save=lambda state: state["epoch"] == 1 and ckpt.save(point.config_hash, state))
    state = ckpt.load(point.config_hash)
    assert state["epoch"] == 1
    _, resumed = train_point(point, data, torch.device("cpu"), resume=state)
    assert [(m.test_acc, m.test_loss, m.train_loss, m.lr) for m in resumed] == \
        [(m.test_acc, m.test_loss, m.train_loss, m.lr) for m in full]


def test_sigkill_mid_trial_then_rerun_resumes_to_identical_values(write_spec, tmp_path):
    spec = write_spec(text=write_spec(epochs=3, batch_norm="[true]").read_text().replace(
        "train_limit = 600", "train_limit = 1000"))
    reference = f"sqlite:///{tmp_path}/reference.sqlite"
    assert CliRunner().invoke(cli, ["grid", str(spec), "--storage", reference, "--quiet"]).exit_code == 0

    url = f"sqlite:///{tmp_path}/killed.sqlite"
    proc = subprocess.Popen([RUNNER, "grid", str(spec), "--storage", url], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "epoch 2/3" in line:
            break
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: the claim stays "running"
    proc.wait(timeout=30)
    again = CliRunner().invoke(cli, ["grid", str(spec), "--storage", url])
    assert again.exit_code == 0, again.output
    assert "resumed from the checkpoint after epoch" in again.output
    assert values(url) == values(reference)
    states = sorted(t.state.name for t in optuna.load_study(study_name="t", storage=url).get_trials())
    assert states == ["COMPLETE", "FAIL"]  # the killed trial is marked failed, its point completed once
    assert not list((tmp_path / "checkpoints" / "t").glob("*.pt"))  # removed once complete


def _saved_states(write_spec, mnist) -> tuple[str, list[dict]]:
    point = load_spec(write_spec(epochs=2)).points()[0]
    saved = []  # deep copies: the live state keeps training after each save
    train_point(point, small(mnist), torch.device("cpu"), save=lambda state: saved.append(copy.deepcopy(state)))
    return point.config_hash, saved


def test_a_truncated_checkpoint_falls_back_to_the_one_before_with_a_warning(write_spec, mnist, tmp_path):
    key, (first, second) = _saved_states(write_spec, mnist)
    ckpt = Checkpoints(tmp_path)
    ckpt.save(key, first)
    ckpt.save(key, second)
    path = ckpt.path(key)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        state = ckpt.load(key)
    assert state["epoch"] == 1
    path.with_suffix(".prev.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning):
        assert ckpt.load(key) is None  # nothing good left: the trial starts again from epoch 1


def test_disk_full_during_a_checkpoint_write_leaves_the_previous_one(write_spec, mnist, tmp_path, monkeypatch):
    key, (first, second) = _saved_states(write_spec, mnist)
    ckpt = Checkpoints(tmp_path)
    ckpt.save(key, first)
    before = ckpt.path(key).read_bytes()

    def full_disk(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        ckpt.save(key, second)
    assert ckpt.path(key).read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))
    monkeypatch.undo()
    assert ckpt.load(key)["epoch"] == 1


def test_checkpoints_load_with_weights_only(write_spec, mnist, tmp_path):
    key, (first, _) = _saved_states(write_spec, mnist)
    Checkpoints(tmp_path).save(key, first)
    state = torch.load(Checkpoints(tmp_path).path(key), weights_only=True)
    assert state["config_hash"] == key and "model" in state
