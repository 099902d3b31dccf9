"""Presets, declared layer lists and their layer tables (runner/models/)."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runner.models import build_model
from runner.models.counts import param_table
from runner.spec.tables import parameter_tables
from runner.models.layers import InputTransform, Layer, build_layers
from runner.models.presets import preset_config
from runner.spec import load_spec

COURSE = {"lenet5_32": 61_706, "lenet5_tanh": 61_706, "mlp_1024": 61_450, "lenet5_bn_drop": 61_750,
          "lenet5_wide": 115_510, "mlp_90": 81_080}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_lenet5_has_61706_parameters():
    assert n_params(build_model(preset_config("lenet5"))) == 61_706


def test_shipped_mlp_is_within_one_percent_of_lenet5():
    spec = load_spec("specs/regularization.toml")
    for point in spec.points():
        assert abs(n_params(build_model(point.model_config())) - 61_706) / 61_706 < 0.01, point.label()


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


@pytest.mark.parametrize("arch", ["lenet5", "mlp"])
def test_presets_map_a_batch_to_ten_logits(arch):
    out = build_model(preset_config(arch, batch_norm=True, dropout=0.5))(torch.zeros(3, 1, 28, 28))
    assert out.shape == (3, 10)


def test_dropout_sits_on_hidden_fc_layers_and_batch_norm_before_each_activation():
    model = build_model(preset_config("lenet5", dropout=0.5, batch_norm=True))
    names = [n for n, _ in model.named_children()]
    assert names == ["features", "classifier"]
    features = [type(m).__name__ for m in model.features]
    assert features == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] * 2
    classifier = [type(m).__name__ for m in model.classifier]
    assert classifier == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Dropout",
                          "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]


def test_a_layer_overrides_the_models_batch_norm_dropout_and_activation():
    layers = (Layer.of("conv", conv=4, k=3, bn=True, act="tanh", name="a"), Layer.of("pool", pool="avg"),
              Layer.of("fc", fc=8, dropout=0.25, bn=False), Layer.of("fc", fc=10))
    model = build_layers(layers, (1, 28, 28), act="relu", batch_norm=True, dropout=0.5)
    assert [type(m).__name__ for m in model.features] == ["Conv2d", "BatchNorm2d", "Tanh", "AvgPool2d"]
    classifier = list(model.classifier)
    assert [type(m).__name__ for m in classifier] == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert classifier[3].p == 0.25


def test_a_declared_lenet5_is_the_preset_same_weights_for_the_same_seed(write_spec):
    spec = load_spec(write_spec("""
        [study]
        name = "d"
        [models.declared]
        layers = [{ conv = 6, k = 5, pad = 2 }, { pool = "max", k = 2 }, { conv = 16, k = 5 },
                  { pool = "max", k = 2 }, { fc = 120 }, { fc = 84 }, { fc = 10 }]
        [models.preset]
        arch = "lenet5"
        [grid]
        model = ["declared", "preset"]
        """))
    torch.manual_seed(0)
    declared = build_model(spec.point({"model": "declared"}, 0).model_config())
    torch.manual_seed(0)
    preset = build_model(spec.point({"model": "preset"}, 0).model_config())
    a, b = list(declared.state_dict().values()), list(preset.state_dict().values())
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(declared(x), preset(x))


def test_input_pad_and_resize_match_torchvision_on_the_raw_pixels():
    from torchvision.transforms import v2

    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(InputTransform(pad=2).apply(images), v2.Pad(2)(images))
    assert InputTransform(pad=2).apply(images)[:, :, :2].eq(0).all()  # background, not the mean
    assert torch.equal(InputTransform(resize=32).apply(images), v2.Resize(32, antialias=True)(images))
    assert InputTransform(resize=32).shape((1, 28, 28)) == (1, 32, 32)


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


def test_diagram_is_a_png_and_byte_identical_for_the_same_table():
    from runner.models.diagram import diagram_file, diagram_png

    table = parameter_tables(load_spec("specs/course.toml"))[0]
    png = diagram_png(table, (1, 28, 28))
    assert png.startswith(b"\x89PNG") and png == diagram_png(table, (1, 28, 28))
    assert re.fullmatch(r"model-[A-Za-z0-9._-]+\.png", diagram_file(table))


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


def test_the_memory_estimate_takes_a_batch_of_one_with_batch_norm():
    from runner.models.memory import footprint

    cfg = preset_config("lenet5", batch_norm=True, dropout=0.5)
    assert footprint(cfg, 1).params == sum(p.numel() for p in build_model(cfg).parameters())
