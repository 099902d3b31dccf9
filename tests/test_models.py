from __future__ import annotations

import re

import pytest
import torch

from runner.counts import parameter_tables
from runner.models import ModelConfig, build_model, count_layers
from runner.spec import load_spec


def n_params(cfg: ModelConfig) -> int:
    return sum(p.numel() for p in build_model(cfg).parameters())


def test_lenet5_has_61706_parameters():
    assert n_params(ModelConfig("lenet5")) == 61_706


def test_shipped_mlp_is_within_one_percent_of_lenet5():
    spec = load_spec("specs/regularization.toml")
    for point in spec.points():
        cfg = ModelConfig(point.model.arch, point.model.hidden, point.reg("dropout"), point.reg("batch_norm"))
        assert abs(n_params(cfg) - 61_706) / 61_706 < 0.01, point.label()


@pytest.mark.parametrize("cfg", [ModelConfig("lenet5"), ModelConfig("lenet5", batch_norm=True, dropout=0.5),
                                 ModelConfig("mlp", (74, 40)), ModelConfig("mlp", (10, 20, 30), batch_norm=True)])
def test_layer_formulas_evaluate_to_their_counts_and_sum_to_the_total(cfg):
    model = build_model(cfg)
    rows = count_layers(model)
    for r in rows:
        expression = re.sub(r"\(scale, shift\)", "", r.formula)
        assert eval(expression, {"__builtins__": {}}) == r.count, r  # noqa: S307 - digits and * + ( ) only
    assert sum(r.count for r in rows) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ["lenet5", "mlp"])
def test_models_map_a_batch_to_ten_logits(arch):
    out = build_model(ModelConfig(arch, batch_norm=True, dropout=0.5))(torch.zeros(3, 1, 28, 28))
    assert out.shape == (3, 10)


def test_dropout_sits_on_hidden_layers_only():
    kinds = [type(m).__name__ for m in build_model(ModelConfig("lenet5", dropout=0.5)).classifier]
    assert kinds.count("Dropout") == 2 and kinds[-1] == "Linear"


def test_parameter_tables_cover_every_model_and_batch_norm_variant():
    tables = parameter_tables(load_spec("specs/regularization.toml"))
    totals = {title: total for title, _, _, total in tables}
    assert totals == {"lenet5 (lenet5)": 61_706, "lenet5 (lenet5, batch_norm)": 62_158,
                      "mlp (mlp)": 61_500, "mlp (mlp, batch_norm)": 61_728}
