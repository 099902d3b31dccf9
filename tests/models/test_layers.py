"""runner/models/layers.py: the layer language: declared layer lists and layer-field axes,
shapes checked at load, one-line errors, and the input transforms."""
from __future__ import annotations

import pytest
import torch

from runner.errors import SpecError
from runner.models.layers import InputTransform, Layer, build_layers
from runner.spec import load_spec

DECLARED = """
[study]
name = "l"
[data]
train_limit = 600
test_limit = 300
[train]
epochs = 1
batch_size = 100
lr = 0.05
[models.small]
input = { pad = 2 }
act = "relu"
layers = [
  { conv = 4, k = 5, name = "c1" },
  { pool = "max", k = 2, name = "s2" },
  { conv = 8, k = 5, name = "c3" },
  { pool = "max", k = 2 },
  { fc = 16 },
  { fc = 10, name = "output" },
]
[grid]
"small.c1.conv" = [4, 6]
"""


def error(write_spec, text: str) -> str:
    path = write_spec(text)
    with pytest.raises(SpecError) as e:
        load_spec(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message.removeprefix(f"{path}: ")


def test_a_declared_model_loads_with_its_layer_axis(write_spec):
    spec = load_spec(write_spec(DECLARED))
    points = spec.points()
    assert [p.params["small.c1.conv"] for p in points] == [4, 6]
    assert [p.model.layers[0].size for p in points] == [4, 6]
    assert len({p.config_hash for p in points}) == 2
    assert points[0].resolved()["model"]["layers"][0] == {"conv": 4, "k": 5, "name": "c1"}


@pytest.mark.parametrize("old, new, message", [
    ('{ fc = 16 },', '{ conv = 16, k = 7, name = "c5" }, { fc = 16 },',
     '[models.small].layers[4] (c5): a 7x7 kernel does not fit its input (8, 5, 5)'),
    ('{ fc = 16 },', '{ pool = "max", k = 5 }, { pool = "avg", k = 1, name = "p" }, { fc = 16 },',
     '[models.small].layers[5] (p): a pool on a 1x1 map: its input is (8, 1, 1)'),
    ('{ conv = 8, k = 5, name = "c3" }', '{ conv = 8, kk = 5, name = "c3" }',
     '[models.small].layers[2]: unknown key "kk"; did you mean "k"?'),
    ('{ conv = 8, k = 5, name = "c3" }', '{ conf = 8, k = 5, name = "c3" }',
     '[models.small].layers[2]: unknown key "conf"; did you mean "conv"?'),
    ('{ conv = 8, k = 5, name = "c3" }', '{ conv = 8, name = "c3" }',
     '[models.small].layers[2]: a conv layer needs k'),
    ('{ pool = "max", k = 2, name = "s2" }', '{ pool = "median", k = 2, name = "s2" }',
     '[models.small].layers[1].pool: "median" is not "max" | "avg"'),
    ('{ fc = 10, name = "output" }', '{ fc = 12, name = "output" }',
     '[models.small].layers[5] (output): the last layer gives the logits: fc = 12, but the data has 10 classes'),
    ('{ fc = 10, name = "output" }', '{ fc = 10, name = "output", act = "relu" }',
     'the last layer gives the logits: it takes no act'),
    ('act = "relu"', 'act = "swish"', '[models.small].act: "swish" is not "relu" | "tanh" | "sigmoid" | "gelu"'),
    ('input = { pad = 2 }', 'input = { pad = 2, resize = 32 }', '[models.small].input: give one of'),
    ('{ fc = 16 },', '{ fc = 16, name = "c1" },', '[models.small].layers[4].name: "c1" names two layers'),
    ('"small.c1.conv"', '"smal.c1.conv"', 'unknown model "smal" in smal.c1.conv: defined are small; did you mean "small"?'),
    ('"small.c1.conv"', '"small.c2.conv"', 'small has no layer "c2": its layers are c1, s2, c3, pool4, fc5, output'),
    ('"small.c1.conv"', '"small.c1.kernel"', '[grid].small.c1.kernel: unknown conv field "kernel"; valid conv fields: conv, k, stride, pad, act, bn'),
    ('"small.c1.conv" = [4, 6]', '"small.c1.k" = [5, 29]',
     '[models.small].layers[2] (c3): a 5x5 kernel does not fit its input (4, 2, 2) (with small.c1.k = 29)'),
    ('"small.c1.conv" = [4, 6]', '"small.c1.conv" = [4, 0]', '[grid].small.c1.conv: 0 is not an integer >= 1'),
    ('[models.small]\n', '[models.small]\narch = "lenet5"\n',
     '[models.small]: gives arch and layers; give exactly one of'),
])
def test_bad_layers_get_one_line_naming_model_layer_and_shape(write_spec, old, new, message):
    assert old in DECLARED
    assert message in error(write_spec, DECLARED.replace(old, new))


def test_a_bad_layer_trains_nothing_and_touches_no_database(write_spec, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from runner.cli import cli

    monkeypatch.chdir(tmp_path)
    path = write_spec(DECLARED.replace('{ fc = 16 },', '{ conv = 16, k = 7 }, { fc = 16 },'))
    result = CliRunner().invoke(cli, ["grid", str(path)])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "does not fit its input (8, 5, 5)" in result.output
    assert not (tmp_path / "db").exists()


# ---------------------------------------------------------------- the layers built


def test_a_layer_overrides_the_models_batch_norm_dropout_and_activation():
    layers = (Layer.of("conv", conv=4, k=3, bn=True, act="tanh", name="a"), Layer.of("pool", pool="avg"),
              Layer.of("fc", fc=8, dropout=0.25, bn=False), Layer.of("fc", fc=10))
    model = build_layers(layers, (1, 28, 28), act="relu", batch_norm=True, dropout=0.5)
    assert [type(m).__name__ for m in model.features] == ["Conv2d", "BatchNorm2d", "Tanh", "AvgPool2d"]
    classifier = list(model.classifier)
    assert [type(m).__name__ for m in classifier] == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert classifier[3].p == 0.25


def test_input_pad_matches_torchvision_on_the_raw_pixels():
    from torchvision.transforms import v2

    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(InputTransform(pad=2).apply(images), v2.Pad(2)(images))
    assert InputTransform(pad=2).apply(images)[:, :, :2].eq(0).all()  # background, not the mean


def test_input_resize_matches_torchvision_on_the_raw_pixels():
    from torchvision.transforms import v2

    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(InputTransform(resize=32).apply(images), v2.Resize(32, antialias=True)(images))
    assert InputTransform(resize=32).shape((1, 28, 28)) == (1, 32, 32)
