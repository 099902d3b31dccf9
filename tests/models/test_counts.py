"""runner/models/counts.py: layer tables: each layer's output shape, the formula of its count,
and the count, for presets, declared layer lists and a user's module, in the order they run."""
from __future__ import annotations

import optuna
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.nn import functional as F

from runner.cli import cli
from runner.models.counts import param_table
from runner.models.layers import InputTransform
from runner.spec import load_spec
from runner.spec.tables import parameter_tables

from tests.helpers import STUDENT, STUDENT_SPEC

COURSE = {"lenet5_32": 61_706, "lenet5_tanh": 61_706, "mlp_1024": 61_450, "lenet5_bn_drop": 61_750,
          "lenet5_wide": 115_510, "mlp_90": 81_080}


def test_the_course_designs_have_the_counts_their_submissions_state():
    spec = load_spec("specs/course.toml")
    totals = {t.model: t.total for t in parameter_tables(spec)}
    assert totals == COURSE
    mlp_90 = next(t for t in parameter_tables(spec) if t.model == "mlp_90")
    first = next(r for r in mlp_90.rows if r.count)  # the submission counted 70,590 here: the table shows (784+1)*90
    assert (first.formula, first.count) == ("(784+1)*90", 70_650)


@pytest.mark.parametrize("spec_path", ["specs/regularization.toml", "specs/course.toml"])
def test_layer_formulas_evaluate_to_their_counts_and_sum_to_the_total(spec_path):
    for table in parameter_tables(load_spec(spec_path)):
        for r in table.rows:
            if r.formula:
                assert eval(r.formula, {"__builtins__": {}}) == r.count, r  # noqa: S307 - digits and * + ( ) only
        assert sum(r.count for r in table.rows) == table.total, table.title


def test_course_tables_give_each_layers_output_shape():
    tables = {t.model: t for t in parameter_tables(load_spec("specs/course.toml"))}
    shapes = {r.name: r.shape for r in tables["lenet5_32"].rows}
    assert shapes == {"input": (1, 32, 32), "c1": (6, 28, 28), "c1_act": (6, 28, 28), "s2": (6, 14, 14),
                      "c3": (16, 10, 10), "c3_act": (16, 10, 10), "s4": (16, 5, 5), "c5": (120, 1, 1),
                      "c5_act": (120, 1, 1), "flatten": (120,), "f6": (84,), "f6_act": (84,), "output": (10,)}
    assert list(shapes) == [r.name for r in tables["lenet5_32"].rows]  # in the order they run
    kinds = {r.name: r.kind for r in tables["lenet5_tanh"].rows}
    assert kinds["c1"] == "conv 5x5" and kinds["c1_act"] == "tanh" and kinds["s2"] == "avg pool 2"


def test_a_table_describes_any_module_by_the_calls_of_one_forward_pass():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            self.head = nn.Linear(3, 10)

        def forward(self, x):
            return self.head(self.body(x).flatten(1))

    from runner.models.build import ModelConfig

    table = param_table("net", "net", ModelConfig(target="x:Net"), Net())
    rows = [(r.name, r.kind, r.shape, r.count) for r in table.rows]
    assert rows == [("body.0", "conv 3x3", (3, 26, 26), 30), ("body.1", "relu", (3, 26, 26), 0),
                    ("body.2", "adaptive avg pool to 1", (3, 1, 1), 0), ("flatten()", "flatten", (3,), 0),
                    ("head", "fc", (10,), 40)]
    assert table.total == 70 and table.unused_line() == ""


class _Student(nn.Module):
    """As students write it: batch norm defined after the output layer, one pool used twice, functional
    activations, a dropout module, a parameter of the model itself, softmax last."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 10)
        self.bn1 = nn.BatchNorm2d(6)  # used
        self.bn2 = nn.BatchNorm2d(16)  # the three below never run
        self.bn3 = nn.BatchNorm1d(120)
        self.bn4 = nn.BatchNorm1d(10)
        self.drop = nn.Dropout(0.25)
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.tanh(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = self.drop(F.relu(self.fc1(x)))
        return F.softmax(self.fc2(x) / self.temperature, dim=1)


def test_a_students_module_is_drawn_in_the_order_it_runs_with_shared_and_unused_parts_said():
    from runner.models.build import ModelConfig
    from runner.models.counts import SHARED, UNUSED

    model = _Student()
    table = param_table("s", "s", ModelConfig(target="x:Student", input=InputTransform(pad=2)), model)
    rows = [(r.name, r.kind, r.shape, r.formula, r.count) for r in table.rows]
    assert rows == [
        ("input", "pad 2", (1, 32, 32), "", 0),  # 32x32, as LeCun's
        ("conv1", "conv 5x5", (6, 28, 28), "(5*5*1+1)*6", 156),
        ("bn1", "batch norm", (6, 28, 28), "2*6", 12),  # where it runs, not where it is defined
        ("relu()", "relu", (6, 28, 28), "", 0),
        ("pool", "max pool 2, shared (call 1 of 2)", (6, 14, 14), "", 0),
        ("conv2", "conv 5x5", (16, 10, 10), "(5*5*6+1)*16", 2416),
        ("tanh()", "tanh", (16, 10, 10), "", 0),
        ("pool", "max pool 2, shared (call 2 of 2)", (16, 5, 5), SHARED, 0),  # the fc layer's input has a source
        ("view()", "flatten", (400,), "", 0),
        ("fc1", "fc", (120,), "(400+1)*120", 48120),
        ("relu()", "relu", (120,), "", 0),
        ("drop", "dropout 0.25", (120,), "", 0),
        ("fc2", "fc", (10,), "(120+1)*10", 1210),
        ("softmax()", "softmax", (10,), "", 0),
        ("temperature", "parameters used directly in forward", (), "1", 1),
        ("bn2..bn4", UNUSED, (), str(32 + 240 + 20), 32 + 240 + 20),
    ]
    assert sum(r.count for r in table.rows) == table.total == sum(p.numel() for p in model.parameters())
    assert table.unused_line() == "defined but not used in forward: bn2..bn4, 292 parameters"
    assert all(UNUSED not in " ".join(cells) for cells in table.cells())  # under its own heading, not a row


def test_a_module_called_twice_counts_its_parameters_once():
    from runner.models.build import ModelConfig

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)
            self.head = nn.Linear(28 * 28, 10)

        def forward(self, x):
            return self.head(torch.flatten(self.conv(self.conv(x)), 1))

    table = param_table("t", "t", ModelConfig(target="x:Twice"), Twice())
    convs = [r for r in table.rows if r.name == "conv"]
    assert [(r.count, r.kind.endswith(f"call {i} of 2)")) for i, r in enumerate(convs, 1)] == [(10, True), (0, True)]
    assert table.total == sum(r.count for r in table.rows) == 10 + 7850


def test_a_parameter_read_inside_a_list_counts_as_used():
    from runner.models.build import ModelConfig

    class Token(nn.Module):
        def __init__(self):
            super().__init__()
            self.token = nn.Parameter(torch.zeros(1, 784))
            self.head = nn.Linear(784, 10)

        def forward(self, x):
            return self.head(torch.cat([self.token, x.flatten(1)])[1:])  # the parameter only inside the list

    table = param_table("t", "t", ModelConfig(target="x:Token"), Token())
    assert table.unused_line() == "" and ("token", "parameters used directly in forward") in \
        [(r.name, r.kind) for r in table.rows]


# ---------------------------------------------------------------- stored with its trial, and reported


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


def test_the_output_kind_is_read_from_the_last_row_that_ran():
    """What a report reads of a stored table: a softmax or log softmax that ran last, not one inside or unused."""
    from runner.models.counts import UNUSED, LayerRow, table_output_kind
    from runner.models.user import LOG_PROBABILITIES, LOGITS, PROBABILITIES

    fc = LayerRow("fc3", "fc", (10,), "(84+1)*10", 850)
    soft = LayerRow("softmax()", "softmax", (10,), "", 0)
    assert table_output_kind([fc, soft]) == (PROBABILITIES, soft)
    assert table_output_kind([fc, LayerRow("out", "log softmax", (10,), "", 0)])[0] == LOG_PROBABILITIES
    assert table_output_kind([soft, fc]) == (LOGITS, None)  # a softmax inside, logits at the end
    assert table_output_kind([fc, LayerRow("sm", UNUSED, (), "", 0)]) == (LOGITS, None)  # defined, never run
    assert table_output_kind([]) == (LOGITS, None)  # no stored table
