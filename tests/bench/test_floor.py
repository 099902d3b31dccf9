"""`runner bench floor` and `runner bench profile`: the variants compute what they claim, and every
figure lands in the table and the JSON. Figures are never checked (benchmarks are not tests)."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from runner.bench.common import MEAN, STD
from runner.bench.floor import EVAL_VARIANTS, TRAIN_VARIANTS, FoldedNormLeNet5, pool_first, run_floor
from runner.bench.profile import OP_FAMILIES, STAGES
from runner.cli import cli
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


@pytest.mark.slow
def test_profile_command_reports_stages_and_families(tmp_path):
    out = tmp_path / "profile.json"
    result = CliRunner().invoke(cli, ["bench", "profile", "--images", "512", "--top", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["stages"]) == set(STAGES)
    assert all(report["stages"][s] > 0 for s in STAGES)  # every stage of train.py is labelled
    assert report["families"]["conv forward"] > 0 and report["families"]["conv backward"] > 0
    assert set(report["families"]) <= {*OP_FAMILIES, "other"}
    top = [o["self_s"] for o in report["top_ops"]]
    assert len(top) == 5 and top == sorted(top, reverse=True)
    assert report["images"] == 512 and "aten::mkldnn_convolution" in result.output
    for stage in STAGES:
        assert stage in result.output


def test_bench_options_before_a_subcommand_are_refused():
    result = CliRunner().invoke(cli, ["bench", "--quick", "floor"])
    assert result.exit_code == 2 and "--quick belongs to `runner bench` itself" in result.output


@pytest.mark.parametrize("sub", ["floor", "profile"])
def test_bench_subcommands_have_help_with_examples(sub):
    result = CliRunner().invoke(cli, ["bench", sub, "--help"])
    assert result.exit_code == 0 and f"runner bench {sub}" in result.output
