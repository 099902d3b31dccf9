"""Train one point: the whole split in memory, index-sliced batches, batched augmentation.

Nothing in the hot path touches PIL or a per-sample Dataset: the uint8 split is moved to the
device once, a batch is `images[perm[i:i+B]]`, normalized (and augmented) as one tensor. With
`ema`, an exponential moving average of the weights is kept beside them (PyTorch's AveragedModel)
and is what is evaluated and returned.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from runner.augment import AUGMENTATIONS, affine_augment, elastic_augment
from runner.data import Data, Split
from runner.distill import Distillation, Teacher, distill_loss
from runner.errors import RunnerError
from runner.models import build_model
from runner.models.build import ModelConfig
from runner.models.layers import InputTransform
from runner.models.user import probabilities
from runner.optim import OPTIMIZERS, SCHEDULES
from runner.spec import Point, TrainConfig

__all__ = ["EpochMetrics", "TrainingError", "resolve_device", "set_threads", "affine_augment", "elastic_augment",
           "train_point", "evaluate", "stage", "reset_peak_memory", "peak_memory_mb", "weight_average",
           "Batches", "EpochSettings", "train_one_epoch", "predict", "batches_for", "channels_last"]


class TrainingError(RunnerError):
    """A trial that cannot go on, such as a NaN loss."""


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean training objective over the epoch (with label smoothing, if any)
    train_acc: float  # percent, on the training batches as seen (augmented, in train mode)
    test_loss: float | None  # mean cross-entropy on the test split (None in a search: never evaluated)
    test_acc: float | None  # percent
    lr: float  # learning rate at the start of the epoch
    seconds: float  # wall time of the epoch, train + validation + test
    val_loss: float | None = None  # on the validation split held out of the training images, if any
    val_acc: float | None = None


@dataclass(frozen=True)
class EpochSettings:
    """What every epoch of one training does alike."""
    batch_size: int
    steps: int  # batches per epoch
    augment: str = "none"  # a name of AUGMENTATIONS, or "none"
    smoothing: float = 0.0  # the cross-entropy's label smoothing
    distill: Distillation | None = None  # a teacher's share of the loss (runner.distill)


# Batch 128-1,000 evaluates slightly faster than 2,000 on 2 CPU cores (about 1% of an epoch,
# docs/benchmarks.md); 2,000 is kept so that new trials are evaluated as the stored ones were.
EVAL_BATCH = 2000


def stage(name: str) -> contextlib.AbstractContextManager:
    """A labelled region in a PyTorch profile (`runner bench profile`); a no-op (~1 us) otherwise."""
    if torch.autograd._profiler_enabled():
        return torch.profiler.record_function(f"runner.{name}")
    return contextlib.nullcontext()


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunnerError('[train].device = "cuda" but no CUDA GPU is available; use "auto" or "cpu"')
    return torch.device(name)


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads (0 = one per core); return the number set."""
    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's max allocated, or this process's peak RSS (Linux's clear_refs)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident set size (Linux 4.0+)
    except OSError:
        pass  # elsewhere the peak is the process's since it started


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since reset_peak_memory: CUDA max allocated, else the process's peak RSS, in MB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


class Batches:
    """Normalized batches of a split already on the device."""

    def __init__(self, split: Split, device: torch.device, mean: float, std: float, channels_last: bool,
                 transform: InputTransform = InputTransform()):
        self.channels_last = channels_last
        images = split.images.unsqueeze(1) if split.images.dim() == 3 else split.images  # (N, C, H, W)
        self.images = transform.apply(images.to(device))  # uint8, copied (and padded or resized) once
        self.labels = split.labels.to(device)
        self.scale, self.shift = 1 / (255 * std), mean / std  # x/255 normalized in one fma

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor | slice, g: torch.Generator | None = None, augment: str = "none"):
        """(normalized images (B, C, H, W), labels (B,)); augmented first (AUGMENTATIONS, drawn from `g`)
        unless `augment` is "none", as it is for every evaluation."""
        x = self.images[idx].float()  # (B, C, H, W) in [0, 255], background 0
        if augment != "none":
            x = AUGMENTATIONS[augment](x, g)
        x = x.mul_(self.scale).sub_(self.shift)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[idx]


def evaluate(model: nn.Module, data: Batches) -> tuple[float, float]:
    """(mean cross-entropy, accuracy in percent) over a whole split."""
    model.eval()
    loss = torch.zeros((), device=data.labels.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.labels.device)
    with torch.inference_mode(), stage("evaluate"):
        for i in range(0, len(data), EVAL_BATCH):
            x, y = data.batch(slice(i, i + EVAL_BATCH))
            out = model(x)
            loss += F.cross_entropy(out, y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
    n = len(data)
    return loss.item() / n, 100.0 * correct.item() / n


def predict(model: nn.Module, data: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, its softmax probability) of every image of `data`, in order, on the CPU."""
    model.eval()
    classes, confidence = [], []
    with torch.inference_mode():
        for i in range(0, len(data), EVAL_BATCH):
            x, _ = data.batch(slice(i, i + EVAL_BATCH))
            p, c = probabilities(model(x).float()).max(1)  # a model that returns probabilities: as they are
            classes.append(c.cpu())
            confidence.append(p.cpu())
    if not classes:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0)
    return torch.cat(classes), torch.cat(confidence)


def channels_last(cfg: ModelConfig) -> bool:
    """Whether the model trains in channels_last memory: 5.6 s vs 7.3 s per LeNet-5 epoch on 2 CPU cores
    (batch 128). Not for a user's module: its own code may .view() a tensor that channels_last has made
    non-contiguous."""
    return cfg.has_conv and not cfg.target


def batches_for(point: Point, split: Split, data: Data, device: torch.device) -> Batches:
    """A split's batches prepared as `point`'s training prepares them (normalization, input transform, layout)."""
    cfg = point.model_config()
    return Batches(split, device, data.mean, data.std, channels_last(cfg), cfg.input)


def weight_average(model: nn.Module, decay: float, warmup: bool = False) -> AveragedModel | None:
    """The exponential moving average of `model`'s weights and buffers (batch norm's running statistics
    too), or None when `decay` is 0: avg = d * avg + (1 - d) * weights after every step, the first step's
    weights as they are. Its copy keeps the model's device and memory format; its step counter stays on the
    CPU (on CUDA each update copies it to the device, a wait for the queued step).

    d is `decay`, or with `warmup` min(decay, (1 + n) / (10 + n)) at the n-th update after the first
    (TensorFlow's ExponentialMovingAverage with num_updates): at decay 0.999 the first epoch's 469 steps
    otherwise leave 0.63 of the average on the first step's weights (0.999^469), and it lags them."""
    if not decay:
        return None
    if not warmup:
        return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    return AveragedModel(model, multi_avg_fn=_warming_ema(decay), use_buffers=True)


def _warming_ema(decay: float) -> Callable[..., None]:
    """AveragedModel's multi_avg_fn with the decay warm-up; n comes from its counter (n_averaged, kept in a
    checkpoint), read on the CPU where it lives."""
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        steps = float(n.cpu()) if n.device.type == "cpu" else float(n.item())
        d = min(decay, (1.0 + steps) / (10.0 + steps))
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - d)
        else:
            for a, c in zip(averaged, current, strict=True):
                a.copy_(a * d + c * (1.0 - d))
    return update


def train_point(point: Point, data: Data, device: torch.device,
                on_epoch: Callable[[EpochMetrics], None] | None = None,
                resume: dict[str, Any] | None = None,
                save: Callable[[dict[str, Any]], None] | None = None,
                evaluate_test: bool = True, teacher: Teacher | None = None) -> tuple[nn.Module, list[EpochMetrics]]:
    """Train `point` on `data` and evaluate after every epoch; return the model and the metrics.

    With `ema`, the model evaluated and returned is the average of the weights (a plain nn.Module with
    the raw model's state_dict keys); the training loss and accuracy are the raw model's as it trains.

    Args:
        on_epoch: called with each epoch's metrics (after `save`).
        resume: a state from `save` to continue from; the result equals an uninterrupted run's.
        save: called after each epoch with the whole training state (a plain dict).
        evaluate_test: False in a search: the test images are never moved to the device nor passed
            through the model, and the test metrics are None.
        teacher: the spec's teacher on the device (runner.distill.load_teacher), for a point with a
            distill_weight; the loss of a point without one is the cross-entropy alone.
    """
    t: TrainConfig = point.train
    torch.manual_seed(point.seed)  # weights and dropout
    g = torch.Generator(device=device).manual_seed(point.seed)  # shuffling and augmentation
    cfg = point.model_config()
    fmt = torch.channels_last if channels_last(cfg) else torch.preserve_format
    model = build_model(cfg).to(device, memory_format=fmt)
    train = batches_for(point, data.train, data, device)
    test = batches_for(point, data.test, data, device) if evaluate_test else None
    val = batches_for(point, data.val, data, device) if data.val else None
    n, b = len(train), t.batch_size
    steps_per_epoch = n // b + (1 if n % b > 1 else 0)  # a last batch of one image is skipped (batch norm)
    opt = OPTIMIZERS[t.optimizer](model.parameters(), t, point.reg("weight_decay"))
    sched = SCHEDULES[t.schedule](opt, t, steps_per_epoch * t.epochs)
    distill = Distillation(teacher, t.distill_weight, t.distill_temperature) if t.distill_weight and teacher else None
    settings = EpochSettings(b, steps_per_epoch, point.reg("augment"), point.reg("label_smoothing"), distill)
    ema = weight_average(model, point.reg("ema"), point.reg("ema_warmup"))
    evaluated = ema.module if ema is not None else model
    history: list[EpochMetrics] = []
    if resume is not None:
        model.load_state_dict(resume["model"])
        if ema is not None:
            ema.load_state_dict(resume["ema"])
        opt.load_state_dict(resume["optimizer"])
        if sched is not None:
            sched.load_state_dict(resume["scheduler"])
        torch.set_rng_state(resume["rng"])
        g.set_state(resume["generator"])  # a CPU byte tensor, for a CUDA generator too
        if device.type == "cuda" and "cuda_rng" in resume:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        history = [EpochMetrics(**m) for m in resume["history"]]
    for epoch in range(len(history) + 1, t.epochs + 1):
        start, lr = time.perf_counter(), opt.param_groups[0]["lr"]
        train_loss, train_acc = train_one_epoch(model, train, opt, sched, g, settings, ema)
        if not math.isfinite(train_loss):
            raise TrainingError(f"loss became {train_loss} in epoch {epoch}; lower [train].lr")
        val_loss, val_acc = evaluate(evaluated, val) if val is not None else (None, None)
        test_loss, test_acc = evaluate(evaluated, test) if test is not None else (None, None)
        m = EpochMetrics(epoch, train_loss, train_acc, test_loss, test_acc, lr, time.perf_counter() - start,
                         val_loss, val_acc)
        history.append(m)
        if save:
            save(_state(point, model, opt, sched, g, history, ema))
        if on_epoch:
            on_epoch(m)
    return evaluated, history


def _state(point: Point, model: nn.Module, opt, sched, g: torch.Generator,
           history: list[EpochMetrics], ema: AveragedModel | None = None) -> dict[str, Any]:
    """Everything needed to continue exactly: a plain dict of tensors and numbers (the average's too)."""
    state = {"config_hash": point.config_hash, "epoch": len(history),
             "model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict() if sched is not None else {},
             "rng": torch.get_rng_state(), "generator": g.get_state(),
             "history": [asdict(m) for m in history]}
    if ema is not None:
        state["ema"] = ema.state_dict()  # its weights and n_averaged
    if g.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(g.device)
    return state


def train_one_epoch(model, data: Batches, opt, sched, g, settings: EpochSettings,
                    ema: AveragedModel | None = None) -> tuple[float, float]:
    """One training epoch of `settings.steps` batches in a `g`-seeded order; (mean loss, accuracy in percent).

    Args:
        ema: the weight average to update after every step, if any.
    """
    b, steps, augment, smoothing = settings.batch_size, settings.steps, settings.augment, settings.smoothing
    model.train()
    perm = torch.randperm(len(data), generator=g, device=g.device)
    loss_sum = torch.zeros((), device=data.labels.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.labels.device)
    seen = 0
    for step in range(steps):
        with stage("batch"):
            x, y = data.batch(perm[step * b:(step + 1) * b], g, augment)
        with stage("forward"):
            out = model(x)
            loss = distill_loss(out, y, smoothing, settings.distill, x)
        with stage("backward"):
            opt.zero_grad(set_to_none=True)
            loss.backward()
        with stage("optimizer"):
            opt.step()
            if sched is not None:
                sched.step()
            if ema is not None:
                ema.update_parameters(model)
        with stage("metrics"):
            loss_sum += loss.detach() * len(y)  # no .item() per batch: no sync with the device
            correct += (out.detach().argmax(1) == y).sum()
        seen += len(y)
    return loss_sum.item() / seen, 100.0 * correct.item() / seen
