"""runner/usercode.py and what a user's module is to the stored trials (runner/sources.py): an edit of
its form (a comment, a blank line, a docstring, the formatting) keeps its trials; an edit of what it does is
said before anything trains, by --dry-run, by runner grid and by runner report, which names the option that
reports the earlier version's trials."""
from __future__ import annotations

import sqlite3
import sys

import optuna
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.usercode import source_sha256, structure_sha256

MODEL = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x):
        return self.fc(x)
'''
SPEC = """
[study]
name = "student"
seeds = [0, 1]
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 1
threads = 1
[models.net]
target = "model:Net"
[grid]
model = ["net"]
"""
FORM_ONLY = {
    "comment": lambda s: s + "# tried a wider layer, no better\n",
    "docstring": lambda s: s.replace("class Net(nn.Module):\n", 'class Net(nn.Module):\n    """My LeNet."""\n'),
    "formatting": lambda s: s.replace("nn.Linear(784, 10)", "nn.Linear( 784,10 )").replace("\n\n\n", "\n\n\n\n"),
}
REAL = lambda s: s.replace("nn.Linear(784, 10))", "nn.ReLU(), nn.Linear(784, 10))")  # noqa: E731


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def student(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "student.toml").write_text(SPEC)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name == "model":
            del sys.modules[name]


def _trained(*args: object) -> list[optuna.trial.FrozenTrial]:
    result = run("grid", "student.toml", *args)
    assert result.exit_code == 0, result.output
    return optuna.load_study(study_name="student", storage="sqlite:///db/runner.sqlite").get_trials()


@pytest.mark.parametrize("edit", list(FORM_ONLY))
def test_the_structure_hash_ignores_the_form_and_sees_the_code(tmp_path, edit):
    path = tmp_path / "m.py"
    path.write_text(MODEL)
    before = structure_sha256(path), source_sha256(path)
    path.write_text(FORM_ONLY[edit](MODEL))
    assert structure_sha256(path) == before[0] and source_sha256(path) != before[1]
    path.write_text(REAL(MODEL))
    assert structure_sha256(path) != before[0]
    path.write_text("def broken(:\n")
    assert structure_sha256(path) == ""  # a file that does not parse: only its bytes identify it


@pytest.mark.parametrize("edit", list(FORM_ONLY))
def test_an_edit_of_the_form_keeps_every_result(student, edit):
    first = _trained()
    assert len(first) == 2 and all(t.state.name == "COMPLETE" for t in first)
    (student / "model.py").write_text(FORM_ONLY[edit]((student / "model.py").read_text()))
    dry = run("grid", "student.toml", "--dry-run")
    assert dry.exit_code == 0 and "only in comments, docstrings or formatting" in dry.output, dry.output
    assert "train again" not in dry.output
    again = run("grid", "student.toml")
    assert again.exit_code == 0 and "student: 2 of 2 trials complete; 0 to run" in again.output, again.output
    report = run("report", "student.toml", "--out", "r")
    assert report.exit_code == 0 and "student: 2 trials in 1 configuration" in report.output, report.output
    assert "note: net: model.py changed since its trials were stored, but only in" in report.output
    assert run("export", "--study", "student", "0", "--out", "m.pt").exit_code == 0  # the weights' code check too


def test_a_real_edit_is_said_by_dry_run_grid_and_report_and_the_report_names_the_option(student):
    first = _trained()
    old = first[0].user_attrs["config"]["model"]["source_sha256"]
    (student / "model.py").write_text(REAL(MODEL))
    dry = run("grid", "student.toml", "--dry-run")
    assert dry.exit_code == 0, dry.output
    line = f"net: model.py changed since 2 complete trials of it were stored (sha256 {old[:12]} then, "
    assert line in dry.output and "; its points train again" in dry.output
    report = run("report", "student.toml", "--out", "r")  # the one coherent line, not "no complete trials (2 complete)"
    assert report.exit_code == 1
    assert (f"study 'student' has 2 complete trials, every one made by an earlier version of model.py (sha256 "
            f"{old[:12]}), none by the code there now: run `runner grid student.toml` to train this code, or "
            f"report those trials with --module-version {old[:12]} (or --module-version any)") in report.output
    for version in (old[:12], "any"):
        shown = run("report", "student.toml", "--out", f"r-{version}", "--module-version", version)
        assert shown.exit_code == 0 and "student: 2 trials in 1 configuration" in shown.output, shown.output
    wrong = run("report", "student.toml", "--out", "r", "--module-version", "ffff")
    assert wrong.exit_code == 1 and f"the earlier versions stored: {old[:12]} (or any)" in wrong.output
    grid = run("grid", "student.toml")
    assert grid.exit_code == 0 and line in grid.output and "2 to run" in grid.output
    mixed = run("report", "student.toml", "--out", "r2")  # both versions stored: this code's, and a note
    assert mixed.exit_code == 0 and "student: 2 trials in 1 configuration; 2 trials left out" in mixed.output
    assert f"2 complete trials of an earlier model.py (sha256 {old[:12]} (2 trials)) are left out; " \
           f"--module-version {old[:12]} (or any) reports them" in mixed.output
    exported = run("export", "--study", "student", "0", "--out", "old.pt")  # trained by the earlier code
    assert exported.exit_code == 1 and "is not the code these weights were trained with" in exported.output


def test_trials_stored_before_the_structure_hash_keep_matching_once_a_run_has_seen_their_file(student):
    """The old-hash database: trials that store only the file's SHA-256, as the code before did."""
    _trained()
    with sqlite3.connect("db/runner.sqlite") as db:  # back to what the code before stored
        db.execute("DELETE FROM trial_user_attributes WHERE key = 'source_structure'")
        db.execute("DELETE FROM study_user_attributes WHERE key = 'source_versions'")
    (student / "model.py").write_text(FORM_ONLY["comment"](MODEL))
    unseen = run("grid", "student.toml", "--dry-run")  # no run has seen the old file's structure: a change
    assert "changed since 2 complete trials" in unseen.output
    (student / "model.py").write_text(MODEL)  # the file as it was: its trials match, and the run notes it
    assert "0 to run" in run("grid", "student.toml").output
    (student / "model.py").write_text(FORM_ONLY["comment"](MODEL))
    again = run("grid", "student.toml")
    assert again.exit_code == 0 and "0 to run" in again.output and "only in comments" in again.output
