"""runner/bench/common.py: what the benchmarks share: the course template's normalization, its optimizer, the
LeNet-5 spec they time (declared as layers, the same model as the preset), and the JSON they write."""
from __future__ import annotations

import json

import pytest
import torch
from torchvision import transforms

from runner.bench.common import MEAN, STD, BenchConfig, bench_mlp_spec, bench_spec, lenet5, normalized, sgd, write_json
from runner.models import build_model
from runner.spec import load_spec


def test_normalized_is_the_course_templates_normalize():
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    expected = transforms.Normalize((MEAN,), (STD,))(images.unsqueeze(1).float() / 255)  # (4, 1, 28, 28)
    x = normalized(images, torch.channels_last)
    assert x.shape == (4, 1, 28, 28) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x, expected, atol=1e-5)


def test_lenet5_and_its_sgd_are_the_course_templates():
    model, fmt = lenet5(torch.device("cpu"), channels_last=False)
    assert fmt == torch.contiguous_format
    assert sum(p.numel() for p in model.parameters()) == 61_706  # LeNet-5 on 28 x 28 padded by 2
    group = sgd(model).param_groups[0]
    assert (group["lr"], group["momentum"]) == (0.01, 0.9)


@pytest.mark.parametrize("ema", [0.0, 0.999])
def test_the_declared_lenet5_is_the_preset(tmp_path, ema):
    config = BenchConfig.quick_check()
    points = []
    for declared in (False, True):
        path = tmp_path / f"{declared}.toml"
        path.write_text(bench_spec("b", config, [0, 1], "none", declared=declared, ema=ema))
        points.append(load_spec(path).points())
    preset = points[0]
    assert [p.seed for p in preset] == [0, 1] and preset[0].train.epochs == config.epochs == 1
    assert preset[0].reg("ema") == ema
    shapes = [[tuple(v.shape) for v in build_model(p[0].model_config()).state_dict().values()] for p in points]
    assert shapes[0] == shapes[1] and len(shapes[0]) == 10  # the same five layers' weights and biases, in order


def test_write_json_makes_its_folder_and_ends_with_a_newline(tmp_path):
    path = write_json({"figure": 1.5}, tmp_path / "a" / "b.json")
    assert path.read_text().endswith("}\n") and json.loads(path.read_text()) == {"figure": 1.5}


def test_the_bench_times_the_same_mlp_untaught_and_taught_by_a_weights_file(tmp_path):
    config = BenchConfig.quick_check()
    # a weights file as runner export writes them (its trial in no storage: fine for a student scored on test only)
    torch.save({"state_dict": {}, "study": "bench-none", "trial": 0, "dataset": "mnist"}, tmp_path / "lenet5.pt")
    specs = []
    for name, teacher in (("plain", ""), ("taught", "lenet5.pt")):
        (tmp_path / f"{name}.toml").write_text(bench_mlp_spec(name, config, teacher))
        specs.append(load_spec(tmp_path / f"{name}.toml"))
    plain, taught = (s.points()[0] for s in specs)
    assert plain.train.teacher is None and plain.train.distill_weight == 0
    assert taught.train.teacher.origin == "lenet5.pt" and taught.train.distill_weight == 0.9
    assert plain.model.resolved() == taught.model.resolved() and plain.model.arch == "mlp"
