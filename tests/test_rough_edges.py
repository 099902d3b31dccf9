"""The rough edges a new user hits first: a plain path as --storage, a server that does not answer,
the continue hint after Ctrl-C, a misspelt value, plurals."""
from __future__ import annotations

import optuna
import pytest
from click.testing import CliRunner

import runner.trials.lifecycle as lifecycle_module
from runner.cli import cli


@pytest.fixture
def project(tmp_path, monkeypatch, write_spec):
    monkeypatch.chdir(tmp_path)
    return write_spec


@pytest.mark.parametrize("path", ["db/runner.sqlite", "./x.sqlite", "elsewhere/y.db"])
def test_a_plain_file_path_is_a_sqlite_storage_everywhere(project, tmp_path, path):
    spec = project(batch_norm="[false]")
    for args in (["grid", str(spec)], ["studies"], ["trials", "--study", "t"], ["show", "--study", "t", "0"],
                 ["report", str(spec), "--out", "r"]):
        result = CliRunner().invoke(cli, [*args, "--storage", path])
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / path).is_file()


@pytest.mark.parametrize("given", ["nonsense:x", "sqlite:db.sqlite", "host:5432"])
def test_what_is_neither_a_url_nor_a_path_is_one_line_with_the_forms(project, given):
    result = CliRunner().invoke(cli, ["studies", "--storage", given])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: --storage {given!r}: not a SQLAlchemy URL nor a file path; give a SQLite "
                                     "file (db/runner.sqlite, sqlite:///db/runner.sqlite) or a server's SQLAlchemy "
                                     "URL (postgresql+psycopg://user@host:5432/db)")


@pytest.mark.parametrize("command", ["studies", "grid"])
def test_an_unreachable_server_is_one_line_with_its_host_port_and_the_drivers_reason(project, command):
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://postgres:secret@127.0.0.1:1/runner"
    args = ["studies"] if command == "studies" else ["grid", str(project(batch_norm="[false]"))]
    result = CliRunner().invoke(cli, [*args, "--storage", url])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "cannot reach 127.0.0.1:1: " in line and "Connection refused" in line
    assert "secret" not in line  # the password is never shown


def test_the_continue_hint_repeats_every_option_as_typed(project, monkeypatch):
    spec = project(batch_norm="[false]")
    monkeypatch.setattr(lifecycle_module, "train_point", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    result = CliRunner().invoke(cli, ["grid", str(spec), "--storage", "other.sqlite", "--stale-after", "60", "-q",
                                      "--retry-failed"])
    assert result.exit_code == 130
    assert (f"run the same command again to continue: runner grid {spec} --storage other.sqlite --retry-failed "
            "--stale-after 60.0 --quiet") in result.output


@pytest.mark.parametrize("old, new, message", [
    ('train_limit = 600', 'dataset = "mnsit"\ntrain_limit = 600',
     '[data].dataset: "mnsit" is not "mnist" | "fashion_mnist"'),
    ('lr = 0.05', 'lr = 0.05\noptimizer = "adamm"', '; did you mean "adam"?'),
    ('lr = 0.05', 'lr = 0.05\nschedule = "cosin"', '[train].schedule: "cosin" is not'),
    ('arch = "lenet5"', 'arch = "lenet5"\naugment = "afine"', '; did you mean "affine"?'),
    ('arch = "lenet5"', 'arch = "lenet5"\nact = "rellu"', '; did you mean "relu"?'),
])
def test_every_enumerated_value_gets_a_did_you_mean(project, old, new, message):
    spec = project(batch_norm="[false]")
    spec.write_text(spec.read_text().replace(old, new, 1))
    result = CliRunner().invoke(cli, ["grid", str(spec), "--dry-run"])
    assert result.exit_code == 1 and message in result.output and "did you mean" in result.output, result.output


def test_plurals_are_right(project):
    spec = project(batch_norm="[false]")
    assert CliRunner().invoke(cli, ["grid", str(spec)]).exit_code == 0
    result = CliRunner().invoke(cli, ["report", str(spec), "--out", "r"])
    assert "t: 1 trial in 1 configuration" in result.output


STUDENT = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return {last}
"""
STUDENT_SPEC = """
[study]
name = "student"
[data]
train_limit = 300
test_limit = 100
[train]
epochs = 1
threads = 1
[models.lenet]
target = "model:LeNet5"
{input}
[grid]
model = ["lenet"]
"""


@pytest.mark.parametrize("last, warned", [("self.fc3(x)", None),
                                          ("F.softmax(self.fc3(x), dim=1)", "returns probabilities"),
                                          ("F.log_softmax(self.fc3(x), dim=1)", "returns log-probabilities")])
def test_a_32x32_student_model_runs_with_pad_2_and_a_softmax_at_the_end_is_warned_about(tmp_path, monkeypatch,
                                                                                          last, warned):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last=last))
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input=""))
    refused = CliRunner().invoke(cli, ["grid", "spec.toml"])  # 28x28 into a 32x32 model: the check says so
    assert refused.exit_code == 1 and "a forward pass on 2 images of shape (1, 28, 28)" in refused.output
    assert "it runs on images of shape (1, 32, 32): add `input = { pad = 2 }` to this model's table" in refused.output
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input="input = { pad = 2 }"))
    result = CliRunner().invoke(cli, ["grid", "spec.toml"])
    assert result.exit_code == 0, result.output
    assert "student: 1 of 1 trials complete" in result.output
    lines = [x for x in result.output.splitlines() if x.startswith("warning:")]
    if warned is None:
        assert not lines
    else:
        [line] = lines
        assert "[models.lenet]: model:LeNet5 " + warned in line and "CrossEntropyLoss expects logits" in line
    models = CliRunner().invoke(cli, ["models", "spec.toml"])
    assert models.output.splitlines()[3].split() == ["input", "pad", "2", "(1,", "32,", "32)", "–", "0"]
    assert "total: 61,706 parameters" in models.output


@pytest.mark.parametrize("models, message", [
    ('target = "model:LeNet5"\nargs = { widht = 8 }', "[models.lenet].args: got an unexpected keyword argument 'widht'"),
    ('target = "model:LeNet6"', "model has no attribute 'LeNet6'; did you mean \"LeNet5\"?; it has nn.Module classes "
                                "LeNet5\n"),  # not nn or F, which it imports
    ('target = "model:LeNet5"\ninput = { pad = 2 }\ndropout = 0.5', "cannot take dropout = 0.5"),
])
def test_dry_run_does_every_check_that_needs_no_training(tmp_path, monkeypatch, models, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)"))
    spec = STUDENT_SPEC.format(input="").replace('target = "model:LeNet5"\n', models + "\n")
    (tmp_path / "spec.toml").write_text(spec)
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "db").exists()  # nothing touched


def test_dry_run_says_what_it_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)"))
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input="input = { pad = 2 }"))
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "checked the data: mnist" in result.output and "300 training and 100 test images" in result.output
    assert "your module lenet: imported, args against the signature" in result.output
    assert not (tmp_path / "db").exists()


def test_a_report_covers_a_module_whose_file_is_gone_and_says_which_code_it_reports(tmp_path, monkeypatch):
    """A TA with the database but not every student's file still gets the report (and the read commands)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)"))
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input="input = { pad = 2 }"))
    assert CliRunner().invoke(cli, ["grid", "spec.toml"]).exit_code == 0
    import hashlib
    import sys

    sha = hashlib.sha256((tmp_path / "model.py").read_bytes()).hexdigest()
    (tmp_path / "model.py").unlink()
    monkeypatch.delitem(sys.modules, "model", raising=False)
    refused = CliRunner().invoke(cli, ["grid", "spec.toml"])  # training needs the code: one line
    assert refused.exit_code == 1 and "no module model in" in refused.output
    result = CliRunner().invoke(cli, ["report", "spec.toml", "--out", "r"])
    assert result.exit_code == 0, result.output
    assert "student: 1 trial in 1 configuration" in result.output
    assert (f"note: [models.lenet].target model:LeNet5: its module's file was not found; this report covers the "
            f"trials stored with code version sha256 {sha[:12]}") in result.output
    text = (tmp_path / "r" / "report.md").read_text()
    assert "> Note: [models.lenet].target model:LeNet5: its module's file was not found" in text
    assert "Total: **61,706** parameters." in text  # the layer table as stored with the trial
    for args in (["trials", "--study", "student"], ["show", "--study", "student", "0"], ["studies"]):
        assert CliRunner().invoke(cli, args).exit_code == 0, args


def test_a_students_layer_table_is_stored_and_reported_in_the_order_it_runs(tmp_path, monkeypatch):
    """Batch norm defined after the output layer, one of them never called, one pool used twice: the stored
    table (the report's, which never imports the module) shows what runs where, and says what never ran."""
    monkeypatch.chdir(tmp_path)
    source = STUDENT.format(last="self.fc3(x)").replace(
        "self.fc3 = nn.Linear(84, 10)\n",
        "self.fc3 = nn.Linear(84, 10)\n        self.bn1 = nn.BatchNorm2d(6)\n        self.bn2 = nn.BatchNorm2d(16)\n",
    ).replace("self.pool(F.relu(self.conv1(x)))", "self.pool(F.relu(self.bn1(self.conv1(x))))")
    (tmp_path / "model.py").write_text(source)
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input="input = { pad = 2 }"))
    assert CliRunner().invoke(cli, ["grid", "spec.toml"]).exit_code == 0
    [trial] = optuna.load_study(study_name="student", storage="sqlite:///db/runner.sqlite").get_trials()
    names = [row[0] for row in trial.user_attrs["layer_table"]]
    assert names == ["input", "conv1", "bn1", "relu()", "pool", "conv2", "relu()", "pool", "view()", "fc1", "relu()",
                     "fc2", "relu()", "fc3", "bn2"]
    assert trial.user_attrs["layer_table"][-1][1:] == ["defined but not used in forward", [], "32", 32]
    assert sum(row[4] for row in trial.user_attrs["layer_table"]) == trial.user_attrs["param_count"] == 61_706 + 12 + 32
    result = CliRunner().invoke(cli, ["report", "spec.toml", "--out", "r"])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "r" / "report.md").read_text()
    table = md.split("### lenet")[1].split("Total:")[0]
    assert table.index("| bn1 |") < table.index("| relu() |") < table.index("| fc3 |")
    assert "max pool 2, shared (call 2 of 2)" in table and "| bn2 |" not in table
    assert "Defined but not used in forward: bn2, 32 parameters." in table


def test_a_forward_that_fails_whatever_the_input_gets_no_input_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)").replace(
        "x = self.pool(F.relu(self.conv1(x)))", "raise ValueError('not yet written')"))
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input=""))
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert result.exit_code == 1 and "raised ValueError: not yet written\n" in result.output, result.output
