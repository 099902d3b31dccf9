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

from runner.errors import RunnerError
from runner.train import resolve_device

__all__ = ["GPU_ENV", "cuda_count", "place_workers", "on_gpus", "worker_envs", "worker_device", "device_provenance"]

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
    have = f"this machine has {count} visible CUDA device{'s' if count != 1 else ''}" + \
        (f" (0..{count - 1})" if count > 1 else " (0)" if count == 1 else "")
    if gpus is None:
        usable = list(range(count)) if device != "cpu" else []
    else:
        try:
            usable = [int(x) for x in gpus.split(",")]
        except ValueError:
            raise RunnerError(f"--gpus {gpus}: not a list of GPU indices, e.g. --gpus 0,2") from None
        if any(not 0 <= i < count for i in usable):
            raise RunnerError(f"--gpus {gpus}: {have}")
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
        return {"device": device.type}
    return {"device": "cuda", "device_index": index, "device_name": torch.cuda.get_device_name(device)}
