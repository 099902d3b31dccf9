"""Going after the floor: what makes a LeNet-5 training step and evaluation faster.

`runner bench floor` times the runner's training step (batch 128, channels_last, all cores, the
normalization as one multiply-subtract on the uint8 batch) against one change at a time: other
batch sizes, contiguous memory, one thread, the normalization folded into conv1, max pooling
before ReLU, bfloat16 autocast; and the runner's evaluation (inference mode, batch 2000) against
other batches, contiguous memory, pooling first, `no_grad` and plain autograd. Variants run in
rounds, one after another, so that a change in the machine's load hits them alike, in a new order
each round; the fastest round is reported (the usual estimate of what the code costs, the rest
being interference).

`runner bench profile` (runner/bench/profile.py) sees where the runner's own step spends its time.
"""
from __future__ import annotations

import os
import random
import statistics
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from runner.bench.common import MEAN, STD, Log, normalized, sgd, sync, warn_if_busy, write_json
from runner.data import MNIST, load_mnist
from runner.models import LayerNet, build_model
from runner.models.presets import preset_config
from runner.train import resolve_device, set_threads
from runner.machine.provenance import machine_info

__all__ = ["Variant", "TRAIN_VARIANTS", "EVAL_VARIANTS", "pool_first", "FoldedNormLeNet5",
           "FloorResult", "run_floor", "time_train", "time_eval"]

FULL_TRAIN, FULL_TEST = 60_000, 10_000  # figures are scaled to a full epoch


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    batch: int  # train: the runner's [train].batch_size 128; eval: train.EVAL_BATCH 2000
    channels_last: bool = True  # as train.py does for LeNet-5
    threads: int = 0  # 0 = one per usable core, as the runner's default
    fold_norm: bool = False  # raw pixels in, the normalization folded into conv1
    bf16: bool = False  # torch.autocast(bfloat16) around forward and loss
    pool_first: bool = False  # max pool before ReLU: the same function, ReLU on 4x fewer values
    mode: str = "inference"  # evaluation only: inference | no_grad | grad


TRAIN_VARIANTS = (  # the first is the runner as it is; every other changes one thing
    Variant("runner", "runner: batch 128, channels_last, all cores, mul/sub normalization", 128),
    Variant("batch64", "batch 64", 64),
    Variant("batch256", "batch 256", 256),
    Variant("batch512", "batch 512", 512),
    Variant("contiguous", "contiguous memory (no channels_last)", 128, channels_last=False),
    Variant("threads1", "one thread", 128, threads=1),
    Variant("fold_norm", "normalization folded into conv1", 128, fold_norm=True),
    Variant("pool_first", "max pool before ReLU (same function)", 128, pool_first=True),
    Variant("bf16", "bfloat16 autocast", 128, bf16=True),
)

EVAL_VARIANTS = (
    Variant("runner", "runner: inference_mode, batch 2000, channels_last", 2000),
    Variant("batch128", "batch 128", 128),
    Variant("batch10000", "batch 10000 (the whole split)", 10_000),
    Variant("contiguous", "contiguous memory (no channels_last)", 2000, channels_last=False),
    Variant("pool_first", "max pool before ReLU (same function)", 2000, pool_first=True),
    Variant("no_grad", "no_grad instead of inference_mode", 2000, mode="no_grad"),
    Variant("grad", "autograd on (model.eval() alone)", 2000, mode="grad"),
)


def pool_first(features: nn.Sequential) -> nn.Sequential:
    """The same layers with every ReLU -> MaxPool2d pair swapped.

    max(relu(x)) == relu(max(x)) exactly, and the gradients agree (both are zero where the
    window's maximum is not positive), so the function is unchanged; ReLU sees a quarter of the values.
    """
    layers = list(features.named_children())  # names kept: checkpoints load either way
    for i in range(len(layers) - 1):
        if isinstance(layers[i][1], nn.ReLU) and isinstance(layers[i + 1][1], nn.MaxPool2d):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    return nn.Sequential(OrderedDict(layers))


class FoldedNormLeNet5(nn.Module):
    """LeNet-5 fed raw pixels in [0, 255], the normalization folded into conv1's weights.

    conv1 sees ((x / 255 - m) / s) zero-padded by 2. The same is conv1 with weights w / (255 s)
    and bias b - (m / s) * sum(w) on x padded with 255 m (a normalized 0 is a raw 255 m), so the
    model and its gradients are the wrapped LeNet-5's; only where the arithmetic happens moves.
    """

    def __init__(self, model: LayerNet, mean: float, std: float):
        super().__init__()
        self.model = model
        self.scale, self.shift, self.pad = 1 / (255 * std), mean / std, 255 * mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28) float in [0, 255]
        conv = self.model.features[0]
        w = conv.weight * self.scale  # (6, 1, 5, 5)
        b = conv.bias - self.shift * conv.weight.sum((1, 2, 3))  # (6,)
        x = F.conv2d(F.pad(x, (2, 2, 2, 2), value=self.pad), w, b)  # (B, 6, 28, 28)
        for layer in self.model.features[1:]:
            x = layer(x)
        return self.model.classifier(x)


# ---------------------------------------------------------------- timing one variant


def _model(v: Variant, device: torch.device, seed: int = 0) -> tuple[nn.Module, Any]:
    """(model, memory format) of a variant: LeNet-5, changed as it asks."""
    torch.manual_seed(seed)
    fmt = torch.channels_last if v.channels_last else torch.contiguous_format
    model = build_model(preset_config("lenet5"))
    if v.pool_first:
        model.features = pool_first(model.features)
    model = model.to(device, memory_format=fmt)
    if v.fold_norm:
        model = FoldedNormLeNet5(model, MEAN, STD)
    return model, fmt


def _batch(images: torch.Tensor, fold_norm: bool, fmt: Any) -> torch.Tensor:
    """(B, 28, 28) uint8 -> (B, 1, 28, 28) float, normalized as train.py does unless folded."""
    if fold_norm:
        return images.unsqueeze(1).float().contiguous(memory_format=fmt)
    return normalized(images, fmt)


def time_train(data: MNIST, v: Variant, images: int, device: torch.device, warmup: int = 3) -> float:
    """Seconds per full training epoch (60,000 images) of `v`, timed on the first `images`."""
    set_threads(v.threads)
    model, fmt = _model(v, device)
    opt = sgd(model)
    x_all = data.train.images[:images].to(device)
    y_all = data.train.labels[:images].to(device)
    perm = torch.randperm(len(y_all), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=v.bf16)

    def step(idx: torch.Tensor) -> None:
        x = _batch(x_all[idx], v.fold_norm, fmt)
        with autocast:
            loss = F.cross_entropy(model(x), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    for i in range(warmup):  # first calls allocate and pick kernels
        step(perm[i * v.batch:(i + 1) * v.batch])
    sync(device)
    start = time.perf_counter()
    for i in range(0, len(perm), v.batch):
        step(perm[i:i + v.batch])
    sync(device)
    return (time.perf_counter() - start) * FULL_TRAIN / len(perm)


def time_eval(data: MNIST, v: Variant, device: torch.device) -> float:
    """Seconds per full test pass (10,000 images) of `v`: loss and accuracy, as train.evaluate."""
    set_threads(v.threads)
    model, fmt = _model(v, device)
    model.eval()
    x_all, y_all = data.test.images.to(device), data.test.labels.to(device)
    context = {"inference": torch.inference_mode, "no_grad": torch.no_grad,
               "grad": torch.enable_grad}[v.mode]
    start = time.perf_counter()
    with context():
        loss, correct = torch.zeros((), device=device), torch.zeros((), dtype=torch.int64, device=device)
        for i in range(0, len(y_all), v.batch):
            out = model(_batch(x_all[i:i + v.batch], v.fold_norm, fmt))
            loss += F.cross_entropy(out, y_all[i:i + v.batch], reduction="sum").detach()
            correct += (out.argmax(1) == y_all[i:i + v.batch]).sum()
        loss.item()
    return (time.perf_counter() - start) * FULL_TEST / len(y_all)


# ---------------------------------------------------------------- the sweep


@dataclass
class FloorResult:
    images: int
    rounds: int
    machine: dict[str, Any]
    # variant key -> seconds per round, keys in table order whatever the rounds' order
    train: dict[str, list[float]] = field(default_factory=lambda: {v.key: [] for v in TRAIN_VARIANTS})
    eval: dict[str, list[float]] = field(default_factory=lambda: {v.key: [] for v in EVAL_VARIANTS})

    def rows(self) -> list[dict[str, Any]]:
        """One row per variant: best and median seconds, and best as a ratio to the runner's."""
        out = []
        for part, variants, times in (("train", TRAIN_VARIANTS, self.train), ("eval", EVAL_VARIANTS, self.eval)):
            base = min(times["runner"])
            for v in variants:
                s = times[v.key]
                out.append({"part": part, "key": v.key, "label": v.label, "best_s": min(s),
                            "median_s": statistics.median(s), "vs_runner": min(s) / base, "rounds_s": s})
        return out

    def to_json(self) -> dict[str, Any]:
        return {"command": f"runner bench floor --images {self.images} --rounds {self.rounds}",
                "images": self.images, "rounds": self.rounds, "machine": self.machine,
                "rows": self.rows()}


def run_floor(images: int, rounds: int, out: str | Path, log: Log = lambda s: None,
              test_images: int = 0) -> FloorResult:
    """Time every variant `rounds` times on `images` training and `test_images` test images
    (0 = all 10,000); write the JSON."""
    device = resolve_device("auto")
    threads = len(os.sched_getaffinity(0))
    data = load_mnist("", images, test_images)
    result = FloorResult(len(data.train), rounds, machine_info(str(device), threads))
    warn_if_busy(threads, log)
    for r in range(1, rounds + 1):
        log(f"round {r}/{rounds}: {len(TRAIN_VARIANTS)} training variants on {len(data.train):,} images, "
            f"{len(EVAL_VARIANTS)} evaluation variants on {len(data.test):,}")
        order = random.Random(r)  # a new order each round: no variant always runs first or after another
        for v in order.sample(TRAIN_VARIANTS, len(TRAIN_VARIANTS)):
            result.train[v.key].append(time_train(data, v, len(data.train), device))
        for e in order.sample(EVAL_VARIANTS, len(EVAL_VARIANTS)):
            result.eval[e.key].append(time_eval(data, e, device))
    set_threads(threads)
    result.machine["load_average_end"] = os.getloadavg()
    write_json(result.to_json(), out)
    return result
