"""Where a LeNet-5 epoch's time goes, stage by stage and operator by operator.

`runner bench profile` runs the runner's own `train_point` for one epoch on a subset under the
PyTorch profiler and reports the time of each stage of the step (labelled in train.py) and of
each operator family.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from runner.bench.common import BenchConfig, Log, bench_spec, write_json
from runner.data import MNIST, load_mnist
from runner.spec import load_spec
from runner.train import resolve_device, train_point
from runner.machine.provenance import machine_info

__all__ = ["STAGES", "OP_FAMILIES", "ProfileResult", "run_profile"]

STAGES = ("batch", "forward", "backward", "optimizer", "metrics", "evaluate")  # train.stage labels

# Operator families by aten name; self time, so nothing is counted twice. Copies and element-wise
# ops serve several stages (the batch, SGD, the metrics): the stages tell those apart.
OP_FAMILIES = {
    "conv forward": ("mkldnn_convolution", "_convolution", "convolution", "conv2d"),
    "conv backward": ("convolution_backward",),
    "max pool forward": ("max_pool2d_with_indices", "max_pool2d"),
    "max pool backward": ("max_pool2d_with_indices_backward",),
    "ReLU forward and backward": ("relu_", "relu", "clamp_min_", "clamp_min", "threshold_backward"),
    "fully connected forward and backward": ("addmm", "mm", "linear", "t", "transpose", "matmul"),
    "loss forward and backward": ("cross_entropy_loss", "log_softmax", "_log_softmax", "nll_loss",
                                  "_log_softmax_backward_data", "nll_loss_nd", "nll_loss_forward",
                                  "nll_loss_backward"),
    "copies and fills": ("copy_", "_to_copy", "to", "fill_", "zero_", "zeros", "clone", "contiguous"),
    "element-wise (normalize, SGD, metrics)": ("mul_", "sub_", "add_", "mul", "sub", "add", "sum", "argmax",
                                               "eq"),
}
_FAMILY_OF = {f"aten::{op}": family for family, ops in OP_FAMILIES.items() for op in ops}


@dataclass
class ProfileResult:
    images: int
    batch: int
    wall_s: float  # the profiled epoch, profiler on
    plain_wall_s: float  # the same epoch without the profiler
    stages: dict[str, float]  # stage -> seconds (inclusive, as the main thread saw them)
    families: dict[str, float]  # family -> self CPU seconds
    top_ops: list[dict[str, Any]]  # name, calls, self seconds
    machine: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"command": f"runner bench profile --images {self.images}", **asdict(self)}


def run_profile(images: int, out: str | Path, top: int = 15, log: Log = lambda s: None) -> ProfileResult:
    """Profile one epoch of the runner's `train_point` (LeNet-5, batch 128) on `images` images."""
    device = resolve_device("auto")
    config = BenchConfig(epochs=1, train_limit=images)
    data = load_mnist("", images, 0)
    with tempfile.TemporaryDirectory(prefix="runner-profile-") as tmp:
        path = Path(tmp) / "profile.toml"
        path.write_text(bench_spec("profile", config, [0], "none"))
        point = load_spec(path).points()[0]
    log(f"one epoch on {len(data.train):,} images without the profiler, then with it")
    train_point(point, MNIST(data.train.head(4 * point.train.batch_size), data.test.head(2000), "warm-up",
                             "", False), device)  # first calls allocate and pick kernels
    start = time.perf_counter()
    train_point(point, data, device)
    plain = time.perf_counter() - start
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler library's own chatter: errors only
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        start = time.perf_counter()
        train_point(point, data, device)
        wall = time.perf_counter() - start
    stages, families, ops = _summarize(prof.key_averages(), top)
    result = ProfileResult(len(data.train), point.train.batch_size, wall, plain, stages, families, ops,
                           machine_info(str(device), torch.get_num_threads()))
    write_json(result.to_json(), out)
    return result


def _summarize(events: Any, top: int) -> tuple[dict[str, float], dict[str, float], list[dict[str, Any]]]:
    """(stage seconds, family self seconds, the `top` operators by self time) of key_averages()."""
    stages = {s: 0.0 for s in STAGES}
    families: dict[str, float] = defaultdict(float)
    ops = []
    for e in events:
        if e.key.startswith("runner."):
            stages[e.key.removeprefix("runner.")] += e.cpu_time_total / 1e6
        else:
            families[_FAMILY_OF.get(e.key, "other")] += e.self_cpu_time_total / 1e6
            ops.append({"name": e.key, "calls": e.count, "self_s": e.self_cpu_time_total / 1e6})
    ops.sort(key=lambda o: -o["self_s"])
    order = [*OP_FAMILIES, "other"]
    return stages, {f: families[f] for f in order if f in families}, ops[:top]
