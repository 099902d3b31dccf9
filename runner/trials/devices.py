"""Which device each worker trains on: GPUs shared out among a machine's workers, or the CPU.

With G visible CUDA devices, worker i of N gets the (i mod G)-th (`--gpus 0,2` to choose them), so
N > G puts several workers on one GPU on purpose. A spawned worker sees its GPU alone
(CUDA_VISIBLE_DEVICES), as cuda:0; its index on the machine and its name go into the trial's
provenance.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from dataclasses import dataclass

from runner.data import Data
from runner.errors import RunnerError
from runner.machine import available_bytes, mib
from runner.models.memory import data_bytes
from runner.record import device_record
from runner.spec import Spec
from runner.spec.tables import largest_batch, training_footprint
from runner.text import plural
from runner.train import resolve_device

__all__ = ["GPU_ENV", "cuda_count", "place_workers", "on_gpus", "worker_envs", "worker_device", "device_provenance",
           "rss_bytes", "before_data", "WorkerFootprint", "worker_footprint", "check_workers"]

CUDA_CONTEXT_BYTES = 500 * 2**20  # what a process's CUDA context takes on its GPU, before any tensor

GPU_ENV = "RUNNER_GPU"  # a spawned worker's GPU, by its index among the parent's visible devices


def cuda_count() -> int:
    """CUDA devices this process may use (CUDA_VISIBLE_DEVICES counted); 0 without CUDA."""
    return torch.cuda.device_count()


def place_workers(workers: int, gpus: str | None, device: str, count: int | None = None) -> list[int | None]:
    """The GPU of each of `workers` workers, by index (None: the CPU).

    Args:
        gpus: "0,2" (--gpus): the GPUs to use; None: every visible one.
        device: [train].device: "cpu" keeps every worker on the CPU.
        count: the number of visible CUDA devices (default: torch's count).
    """
    count = cuda_count() if count is None else count
    if gpus is None:
        usable = list(range(count)) if device != "cpu" else []
    else:
        try:
            usable = [int(x) for x in gpus.split(",")]
        except ValueError:
            raise RunnerError(f"--gpus {gpus}: not a list of GPU indices, e.g. --gpus 0,2") from None
        if any(not 0 <= i < count for i in usable):
            ids = f" (0..{count - 1})" if count > 1 else " (0)" if count == 1 else ""
            raise RunnerError(f"--gpus {gpus}: this machine has {count} visible CUDA device{'s' if count != 1 else ''}"
                              f"{ids}")
        if len(set(usable)) != len(usable):
            raise RunnerError(f"--gpus {gpus}: each GPU once; several workers share one when --workers is larger")
        if device == "cpu":
            raise RunnerError(f'--gpus {gpus} with [train].device = "cpu": drop one of them')
    if device == "cuda" and not usable:
        raise RunnerError('[train].device = "cuda" but no CUDA GPU is available; use "auto" or "cpu"')
    return [usable[i % len(usable)] if usable else None for i in range(workers)]


def on_gpus(placed: list[int | None]) -> str:
    """" on GPU 0" / " on GPUs 0, 1 (2 workers each)" for the start line; "" on the CPU."""
    gpus = sorted({g for g in placed if g is not None})
    if not gpus:
        return ""
    share = max(placed.count(g) for g in gpus)
    each = f" ({share} workers each)" if share > 1 and len(gpus) > 1 else f" ({share} workers)" if share > 1 else ""
    return f" on GPU{'s' if len(gpus) > 1 else ''} {', '.join(map(str, gpus))}{each}"


def worker_envs(placed: list[int | None]) -> list[dict[str, str]]:
    """What each spawned worker adds to its environment: its GPU alone visible."""
    visible = [x.strip() for x in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if x.strip()]
    return [{} if gpu is None else {"CUDA_VISIBLE_DEVICES": visible[gpu] if gpu < len(visible) else str(gpu),
                                    GPU_ENV: str(gpu)} for gpu in placed]


def worker_device(setting: str, gpu: int | None = None) -> tuple[torch.device, int | None]:
    """(the device a worker trains on, its GPU index on the machine): a spawned worker's from its
    environment, an in-process worker's `gpu`, else [train].device resolved."""
    if os.environ.get(GPU_ENV) and torch.cuda.is_available():
        return torch.device("cuda:0"), int(os.environ[GPU_ENV])
    if gpu is not None:
        return torch.device(f"cuda:{gpu}"), gpu
    device = resolve_device(setting)
    return device, (device.index or 0) if device.type == "cuda" else None


def device_provenance(device: torch.device, index: int | None) -> dict[str, Any]:
    """The device part of a trial's provenance: "cuda" with the GPU's index and name, or "cpu"."""
    if device.type != "cuda":
        return device_record(device.type)
    return device_record("cuda", index, torch.cuda.get_device_name(device))


def rss_bytes() -> int:
    """This process's resident memory now (what a spawned worker has once it has imported the same)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass(frozen=True)
class WorkerFootprint:
    """What one worker takes: its process, its copy of the data, training its largest model."""

    process: int  # Python, torch and the runner imported
    data: int  # the splits as uint8, and their transformed copy (pad, resize) if any
    model: int  # training the largest declared model at the largest batch size (0: a user's module)
    model_name: str
    batch: int

    @property
    def total(self) -> int:
        return self.process + self.data + self.model

    def parts(self) -> str:
        model = f", {mib(self.model)} to train {self.model_name} at batch {self.batch}" if self.model else ""
        return f"{mib(self.process)} for Python and torch, {mib(self.data)} for its copy of the data{model}"


def worker_footprint(spec: Spec, data: Data, process: int) -> WorkerFootprint:
    """A worker's footprint for a spec bound to its data (see WorkerFootprint)."""
    splits = [data.train, data.test] + ([data.val] if data.val is not None else [])
    images = sum(len(s) for s in splits)
    raw = data_bytes(images, data.shape)
    batch = largest_batch(spec)
    model, name, transformed = 0, "", 0
    for point in spec.model_points():
        cfg = point.model_config()
        if cfg.model_shape != tuple(data.shape):
            transformed = max(transformed, data_bytes(images, cfg.model_shape))
        if not cfg.target:
            need = training_footprint(spec, point, cfg).total  # the estimate the model check made
            if need > model:
                model, name = need, point.model.name
    return WorkerFootprint(process, raw + transformed, model, name, batch)


def before_data() -> tuple[int, int]:
    """(this process's RSS, the memory available) now, before the data is loaded: what check_workers needs."""
    return rss_bytes(), available_bytes("cpu")[0]


def check_workers(spec: Spec, data: Data, workers: int, placed: list[int | None], before: tuple[int, int]) -> list[str]:
    """Refuse, in one line with the figures and the --workers that fits, `workers` workers whose footprints
    together exceed the memory available: this machine's for the process and its data (and the model on
    the CPU), each GPU's for the workers placed on it. Returns the check's lines, for a dry run.

    Args:
        before: `before_data()`, taken before this process loaded the data (which each worker process
            loads again; one worker is this process, whose own memory is in use already).
    """
    process, have = before
    fp = worker_footprint(spec, data, process)
    on_cpu = placed.count(None)
    per_cpu = fp.total if on_cpu else fp.process + fp.data
    if workers == 1:  # this process is the worker: its own memory is in use already, not to come
        have += process
    lines = [f"memory: each worker about {mib(per_cpu)} ({fp.parts()}); {plural(workers, 'worker')} "
             f"need{'s' if workers == 1 else ''} "
             f"{mib(workers * per_cpu)} of the {mib(have)} available on this machine"]
    if workers * per_cpu > have:
        fit = have // per_cpu
        hint = f"--workers {fit} fits" if fit >= 1 else "not even one worker fits: a smaller batch size or data"
        raise RunnerError(f"--workers {workers}: each worker needs about {mib(per_cpu)} ({fp.parts()}); "
                          f"{workers} need {mib(workers * per_cpu)}, more than the {mib(have)} available on this "
                          f"machine: {hint}")
    for gpu in sorted({g for g in placed if g is not None}):
        n = placed.count(gpu)
        per_gpu = fp.model + fp.data + CUDA_CONTEXT_BYTES
        free, where = available_bytes(f"cuda:{gpu}")
        lines.append(f"memory on GPU {gpu}: {plural(n, 'worker')} of about {mib(per_gpu)} each, "
                     f"{mib(n * per_gpu)} of the {mib(free)} {where}")
        if n * per_gpu > free:
            fit = max(0, free // per_gpu)
            raise RunnerError(f"--workers {workers}: {n} workers on GPU {gpu} need about {mib(n * per_gpu)} "
                              f"({mib(per_gpu)} each: the CUDA context, the data, training {fp.model_name} at batch "
                              f"{fp.batch}), more than the {mib(free)} {where}: {fit} per GPU fit")
    return lines
