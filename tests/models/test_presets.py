"""runner/models/presets.py: `arch = "lenet5"` and `arch = "mlp"`: their counts, their
layers, and a declared LeNet-5 that is the preset."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from runner.models import build_model
from runner.models.presets import preset_config
from runner.spec import load_spec


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_lenet5_has_61706_parameters():
    assert n_params(build_model(preset_config("lenet5"))) == 61_706


def test_shipped_mlp_is_within_one_percent_of_lenet5():
    spec = load_spec("specs/regularization.toml")
    for point in spec.points():
        assert abs(n_params(build_model(point.model_config())) - 61_706) / 61_706 < 0.01, point.label()


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


def _students() -> dict:
    from tests.helpers import STUDENTS

    namespace: dict = {}
    exec(STUDENTS, namespace)  # noqa: S102 - the test's own module text
    return namespace


@pytest.mark.parametrize("name, preset", [("LeNet5", "lenet5"), ("SoftLeNet", "lenet5"), ("MLP", "mlp"),
                                          ("BNNet", None)])
def test_a_students_module_is_the_preset_its_layer_table_matches(name, preset):
    """LeNet-5 with padding=2 and functional pooling, or ending in softmax, is LeNet-5; an MLP of other widths is
    the MLP; a conv net of another shape is neither."""
    from runner.models.counts import layer_rows
    from runner.models.presets import matching_preset

    assert matching_preset(layer_rows(_students()[name](), (1, 28, 28))) == preset


def test_a_lenet5_on_padded_input_and_a_preset_with_batch_norm_are_lenet5_and_a_lone_fc_is_no_mlp():
    from runner.models.counts import layer_rows, param_table
    from runner.models.presets import matching_preset
    from tests.helpers import STUDENT

    namespace: dict = {}
    exec(STUDENT.format(last="self.fc3(x)"), namespace)  # noqa: S102 - conv1 unpadded: input = { pad = 2 }
    assert matching_preset(layer_rows(namespace["LeNet5"](), (1, 32, 32), "pad 2")) == "lenet5"
    assert matching_preset(layer_rows(namespace["LeNet5"](), (1, 32, 32))) == "lenet5"
    assert matching_preset(param_table("x", "x", preset_config("lenet5", batch_norm=True)).rows) == "lenet5"
    assert matching_preset(layer_rows(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), (1, 28, 28))) is None
