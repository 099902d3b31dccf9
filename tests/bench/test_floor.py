"""runner/bench/floor.py: `runner bench floor`'s variants compute what they claim, and every
figure lands in the table and the JSON. Figures are never checked (benchmarks are not tests)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from runner.bench.common import MEAN, STD
from runner.bench.floor import EVAL_VARIANTS, FoldedNormLeNet5, TRAIN_VARIANTS, pool_first, run_floor
from runner.models import build_model
from runner.models.presets import preset_config


def _pixels(n: int = 8) -> torch.Tensor:
    """Raw digits-like pixels in [0, 255]: mostly background, so the padding matters."""
    torch.manual_seed(1)
    x = torch.randint(0, 256, (n, 1, 28, 28)).float()
    return x * (torch.rand(n, 1, 28, 28) < 0.2)


def _grads(model: torch.nn.Module, out: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    F.cross_entropy(out, torch.arange(len(out)) % 10).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def test_folded_normalization_is_the_same_model():
    torch.manual_seed(0)
    model = build_model(preset_config("lenet5"))
    x = _pixels()
    plain = model((x / 255 - MEAN) / STD)
    g_plain = _grads(model, plain)
    folded = FoldedNormLeNet5(model, MEAN, STD)
    out = folded(x)
    g_folded = {k.removeprefix("model."): v for k, v in _grads(folded, out).items()}
    torch.testing.assert_close(out, plain, atol=1e-4, rtol=1e-4)
    for k in g_plain:
        torch.testing.assert_close(g_folded[k], g_plain[k], atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_pool_first_is_the_same_function_and_the_same_gradients(batch_norm):
    torch.manual_seed(0)
    model = build_model(preset_config("lenet5", batch_norm=batch_norm))
    x = (_pixels() / 255 - MEAN) / STD
    out = model(x)
    grads = _grads(model, out)
    keys = list(model.state_dict())
    model.features = pool_first(model.features)
    assert [type(m).__name__ for m in model.features][1 + batch_norm:3 + batch_norm] == ["MaxPool2d", "ReLU"]
    assert list(model.state_dict()) == keys  # checkpoints load either way
    out2 = model(x)
    assert torch.equal(out2, out)
    for k, g in _grads(model, out2).items():
        assert torch.equal(g, grads[k]), k


@pytest.mark.slow
def test_floor_times_every_variant(tmp_path):
    out = tmp_path / "floor.json"
    result = run_floor(512, 2, out, test_images=500)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["part"], r["key"]) for r in rows] == ([("train", v.key) for v in TRAIN_VARIANTS]
                                                    + [("eval", v.key) for v in EVAL_VARIANTS])
    for r in rows:
        assert len(r["rounds_s"]) == 2 and r["best_s"] == min(r["rounds_s"]) > 0
        assert math.isfinite(r["vs_runner"])
        if r["key"] == "runner":
            assert r["vs_runner"] == 1
    assert result.images == 512
    assert torch.get_num_threads() == result.machine["threads"]  # one thread was a variant, not a leftover
