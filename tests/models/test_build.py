"""runner/models/build.py: a ModelConfig stored as plain values and read back builds the same model, and
build_model builds a declared model for the shape its input transform gives."""
from __future__ import annotations

import json

import torch

from runner.models.build import ModelConfig, build_model
from runner.models.layers import InputTransform, Layer
from runner.models.presets import preset_config


def test_a_config_read_back_from_its_dict_is_the_same_config():
    cfg = preset_config("lenet5", batch_norm=True, dropout=0.3)
    stored = json.loads(json.dumps(cfg.to_dict()))  # as stored with the weights
    assert ModelConfig.from_dict(stored) == cfg
    assert ModelConfig.from_dict(stored, search_dir="/specs").search_dir == "/specs"


def test_the_model_built_from_a_read_back_config_takes_the_same_weights():
    cfg = preset_config("lenet5", batch_norm=True)
    first = build_model(cfg)
    again = build_model(ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))))
    again.load_state_dict(first.state_dict())  # strict: the same names and shapes
    x = torch.rand(2, 1, 28, 28)
    first.eval(), again.eval()
    assert torch.equal(first(x), again(x))


def test_a_declared_model_is_built_for_the_shape_its_input_gives():
    cfg = ModelConfig(layers=(Layer.of("fc", fc=10),), input=InputTransform(pad=2), in_shape=(1, 28, 28))
    assert cfg.model_shape == (1, 32, 32) and not cfg.has_conv
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == 32 * 32 * 10 + 10  # the fc layer sees 32 x 32 pixels
    assert model(torch.rand(3, 1, 32, 32)).shape == (3, 10)  # (B, classes): it receives the images padded
    assert preset_config("lenet5").has_conv
