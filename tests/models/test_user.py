"""runner/models/user.py: a user's own nn.Module (`target = "mynet:Net"`): grid, checks, regularizers,
changed source, reading, and a student's module as written.

Every test writes the module and the spec into a folder of their own (tmp_path/proj) and runs from
another folder (tmp_path/work), so that the spec's folder really is where the module is found.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner, Result

import runner.models.user as user_module
import runner.trials.lifecycle as lifecycle_module
from runner.cli import cli

from tests.helpers import DB, STUDENT, STUDENT_SPEC, TYPO, refused as _refused
from tests.helpers import here  # noqa: F401 - fixtures


# conv (8, 28, 28): (3*3*1+1)*8 = 80; pool (8, 7, 7); head.2 fc (10,): (392+1)*10 = 3,930; total 4,010.
# `c = width * 1` becomes `c = width * 2` in the source-change tests: the same size, another network.
MYNET = '''
from pathlib import Path

import torch
from torch import nn

OUT = 10


class Net(nn.Module):
    def __init__(self, width: int = 8, dropout: float = 0.0):
        super().__init__()
        c = width * 1
        self.dropout = dropout
        with open(Path(__file__).with_name("built.txt"), "a") as f:
            f.write(f"{dropout}\\n")
        self.conv = nn.Conv2d(1, c, 3, padding=1)
        self.pool = nn.MaxPool2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c * 7 * 7, OUT))

    def forward(self, x):
        return self.head(self.pool(torch.relu(self.conv(x))))
'''


SPEC = '''
[study]
name = "{name}"
seeds = {seeds}
metric = "test_acc"

[data]
train_limit = 600
test_limit = 300

[train]
epochs = 1
batch_size = 100
lr = 0.05

[models.mine]
target = "{target}"
args = {args}

[grid]
model = ["mine"]
{grid}
'''


@pytest.fixture
def proj(tmp_path, monkeypatch):
    """Write mynet.py and spec.toml into tmp_path/proj; the current folder is tmp_path/work."""
    folder = tmp_path / "proj"
    folder.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # the module is imported into this process: leave no `mynet` behind for other tests
    before = set(sys.modules)
    yield _Project(folder, work)
    for name in set(sys.modules) - before:
        if name == "mynet" or name.startswith("mynet."):
            del sys.modules[name]


class _Project:
    def __init__(self, folder: Path, work: Path):
        self.folder, self.work = folder, work
        self.module = folder / "mynet.py"
        self.spec = folder / "spec.toml"

    def write(self, module: str = MYNET, name: str = "t", seeds: str = "[0]", target: str = "mynet:Net",
              args: str = "{ width = 8 }", grid: str = "") -> Path:
        self.module.write_text(textwrap.dedent(module))
        self.spec.write_text(SPEC.format(name=name, seeds=seeds, target=target, args=args, grid=grid))
        return self.spec

    def built(self) -> list[float]:
        path = self.folder / "built.txt"
        return [float(x) for x in path.read_text().split()] if path.exists() else []


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def trials(name: str = "t") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{DB}").get_trials()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def no_training(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("trained, though the checks should have refused the spec")
    monkeypatch.setattr(lifecycle_module, "train_point", fail)


def assert_one_line_refusal(result, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])
    assert not DB.exists() and not Path("db").exists()  # the database is untouched


# ---------------------------------------------------------------- 1. it trains, and what is stored


def test_a_user_module_trains_and_its_source_hash_count_and_layer_table_are_stored(proj):
    spec = proj.write(seeds="[0, 1]")
    result = run("grid", spec)
    assert result.exit_code == 0, result.output
    assert "t: 2 of 2 trials complete" in result.output
    ts = trials()
    assert [t.state for t in ts] == [optuna.trial.TrialState.COMPLETE] * 2
    for t in ts:
        attrs = t.user_attrs
        assert attrs["config"]["model"] == {"name": "mine", "target": "mynet:Net", "args": {"width": 8},
                                            "source_sha256": sha(proj.module)}
        assert attrs["param_count"] == 4_010
        table = {row[0]: row for row in attrs["layer_table"]}
        assert table["conv"][2:] == [[8, 28, 28], "(3*3*1+1)*8", 80]
        assert table["head.2"][2:] == [[10], "(392+1)*10", 3_930]
        assert table["pool"][2] == [8, 7, 7] and table["pool"][4] == 0
        assert sum(row[4] for row in attrs["layer_table"]) == 4_010
        assert 0 < t.value <= 100
    assert {t.params["seed"] for t in ts} == {0, 1}


# ---------------------------------------------------------------- 2. refused before anything trains


BAD_SHAPE = MYNET.replace("OUT = 10", "OUT = 5")


MISSING_ARG = MYNET.replace("width: int = 8", "width: int")


BAD_IMPORT = MYNET.replace("import torch\n", "import torch\nimport no_such_package_xyz\n")


@pytest.mark.parametrize("module, target, args, parts", [
    (MYNET, "mynet:Net", "{ width = 8, depth = 3 }",
     ["[models.mine]", "depth", "Net(width: int = 8, dropout: float = 0.0)"]),
    (MISSING_ARG, "mynet:Net", "{}", ["[models.mine]", "missing a required argument: 'width'", "Net(width: int"]),
    (BAD_IMPORT, "mynet:Net", "{ width = 8 }", ["mynet", "ModuleNotFoundError", "no_such_package_xyz"]),
    (BAD_SHAPE, "mynet:Net", "{ width = 8 }", ["[models.mine]", "(2, 10)", "(2, 5)"]),
    (MYNET, "mynet:Nett", "{ width = 8 }", ["mynet", "'Nett'", "Net"]),
    (MYNET, "nosuchmodule:Net", "{ width = 8 }", ["[models.mine].target", "nosuchmodule"]),
    (MYNET, "mynet:Net", "{ width = 8, dropout = 0.3 }", ["[models.mine].args", "dropout = 0.3", "replaced"]),
], ids=["unknown-arg", "missing-arg", "import-error", "wrong-shape", "no-attribute", "no-module-file",
        "regularizer-in-args"])
def test_a_bad_user_module_is_refused_in_one_line_before_training(proj, monkeypatch, module, target, args, parts):
    no_training(monkeypatch)
    spec = proj.write(module, target=target, args=args)
    assert_one_line_refusal(run("grid", spec), *parts)


# ---------------------------------------------------------------- 3. regularizer axes


def test_a_dropout_axis_reaches_a_constructor_that_takes_dropout(proj):
    spec = proj.write(grid="dropout = [0.0, 0.5]")
    built = []
    real = user_module.build_user_model
    with pytest.MonkeyPatch.context() as m:  # every model the runner builds for training or its tables
        m.setattr(user_module, "build_user_model",
                  lambda cfg: (lambda model: built.append(model.dropout) or model)(real(cfg)))
        result = run("grid", spec)
    assert result.exit_code == 0, result.output
    assert 0.5 in built and 0.0 in built
    assert {0.0, 0.5} <= set(proj.built())  # the module's own record of its constructor's argument
    ts = trials()
    assert sorted(t.params["dropout"] for t in ts) == [0.0, 0.5]
    assert {t.params["dropout"]: t.user_attrs["config"]["regularizers"]["dropout"] for t in ts} == {0.0: 0.0, 0.5: 0.5}
    with sqlite3.connect(DB) as db:  # the same seed and data order: only dropout makes the losses differ
        losses = dict(db.execute("select trial_number, train_loss from runner_epochs").fetchall())
    by_dropout = {t.params["dropout"]: losses[t.number] for t in ts}
    assert by_dropout[0.0] != by_dropout[0.5]


def test_a_batch_norm_axis_is_the_modules_own_when_its_constructor_takes_none(proj, tmp_path):
    """Net(width, dropout) has no batch_norm: the axis does not apply to it, as a layer field does not
    apply to another model. One point, not two copies of it, and no label that says batch_norm=false."""
    spec = proj.write(grid="batch_norm = [false, true]\ndropout = [0.0, 0.5]")
    dry = run("grid", spec, "--dry-run")
    assert dry.exit_code == 0, dry.output
    rows = [line.split() for line in dry.output.splitlines() if line.split()[1:2] == ["mine"]]
    assert len(rows) == 2 and "2 points: 2 settings x 1 seed (dropout 2 x 1 seed)" in dry.output  # not batch_norm 2
    assert ("warning: " + str(spec) + ": [grid].batch_norm applies to no model: mine (mynet:Net) takes no batch_norm "
            "argument (read from the constructor's signature), so each keeps its own batch_norm") in dry.output
    assert all(" ".join(r).count("the module's own") == 1 for r in rows), dry.output
    assert run("grid", spec).exit_code == 0
    ts = trials()
    assert sorted(t.params["dropout"] for t in ts) == [0.0, 0.5]
    assert all("batch_norm" not in t.params and "batch_norm" not in t.user_attrs["label"] for t in ts)
    assert all(t.user_attrs["module_takes"] == ["dropout"] for t in ts)
    # the hash is the one the code before gave the point with batch_norm off: stored trials keep matching
    assert {t.user_attrs["config"]["regularizers"]["batch_norm"] for t in ts} == {False}
    assert run("report", spec, "--out", tmp_path / "r").exit_code == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| batch_norm | the module's own: `mine` has no batch norm |" in md and "| dropout | 0.0, 0.5 |" in md
    assert "batch_norm (false → true)" not in md  # no effect to estimate of what the module does not take
    assert "dropout (0.0 → 0.5)" in md


def test_a_run_that_asks_a_module_for_batch_norm_it_cannot_take_is_refused(proj, monkeypatch):
    no_training(monkeypatch)
    spec = proj.write()
    spec.write_text(spec.read_text() + '\n[[runs]]\nmodel = "mine"\nbatch_norm = true\n')
    assert_one_line_refusal(run("grid", spec), "[models.mine]", "batch_norm")


# ---------------------------------------------------------------- 4. a changed source file


def _edit_keeping_size_and_mtime(path: Path, old: str, new: str) -> None:
    """Change the network as an editor might within the same second: same size, same mtime."""
    assert len(old) == len(new)
    st = path.stat()
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


def test_a_changed_source_trains_again_and_the_report_leaves_the_old_trials_out(proj, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as for most users: __pycache__ is written
    spec = proj.write(seeds="[0, 1]")
    first = run("grid", spec)
    assert first.exit_code == 0, first.output
    old_sha = sha(proj.module)
    _edit_keeping_size_and_mtime(proj.module, "c = width * 1", "c = width * 2")  # 16 channels: 8,010
    assert sha(proj.module) != old_sha

    second = run("grid", spec)
    assert second.exit_code == 0, second.output
    assert "mynet.py changed since 2 complete trials of it were stored" in second.output
    assert "its points train again" in second.output
    assert "t: 0 of 2 trials complete; 2 to run" in second.output
    assert "t: 2 of 2 trials complete" in second.output
    ts = trials()
    assert [t.state.name for t in ts] == ["COMPLETE"] * 4
    new = [t for t in ts if t.user_attrs["config"]["model"]["source_sha256"] == sha(proj.module)]
    assert [t.number for t in new] == [2, 3]
    for t in new:  # the new code is what ran, not a cached module or stale bytecode
        assert t.user_attrs["param_count"] == 8_010
        assert {r[0]: r[2] for r in t.user_attrs["layer_table"]}["conv"] == [16, 28, 28]

    out = tmp_path / "report"
    report = run("report", spec, "--out", out)
    assert report.exit_code == 0, report.output
    assert "t: 2 trials in 1 configuration; 2 trials left out" in report.output
    md = (out / "report.md").read_text()
    left_out = md.split("## Trials left out", 1)[1]
    assert left_out.count("made by an earlier mynet.py") == 2
    assert "| 0 |" in left_out and "| 1 |" in left_out
    assert "Total: **8,010** parameters" in md and "4,010" not in md

    calls = []
    monkeypatch.setattr(lifecycle_module, "train_point", lambda *a, **k: calls.append(a))
    third = run("grid", spec)
    assert third.exit_code == 0, third.output
    assert calls == [] and "t: 2 of 2 trials complete; 0 to run" in third.output
    assert "changed since" in third.output and "train again" not in third.output
    assert len(trials()) == 4


def test_a_module_of_the_same_name_in_another_folder_is_not_taken_for_it(proj, tmp_path):
    """Two specs, each beside its own mynet.py, in one process: each trains its own module."""
    spec = proj.write()
    assert run("grid", spec).exit_code == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "mynet.py").write_text(textwrap.dedent(MYNET.replace("c = width * 1", "c = width * 2")))
    (other / "spec.toml").write_text(SPEC.format(name="u", seeds="[0]", target="mynet:Net",
                                                 args="{ width = 8 }", grid=""))
    result = run("grid", other / "spec.toml")
    assert result.exit_code == 0, result.output
    t = trials("u")[0]
    assert t.user_attrs["config"]["model"]["source_sha256"] == sha(other / "mynet.py")
    assert t.user_attrs["param_count"] == 8_010


def test_the_report_leaves_out_trials_made_with_other_args(proj, tmp_path):
    """The trials' params cannot tell width 8 from width 16: the report must not take one for the other."""
    spec = proj.write()
    assert run("grid", spec).exit_code == 0
    spec.write_text(spec.read_text().replace("args = { width = 8 }", "args = { width = 16 }"))
    assert run("grid", spec).exit_code == 0
    ts = trials()
    assert [t.user_attrs["param_count"] for t in ts] == [4_010, 8_010]
    out = tmp_path / "report"
    report = run("report", spec, "--out", out)
    assert report.exit_code == 0, report.output
    assert "t: 1 trial in 1 configuration; 1 trial left out" in report.output
    md = (out / "report.md").read_text()
    left_out = md.split("## Trials left out", 1)[1]
    assert '| 0 | complete | mine | 0 | made by mynet:Net with args {"width": 8}' in left_out
    assert "duplicate of trial" not in left_out
    assert "Total: **8,010** parameters" in md and "4,010" not in md


# ---------------------------------------------------------------- 5. reading never imports user code


def test_read_only_commands_never_import_the_users_module(proj, monkeypatch, tmp_path):
    spec = proj.write(seeds="[0, 1]")
    assert run("grid", spec).exit_code == 0
    for name in [n for n in sys.modules if n == "mynet" or n.startswith("mynet.")]:
        monkeypatch.delitem(sys.modules, name)

    def refuse(*a, **k):
        raise AssertionError("a read-only command imported the user's module")
    monkeypatch.setattr(user_module, "load_target", refuse)

    out = tmp_path / "report"
    for args in (["report", spec, "--out", out], ["trials", "--study", "t"], ["show", "--study", "t", "0"],
                 ["studies"]):  # `grid --dry-run` imports it now: it checks all that needs no training (issue 18)
        result = run(*args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "mynet" not in sys.modules, args
    md = (out / "report.md").read_text()
    section = md.split("### mine (module mynet:Net)", 1)[1].split("###", 1)[0]
    assert "| conv " in section and "(8, 28, 28)" in section and "| head.2 " in section
    assert "Total: **4,010** parameters" in section


# ---------------------------------------------------------------- 6. runner models


def test_models_shows_the_modules_layers_with_shapes_and_counts(proj):
    result = run("models", proj.write())
    assert result.exit_code == 0, result.output
    out = result.output
    assert "mine (module mynet:Net)" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "(8, 28, 28)" in rows["conv"] and rows["conv"].rstrip().endswith("80")
    assert "(8, 7, 7)" in rows["pool"]
    assert "(10,)" in rows["head.2"] and rows["head.2"].rstrip().endswith("3,930")
    assert "total: 4,010 parameters" in out


BN_NET = MYNET.replace("dropout: float = 0.0", "batch_norm: bool = False").replace(
    "self.dropout = dropout", "dropout = 0.0").replace(
    "self.conv = nn.Conv2d(1, c, 3, padding=1)",
    "self.conv = nn.Conv2d(1, c, 3, padding=1)\n        self.bn = nn.BatchNorm2d(c) if batch_norm else nn.Identity()"
).replace("torch.relu(self.conv(x))", "torch.relu(self.bn(self.conv(x)))")


def test_the_report_shows_each_batch_norm_variant_of_a_user_module_with_its_own_table(proj, tmp_path):
    spec = proj.write(BN_NET, grid="batch_norm = [false, true]")
    models = run("models", spec)
    assert models.exit_code == 0, models.output
    assert "total: 4,010 parameters" in models.output and "total: 4,026 parameters" in models.output
    assert run("grid", spec).exit_code == 0
    assert sorted(t.user_attrs["param_count"] for t in trials()) == [4_010, 4_026]
    assert run("report", spec, "--out", tmp_path / "report").exit_code == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Total: **4,010** parameters" in md and "Total: **4,026** parameters" in md


def test_runner_models_loads_the_users_data_to_learn_its_shape(tmp_path, monkeypatch):
    """A spec with [data].target: `runner models` calls it once (the shape is the data's) and draws."""
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "d.py").write_text("import numpy as np\n"
                               "def load():\n"
                               "    x = np.random.default_rng(0).integers(0, 256, (20, 3, 12, 12), dtype=np.uint8); y = np.arange(20) % 4\n"
                               "    return x, y, x[:8], y[:8]\n")
    (proj / "spec.toml").write_text('[study]\nname = "s"\n[data]\ntarget = "d:load"\n'
                                    '[models.m]\narch = "lenet5"\n[grid]\nmodel = ["m"]\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["models", str(proj / "spec.toml"), "--diagram", "pics"])
    assert result.exit_code == 0, result.output
    assert "(6, 12, 12)" in result.output and "(4,)" in result.output  # 3 channels in, 4 classes out
    assert len(list((tmp_path / "pics").glob("*.png"))) == 1


@pytest.mark.parametrize("source, expected", [
    ("class Net:\n    def __init__(self, width=8, *, dropout=0.0):\n        pass\n", {"width", "dropout"}),
    ("def Net(batch_norm=False):\n    pass\n", {"batch_norm"}),
    ("class Net(Base):\n    pass\n", None),  # inherited from elsewhere: only the import can say
    ("class Base:\n    def __init__(self, width=8):\n        pass\nclass Net(Base):\n    pass\n", {"width"}),
    ("class A:\n    def __init__(self, dropout=0.0):\n        pass\nclass B(A):\n    pass\nclass Net(B):\n    x = 1\n",
     {"dropout"}),  # two generations up, in the same file
    ("from torch import nn\nclass Net(nn.Module):\n    def forward(self, x):\n        return x\n", set()),
    ("class Net(Net):\n    pass\n", None),  # a cycle, as no import would allow
    ("class Net:\n    def __init__(self, **kwargs):\n        pass\n", None),  # takes anything
    ("Net = make()\n", None),
    ("class Net:\n    def __init__(self:\n", None),  # does not parse
])
def test_a_constructors_parameters_are_read_from_its_source_without_running_it(tmp_path, source, expected):
    from runner.usercode import declared_parameters

    path = tmp_path / "m.py"
    path.write_text("raise SystemExit('never run')\n" + source)
    assert declared_parameters(path, "m:Net") == (None if expected is None else frozenset(expected))


STUDENT_MODULES = """
import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x):
        return self.fc(x)


class CustomMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(784, 20), nn.ReLU(), nn.Linear(20, 10))

    def forward(self, x):
        return self.fc(x)


class Soft(LeNet5):
    pass
"""


def _student_spec(proj, models: list[str], grid: str) -> Path:
    proj.module.write_text(STUDENT_MODULES)
    tables = "".join(f'[models.{m.lower()}]\ntarget = "mynet:{m}"\n' for m in models)
    names = ", ".join(f'"{m.lower()}"' for m in models)
    proj.spec.write_text(SPEC.split("[models.mine]")[0].format(name="s", seeds="[0, 1]") + tables
                         + f"[grid]\nmodel = [{names}]\n{grid}\n")
    return proj.spec


def test_axes_no_module_takes_are_named_and_the_count_line_adds_up(proj):
    spec = _student_spec(proj, ["LeNet5", "CustomMLP"], "dropout = [0.0, 0.5]\nbatch_norm = [false, true]")
    dry = run("grid", spec, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "4 points: 2 settings x 2 seeds (model 2 x 2 seeds)" in dry.output  # not "model 2 x batch_norm 2 x ..."
    warned = [x for x in dry.output.splitlines() if x.startswith("warning: ")]
    assert len(warned) == 2 and all("applies to no model: lenet5 (mynet:LeNet5) and custommlp (mynet:CustomMLP) "
                                    "take no " in x for x in warned), warned
    assert "[grid].dropout" in warned[0] and "[grid].batch_norm" in warned[1]


def test_a_subclass_is_judged_by_the_constructor_it_inherits(proj):
    spec = _student_spec(proj, ["Soft"], "dropout = [0.0, 0.5]")
    dry = run("grid", spec, "--dry-run")
    assert dry.exit_code == 0, dry.output  # not refused with "signature Soft()"
    assert "2 points: 1 setting x 2 seeds\n" in dry.output and "the module's own" in dry.output
    assert "[grid].dropout applies to no model: soft (mynet:Soft) takes no dropout argument" in dry.output


# ---------------------------------------------------------------- 7. a student's module as written


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


def test_a_forward_that_fails_whatever_the_input_gets_no_input_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(STUDENT.format(last="self.fc3(x)").replace(
        "x = self.pool(F.relu(self.conv1(x)))", "raise ValueError('not yet written')"))
    (tmp_path / "spec.toml").write_text(STUDENT_SPEC.format(input=""))
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "--dry-run"])
    assert result.exit_code == 1 and "raised ValueError: not yet written\n" in result.output, result.output


# ---------------------------------------------------------------- 8. a module that runs out of memory


BROKEN = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        if x.shape[0] > 16:  # the checks pass; training asks for more than the machine has
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:116] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 313600000000 bytes. Error code 12 (Cannot allocate memory)")
        return self.fc(x.flatten(1))
'''


def test_a_user_module_that_runs_out_of_memory_fails_its_trial_in_one_line_and_leaves_nothing_running(here):
    (here / "net.py").write_text(BROKEN)
    (here / "spec.toml").write_text(TYPO.replace('layers = [ { fc = 100000000 }, { fc = 10 } ]', 'target = "net:Net"'))
    result = CliRunner().invoke(cli, ["grid", "spec.toml", "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    [trial] = optuna.load_study(study_name="typo", storage="sqlite:///db/runner.sqlite").get_trials()
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"].startswith("out of memory while training: [enforce fail at")
    (here / "net.py").write_text(BROKEN.replace("if x.shape[0] > 16:", "if True:"))
    _refused(CliRunner().invoke(cli, ["grid", "spec.toml"]),
             "a forward pass on 2 images of shape (1, 28, 28) ran out of memory (")


@pytest.mark.parametrize("head, kind", [(lambda z: z, user_module.LOGITS),
                                        (lambda z: z.softmax(1), user_module.PROBABILITIES),
                                        (lambda z: z.log_softmax(1), user_module.LOG_PROBABILITIES)])
def test_probabilities_are_read_once_whatever_the_model_returns(head, kind):
    """The one check (output_kind) the warning above, runner predict and the stored predictions share: a
    softmax model's outputs are its probabilities, never softmaxed again."""
    import torch

    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) * 3  # (N, classes)
    out = head(logits)
    assert user_module.output_kind(out) == kind
    assert torch.allclose(user_module.probabilities(out), logits.softmax(1), atol=1e-6)
    assert user_module.output_kind(logits[:, :1]) == user_module.LOGITS  # one class: nothing to tell
