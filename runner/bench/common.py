"""What the benchmarks share: the course template's normalization, the bare LeNet-5 and its SGD,
a device sync, the LeNet-5 spec they time, the JSON they write and the warning they give on a busy
machine."""
from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from runner.models import build_model
from runner.models.presets import preset_config

__all__ = ["BenchConfig", "Log", "MEAN", "STD", "write_json", "warn_if_busy", "normalized", "lenet5", "sync", "sgd",
           "DECLARED_LENET5", "bench_spec", "bench_mlp_spec"]

Log = Callable[[str], None]
MEAN, STD = 0.1307, 0.3081  # the course template's Normalize((0.1307,), (0.3081,))


@dataclass(frozen=True)
class BenchConfig:
    epochs: int = 2  # epochs of each timed trial and of each bare-loop run
    batch_size: int = 128  # the runner's default, used by every pipeline
    png_images: int = 0  # training PNGs of the course pipeline; 0 = the whole training split, as a student has it
    tta_seeds: int = 5  # seeds of each time-to-accuracy recipe (the median is reported)
    tta_target: float = 99.0  # % test accuracy to reach
    workers_points: int = 4  # points of the throughput grid (seeds 0..n-1), run with 1 and 2 workers
    train_limit: int = 0  # 0 = all 60,000
    test_limit: int = 0  # 0 = all 10,000
    quick: bool = False  # tiny subsets: checks that the bench runs; its figures mean nothing

    @classmethod
    def quick_check(cls) -> BenchConfig:
        """Tiny subsets, one epoch: a smoke check in seconds."""
        return cls(epochs=1, png_images=100, workers_points=2, train_limit=500, test_limit=250, quick=True,
                   tta_seeds=2, tta_target=20.0)


def write_json(doc: dict[str, Any], out: str | Path) -> Path:
    """Write a benchmark's figures as JSON (folders created)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def warn_if_busy(threads: int, log: Log) -> None:
    """Say so when other work is running: it would skew every figure."""
    if os.getloadavg()[0] > 0.5 * threads:
        log(f"warning: load average {os.getloadavg()[0]:.1f} on {threads} cores: other work will skew the figures")


def normalized(images: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """(B, 28, 28) uint8 -> (B, 1, 28, 28) float normalized with MEAN and STD, in `memory_format`."""
    x = images.unsqueeze(1).float().mul_(1 / (255 * STD)).sub_(MEAN / STD)  # (B, 1, 28, 28)
    return x.contiguous(memory_format=memory_format)


def lenet5(device: torch.device, channels_last: bool) -> tuple[nn.Module, torch.memory_format]:
    """(the runner's LeNet-5 preset on `device`, its memory format)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return build_model(preset_config("lenet5")).to(device, memory_format=fmt), fmt


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it counts it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    """The course template's optimizer: SGD, lr 0.01, momentum 0.9."""
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)  # the course template's


# LeNet-5 written out in the layer language: the same modules as arch = "lenet5".
DECLARED_LENET5 = ('layers = [{ conv = 6, k = 5, pad = 2 }, { pool = "max", k = 2 }, { conv = 16, k = 5 }, '
                   '{ pool = "max", k = 2 }, { fc = 120 }, { fc = 84 }, { fc = 10 }]')


def _spec_head(name: str, config: BenchConfig, seeds: list[int], train: str = "") -> str:
    """A bench spec's [study], [data] and [train] (with `train`'s extra lines)."""
    return textwrap.dedent(f"""\
        [study]
        name = "{name}"
        seeds = {seeds}

        [data]
        train_limit = {config.train_limit}
        test_limit = {config.test_limit}

        [train]
        epochs = {config.epochs}
        batch_size = {config.batch_size}
        lr = 0.01
        schedule = "constant"
        """) + train + "\n"


def bench_spec(name: str, config: BenchConfig, seeds: list[int], augment: str, declared: bool = False,
               ema: float = 0.0) -> str:
    """The TOML of a LeNet-5 spec timed by the bench (the preset, or declared as a layer list)."""
    model = DECLARED_LENET5 if declared else 'arch = "lenet5"'
    return _spec_head(name, config, seeds) + textwrap.dedent(f"""\
        [models.lenet5]
        {model}

        [grid]
        model = ["lenet5"]
        augment = ["{augment}"]
        """) + (f"ema = [{ema}]\n" if ema else "")


def bench_mlp_spec(name: str, config: BenchConfig, teacher: str = "") -> str:
    """The TOML of the MLP preset timed by the bench, taught by the weights file `teacher` (distill_weight 0.9, T 4)
    where one is given."""
    taught = f'teacher = {{ file = "{teacher}" }}\ndistill_weight = 0.9\ndistill_temperature = 4.0\n' if teacher else ""
    return _spec_head(name, config, [0], taught) + '[models.mlp]\narch = "mlp"\n\n[grid]\nmodel = ["mlp"]\n'
